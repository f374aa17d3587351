"""Get-Item, Get-ChildItem, Get-Content and Get-ItemProperty over the simulated providers."""

from __future__ import annotations

import datetime as dt
import fnmatch
import ntpath
from typing import Any

from simulator import errors, psobjects
from simulator.cmdlets.base import (
    INT,
    STRING,
    STRINGS,
    SWITCH,
    Invocation,
    Param,
    cmdlet,
)
from simulator.cmdlets.providers import (
    CERT_STORES,
    CERTIFICATE,
    FILESYSTEM,
    REGISTRY,
    FileSystem,
    FsItem,
    Registry,
    StoreCert,
    classify,
    machine_certificates,
    parent_of,
)
from simulator.estate import HostView

_FS_QUALIFIER = "Microsoft.PowerShell.Core\\FileSystem::"
_REG_QUALIFIER = "Microsoft.PowerShell.Core\\Registry::"
_CERT_QUALIFIER = "Microsoft.PowerShell.Security\\Certificate::"
_FILE_TYPES = ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"]
_DIR_TYPES = ["System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"]
_CERT_TYPES = [
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
    "System.Object",
]
_STRING_ARRAY_TYPES = ["System.String[]", "System.Array", "System.Object"]
_CLASSES = {
    "Get-Item": "Microsoft.PowerShell.Commands.GetItemCommand",
    "Get-ChildItem": "Microsoft.PowerShell.Commands.GetChildItemCommand",
    "Get-Content": "Microsoft.PowerShell.Commands.GetContentCommand",
    "Get-ItemProperty": "Microsoft.PowerShell.Commands.GetItemPropertyCommand",
}


def _paths(inv: Invocation) -> list[str]:
    if inv.has("Path") and inv.has("LiteralPath"):
        raise inv.cmdlet.binding_error(
            "AmbiguousParameterSet", "Parameter set cannot be resolved using the specified named parameters.")
    return inv.get("LiteralPath") or inv.get("Path") or ["."]


def _not_found(inv: Invocation, path: str) -> None:
    inv.out.error(errors.path_not_found(path, inv.cmdlet.name, inv.cmdlet.dotnet_class))


def _fs_only_switches(inv: Invocation, provider: str, names: tuple[str, ...]) -> None:
    """-File, -Directory, -Raw... are dynamic parameters of the FileSystem provider only."""
    if provider != FILESYSTEM:
        for name in names:
            if inv.has(name):
                raise inv.cmdlet.binding_error(
                    "NamedParameterNotFound", f"A parameter cannot be found that matches parameter name '{name}'.",
                    name)


def _has_wildcard(path: str) -> bool:
    return any(ch in path for ch in "*?[")


# ---------------------------------------------------------------- objects


def _creation_time(view: HostView, item: FsItem) -> dt.datetime | None:
    """A declared file or folder was created once, at a fixed instant: its relative ``created`` is
    taken from the estate's start, where other times slide with "now" (a log keeps being written,
    it does not keep being created). Clients rely on it to tell a file from its replacement."""
    parent = parent_of(item.path)
    for dir_path, directory in view.host.windows.directories.items():
        _, norm = classify(dir_path)
        if item.is_dir and norm.lower() == item.path.lower():
            spec = directory.created
        elif not item.is_dir and parent is not None and norm.lower() == parent.lower():
            entries = {name.lower(): entry for name, entry in directory.files.items()}
            entry = entries.get(item.name.lower())
            spec = entry.created if entry is not None else None
        else:
            continue
        return spec.resolve(view.started_at) if spec is not None else item.created
    return item.created


def fs_object(inv: Invocation, item: FsItem) -> Any:
    view = inv.view
    parent = parent_of(item.path)
    created = _creation_time(view, item)
    base_name, extension = ntpath.splitext(item.name) if not item.is_dir else (item.name, "")
    adapted: dict[str, Any] = {"Name": item.name}
    if not item.is_dir:
        adapted.update({
            "Length": psobjects.int64(item.size),
            "DirectoryName": parent,
            "IsReadOnly": False,
        })
    else:
        adapted["Parent"] = ntpath.basename(parent.rstrip("\\")) if parent else None
    adapted.update({
        "Exists": True,
        "FullName": item.path,
        "Extension": extension,
        "CreationTime": view.local_dt(created),
        "CreationTimeUtc": view.utc_dt(created),
        "LastAccessTime": view.local_dt(item.modified),
        "LastAccessTimeUtc": view.utc_dt(item.modified),
        "LastWriteTime": view.local_dt(item.modified),
        "LastWriteTimeUtc": view.utc_dt(item.modified),
        "Attributes": psobjects.FileAttributes.Directory if item.is_dir else psobjects.FileAttributes.Archive,
    })
    extended = {
        "PSPath": _FS_QUALIFIER + item.path,
        "PSParentPath": _FS_QUALIFIER + parent if parent else "",
        "PSChildName": item.name,
        "PSIsContainer": item.is_dir,
        "Mode": "d-----" if item.is_dir else "-a----",
        "BaseName": base_name,
    }
    return psobjects.ps_object(_DIR_TYPES if item.is_dir else _FILE_TYPES, adapted, extended, to_string=item.path)


def cert_object(inv: Invocation, cert: StoreCert) -> Any:
    view = inv.view
    return psobjects.ps_object(
        _CERT_TYPES,
        adapted={
            "Archived": False,
            "FriendlyName": cert.friendly_name,
            "HasPrivateKey": cert.has_private_key,
            "NotAfter": view.local_dt(cert.not_after),
            "NotBefore": view.local_dt(cert.not_before),
            "SerialNumber": cert.serial_number,
            "Thumbprint": cert.thumbprint,
            "Version": 3,
            "Issuer": cert.issuer,
            "Subject": cert.subject,
        },
        extended={
            "PSPath": f"{_CERT_QUALIFIER}LocalMachine\\My\\{cert.thumbprint}",
            "PSParentPath": f"{_CERT_QUALIFIER}LocalMachine\\My",
            "PSChildName": cert.thumbprint,
            "PSIsContainer": False,
            # Really List<DnsNameRepresentation>; the simulator sends the names (see README).
            "DnsNameList": psobjects.string_list(cert.dns_names),
            "SendAsTrustedIssuer": False,
        },
        to_string=f"[Subject]\r\n  {cert.subject}\r\n\r\n[Thumbprint]\r\n  {cert.thumbprint}\r\n",
    )


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


def _cert_location(path: str) -> tuple[str | None, str | None, str | None]:
    """``LocalMachine\\My\\THUMB`` -> (location, store, thumbprint)."""
    parts: list[str | None] = [p for p in path.split("\\") if p]
    if len(parts) > 3:
        return None, None, None
    parts += [None] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


# ---------------------------------------------------------------- cmdlets

_PATH_PARAMS = (Param("Path", STRINGS, position=0), Param("LiteralPath", STRINGS, aliases=("PSPath", "LP")))


@cmdlet("Get-Item", _CLASSES["Get-Item"], "windows", params=_PATH_PARAMS + (Param("Force", SWITCH),))
def get_item(inv: Invocation) -> None:
    literal = inv.has("LiteralPath")  # -LiteralPath never expands wildcards: "[" is a character there
    for raw in _paths(inv):
        provider, path = classify(raw)
        if provider == FILESYSTEM:
            fs = FileSystem(inv.view)
            if not literal and _has_wildcard(path):
                parent = parent_of(path) or path
                for item in fs.children(parent):
                    if fnmatch.fnmatchcase(item.name.lower(), ntpath.basename(path).lower()):
                        inv.out.write(fs_object(inv, item))
                continue
            item = fs.get(path)
            if item is None:
                _not_found(inv, raw)
            else:
                inv.out.write(fs_object(inv, item))
        elif provider == REGISTRY:
            registry = Registry(inv.view)
            found = registry.get(path)
            if found is None:
                _not_found(inv, raw)
                continue
            inv.out.write(registry_key_object(found[0], found[1], len(registry.children(found[0]))))
        elif provider == CERTIFICATE:
            location, store, thumb = _cert_location(path)
            certs = machine_certificates(inv.view) if (store or "").lower() == "my" else []
            match = [c for c in certs if thumb and c.thumbprint.lower() == thumb.lower()]
            if location and location.lower() == "localmachine" and thumb and match:
                inv.out.write(cert_object(inv, match[0]))
            else:
                _not_found(inv, raw)
        else:
            _not_found(inv, raw)


@cmdlet(
    "Get-ChildItem",
    _CLASSES["Get-ChildItem"],
    "windows",
    params=_PATH_PARAMS + (
        Param("Filter", STRING, position=1),
        Param("Recurse", SWITCH, aliases=("s",)),
        Param("Force", SWITCH),
        Param("Name", SWITCH),
        Param("File", SWITCH, aliases=("af",)),
        Param("Directory", SWITCH, aliases=("ad", "d")),
    ),
)
def get_child_item(inv: Invocation) -> None:
    name_filter = (inv.get("Filter") or "*").lower()
    for raw in _paths(inv):
        provider, path = classify(raw)
        _fs_only_switches(inv, provider, ("File", "Directory"))
        if provider == FILESYSTEM:
            fs = FileSystem(inv.view)
            item = fs.get(path)
            if item is None:
                _not_found(inv, raw)
                continue
            listing = fs.children(path, recurse=bool(inv.get("Recurse"))) if item.is_dir else [item]
            for child in listing:
                if inv.get("File") and child.is_dir or inv.get("Directory") and not child.is_dir:
                    continue
                if fnmatch.fnmatchcase(child.name.lower(), name_filter):
                    inv.out.write(child.name if inv.get("Name") else fs_object(inv, child))
        elif provider == CERTIFICATE:
            location, store, thumb = _cert_location(path)
            if location is None or location.lower() != "localmachine" or thumb is not None:
                if location is None and path == "":
                    continue  # Cert:\ itself: store locations, not needed by anything here
                _not_found(inv, raw)
                continue
            if store is None:
                continue
            if store.lower() not in (s.lower() for s in CERT_STORES):
                _not_found(inv, raw)
                continue
            if store.lower() == "my":
                for cert in machine_certificates(inv.view):
                    inv.out.write(cert_object(inv, cert))
        elif provider == REGISTRY:
            registry = Registry(inv.view)
            if registry.get(path) is None:
                _not_found(inv, raw)
                continue
            for child_path, values in registry.children(path):
                inv.out.write(registry_key_object(child_path, values, len(registry.children(child_path))))
        else:
            _not_found(inv, raw)


@cmdlet(
    "Get-Content",
    _CLASSES["Get-Content"],
    "windows",
    params=_PATH_PARAMS + (
        Param("Raw", SWITCH),
        Param("TotalCount", INT, aliases=("First", "Head")),
        Param("Tail", INT, aliases=("Last",)),
        Param("Encoding", STRING),
        Param("ReadCount", INT),
    ),
)
def get_content(inv: Invocation) -> None:
    for raw in _paths(inv):
        provider, path = classify(raw)
        _fs_only_switches(inv, provider, ("Raw", "Encoding"))
        if provider != FILESYSTEM:
            inv.out.error(errors.invalid_argument(
                "Cannot use interface. The IContentCmdletProvider interface is not implemented by this provider.",
                f"NotSupported,{inv.cmdlet.dotnet_class}", inv.cmdlet.name))
            continue
        item = FileSystem(inv.view).get(path)
        if item is None:
            _not_found(inv, raw)
            continue
        if item.is_dir:
            inv.out.error(errors.invalid_argument(
                f"Unable to get content because it is a directory: '{item.path}'. Please use 'Get-ChildItem' "
                "instead.", f"GetContentReaderUnauthorizedAccessError,{inv.cmdlet.dotnet_class}", inv.cmdlet.name))
            continue
        text = item.content or ""
        if inv.get("Raw"):
            inv.out.write(text)
            continue
        lines = text.splitlines()
        if inv.get("TotalCount") is not None:
            lines = lines[: inv.get("TotalCount")]
        if inv.get("Tail") is not None:
            lines = lines[-inv.get("Tail"):] if inv.get("Tail") else []
        for line in lines:
            inv.out.write(line)


@cmdlet(
    "Get-ItemProperty",
    _CLASSES["Get-ItemProperty"],
    "windows",
    params=_PATH_PARAMS + (Param("Name", STRINGS, position=1),),
)
def get_item_property(inv: Invocation) -> None:
    for raw in _paths(inv):
        provider, path = classify(raw)
        if provider == FILESYSTEM:
            item = FileSystem(inv.view).get(path)
            if item is None:
                _not_found(inv, raw)
            else:
                inv.out.write(fs_object(inv, item))
            continue
        if provider != REGISTRY:
            _not_found(inv, raw)
            continue
        found = Registry(inv.view).get(path)
        if found is None:
            _not_found(inv, raw)
            continue
        key_path, values = found
        wanted = inv.get("Name")
        selected: dict[str, Any] = {}
        if wanted is None:
            selected = dict(values)
        else:
            lookup = {k.lower(): k for k in values}
            for name in wanted:
                if name.lower() in lookup:
                    selected[lookup[name.lower()]] = values[lookup[name.lower()]]
                else:
                    inv.out.error(errors.property_not_found(name, key_path))
        if not selected:
            continue
        parent = key_path.rsplit("\\", 1)[0]
        extended = {name: _registry_value(value) for name, value in selected.items()}
        extended.update({
            "PSPath": _REG_QUALIFIER + key_path,
            "PSParentPath": _REG_QUALIFIER + parent,
            "PSChildName": key_path.rsplit("\\", 1)[-1],
        })
        inv.out.write(psobjects.ps_object(
            ["System.Management.Automation.PSCustomObject", "System.Object"], extended=extended))
