"""The live estate: the active scenario, the clock, and state that must survive scenario switches.

Cmdlet handlers get a ``HostView``: one host of the active scenario frozen at one "now", with
helpers that turn scenario time expressions into the DateTimes a Windows server would send.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable

from simulator import psobjects
from simulator.clock import TimeSpec, utcnow
from simulator.scenario import Scenario, ScenarioError
from simulator.scenario_model import EventRecord, Host

_FIRST_RECORD_ID = 184_201


class _EventRecordIds:
    """EventRecordIDs only grow, like a real log: an event keeps its ID across scenario switches, and
    events first seen later get higher IDs (so "EventRecordID > N" queries stay meaningful)."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._next = _FIRST_RECORD_ID

    def assign(self, events: list[tuple[tuple, dt.datetime]]) -> dict[tuple, int]:
        for signature, _ in sorted((e for e in events if e[0] not in self._ids), key=lambda e: e[1]):
            self._ids[signature] = self._next
            self._next += 1
        return {signature: self._ids[signature] for signature, _ in events}


class Estate:
    """Thread-safe holder of the active scenario; switching keeps the host set (and listeners)."""

    def __init__(self, scenario: Scenario, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._lock = threading.Lock()
        self._scenario = scenario
        self._clock = clock
        self.started_at = clock()
        self._record_ids = {name: _EventRecordIds() for name in scenario.host_names()}

    @property
    def scenario(self) -> Scenario:
        with self._lock:
            return self._scenario

    def set_scenario(self, scenario: Scenario) -> None:
        with self._lock:
            if scenario.host_names() != self._scenario.host_names():
                missing = sorted(set(self._scenario.host_names()) ^ set(scenario.host_names()))
                raise ScenarioError(
                    f"{scenario.label}: has a different host set than the running estate (differs in {missing})"
                )
            self._scenario = scenario

    def view(self, host: str) -> HostView:
        scenario = self.scenario
        return HostView(
            name=host,
            host=scenario.model.hosts[host],
            scenario=scenario,
            now=self._clock(),
            started_at=self.started_at,
            _estate=self,
        )

    def record_ids(self, host: str, events: list[tuple[tuple, dt.datetime]]) -> dict[tuple, int]:
        with self._lock:
            return self._record_ids[host].assign(events)


@dataclasses.dataclass
class HostView:
    """One host of the active scenario at one instant."""

    name: str
    host: Host
    scenario: Scenario
    now: dt.datetime
    started_at: dt.datetime
    _estate: Estate

    @property
    def tz(self) -> dt.tzinfo:
        return self.scenario.tz

    @property
    def short_name(self) -> str:
        """NetBIOS-style name, as Exchange shows servers ("EX01")."""
        return self.name.split(".", 1)[0].upper()

    def at(self, spec: TimeSpec | None) -> dt.datetime | None:
        return None if spec is None else spec.resolve(self.now)

    def local_dt(self, spec: TimeSpec | dt.datetime | None) -> psobjects.PSDateTime | None:
        """A DateTime of Kind Local: the server's UTC offset, as most cmdlets answer."""
        moment = spec if isinstance(spec, dt.datetime) or spec is None else self.at(spec)
        return psobjects.datetime_value(moment, self.tz)

    def utc_dt(self, spec: TimeSpec | dt.datetime | None) -> psobjects.PSDateTime | None:
        """A DateTime of Kind Utc ("Z"), as the *Utc properties of files answer."""
        moment = spec if isinstance(spec, dt.datetime) or spec is None else self.at(spec)
        return psobjects.datetime_value(moment, dt.timezone.utc)

    def events(self) -> list[tuple[int, dt.datetime, EventRecord]]:
        """(EventRecordID, TimeCreated, record) for every event of the host."""
        resolved = [
            ((label, e.log, e.provider, e.id, e.time.text if e.time else ""), self.at(e.time) or self.now, e)
            for label, e in self.host.windows.events.items()
        ]
        ids = self._estate.record_ids(self.name, [(sig, when) for sig, when, _ in resolved])
        return [(ids[sig], when, event) for sig, when, event in resolved]

    def grown_size(self, size: int, bytes_per_minute: int) -> int:
        minutes = max((self.now - self.started_at).total_seconds(), 0.0) / 60.0
        return size + int(bytes_per_minute * minutes)
