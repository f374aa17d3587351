"""Keep hung hosts from starving the others: a cap on runs per target, and a backoff on targets whose
runs keep running out their deadline.

Every run holds one of the scheduler's workers until it ends or its deadline passes. A hung host
answers nothing, so each of its jobs held a worker for its whole timeout: with 10 of 30 hosts hung
(20 s intervals, 10 s timeouts, 16 workers) healthy jobs waited in the queue and their data aged to
129 s. Two rules bound what one target can take:

- **At most** :data:`MAX_RUNS_PER_TARGET` **runs of one target at once.** A run past the cap does not
  wait on a worker: it is noted as waiting (``busy``) and fired again as soon as one of the target's
  runs ends. A runspace pool runs a few pipelines at once where its transport allows it
  (collectors.sources.wsman_client.MAX_LANES, one connection each) and one otherwise, so more runs
  would only wait for a lane held by a hung call.
- **Backoff.** After :data:`BACKOFF_AFTER` runs in a row of one target ended by their deadline
  (kind ``timeout``, or a failure that took at least :data:`HOGGED_FRACTION` of the deadline, such as
  a connect timeout), the target's jobs do not run for a backoff period: the triggering job's
  interval, doubled at every further run that times out, at most :data:`MAX_BACKOFF_SECONDS`. When it
  has passed, one run tries the target (the others wait); a success ends the backoff. Firings during
  the backoff are recorded as failed runs of kind ``timeout`` that say so, so ``collector_up`` shows
  the target is not being read, and ``lync_owa_target_backoff_seconds{target}`` shows the period.

The guard covers the jobs that talk to the target's remoting endpoints (collectors that declare
cmdlets); a job that reads nothing remote (the TLS probe) keeps a guard of its own, so its success
says nothing about a hung WinRM and does not end the target's backoff. Nothing here is shared
between exporters: the scheduler owns one :class:`TargetGuards`.
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from typing import Callable

from prometheus_client.core import GaugeMetricFamily, Metric

log = logging.getLogger(__name__)

# A front end's Windows and Lync endpoints, or an Exchange server's Windows and Exchange ones, each
# running up to MAX_LANES pipelines at once over Basic or certificates (one over Negotiate): the work
# is waiting on the network, so runs of one host overlap; a hung host still holds at most four workers.
MAX_RUNS_PER_TARGET = 4
# Runs in a row that ended by their deadline before the target is backed off: one could be a blip.
BACKOFF_AFTER = 2
# A failed run that used this much of its deadline held its worker like a hung one (a connect timeout).
HOGGED_FRACTION = 0.9
# The longest wait between attempts on a backed-off target: a recovered host is read again within it.
# Shorter bounds (8 intervals) made the 10-minute fault soak fail: more probes of hung hosts held workers.
MAX_BACKOFF_SECONDS = 300.0


class Admission(enum.Enum):
    RUN = "run"
    BUSY = "busy"  # the target has MAX_RUNS_PER_TARGET runs in flight, or a probe: fire again shortly
    BACKED_OFF = "backed_off"  # the target is backed off: record the skip, wait for the next firing


class TargetGuard:
    """The runs in flight and the backoff of one target; thread-safe."""

    def __init__(self, target: str, max_runs: int = MAX_RUNS_PER_TARGET) -> None:
        self.target = target
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._in_flight = 0
        self.timeouts_in_a_row = 0
        self.backoff_seconds = 0.0  # 0 when the target is not backed off
        self._backoff_until = 0.0  # monotonic
        self._waiting: dict[Callable[[], None], None] = {}  # jobs refused as busy, to fire when a run ends

    def admit(self, now: float | None = None, wake: Callable[[], None] | None = None) -> Admission:
        """May a run of this target start now? ``RUN`` takes a slot: :meth:`finished` gives it back.
        On ``BUSY``, ``wake`` (fire the job again) is called when one of the target's runs ends."""
        now = time.monotonic() if now is None else now
        with self._lock:
            if self.backoff_seconds:
                if now < self._backoff_until:
                    return Admission.BACKED_OFF
                busy = self._in_flight > 0  # one probe at a time, and only once earlier runs ended
            else:
                busy = self._in_flight >= self.max_runs
            if busy:
                if wake is not None:
                    self._waiting[wake] = None
                return Admission.BUSY
            self._waiting.pop(wake, None)  # fired by its own schedule meanwhile: no longer waiting
            self._in_flight += 1
            return Admission.RUN

    def finished(self, *, succeeded: bool, hogged: bool, interval: float, now: float | None = None) -> None:
        """A run admitted by :meth:`admit` ended; ``hogged``: it ended by (or near) its deadline."""
        now = time.monotonic() if now is None else now
        woken: list[Callable[[], None]] = []
        with self._lock:
            self._in_flight -= 1
            if self._waiting:  # one slot freed: the longest-waiting job goes next
                first = next(iter(self._waiting))
                del self._waiting[first]
                woken.append(first)
            if succeeded:
                if self.backoff_seconds:
                    log.info("target answers again; backoff ended", extra={"target": self.target})
                self.timeouts_in_a_row = 0
                self.backoff_seconds = 0.0
                self._backoff_until = 0.0
            elif hogged:
                self.timeouts_in_a_row += 1
                if self.backoff_seconds and now < self._backoff_until:
                    # A run admitted before this backoff began (up to max_runs run at once): the hang it
                    # ran into is what started the backoff, so it must not double it again. Only a probe,
                    # admitted once the period has passed, can prove the target still hangs.
                    pass
                elif self.timeouts_in_a_row >= BACKOFF_AFTER:
                    doubled = self.backoff_seconds * 2 if self.backoff_seconds else interval
                    self.backoff_seconds = min(max(doubled, interval), max(MAX_BACKOFF_SECONDS, interval))
                    self._backoff_until = now + self.backoff_seconds
                    log.warning("runs keep running out their deadline; backing off the target",
                                extra={"target": self.target, "timeouts_in_a_row": self.timeouts_in_a_row,
                                       "backoff_seconds": round(self.backoff_seconds, 1)})
            # A quick failure (refused, 401, an error answer) says nothing about hanging: count unchanged.
        for wake in woken:  # outside the lock: it calls into the scheduler
            wake()

    def next_attempt_in(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            return max(self._backoff_until - now, 0.0)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return self._in_flight


class TargetGuards:
    """One :class:`TargetGuard` per target name, and the backoff gauge of every target."""

    def __init__(self, max_runs: int = MAX_RUNS_PER_TARGET) -> None:
        self.max_runs = max_runs
        self._lock = threading.Lock()
        self._guards: dict[str, TargetGuard] = {}

    def for_target(self, target: str) -> TargetGuard:
        with self._lock:
            guard = self._guards.get(target)
            if guard is None:
                guard = self._guards[target] = TargetGuard(target, self.max_runs)
            return guard

    def collect(self) -> list[Metric]:
        """A prometheus_client collector's ``collect``: the backoff of every target."""
        with self._lock:
            guards = sorted(self._guards.values(), key=lambda g: g.target)
        family = GaugeMetricFamily(
            "lync_owa_target_backoff_seconds",
            "How long the exporter waits between attempts on this target because its runs keep running out "
            "their deadline; 0 when it is not backed off.",
            labels=["target"],
        )
        for guard in guards:
            family.add_metric([guard.target], guard.backoff_seconds)
        return [family]
