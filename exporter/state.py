"""The snapshot store: the latest outcome of every job, replaced atomically per job.

Scrapes read it and never wait on a Windows server. A generation number changes on every
update so the renderer can reuse its cached exposition until something really changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace
from typing import Iterable

from collectors.contract import ERROR_KINDS, Sample

# Every job starts with no errors: one shared tuple, not one per job (a thousand hosts have thousands of jobs).
_NO_ERRORS: tuple[tuple[str, int], ...] = tuple((k, 0) for k in ERROR_KINDS)


@dataclass(frozen=True)
class JobStatus:
    collector: str
    target: str
    interval: float
    samples: tuple[Sample, ...] = ()
    up: bool = False
    runs: int = 0
    duration_seconds: float = 0.0
    last_run_timestamp: float = 0.0
    last_success_timestamp: float = 0.0  # wall clock; 0 until the first success
    last_success_monotonic: float | None = None
    errors: tuple[tuple[str, int], ...] = _NO_ERRORS
    last_error: str = ""
    last_error_kind: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.collector, self.target)

    def error_count(self, kind: str) -> int:
        return dict(self.errors).get(kind, 0)


class SnapshotStore:
    def __init__(self, staleness_intervals: int = 3) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], JobStatus] = {}
        self.staleness_intervals = staleness_intervals
        self.generation = 0
        # Signalled on every change, so the renderer can rebuild off the scrape path.
        self.changed = threading.Condition(self._lock)

    def register(self, collector: str, target: str, interval: float) -> None:
        with self._lock:
            self._jobs[(collector, target)] = JobStatus(collector, target, interval)
            self._bump()

    def unregister(self, collector: str, target: str) -> None:
        """Forget a job (a reload removed it): its series leave the next exposition."""
        with self._lock:
            if self._jobs.pop((collector, target), None) is not None:
                self._bump()

    def _bump(self) -> None:
        self.generation += 1
        self.changed.notify_all()

    def record_success(self, collector: str, target: str, samples: Iterable[Sample], duration: float) -> None:
        now_wall, now_mono = time.time(), time.monotonic()
        with self._lock:
            old = self._jobs[(collector, target)]
            self._jobs[old.key] = replace(
                old,
                samples=tuple(samples),
                up=True,
                runs=old.runs + 1,
                duration_seconds=duration,
                last_run_timestamp=now_wall,
                last_success_timestamp=now_wall,
                last_success_monotonic=now_mono,
                last_error="",
                last_error_kind="",
            )
            self._bump()

    def record_failure(self, collector: str, target: str, kind: str, message: str, duration: float) -> None:
        """A failed run keeps the old samples (until stale) so one hiccup does not blank a panel."""
        with self._lock:
            old = self._jobs[(collector, target)]
            counts = dict(old.errors)
            counts[kind] = counts.get(kind, 0) + 1
            self._jobs[old.key] = replace(
                old,
                up=False,
                runs=old.runs + 1,
                duration_seconds=duration,
                last_run_timestamp=time.time(),
                errors=tuple(counts.items()),
                last_error=message,
                last_error_kind=kind,
            )
            self._bump()

    def jobs(self) -> list[JobStatus]:
        with self._lock:
            return self._sorted_jobs()

    def _sorted_jobs(self) -> list[JobStatus]:
        return sorted(self._jobs.values(), key=lambda j: j.key)

    def wake(self) -> None:
        """Wake every waiter of wait_for_change (one of them is stopping)."""
        with self._lock:
            self.changed.notify_all()

    def wait_for_change(self, seen_generation: int, timeout: float | None,
                        stop: threading.Event | None = None) -> int:
        """Block until the generation differs from ``seen_generation``, ``stop`` is set, or the timeout passes."""
        with self._lock:
            self.changed.wait_for(
                lambda: self.generation != seen_generation or (stop is not None and stop.is_set()), timeout=timeout
            )
            return self.generation

    def staleness_bound(self, job: JobStatus) -> float:
        return self.staleness_intervals * job.interval

    def fresh_samples(self, job: JobStatus, now_monotonic: float) -> tuple[Sample, ...]:
        """The job's samples, or nothing when its last success is older than the bound."""
        if job.last_success_monotonic is None:
            return ()
        if now_monotonic - job.last_success_monotonic > self.staleness_bound(job):
            return ()
        return job.samples

    def next_staleness_change(self, now_monotonic: float) -> float | None:
        """The monotonic time at which some job's data next turns stale, if any will."""
        times = [
            job.last_success_monotonic + self.staleness_bound(job)
            for job in self.jobs()
            if job.last_success_monotonic is not None and job.samples
            and job.last_success_monotonic + self.staleness_bound(job) >= now_monotonic
        ]
        return min(times) if times else None
