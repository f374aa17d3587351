"""Answering a cmdlet with an administrator's own capture (``replay:`` in a scenario).

A host that names ``replay: {Get-ExchangeCertificate: ex01-certs.xml}`` answers that cmdlet with the
file's objects, in the form remoting sends them (``simulator/clixml.py``: capture-only notes dropped,
type names as they travel, depth 2), whatever parameters the caller passes: the file is what the
server "has". The capture is read and checked when the scenario loads (``scenario.py``), so a bad
file fails the scenario, with the file and the key named, before any client connects.

``Get-Content`` may also replay a plain text file (a server's ``web.config``, copied as it is): the
answer is the file's text as one string, which is what ``Get-Content -Raw`` returns.

Where the cmdlet is served: a cmdlet the simulator also implements keeps its endpoint (an Exchange
cmdlet on /PowerShell, a Windows one on /wsman, a Lync one on /OcsPowershell of front ends and on
/wsman of an Edge); any other replayed cmdlet is served on /PowerShell of an Exchange host
(Get-ExchangeServer, Get-ServerComponentState...) and on /wsman of any other host.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from simulator.clixml import Capture
from simulator.cmdlets.base import REGISTRY, Cmdlet, Invocation, plain
from simulator.estate import HostView
from simulator.text_capture import TextCapture


@dataclasses.dataclass(frozen=True)
class ReplayCmdlet(Cmdlet):
    """A cmdlet answered from a capture: every parameter is accepted (and ignored, but -ErrorAction)."""

    def bind(self, arguments: list[tuple[str | None, Any]]) -> dict[str, Any]:
        bound: dict[str, Any] = {}
        for index, (name, value) in enumerate(arguments):
            key = (name or f"Positional{index}").lstrip("-")
            bound["ErrorAction" if key.lower() in ("erroraction", "ea") else key] = plain(value)
        return bound


def find(name: str, endpoint: str, view: HostView) -> Cmdlet | None:
    """The replayed cmdlet ``name`` on this host and endpoint, or None."""
    entry = view.scenario.replays.get(view.name, {}).get(name.lower())
    if entry is None:
        return None
    cmdlet_name, capture = entry
    native = REGISTRY.get(name.lower())
    if native is not None:
        family = native.family
        if family == "lync" and not view.host.is_lync:
            return None
    else:
        family = "exchange" if view.host.is_exchange else "windows"
    if (endpoint == "exchange") != (family == "exchange"):
        return None
    if endpoint == "lync" and family != "lync":
        return None
    dotnet_class = native.dotnet_class if native else f"Simulator.Replay.{cmdlet_name.replace('-', '')}Command"
    return ReplayCmdlet(cmdlet_name, dotnet_class, family, (), _handler(capture))


def _handler(capture: Capture | TextCapture):
    def answer(inv: Invocation) -> None:
        for obj in capture.to_wire():
            inv.out.write(obj)

    return answer
