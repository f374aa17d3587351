"""Get-Item, Get-ChildItem, Get-Content and Get-ItemProperty over the simulated providers.

The items' wire shapes are built per provider: ``filesystem_items.py``, ``registry_items.py``,
``certificate_items.py``.
"""

from __future__ import annotations

import fnmatch
import ntpath
from typing import Any

from simulator import errors
from simulator.cmdlets.base import (
    INT,
    STRING,
    STRINGS,
    SWITCH,
    Invocation,
    Param,
    cmdlet,
)
from simulator.cmdlets.certificate_items import cert_location, cert_object
from simulator.cmdlets.certificates import machine_store
from simulator.cmdlets.filesystem_items import fs_object
from simulator.cmdlets.providers import (
    CERT_STORES,
    CERTIFICATE,
    FILESYSTEM,
    REGISTRY,
    FileSystem,
    Registry,
    classify,
    parent_of,
)
from simulator.cmdlets.registry_items import registry_key_object, registry_values_object

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
            location, store, thumb = cert_location(path)
            certs = machine_store(inv.view) if (store or "").lower() == "my" else []
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
            location, store, thumb = cert_location(path)
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
                for cert in machine_store(inv.view):
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
        if selected:
            inv.out.write(registry_values_object(key_path, selected))
