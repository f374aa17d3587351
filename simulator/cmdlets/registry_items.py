"""Items of the Registry provider as remoting sends them: a key (Get-Item, Get-ChildItem) and the
values of a key (Get-ItemProperty, a PSCustomObject with one note per value)."""

from __future__ import annotations

from typing import Any

from simulator import psobjects

_REG_QUALIFIER = "Microsoft.PowerShell.Core\\Registry::"
_STRING_ARRAY_TYPES = ["System.String[]", "System.Array", "System.Object"]


def _registry_value(value: Any) -> Any:
    if isinstance(value, list):
        result = psobjects.PSList([str(v) for v in value])
        result.PSObject.type_names = list(_STRING_ARRAY_TYPES)
        return result
    if isinstance(value, bool):
        return int(value)
    return value


def registry_key_object(path: str, values: dict, subkeys: int) -> Any:
    parent = path.rsplit("\\", 1)[0] if "\\" in path else ""
    names = psobjects.PSList(list(values))
    names.PSObject.type_names = list(_STRING_ARRAY_TYPES)
    return psobjects.ps_object(
        ["Microsoft.Win32.RegistryKey", "System.MarshalByRefObject", "System.Object"],
        adapted={"Name": path, "SubKeyCount": subkeys, "ValueCount": len(values)},
        extended={
            "Property": names,
            "PSPath": _REG_QUALIFIER + path,
            "PSParentPath": _REG_QUALIFIER + parent if parent else "",
            "PSChildName": path.rsplit("\\", 1)[-1],
            "PSIsContainer": True,
        },
        to_string=path,
    )


def registry_values_object(key_path: str, values: dict[str, Any]) -> Any:
    """Get-ItemProperty's answer: the chosen values as notes, then the provider's notes."""
    parent = key_path.rsplit("\\", 1)[0]
    extended = {name: _registry_value(value) for name, value in values.items()}
    extended.update({
        "PSPath": _REG_QUALIFIER + key_path,
        "PSParentPath": _REG_QUALIFIER + parent,
        "PSChildName": key_path.rsplit("\\", 1)[-1],
    })
    return psobjects.ps_object(
        ["System.Management.Automation.PSCustomObject", "System.Object"], extended=extended)
