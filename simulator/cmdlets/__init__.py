"""The simulated cmdlets and where each one exists.

``find(name, endpoint, view, jea)`` answers what a real server answers when asked for a command:
the cmdlet, or None (then the caller raises CommandNotFoundException, as PowerShell does).
"""

from __future__ import annotations

from simulator import replay
from simulator.cmdlets import (  # noqa: F401  (register handlers)
    cas_mailbox,
    diagnostics,
    eventlog,
    exchange,
    exchange_server,
    items,
    lync,
    maintenance,
    select,
    system,
)
from simulator.cmdlets.base import REGISTRY, Cmdlet, Invocation, Output
from simulator.estate import HostView

WINDOWS_ENDPOINT, EXCHANGE_ENDPOINT, LYNC_ENDPOINT = "windows", "exchange", "lync"
# A restricted (JEA, no-language) endpoint always exposes these besides its visible cmdlets (proxy
# functions of PowerShell's restricted session: CommandMetadata.GetRestrictedCommands; e.g. Lee
# Holmes' PowerShell Cookbook, Inventory.ps1, lists them on such an endpoint).
ALWAYS_VISIBLE = {"select-object", "measure-object", "get-command", "get-formatdata", "get-help", "out-default",
                  "exit-pssession"}


def find(name: str, endpoint: str, view: HostView, visible: list[str] | None = None) -> Cmdlet | None:
    """The cmdlet ``name`` as this host and endpoint expose it; ``visible`` limits a JEA endpoint.

    A cmdlet the scenario replays on this host (``replay:``) answers from its capture instead.
    """
    if visible is not None and name.lower() not in {v.lower() for v in visible} | ALWAYS_VISIBLE:
        return None
    replayed = replay.find(name, endpoint, view)
    if replayed is not None:
        return replayed
    found = REGISTRY.get(name.lower())
    if found is None:
        return None
    if endpoint == EXCHANGE_ENDPOINT:
        if found.family != "exchange":
            return None
    elif endpoint == LYNC_ENDPOINT:
        # /OcsPowershell: a restricted session with the Lync cmdlets of the caller's RBAC role only.
        if found.family != "lync" and found.name.lower() not in ALWAYS_VISIBLE:
            return None
    elif found.family == "exchange" or (found.family == "lync" and not view.host.is_lync):
        return None
    if found.available is not None and not found.available(view):
        return None
    return found


__all__ = ["EXCHANGE_ENDPOINT", "LYNC_ENDPOINT", "REGISTRY", "WINDOWS_ENDPOINT", "Cmdlet", "Invocation", "Output", "find"]
