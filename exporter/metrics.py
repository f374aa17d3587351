"""Render snapshots as Prometheus metrics, with the exposition cached between changes.

A scrape costs a dictionary lookup and a write while nothing changed: the bytes are rebuilt only
when a job's snapshot changes or a job's data crosses its staleness bound. Process metrics are
appended fresh on every scrape; they are few and cheap.
"""

from __future__ import annotations

import gzip
import platform
import threading
import time
from collections import defaultdict
from typing import Iterable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from collectors.base import MetricSpec
from exporter import __version__
from exporter.remoting import ERROR_KINDS
from exporter.state import SnapshotStore

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

JOB_LABELS = ["collector", "target"]


class SnapshotCollector:
    """A prometheus_client custom collector over the snapshot store."""

    def __init__(self, store: SnapshotStore, known_metrics: Iterable[MetricSpec]) -> None:
        self.store = store
        # Declared metrics are rendered (with HELP/TYPE) even before any sample exists.
        self.known_metrics = {spec.name: spec for spec in known_metrics}

    def describe(self) -> list[Metric]:
        return []  # unchecked collector: families are dynamic

    def collect(self) -> Iterator[Metric]:
        now = time.monotonic()
        jobs = self.store.jobs()
        yield _build_info()
        yield from self._job_health(jobs)
        by_metric: dict[str, list[tuple[str, object]]] = defaultdict(list)
        for job in jobs:
            for sample in self.store.fresh_samples(job, now):
                by_metric[sample.spec.name].append((job.target, sample))
        for name in sorted(set(self.known_metrics) | set(by_metric)):
            entries = by_metric.get(name, [])
            spec = self.known_metrics.get(name) or entries[0][1].spec  # type: ignore[union-attr]
            yield _family(spec, entries)

    def _job_health(self, jobs) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "lync_owa_collector_up", "1 when the last run of this collector against this target succeeded.", labels=JOB_LABELS
        )
        duration = GaugeMetricFamily(
            "lync_owa_collector_duration_seconds", "How long the last run of this collector took.", labels=JOB_LABELS
        )
        last_success = GaugeMetricFamily(
            "lync_owa_collector_last_success_timestamp_seconds",
            "When this collector last succeeded against this target (0 until it has).",
            labels=JOB_LABELS,
        )
        runs = CounterMetricFamily(
            "lync_owa_collector_runs", "Runs of this collector against this target.", labels=JOB_LABELS
        )
        errors = CounterMetricFamily(
            "lync_owa_collector_errors",
            "Failed runs by kind: auth, unreachable, timeout, command, shape.",
            labels=JOB_LABELS + ["kind"],
        )
        for job in jobs:
            labels = [job.collector, job.target]
            up.add_metric(labels, 1.0 if job.up else 0.0)
            duration.add_metric(labels, job.duration_seconds)
            last_success.add_metric(labels, job.last_success_timestamp)
            runs.add_metric(labels, job.runs)
            for kind in ERROR_KINDS:
                errors.add_metric(labels + [kind], job.error_count(kind))
        yield from (up, duration, last_success, runs, errors)


def _family(spec: MetricSpec, entries: list[tuple[str, object]]) -> Metric:
    labels = ["target", *spec.labels]
    if spec.kind == "counter":
        family: Metric = CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=labels)
    else:
        family = GaugeMetricFamily(spec.name, spec.help, labels=labels)
    seen: set[tuple[str, ...]] = set()
    for target, sample in entries:
        label_values = (target, *sample.label_values)  # type: ignore[attr-defined]
        if label_values in seen:  # a collector bug must not make the whole scrape invalid
            continue
        seen.add(label_values)
        family.add_metric(list(label_values), sample.value)  # type: ignore[attr-defined]
    return family


def _build_info() -> Metric:
    info = GaugeMetricFamily(
        "lync_owa_build_info",
        "Version of lync-owa-exporter and of the Python running it; always 1.",
        labels=["version", "python_version"],
    )
    info.add_metric([__version__, platform.python_version()], 1.0)
    return info


class ExpositionCache:
    """Holds the rendered exposition and rebuilds it only when something changed."""

    def __init__(self, store: SnapshotStore, known_metrics: Iterable[MetricSpec], process_metrics: bool = True) -> None:
        self.store = store
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(SnapshotCollector(store, known_metrics))  # type: ignore[arg-type]
        self._process_registry: CollectorRegistry | None = None
        if process_metrics:
            self._process_registry = CollectorRegistry(auto_describe=False)
            ProcessCollector(registry=self._process_registry)
        self._lock = threading.Lock()
        self._generation = -1
        self._valid_until: float | None = None
        self._body = b""
        self._gzip_body = b""
        self.rebuilds = 0

    def _current(self) -> bytes:
        now = time.monotonic()
        with self._lock:
            stale = self._valid_until is not None and now >= self._valid_until
            if self._generation != self.store.generation or stale:
                generation = self.store.generation
                self._body = generate_latest(self._registry)
                self._generation = generation
                self._valid_until = self.store.next_staleness_change(now)
                self._gzip_body = b""
                self.rebuilds += 1
            return self._body

    def render(self, accept_gzip: bool = False) -> bytes:
        body = self._current()
        if self._process_registry is not None:
            # Process metrics change every scrape; they are appended, never cached.
            body = body + generate_latest(self._process_registry)
            return gzip.compress(body, compresslevel=1) if accept_gzip else body
        if accept_gzip:
            with self._lock:
                if not self._gzip_body:
                    self._gzip_body = gzip.compress(body, compresslevel=1)
                return self._gzip_body
        return body
