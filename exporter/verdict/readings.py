"""The series a scrape would show now, read from the snapshot store, for the verdict to query.

Exactly what ``/metrics`` renders: a job's samples while they are fresh (its last success within the
staleness bound), and every registered job's health (``lync_owa_collector_up``), so the Python
verdict sees what the recording rules see.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Collection, Iterable, Mapping

from exporter.state import JobStatus, SnapshotStore


@dataclass(frozen=True)
class Series:
    name: str
    collector: str  # the job's, with ``target``
    target: str
    labels: Mapping[str, str]
    value: float


class Readings:
    def __init__(self, jobs: Iterable[JobStatus], series: Iterable[Series]) -> None:
        self.jobs = {job.key: job for job in jobs}
        self._by_name: dict[str, list[Series]] = {}
        self._with_data: set[tuple[str, str]] = set()
        for one in series:
            self._by_name.setdefault(one.name, []).append(one)
            self._with_data.add((one.collector, one.target))

    @classmethod
    def from_store(cls, store: SnapshotStore, now_monotonic: float | None = None) -> Readings:
        now = time.monotonic() if now_monotonic is None else now_monotonic
        jobs = store.jobs()
        series = [
            Series(sample.spec.name, job.collector, job.target, dict(zip(sample.spec.labels, sample.label_values)),
                   sample.value)
            for job in jobs
            for sample in store.fresh_samples(job, now)
        ]
        return cls(jobs, series)

    def select(self, name: str, target: str | None = None, **labels: str | Collection[str]) -> list[Series]:
        """The series of one metric, of one target if given, whose labels equal the given values (a string)
        or are among them (a collection: PromQL's ``label=~"a|b"``)."""
        found = []
        for one in self._by_name.get(name, ()):
            if target is not None and one.target != target:
                continue
            if all(_matches(one.labels.get(key, ""), wanted) for key, wanted in labels.items()):
                found.append(one)
        return found

    def job(self, collector: str, target: str) -> JobStatus | None:
        return self.jobs.get((collector, target))

    def targets_with_job(self, collector: str) -> list[str]:
        """Targets with a job of this collector, run or not (``lync_owa_collector_up`` exists for them)."""
        return sorted(target for name, target in self.jobs if name == collector)

    def has_data(self, collector: str, target: str) -> bool:
        """Whether the job's samples are served now (it succeeded, within the staleness bound)."""
        return (collector, target) in self._with_data

    def up(self, collector: str, target: str) -> bool:
        job = self.job(collector, target)
        return job is not None and job.up


def _matches(value: str, wanted: str | Collection[str]) -> bool:
    return value == wanted if isinstance(wanted, str) else value in wanted
