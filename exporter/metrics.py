"""Render snapshots as Prometheus metrics, with the exposition cached between changes.

A scrape costs a dictionary lookup and a write while nothing changed: the bytes are rebuilt only
when a job's snapshot changes or a job's data crosses its staleness bound. Process metrics are
appended fresh on every scrape; they are few and cheap.
"""

from __future__ import annotations

import gzip
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from collectors.contract import ERROR_KINDS, MetricSpec, Sample
from exporter.state import JobStatus, SnapshotStore
from exporter.version import BUILD

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

JOB_LABELS = ["collector", "target"]


# Exposition order: build info and job health first, as names appear in the text format.
LEADING_FAMILIES = (
    "lync_owa_build_info",
    "lync_owa_collector_up",
    "lync_owa_collector_duration_seconds",
    "lync_owa_collector_last_success_timestamp_seconds",
    "lync_owa_collector_runs_total",
    "lync_owa_collector_errors_total",
)


def job_health_families(job: JobStatus) -> list[Metric]:
    """The health series every job has, from before its first run and for ever after (the time of the
    last success from the first success on)."""
    labels = [job.collector, job.target]
    up = GaugeMetricFamily(
        "lync_owa_collector_up", "1 when the last run of this collector against this target succeeded.", labels=JOB_LABELS
    )
    up.add_metric(labels, 1.0 if job.up else 0.0)
    duration = GaugeMetricFamily(
        "lync_owa_collector_duration_seconds", "How long the last run of this collector took.", labels=JOB_LABELS
    )
    duration.add_metric(labels, job.duration_seconds)
    last_success = GaugeMetricFamily(
        "lync_owa_collector_last_success_timestamp_seconds",
        "When this collector last succeeded against this target (absent until it has).",
        labels=JOB_LABELS,
    )
    if job.last_success_timestamp:  # a time of something that never happened is absent, not 0
        last_success.add_metric(labels, job.last_success_timestamp)
    runs = CounterMetricFamily("lync_owa_collector_runs", "Runs of this collector against this target.", labels=JOB_LABELS)
    runs.add_metric(labels, job.runs)
    errors = CounterMetricFamily(
        "lync_owa_collector_errors",
        "Failed runs by kind: auth, unreachable, timeout, command, shape.",
        labels=JOB_LABELS + ["kind"],
    )
    for kind in ERROR_KINDS:
        errors.add_metric(labels + [kind], job.error_count(kind))
    return [up, duration, last_success, runs, errors]


def domain_families(target: str, samples: Iterable[Sample], known: dict[str, MetricSpec]) -> list[Metric]:
    by_metric: dict[str, list[Sample]] = defaultdict(list)
    for sample in samples:
        by_metric[sample.spec.name].append(sample)
    return [_family(known.get(name, entries[0].spec), target, entries) for name, entries in by_metric.items()]


class _Families:
    """A prometheus_client custom collector over a fixed list of families."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def render_sections(families: list[Metric]) -> dict[str, tuple[bytes, bytes]]:
    """Render families with prometheus_client and split the text per family: name -> (header, samples)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))  # type: ignore[arg-type]
    sections: dict[str, tuple[list[bytes], list[bytes]]] = {}
    current: tuple[list[bytes], list[bytes]] | None = None
    for line in generate_latest(registry).splitlines(keepends=True):
        if line.startswith(b"# HELP "):
            current = ([line], [])
            sections[line.split(b" ", 3)[2].decode()] = current
        elif current is not None and line.startswith(b"# "):
            current[0].append(line)
        elif current is not None:
            current[1].append(line)
    return {name: (b"".join(head), b"".join(body)) for name, (head, body) in sections.items()}


def _family(spec: MetricSpec, target: str, samples: list[Sample]) -> Metric:
    labels = ["target", *spec.labels]
    if spec.kind == "counter":
        family: Metric = CounterMetricFamily(spec.name.removesuffix("_total"), spec.help, labels=labels)
    else:
        family = GaugeMetricFamily(spec.name, spec.help, labels=labels)
    seen: set[tuple[str, ...]] = set()
    for sample in samples:
        label_values = (target, *sample.label_values)
        if label_values in seen:  # a collector bug must not make the whole scrape invalid
            continue
        seen.add(label_values)
        family.add_metric(list(label_values), sample.value)  # type: ignore[attr-defined]
    return family


def _build_info(extra_labels: Mapping[str, str] | None = None) -> Metric:
    labels = {**BUILD.labels(), **(extra_labels or {})}  # extra: the exporter's shard (exporter.sharding)
    info = GaugeMetricFamily(
        "lync_owa_build_info",
        "Version, git revision and build date of lync-owa-exporter, the Python running it, and its shard; always 1.",
        labels=list(labels),
    )
    info.add_metric(list(labels.values()), 1.0)
    return info


def reload_families(successful: bool, last_success_timestamp: float) -> list[Metric]:
    """Prometheus' own names for its configuration reloads (prometheus_config_last_reload_*)."""
    ok = GaugeMetricFamily("lync_owa_config_last_reload_successful",
                           "1 when the last configuration reload (or the load at start) succeeded.")
    ok.add_metric([], 1.0 if successful else 0.0)
    when = GaugeMetricFamily("lync_owa_config_last_reload_success_timestamp_seconds",
                             "When the configuration was last loaded successfully, at start or by a reload.")
    when.add_metric([], last_success_timestamp)
    return [ok, when]


class LiveCollector(Protocol):
    """Families rendered at every scrape, beside the process metrics (few, and cheap to make)."""

    def collect(self) -> Iterable[Metric]: ...


@dataclass(frozen=True)
class _Built:
    generation: int
    valid_until: float | None  # monotonic time at which some job's data turns stale
    body: bytes
    gzip_body: bytes


class ExpositionCache:
    """Holds the rendered exposition; rebuilds happen off the scrape path once started.

    Started (the exporter): a renderer thread rebuilds when the store changes or a job's data
    turns stale, and a scrape only writes the latest bytes out, however many series there are.
    Not started (unit tests, ``check``): ``render`` rebuilds synchronously when out of date.
    """

    # Changes that arrive together (a burst of job completions) are rendered once.
    DEBOUNCE_SECONDS = 0.05

    def __init__(self, store: SnapshotStore, known_metrics: Iterable[MetricSpec], process_metrics: bool = True,
                 live_collectors: Iterable[LiveCollector] = (), build_labels: Mapping[str, str] | None = None) -> None:
        self.store = store
        self._known = {spec.name: spec for spec in known_metrics}
        # Headers of every declared family, so HELP/TYPE show before the first sample exists.
        empty = [_family(spec, "", []) for spec in self._known.values()]
        self._static = render_sections([_build_info(build_labels)] + empty)
        # Per job: the JobStatus rendered, whether its data was fresh, and its sections.
        self._job_sections: dict[tuple[str, str], tuple[JobStatus, bool, dict[str, tuple[bytes, bytes]]]] = {}
        self._process_registry: CollectorRegistry | None = None
        live = list(live_collectors)
        if process_metrics or live:
            self._process_registry = CollectorRegistry(auto_describe=False)
            if process_metrics:
                ProcessCollector(registry=self._process_registry)
            for collector in live:
                self._process_registry.register(collector)  # type: ignore[arg-type]
        # The live families alone, for a serving process that reads this process's figures itself.
        self._live_registry = CollectorRegistry(auto_describe=False)
        for collector in live:
            self._live_registry.register(collector)  # type: ignore[arg-type]
        self._build_lock = threading.Lock()
        self._built: _Built | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.rebuilds = 0
        self.on_rebuild: list[Callable[[], None]] = []  # told after every rebuild (exporter.serving)

    # --- renderer -----------------------------------------------------------------------------
    def start(self) -> None:
        self._rebuild()
        self._thread = threading.Thread(target=self._render_loop, name="renderer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        with self.store.changed:
            self.store.changed.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def refresh_now(self) -> None:
        """Rebuild at once, not after the debounce: a reload's answer comes after the removed jobs'
        series have left the exposition."""
        self._rebuild()

    def _render_loop(self) -> None:
        while not self._stop.is_set():
            built = self._built
            assert built is not None
            timeout = None if built.valid_until is None else max(built.valid_until - time.monotonic(), 0)
            self.store.wait_for_change(built.generation, timeout=timeout, stop=self._stop)
            if self._stop.wait(self.DEBOUNCE_SECONDS):
                return
            self._rebuild()

    def _out_of_date(self, built: _Built | None) -> bool:
        if built is None or built.generation != self.store.generation:
            return True
        return built.valid_until is not None and time.monotonic() >= built.valid_until

    def _rebuild(self) -> _Built:
        with self._build_lock:
            now = time.monotonic()
            generation = self.store.generation  # read first: a change during the build triggers another
            body = self._assemble(now)
            built = _Built(generation, self.store.next_staleness_change(now), body, gzip.compress(body, compresslevel=1))
            self._built = built
            self.rebuilds += 1
        for listener in self.on_rebuild:
            listener()
        return built

    def _sections_of(self, job: JobStatus, now: float) -> dict[str, tuple[bytes, bytes]]:
        """A job's rendered sections, re-rendered only when its snapshot or freshness changed."""
        samples = self.store.fresh_samples(job, now)
        fresh = bool(samples)
        cached = self._job_sections.get(job.key)
        if cached is not None and cached[0] is job and cached[1] == fresh:
            return cached[2]
        sections = render_sections(job_health_families(job) + domain_families(job.target, samples, self._known))
        self._job_sections[job.key] = (job, fresh, sections)
        return sections

    def _assemble(self, now: float) -> bytes:
        jobs = self.store.jobs()
        per_job = [self._sections_of(job, now) for job in jobs]
        keys = {job.key for job in jobs}
        for gone in set(self._job_sections) - keys:
            del self._job_sections[gone]
        headers: dict[str, bytes] = {name: head for name, (head, _) in self._static.items()}
        bodies: dict[str, list[bytes]] = defaultdict(list)
        for name, (_, body) in self._static.items():
            bodies[name].append(body)
        for sections in per_job:
            for name, (head, body) in sections.items():
                headers.setdefault(name, head)
                bodies[name].append(body)
        order = list(LEADING_FAMILIES)
        order += sorted(name for name in headers if name not in order)
        return b"".join(headers[name] + b"".join(bodies[name]) for name in order if name in headers)

    # --- scrape path --------------------------------------------------------------------------
    def render_chunks(self, accept_gzip: bool = False) -> list[bytes]:
        """The exposition as chunks to write in order (gzip members concatenate validly)."""
        built = self._built
        if self._thread is None and self._out_of_date(built):
            built = self._rebuild()
        elif built is None:
            built = self._rebuild()
        chunks = [built.gzip_body if accept_gzip else built.body]
        if self._process_registry is not None:
            # Process metrics change every scrape; they are appended, never cached.
            extra = generate_latest(self._process_registry)
            chunks.append(gzip.compress(extra, compresslevel=1) if accept_gzip else extra)
        return chunks

    def render(self, accept_gzip: bool = False) -> bytes:
        return b"".join(self.render_chunks(accept_gzip))

    def latest(self) -> _Built:
        """The latest build (``body``, ``gzip_body``): what a serving process is sent. A new object
        after every rebuild, so holding the last one sent tells whether anything changed."""
        return self._built or self._rebuild()

    def render_live(self) -> bytes:
        """The live families alone (reloads, backoff, series cut), as rendered at a scrape."""
        return generate_latest(self._live_registry)
