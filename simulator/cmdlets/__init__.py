"""The simulated cmdlets and where each one exists.

``find(name, endpoint, view, jea)`` answers what a real server answers when asked for a command:
the cmdlet, or None (then the caller raises CommandNotFoundException, as PowerShell does).
"""

from __future__ import annotations

from simulator.cmdlets import eventlog, exchange, items, lync, system  # noqa: F401  (register handlers)
from simulator.cmdlets.base import REGISTRY, Cmdlet, Invocation, Output
from simulator.estate import HostView

WINDOWS_ENDPOINT, EXCHANGE_ENDPOINT = "windows", "exchange"


def find(name: str, endpoint: str, view: HostView, visible: list[str] | None = None) -> Cmdlet | None:
    """The cmdlet ``name`` as this host and endpoint expose it; ``visible`` limits a JEA endpoint."""
    found = REGISTRY.get(name.lower())
    if found is None:
        return None
    if visible is not None and found.name.lower() not in {v.lower() for v in visible}:
        return None
    if endpoint == EXCHANGE_ENDPOINT:
        if found.family != "exchange":
            return None
    elif found.family == "exchange" or (found.family == "lync" and not view.host.is_lync):
        return None
    if found.available is not None and not found.available(view):
        return None
    return found


__all__ = ["EXCHANGE_ENDPOINT", "REGISTRY", "WINDOWS_ENDPOINT", "Cmdlet", "Invocation", "Output", "find"]
