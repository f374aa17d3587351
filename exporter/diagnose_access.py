"""What the monitoring account may do on each endpoint, as ``diagnose`` saw it: every cmdlet a
collector ran, per target and endpoint kind, and for what failed the advice that fixes it.

The advice follows the rights model of docs/deployment.md ("The monitoring account: one rights model
per endpoint"): Lync cmdlets on a front end go through /OcsPowershell and need Lync's
CsViewOnlyAdministrator role; Exchange cmdlets need an Exchange role group; the Windows endpoint
needs the JEA session configuration of deploy/jea/ (or Remote Management Users plus local rights).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Collection, Mapping, Sequence

from collectors.contract import CmdletAnswer, CollectError, Deadline, Shape
from collectors.helpers.endpoints import EXCHANGE, LYNC, WINDOWS
from collectors.sources.remoting import SessionPool
from exporter.config import Target
from exporter.scheduler import TargetEndpoints

ENDPOINT_NAMES = {WINDOWS: "WinRM", EXCHANGE: "Exchange PowerShell", LYNC: "OcsPowershell"}

# What grants the right on each kind of endpoint ({user}: the monitoring account).
GRANT = {
    LYNC: "add it to CsViewOnlyAdministrator (Add-ADGroupMember -Identity CsViewOnlyAdministrator -Members {user})",
    EXCHANGE: 'add it to an Exchange role group (Add-RoleGroupMember "View-Only Organization Management" '
              "-Member {user})",
    WINDOWS: "map its group to the LyncOwaExporter JEA role (deploy/jea/, Register-PSSessionConfiguration) and use "
             "that configuration, or add it to Remote Management Users with local rights",
}
REACH = {
    LYNC: "the front end's internal web site must answer https://<front end>/OcsPowershell (443); give the "
          "internal CA as ca_file",
    EXCHANGE: "the server's IIS must answer http(s)://<server>/PowerShell (Kerberos)",
    WINDOWS: "Test-WSMan -ComputerName <host> -UseSSL; port 5986 open from the exporter; TLS trust (ca_file)",
}


@dataclass(frozen=True)
class Call:
    collector: str
    target: str
    endpoint: str  # windows | exchange | lync
    configuration: str
    cmdlet: str
    error: CollectError | None


class AccessLog:
    """Every cmdlet call of a diagnose run, from every job; thread-safe (jobs run in parallel)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: list[Call] = []

    def add(self, call: Call) -> None:
        with self._lock:
            self.calls.append(call)


class RecordingEndpoints(TargetEndpoints):
    """The runtime's endpoints of one target, noting the outcome of every cmdlet in an ``AccessLog``."""

    def __init__(self, collector: str, target: Target, sessions: SessionPool, log: AccessLog) -> None:
        super().__init__(target, sessions)
        self.collector = collector
        self.log = log

    def run(self, endpoint_kind: str, cmdlet: str, parameters: Mapping[str, Any] | None, shape: Shape,
            deadline: Deadline, accept_error_ids: Sequence[str]) -> CmdletAnswer:
        endpoint = self.target.endpoints.get(endpoint_kind)
        configuration = endpoint.configuration if endpoint is not None else ""
        try:
            answer = super().run(endpoint_kind, cmdlet, parameters, shape, deadline, accept_error_ids)
        except CollectError as exc:
            self.log.add(Call(self.collector, self.target.name, endpoint_kind, configuration, cmdlet, exc))
            raise
        self.log.add(Call(self.collector, self.target.name, endpoint_kind, configuration, cmdlet, None))
        return answer


@dataclass(frozen=True)
class EndpointReport:
    target: str
    endpoint: str
    label: str  # "OcsPowershell", "WinRM (LyncOwaExporter)"
    worked: tuple[str, ...]  # cmdlets that ran
    problems: tuple[str, ...]  # one line each: what failed a job, and what to do
    notes: tuple[str, ...] = ()  # errors a collector did without (a cmdlet this version lacks, or not granted)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "endpoint": self.endpoint, "label": self.label, "ok": self.ok,
                "worked": list(self.worked), "problems": list(self.problems), "notes": list(self.notes)}


def endpoint_reports(log: AccessLog, targets: Sequence[Target], failed_jobs: Collection[tuple[str, str]]
                     ) -> list[EndpointReport]:
    """One report per target and endpoint kind that some job used, in the configuration's order. An
    error is a problem when its job (collector, target) failed, else a note: the collector did without
    it, as with a cmdlet an older or newer version of the server does not have."""
    users = {target.name: target.credential.username for target in targets}
    order = {target.name: i for i, target in enumerate(targets)}
    grouped: dict[tuple[str, str], list[Call]] = {}
    for call in log.calls:
        grouped.setdefault((call.target, call.endpoint), []).append(call)
    reports = []
    for (target, endpoint), calls in sorted(grouped.items(), key=lambda item: (order.get(item[0][0], 0), item[0])):
        label = ENDPOINT_NAMES.get(endpoint, endpoint)
        if endpoint == WINDOWS:
            label += f" ({calls[0].configuration})"
        worked = tuple(sorted({call.cmdlet for call in calls if call.error is None}))
        problems: list[str] = []
        notes: list[str] = []
        for call in calls:
            if call.error is not None:
                user = users.get(target, "the monitoring account")
                if (call.collector, call.target) in failed_jobs:
                    found, line = problems, advice(endpoint, call.cmdlet, call.error, user)
                else:
                    found, line = notes, tolerated(endpoint, call.cmdlet, call.error, user)
                if line not in found:
                    found.append(line)
        reports.append(EndpointReport(target, endpoint, label, worked, tuple(problems), tuple(notes)))
    return reports


def tolerated(endpoint: str, cmdlet: str, error: CollectError, user: str) -> str:
    """An error the collector did without: often a cmdlet this server's version does not have."""
    grant = GRANT.get(endpoint, GRANT[WINDOWS]).format(user=user)
    return (f"{cmdlet} failed ({error.message}); the check did without it. If this server's version has "
            f"{cmdlet}, {user} lacks the right to it: {grant}")


def advice(endpoint: str, cmdlet: str, error: CollectError, user: str) -> str:
    """One line: what failed, for whom, and the fix, by error kind and endpoint kind."""
    kind = error.kind.value
    grant = GRANT.get(endpoint, GRANT[WINDOWS]).format(user=user)
    if kind == "auth":
        return f"access denied for {user}: {grant} (and check its password or keytab: {error.message})"
    if kind == "command":
        return f"{cmdlet} denied or failed for {user} ({error.message}): {grant}"
    if kind == "unreachable":
        return f"cannot connect ({error.message}): {REACH.get(endpoint, REACH[WINDOWS])}"
    if kind == "timeout":
        return f"{cmdlet}: no answer in time ({error.message}): the server or the cmdlet is slow; raise the " \
               "collector's timeout"
    return f"{cmdlet}: an answer the exporter cannot read ({error.message}): report it with a --log.level=debug log"
