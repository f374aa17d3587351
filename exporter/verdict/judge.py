"""One row per OWA server (and per Edge where hybrid applies): OK, BROKEN, UNKNOWN or MAINTENANCE.

The rows of ``lync_owa:im_integration_healthy``: every target with an owa_app_pool job, every target
some cause names, and every Edge with ``lync_owa_hybrid_applicable`` 1. A row is BROKEN when a cause
holds, OK when its owa_app_pool job's last run succeeded (an Edge: while hybrid applies), else
UNKNOWN: a server nobody could check is not shown healthy. UNKNOWN also when one of the server's own
checks has no data at all (never succeeded, or its data went stale): the recording rule, which knows
only the app-pool job, shows such a server healthy; the page says instead that it does not know.
MAINTENANCE (the server is out of service on purpose, ``lync_owa_server_in_maintenance`` 1) comes
first, as Alertmanager mutes its pages.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any, Iterable

from exporter.state import JobStatus
from exporter.verdict.catalogue import (
    REASONS,
    SERVER_COLLECTORS,
    VERDICT_COLLECTORS,
    Reason,
)
from exporter.verdict.causes import Cause, find_causes, hybrid_edges
from exporter.verdict.readings import Readings


class Status(str, enum.Enum):
    OK = "OK"
    BROKEN = "BROKEN"
    UNKNOWN = "UNKNOWN"
    MAINTENANCE = "MAINTENANCE"


@dataclass(frozen=True)
class Finding:
    """One cause on one row, with what the catalogue says about its reason."""

    reason: Reason
    detail: str
    since: float  # wall clock: when this process first saw it
    fix: str  # the catalogue's fix for this row's server

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason.name, "check": self.reason.check, "collector": self.reason.collector,
                "detail": self.detail, "since": self.since, "fix": self.fix}


@dataclass(frozen=True)
class Row:
    target: str
    title: str  # "ex01", or "Exchange Online (through edge01)"
    status: Status
    findings: tuple[Finding, ...] = ()
    maintenance: tuple[str, ...] = ()  # what puts it in maintenance: "exchange_component ServerWideOffline Inactive"
    unchecked: tuple[str, ...] = ()  # its verdict collectors whose last run failed: "im_certificate (auth)"
    why_unknown: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"target": self.target, "title": self.title, "status": self.status.value,
                "findings": [f.as_dict() for f in self.findings], "maintenance": list(self.maintenance),
                "unchecked": list(self.unchecked), "why_unknown": self.why_unknown}


class FirstSeen:
    """When this process first saw each cause, so a row can say since when it is broken. A cause that
    goes away is forgotten: when it comes back, it is new again. Safe for concurrent page requests.

    A cause is the series of its rule: reason and target (and the failure kind of
    im_initialisation_failing, a label of its own there); a detail that changes (one more front end
    failing the same check) does not make it new."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._first: dict[tuple[str, str, str], tuple[Cause, float]] = {}

    def known(self) -> dict[Cause, float]:
        with self._lock:
            return dict(self._first.values())

    def update(self, causes: Iterable[Cause], now: float) -> dict[Cause, float]:
        with self._lock:
            current = {}
            for cause in causes:
                key = _series(cause)
                current[key] = (cause, self._first.get(key, (cause, now))[1])
            self._first = current
            return dict(current.values())


def _series(cause: Cause) -> tuple[str, str, str]:
    return cause.reason, cause.target, cause.detail if cause.reason == "im_initialisation_failing" else ""


def edge_title(edge: str) -> str:
    return f"Exchange Online (through {edge})"


def judge(readings: Readings, now: float, first_seen: FirstSeen | None = None) -> list[Row]:
    """The rows, OWA servers by name first, then the Edges' Exchange Online rows."""
    causes = find_causes(readings, now)
    since = (first_seen or FirstSeen()).update(causes, now)
    edges = set(hybrid_edges(readings))
    targets = set(readings.targets_with_job("owa_app_pool")) | {c.target for c in causes} | edges
    rows = [_row(target, target in edges, readings, [c for c in causes if c.target == target], since)
            for target in targets]
    return sorted(rows, key=lambda row: (row.target in edges, row.target))


def _row(target: str, is_edge: bool, readings: Readings, causes: list[Cause], since: dict[Cause, float]) -> Row:
    findings = tuple(Finding(REASONS[c.reason], c.detail, since[c], REASONS[c.reason].fix_for(target)) for c in causes)
    maintenance = tuple(
        " ".join(one.labels.get(key, "") for key in ("kind", "component", "state"))
        for one in readings.select("lync_owa_server_maintenance_state", target) if one.value == 1
    )
    in_maintenance = any(one.value == 1 for one in readings.select("lync_owa_server_in_maintenance", target))
    jobs = _verdict_jobs(readings, target)
    unchecked = tuple(_describe(job) for job in jobs if not job.up)
    without_data = [job for job in jobs if job.collector in SERVER_COLLECTORS and not readings.has_data(*job.key)]
    app_pool = readings.job("owa_app_pool", target)
    why_unknown = ""
    if in_maintenance:
        status = Status.MAINTENANCE
    elif findings:
        status = Status.BROKEN
    elif is_edge or (readings.up("owa_app_pool", target) and not without_data):
        status = Status.OK
    else:
        status = Status.UNKNOWN
        if app_pool is None:
            why_unknown = "no owa_app_pool job reads it"
        elif not app_pool.up:
            why_unknown = _describe(app_pool)
        else:
            why_unknown = "no data from " + ", ".join(_describe(job) for job in without_data)
    return Row(target, edge_title(target) if is_edge else target, status, findings, maintenance, unchecked,
               why_unknown)


def _verdict_jobs(readings: Readings, target: str) -> list[JobStatus]:
    return [job for (collector, job_target), job in sorted(readings.jobs.items())
            if job_target == target and collector in VERDICT_COLLECTORS]


def _describe(job: JobStatus) -> str:
    """"im_certificate (auth: ...)": a job that is not up, and why."""
    if job.runs == 0:
        return f"{job.collector} (not run yet)"
    if job.up:
        return f"{job.collector} (data stale)"
    why = ": ".join(part for part in (job.last_error_kind or "failed", job.last_error) if part)
    return f"{job.collector} ({why})"


def organisation_unchecked(readings: Readings) -> list[str]:
    """Failing jobs of the collectors whose data judges every OWA server at once (the Lync checks):
    while they fail, an organisation-wide cause may go unseen. Named with their target."""
    organisation = {r.collector for r in REASONS.values() if r.scope == "organisation"}
    return [f"{job.target}: {_describe(job)}" for job in sorted(readings.jobs.values(), key=lambda j: j.key)
            if job.collector in organisation and not job.up]
