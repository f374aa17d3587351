"""Fault soak: the real exporter against a simulated estate whose hosts keep failing, for minutes.

    .venv/bin/python benchmarks/soak.py [--hosts 50] [--duration 600] [--flap-seconds 5] [--seed 1]

The simulator runs in a child process, so every figure is the exporter's process alone. The
exporter is the real one (``exporter.app.Exporter``, configuration written as YAML and loaded by
``exporter.config.load_config``) with every registered collector in its default (remote) mode,
short intervals and deadlines. Three phases:

1. warm-up: the estate is healthy until every job has succeeded once (every pool is open), then a
   few intervals more; the healthy baseline (threads, sockets) is taken at its end;
2. flapping, for ``--duration``: every ``--flap-seconds`` each host, with probability one half,
   takes a new state drawn from a seeded random schedule: healthy, or one of hang, refuse,
   http_401, http_500, malformed, malformed_soap, latency;
3. recovery: every fault is cleared; every job must succeed again, and after a few intervals the
   healthy figures are taken again and compared with the baseline.

Throughout, a scraper thread GETs /metrics every ``--scrape-every`` seconds, and every
``--sample-every`` seconds the process's RSS, threads, open file descriptors and sockets are
recorded with every job's ``lync_owa_collector_runs_total`` as scraped.

Verdict (each is printed):
- every scrape answered 200 with the job health series;
- every job kept running: its runs_total never stood still for longer than the stall bound
  (``max(4 intervals, 20 s)``) during flapping, and every job succeeded again after recovery;
- flat: with the first minute of flapping as warm-up, the last minute's median RSS is within 10%
  of the first minute's, and the medians of threads and of sockets are not above the first
  minute's by more than ``max(5, 10%)``; after recovery, threads and sockets are not above the
  healthy baseline by more than the same margin.
The test ``tests/e2e/test_fault_soak.py`` runs the same engine, shorter and smaller.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

USERNAME = "sim-monitor"
PASSWORD = "soak-password"
PASSWORD_ENV = "LYNC_OWA_SOAK_PASSWORD"

FAULT_KINDS = ("hang", "refuse", "http_401", "http_500", "malformed", "malformed_soap", "latency")
# Per-answer delays of the latency fault: below, near and above a 3 s deadline.
LATENCIES_MS = (200, 1000, 2500)
OPEN_LATENCIES_MS = (0, 1000)
# A host changing state picks "healthy" with this weight against 1 for each fault kind.
HEALTHY_WEIGHT = 4

RUNS_LINE = re.compile(r'^lync_owa_collector_runs_total\{collector="([^"]*)",target="([^"]*)"\} (\S+)$', re.M)
UP_LINE = re.compile(r'^lync_owa_collector_up\{collector="[^"]*",target="[^"]*"\} (\S+)$', re.M)


# ------------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class SoakOptions:
    hosts: int = 50
    duration: float = 600.0  # flapping phase, seconds
    flap_seconds: float = 5.0
    interval: float = 5.0
    timeout: float = 3.0
    scrape_every: float = 0.5
    scrape_timeout: float = 10.0
    sample_every: float = 5.0
    # Trend windows: the first `window` seconds of flapping are warm-up, the next `window` the
    # "first minute", the last `window` the "last minute".
    window: float = 60.0
    settle_intervals: int = 3  # healthy intervals waited before a baseline / final figure
    ready_timeout: float = 180.0  # warm-up: every job up at least once
    recovery_timeout: float = 120.0
    seed: int = 1
    faults: tuple[str, ...] = FAULT_KINDS

    @property
    def stall_seconds(self) -> float:
        return max(4 * self.interval, 20.0)


def thread_margin(reference: float) -> float:
    return max(5.0, 0.10 * reference)


# ------------------------------------------------------------------------------------------ process figures


def process_figures(pid: int | None = None) -> dict[str, float]:
    """RSS (bytes), OS threads, open file descriptors and sockets of a process (psutil, else /proc)."""
    pid = pid or os.getpid()
    fd_dir = Path(f"/proc/{pid}/fd")
    sockets = 0
    fds = 0
    for entry in fd_dir.iterdir() if fd_dir.exists() else ():
        try:
            target = os.readlink(entry)
        except OSError:  # closed while we looked
            continue
        fds += 1
        sockets += target.startswith("socket:")
    try:
        import psutil  # type: ignore[import-not-found]
    except ImportError:
        psutil = None
    if psutil is not None:
        proc = psutil.Process(pid)
        return {"rss": float(proc.memory_info().rss), "threads": float(proc.num_threads()),
                "fds": float(proc.num_fds()), "sockets": float(sockets)}
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return {"rss": float(status["VmRSS"].split()[0]) * 1024, "threads": float(status["Threads"].strip()),
            "fds": float(fds), "sockets": float(sockets)}


# ------------------------------------------------------------------------------------------ the simulator


def serve_simulator(hosts: int) -> None:
    """Child process: a scaled healthy estate; its URLs as one JSON line; stops when stdin closes."""
    from simulator.scenario import load_scenario
    from simulator.server import Simulator

    logging.basicConfig(level=logging.ERROR)
    sim = Simulator(scenario=load_scenario("healthy").scaled(hosts), listen_host="127.0.0.1", control_port=0,
                    username=USERNAME, password=PASSWORD)
    sim.start()
    try:
        hosts_info = {name: dataclasses.asdict(info) for name, info in sim.hosts().items()}
        print(json.dumps({"control_url": sim.control_url, "hosts": hosts_info}), flush=True)
        sys.stdin.read()  # EOF when the parent closes the pipe or dies
    finally:
        sim.stop()


class SimulatorProcess:
    """The simulated estate in a child process (``soak.py --serve-simulator N``), driven through its control API."""

    def __init__(self, hosts: int) -> None:
        self._hosts = hosts
        self._process: subprocess.Popen | None = None
        self.control_url = ""
        self.hosts: dict[str, types.SimpleNamespace] = {}

    def __enter__(self) -> SimulatorProcess:
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-simulator", str(self._hosts)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.__exit__()
            raise RuntimeError(f"the simulator exited before starting (status {self._process.poll()})")
        started = json.loads(line)
        self.control_url = started["control_url"]
        self.hosts = {name: types.SimpleNamespace(**info) for name, info in started["hosts"].items()}
        return self

    def __exit__(self, *exc: Any) -> None:
        process = self._process
        if process is None:
            return
        try:
            if process.stdin is not None:
                process.stdin.close()
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def _call(self, path: str, body: dict | None = None, method: str = "GET") -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.control_url + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")

    def set_fault(self, host: str, kind: str, **options: Any) -> None:
        self._call("/control/faults", {"host": host, "fault": kind, **options}, "POST")

    def clear_faults(self, host: str | None = None) -> None:
        self._call("/control/faults" + (f"?host={host}" if host else ""), method="DELETE")

    def stats(self) -> dict[str, dict[str, int]]:
        return self._call("/control/stats")


# ------------------------------------------------------------------------------------------ faults


@dataclass(frozen=True)
class HostState:
    kind: str | None  # None: healthy
    options: tuple[tuple[str, int], ...] = ()

    def describe(self) -> str:
        return self.kind or "healthy"


class FaultSchedule:
    """Seeded: the same seed and hosts give the same sequence of states."""

    def __init__(self, hosts: list[str], kinds: tuple[str, ...], seed: int) -> None:
        self.hosts = sorted(hosts)
        self.kinds = kinds
        self._rng = random.Random(seed)
        self.states = {host: HostState(None) for host in self.hosts}

    def _draw(self) -> HostState:
        choices = [None] * HEALTHY_WEIGHT + list(self.kinds)
        kind = self._rng.choice(choices)
        if kind == "latency":
            return HostState(kind, (("latency_ms", self._rng.choice(LATENCIES_MS)),
                                    ("open_latency_ms", self._rng.choice(OPEN_LATENCIES_MS))))
        return HostState(kind)

    def tick(self) -> dict[str, HostState]:
        """The hosts whose state changes now, with their new state."""
        changes = {}
        for host in self.hosts:
            if self._rng.random() < 0.5:
                state = self._draw()
                if state != self.states[host]:
                    changes[host] = state
                    self.states[host] = state
        return changes


def apply_changes(sim: SimulatorProcess, changes: dict[str, HostState]) -> None:
    for host, state in changes.items():
        sim.clear_faults(host)
        if state.kind is not None:
            sim.set_fault(host, state.kind, **dict(state.options))


# ------------------------------------------------------------------------------------------ scraping


@dataclass
class ScrapeStats:
    ok: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    failures: Counter = field(default_factory=Counter)


class Scraper(threading.Thread):
    """GETs /metrics in a loop; keeps counts, latencies and the latest good body."""

    def __init__(self, url: str, every: float, timeout: float) -> None:
        super().__init__(name="soak-scraper", daemon=True)
        self.url = url + "/metrics"
        self.every = every
        self.timeout = timeout
        self.stats = ScrapeStats()
        self.latest = ""
        self._lock = threading.Lock()
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            started = time.monotonic()
            failure = None
            body = ""
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as response:
                    body = response.read().decode()
                if "lync_owa_collector_runs_total" not in body:
                    failure = "no job health series"
            except urllib.error.HTTPError as exc:
                failure = f"HTTP {exc.code}"
            except Exception as exc:  # noqa: BLE001 - any failure to scrape is what we count
                failure = type(exc).__name__
            elapsed = time.monotonic() - started
            with self._lock:
                if failure is None:
                    self.stats.ok += 1
                    self.stats.latencies.append(elapsed)
                    self.latest = body
                else:
                    self.stats.failed += 1
                    self.stats.failures[failure] += 1
            self._halt.wait(max(self.every - elapsed, 0))

    def stop(self) -> None:
        self._halt.set()
        self.join(self.timeout + 5)

    def snapshot(self) -> tuple[int, int, str]:
        with self._lock:
            return self.stats.ok, self.stats.failed, self.latest


def parse_runs(body: str) -> dict[str, float]:
    return {f"{collector}@{target}": float(value) for collector, target, value in RUNS_LINE.findall(body)}


def count_up(body: str) -> tuple[int, int]:
    values = UP_LINE.findall(body)
    return sum(1 for v in values if float(v) == 1.0), len(values)


class JobProgress:
    """Per job, from successive scrapes: runs made, and the longest stretch without a new run."""

    def __init__(self, jobs: list[str]) -> None:
        self.jobs = jobs
        self._first: dict[str, float] = {}
        self._last: dict[str, tuple[float, float]] = {}  # job -> (runs, when they last grew)
        self._longest: dict[str, float] = {}
        self._now = 0.0

    def observe(self, at: float, runs: dict[str, float]) -> None:
        self._now = at
        for job, value in runs.items():
            self._first.setdefault(job, value)
            seen = self._last.get(job)
            if seen is None or value > seen[0]:
                if seen is not None:
                    self._longest[job] = max(self._longest.get(job, 0.0), at - seen[1])
                self._last[job] = (value, at)

    def result(self) -> tuple[dict[str, float], dict[str, float]]:
        gaps, made = {}, {}
        for job in self.jobs:
            seen = self._last.get(job)
            gaps[job] = max(self._longest.get(job, 0.0), self._now - seen[1]) if seen else float("inf")
            made[job] = seen[0] - self._first[job] if seen else 0.0
        return gaps, made


# ------------------------------------------------------------------------------------------ records


@dataclass
class Sample:
    phase: str  # warmup | flapping | recovery
    elapsed: float  # seconds since flapping started (0 during warm-up)
    rss: float
    threads: float
    fds: float
    sockets: float
    scrapes_ok: int
    scrapes_failed: int
    jobs_up: int
    jobs: int
    hosts_faulted: int
    pools_opened: int


@dataclass
class Trend:
    first: float  # median over the first minute after warm-up
    last: float  # median over the last minute
    slope_per_minute: float  # least squares over every flapping sample after warm-up

    @property
    def change(self) -> float:
        return self.last - self.first


@dataclass
class SoakReport:
    options: SoakOptions
    samples: list[Sample]
    scrapes: ScrapeStats
    jobs: list[str]
    baseline: dict[str, float]  # healthy, before flapping (medians)
    final: dict[str, float]  # healthy, after recovery (medians)
    never_up: list[str]  # jobs that did not succeed during warm-up
    not_recovered: list[str]  # jobs that did not succeed after the faults were cleared
    recovery_seconds: float
    max_gap: dict[str, float]  # per job: longest time its runs_total stood still while flapping
    runs_during_flapping: dict[str, float]
    state_changes: int
    faults_set: Counter
    unexpected_errors: Counter  # collector crashes and other ERROR log records, by message
    server_shells_open: int
    server_shells_created: int

    def flapping(self) -> list[Sample]:
        return [s for s in self.samples if s.phase == "flapping"]

    def trend(self, metric: str) -> Trend:
        window = self.options.window
        flapping = [s for s in self.flapping() if s.elapsed >= window]
        first = [getattr(s, metric) for s in flapping if s.elapsed < 2 * window]
        end = self.options.duration
        last = [getattr(s, metric) for s in flapping if s.elapsed >= end - window]
        return Trend(_median(first), _median(last), _slope([(s.elapsed / 60, getattr(s, metric)) for s in flapping]))

    def stalled_jobs(self) -> list[str]:
        return sorted(j for j, gap in self.max_gap.items() if gap > self.options.stall_seconds)

    def jobs_without_runs(self) -> list[str]:
        return sorted(j for j in self.jobs if self.runs_during_flapping.get(j, 0) <= 0)

    def problems(self) -> list[str]:
        """Every criterion that failed, in words; empty when the soak passed."""
        found = []
        if self.scrapes.failed:
            found.append(f"{self.scrapes.failed} scrapes failed: {dict(self.scrapes.failures)}")
        if self.never_up:
            found.append(f"jobs never up while healthy: {self.never_up}")
        if self.jobs_without_runs():
            found.append(f"jobs without runs while flapping: {self.jobs_without_runs()}")
        if self.stalled_jobs():
            found.append(f"jobs whose runs stood still over {self.options.stall_seconds:g}s: "
                         f"{ {j: round(self.max_gap[j], 1) for j in self.stalled_jobs()} }")
        if self.not_recovered:
            found.append(f"jobs not recovered after the faults were cleared: {self.not_recovered}")
        found.extend(self.flatness_problems())
        return found

    def flatness_problems(self) -> list[str]:
        found = []
        if self.options.duration >= 3 * self.options.window:
            rss = self.trend("rss")
            if rss.last > rss.first * 1.10:
                found.append(f"RSS grew: last-minute median {rss.last / 2**20:.1f} MB > 110% of {rss.first / 2**20:.1f} MB")
            for metric in ("threads", "sockets"):
                t = self.trend(metric)
                if t.change > thread_margin(t.first):
                    found.append(f"{metric} grew: last-minute median {t.last:g} vs first {t.first:g}")
        for metric in ("threads", "sockets"):
            before, after = self.baseline[metric], self.final[metric]
            if after - before > thread_margin(before):
                found.append(f"{metric} after recovery {after:g} vs healthy baseline {before:g}")
        return found

    def table(self, step: float = 60.0) -> str:
        """Markdown: one row per `step` seconds of flapping (medians), plus baseline and final."""
        rows = ["| time | RSS (MB) | threads | fds | sockets | jobs up | hosts faulted | scrapes ok / failed | pools opened |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

        def row(label: str, chunk: list[Sample]) -> str:
            last = chunk[-1]
            return (f"| {label} | {_median([s.rss for s in chunk]) / 2**20:.1f} | {_median([s.threads for s in chunk]):g} "
                    f"| {_median([s.fds for s in chunk]):g} | {_median([s.sockets for s in chunk]):g} "
                    f"| {last.jobs_up}/{last.jobs} | {last.hosts_faulted}/{self.options.hosts} "
                    f"| {last.scrapes_ok} / {last.scrapes_failed} | {last.pools_opened} |")

        warm = [s for s in self.samples if s.phase == "warmup"]
        if warm:
            rows.append(row("healthy, before", warm[-3:]))
        flapping = self.flapping()
        start = 0.0
        while start < self.options.duration and flapping:
            chunk = [s for s in flapping if start <= s.elapsed < start + step]
            if chunk:
                rows.append(row(f"{start / 60:g}-{(start + step) / 60:g} min", chunk))
            start += step
        recovery = [s for s in self.samples if s.phase == "recovery"]
        if recovery:
            rows.append(row("healthy, after", recovery[-3:]))
        return "\n".join(rows)

    def summary(self) -> str:
        o = self.options
        lat = sorted(self.scrapes.latencies) or [0.0]
        lines = [
            f"hosts={o.hosts} jobs={len(self.jobs)} duration={o.duration:g}s flap={o.flap_seconds:g}s "
            f"interval={o.interval:g}s timeout={o.timeout:g}s seed={o.seed}",
            f"state changes={self.state_changes} faults set={dict(self.faults_set)}",
            f"scrapes: {self.scrapes.ok} ok, {self.scrapes.failed} failed "
            f"{dict(self.scrapes.failures) if self.scrapes.failed else ''}; latency p50={_pct(lat, 50) * 1000:.1f} ms "
            f"p99={_pct(lat, 99) * 1000:.1f} ms max={lat[-1] * 1000:.1f} ms",
            f"jobs: runs while flapping min={min(self.runs_during_flapping.values(), default=0):g} "
            f"max={max(self.runs_during_flapping.values(), default=0):g}; longest standstill "
            f"{max(self.max_gap.values(), default=0):.1f}s (bound {o.stall_seconds:g}s); "
            f"recovered in {self.recovery_seconds:.1f}s; not recovered: {len(self.not_recovered)}",
            f"server side: {self.server_shells_created} shells created, {self.server_shells_open} still open at the end",
        ]
        if self.unexpected_errors:
            lines.append(f"ERROR log records: {dict(self.unexpected_errors.most_common(10))}")
        if o.duration >= 3 * o.window:
            for metric, scale, unit in (("rss", 2**20, "MB"), ("threads", 1, ""), ("sockets", 1, ""), ("fds", 1, "")):
                t = self.trend(metric)
                lines.append(f"trend {metric}: first minute {t.first / scale:.1f}{unit}, last minute {t.last / scale:.1f}{unit}, "
                             f"slope {t.slope_per_minute / scale:+.2f}{unit}/min")
        lines.append(f"healthy before -> after: threads {self.baseline['threads']:g} -> {self.final['threads']:g}, "
                     f"sockets {self.baseline['sockets']:g} -> {self.final['sockets']:g}, "
                     f"RSS {self.baseline['rss'] / 2**20:.1f} -> {self.final['rss'] / 2**20:.1f} MB")
        problems = self.problems()
        lines.append("PASS" if not problems else "FAIL:\n  " + "\n  ".join(problems))
        return "\n".join(lines)


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _pct(sorted_values: list[float], pct: float) -> float:
    index = min(len(sorted_values) - 1, int(round(pct / 100 * (len(sorted_values) - 1))))
    return sorted_values[index]


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


# ------------------------------------------------------------------------------------------ the soak


class _CountingHandler(logging.Handler):
    """Counts ERROR records (collector crashes) instead of printing thousands of expected warnings."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.counts: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        what = record.getMessage()[:120]
        if record.exc_info and record.exc_info[1] is not None:
            what += f" ({type(record.exc_info[1]).__name__})"
        self.counts[what] += 1


class _QuietExporterLogs:
    def __init__(self) -> None:
        self.handler = _CountingHandler()
        self._saved: list[tuple[logging.Logger, bool, int]] = []

    def __enter__(self) -> _CountingHandler:
        for name in ("exporter", "collectors", "apscheduler"):
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate, logger.level))
            logger.addHandler(self.handler)
            logger.propagate = False
            logger.setLevel(logging.WARNING)
        return self.handler

    def __exit__(self, *exc: Any) -> None:
        for logger, propagate, level in self._saved:
            logger.removeHandler(self.handler)
            logger.propagate = propagate
            logger.setLevel(level)


def soak_config(hosts: dict[str, Any], options: SoakOptions) -> dict[str, Any]:
    """The demo's configuration (every registered collector, default settings) with short intervals."""
    from exporter.demo import demo_config
    from exporter.durations import format_duration

    document = demo_config(hosts, format_duration(options.interval), None)
    document["credentials"] = {
        "simulator": {"username": USERNAME, "password_env": PASSWORD_ENV, "auth": "basic"}}
    for settings in document["collectors"].values():
        settings["interval"] = format_duration(options.interval)
        settings["timeout"] = format_duration(options.timeout)
    return document


def run_soak(options: SoakOptions, progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run the three phases and return every measurement; raises only if the setup fails."""
    from collectors import registry
    from exporter.app import Exporter
    from exporter.config import load_config

    say = progress or (lambda _: None)
    with SimulatorProcess(options.hosts) as sim, tempfile.TemporaryDirectory() as tmp, _QuietExporterLogs() as errors:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(soak_config(sim.hosts, options), sort_keys=False))
        config = load_config(path, registry.schemas(), environ={PASSWORD_ENV: PASSWORD})
        exporter = Exporter(config, "127.0.0.1:0")
        jobs = sorted(r.job_id for r in exporter.runners)
        scraper = Scraper(exporter.url, options.scrape_every, options.scrape_timeout)
        schedule = FaultSchedule(list(sim.hosts), options.faults, options.seed)
        samples: list[Sample] = []
        faults_set: Counter = Counter()
        state_changes = 0
        flap_start = 0.0
        progress_of_jobs = JobProgress(jobs)

        def sample(phase: str) -> Sample:
            ok, failed, body = scraper.snapshot()
            up, total = count_up(body)
            figures = process_figures()
            faulted = sum(1 for s in schedule.states.values() if s.kind is not None)
            pools = sum(s.pools_opened for s in exporter.sessions.sessions())
            taken = Sample(phase, time.monotonic() - flap_start if flap_start else 0.0, figures["rss"],
                           figures["threads"], figures["fds"], figures["sockets"], ok, failed, up, total, faulted,
                           pools)
            samples.append(taken)
            if phase == "flapping":
                progress_of_jobs.observe(taken.elapsed, parse_runs(body))
            return taken

        def sample_until(phase: str, done: Callable[[], bool], limit: float) -> bool:
            end = time.monotonic() + limit
            while time.monotonic() < end:
                sample(phase)
                if done():
                    return True
                time.sleep(options.sample_every)
            return done()

        exporter.start()
        scraper.start()
        try:
            # 1. warm-up: healthy until every job has succeeded, then settle.
            say(f"warm-up: {len(jobs)} jobs on {options.hosts} hosts")
            ready = sample_until("warmup", lambda: not [j for j in exporter.store.jobs() if not j.last_success_monotonic],
                                 options.ready_timeout)
            never_up = sorted(f"{j.collector}@{j.target}" for j in exporter.store.jobs() if not j.last_success_monotonic)
            settle = options.settle_intervals * options.interval
            sample_until("warmup", lambda: False, settle)
            baseline = _medians(samples[-3:])
            say(f"warm-up done (every job up: {ready}); baseline threads={baseline['threads']:g} "
                f"sockets={baseline['sockets']:g} rss={baseline['rss'] / 2**20:.1f}MB")

            # 2. flapping
            flap_start = time.monotonic()
            next_flap = next_sample = flap_start
            last_report = flap_start
            while (now := time.monotonic()) < flap_start + options.duration:
                if now >= next_flap:
                    changes = schedule.tick()
                    apply_changes(sim, changes)
                    state_changes += len(changes)
                    faults_set.update(s.kind for s in changes.values() if s.kind)
                    next_flap += options.flap_seconds
                if now >= next_sample:
                    taken = sample("flapping")
                    next_sample += options.sample_every
                    if now - last_report >= 30:
                        last_report = now
                        say(f"{taken.elapsed:5.0f}s rss={taken.rss / 2**20:.1f}MB threads={taken.threads:g} "
                            f"fds={taken.fds:g} sockets={taken.sockets:g} up={taken.jobs_up}/{taken.jobs} "
                            f"faulted={taken.hosts_faulted} scrapes={taken.scrapes_ok}/{taken.scrapes_failed}")
                time.sleep(max(min(next_flap, next_sample) - time.monotonic(), 0.01))

            # 3. recovery: clear everything; every job must succeed again.
            sim.clear_faults()
            schedule.states = {h: HostState(None) for h in schedule.hosts}
            cleared = time.monotonic()
            fresh = lambda: [j for j in exporter.store.jobs() if (j.last_success_monotonic or 0) <= cleared]  # noqa: E731
            sample_until("recovery", lambda: not fresh(), options.recovery_timeout)
            recovery_seconds = time.monotonic() - cleared
            not_recovered = sorted(f"{j.collector}@{j.target}" for j in fresh())
            sample_until("recovery", lambda: False, settle)
            final = _medians(samples[-3:])
            say(f"recovered in {recovery_seconds:.1f}s; final threads={final['threads']:g} sockets={final['sockets']:g}")
            server = sim.stats()
        finally:
            scraper.stop()
            exporter.stop()

    gaps, runs_during = progress_of_jobs.result()
    return SoakReport(
        options=options, samples=samples, scrapes=scraper.stats, jobs=jobs, baseline=baseline, final=final,
        never_up=never_up, not_recovered=not_recovered, recovery_seconds=recovery_seconds, max_gap=gaps,
        runs_during_flapping=runs_during, state_changes=state_changes, faults_set=faults_set,
        unexpected_errors=errors.counts,
        server_shells_open=sum(h["shells_open"] for h in server.values()),
        server_shells_created=sum(h["shells_created"] for h in server.values()),
    )


def _medians(samples: list[Sample]) -> dict[str, float]:
    return {m: _median([getattr(s, m) for s in samples]) for m in ("rss", "threads", "fds", "sockets")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=50)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of flapping faults")
    parser.add_argument("--flap-seconds", type=float, default=5.0, help="how often host states change")
    parser.add_argument("--interval", type=float, default=5.0, help="every collector's interval, seconds")
    parser.add_argument("--timeout", type=float, default=3.0, help="every collector's deadline, seconds")
    parser.add_argument("--sample-every", type=float, default=5.0)
    parser.add_argument("--scrape-every", type=float, default=0.5)
    parser.add_argument("--window", type=float, default=60.0, help="trend window (and flapping warm-up), seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="fault kinds to draw from, comma-separated")
    parser.add_argument("--serve-simulator", type=int, metavar="HOSTS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_simulator:
        serve_simulator(args.serve_simulator)
        return 0
    options = SoakOptions(hosts=args.hosts, duration=args.duration, flap_seconds=args.flap_seconds,
                          interval=args.interval, timeout=args.timeout, sample_every=args.sample_every,
                          scrape_every=args.scrape_every, window=args.window, seed=args.seed,
                          faults=tuple(k.strip() for k in args.faults.split(",") if k.strip()))
    report = run_soak(options, progress=lambda line: print(line, flush=True))
    print(report.table())
    print(report.summary())
    return 0 if not report.problems() else 1


if __name__ == "__main__":
    sys.exit(main())
