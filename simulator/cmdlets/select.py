"""Select-Object, as the last command of ``<cmdlet> | Select-Object -Property ...``.

Some objects travel with fewer properties than the live object has: an X509Certificate2 goes over
remoting as its RawData only (PowerShell's type table: SerializationMethod SpecificProperties,
PropertySerializationSet RawData), so a client cannot see HasPrivateKey or FriendlyName. Select-Object
runs on the server, reads the live object, and writes a new object whose note properties are the
selected values: what a restricted endpoint offers for this (Select-Object is one of the proxy
functions every restricted session exposes).

The output is what PowerShell's Select-Object writes: a PSCustomObject with the type names
``Selected.<first type of the input>``, ``System.Management.Automation.PSCustomObject``,
``System.Object``, the selected properties as notes (``MS``) in the order asked, no ToString; a name
the input lacks is a null note, as in PowerShell.

Handlers attach the live properties of an object whose wire form is cut down with
:func:`with_live`; any other object is read from its adapted and extended properties.
"""

from __future__ import annotations

import fnmatch
from typing import Any

from simulator import psobjects
from simulator.cmdlets.base import (
    INT,
    STRING,
    STRINGS,
    SWITCH,
    Invocation,
    Param,
    cmdlet,
)

_LIVE = "_sim_live"


def with_live(obj: Any, properties: dict[str, Any]) -> Any:
    """Remember the live object's properties (not sent; Select-Object reads them)."""
    setattr(obj, _LIVE, properties)
    return obj


def live_properties(obj: Any) -> dict[str, Any]:
    live = getattr(obj, _LIVE, None)
    if live is not None:
        return dict(live)
    ps = getattr(obj, "PSObject", None)
    if ps is None:
        return {}
    found: dict[str, Any] = {}
    for prop in list(ps.adapted_properties) + list(ps.extended_properties):
        found.setdefault(prop.name, prop.get_value(obj))
    return found


def _type_names(obj: Any) -> list[str]:
    ps = getattr(obj, "PSObject", None)
    return list(ps.type_names) if ps is not None and ps.type_names else ["System.Object"]


@cmdlet(
    "Select-Object",
    "Microsoft.PowerShell.Commands.SelectObjectCommand",
    "windows",
    params=(
        Param("Property", STRINGS, position=0),
        Param("ExcludeProperty", STRINGS),
        Param("ExpandProperty", STRING),
        Param("First", INT),
        Param("Last", INT),
        Param("Skip", INT),
        Param("Unique", SWITCH),
        Param("InputObject", STRINGS),
    ),
)
def select_object(inv: Invocation) -> None:
    objects = list(inv.input or [])
    if inv.get("Skip"):
        objects = objects[inv.get("Skip"):]
    if inv.get("First") is not None:
        objects = objects[: inv.get("First")]
    if inv.get("Last") is not None:
        objects = objects[-inv.get("Last"):] if inv.get("Last") else []
    wanted = inv.get("Property")
    excluded = [p.lower() for p in inv.get("ExcludeProperty") or []]
    expand = inv.get("ExpandProperty")
    for obj in objects:
        available = live_properties(obj)
        if expand is not None:
            lookup = {k.lower(): k for k in available}
            if expand.lower() in lookup:
                inv.out.write(available[lookup[expand.lower()]])
            continue
        if not wanted:
            inv.out.write(obj)
            continue
        selected: dict[str, Any] = {}
        for pattern in wanted:
            if any(ch in pattern for ch in "*?["):
                for name, value in available.items():
                    if fnmatch.fnmatchcase(name.lower(), pattern.lower()) and name.lower() not in excluded:
                        selected.setdefault(name, value)
                continue
            match = next((k for k in available if k.lower() == pattern.lower()), None)
            selected.setdefault(match or pattern, available.get(match) if match else None)
        inv.out.write(psobjects.ps_object(
            [f"Selected.{_type_names(obj)[0]}", "System.Management.Automation.PSCustomObject", "System.Object"],
            extended=selected,
        ))
