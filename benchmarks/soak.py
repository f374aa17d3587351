"""Fault soak: the real exporter against a simulated estate whose hosts keep failing, for minutes.

    .venv/bin/python benchmarks/soak.py [--hosts 50] [--duration 600] [--flap-seconds 5] [--seed 1]

The simulator runs in a child process, so every figure is the exporter's alone: its polling process
(the table), and its serving process's threads and descriptors (one line of the summary). The
exporter is the real one (``exporter.app.Exporter``, its configuration written as YAML and loaded
by ``exporter.config.load_config``) with every registered collector in its default (remote) mode,
short intervals and deadlines. Three phases:

1. warm-up: the estate is healthy until every job has succeeded once (every pool is open), then a
   few intervals more; the healthy baseline is taken at its end;
2. flapping, for ``--duration``: every ``--flap-seconds`` each host, with probability one half,
   takes a new state drawn from a seeded random schedule: healthy, or one of hang, refuse,
   http_401, http_500, malformed, malformed_soap, latency (200 ms, 1 s or 2.5 s per answer);
3. recovery: every fault is cleared; every job must succeed again; after a few intervals the
   healthy figures are taken again (baseline and final: the lowest over those intervals, since
   runs in flight come and go while what leaked stays).

Throughout, a scraper thread GETs /metrics every ``--scrape-every`` seconds, and every
``--sample-every`` seconds the process's RSS, threads (outside the scheduler's worker pool, which
is bounded by ``--workers`` and keeps idle threads once grown), open file descriptors, sockets and
CPU time are recorded, with every job's ``lync_owa_collector_runs_total`` as scraped.

Verdict (printed with the figures; exit status 1 when a criterion fails):
- every scrape answered 200 with the job health series in it;
- every job kept running: while flapping its runs_total never stood still longer than the stall
  bound (four intervals, or longer when the estate has more jobs than the workers can run within
  an interval: the time for every queued job ahead to hit its deadline), and every job succeeded
  again after the faults were cleared;
- flat: with the first minute of flapping as warm-up, the last minute's median RSS is within 10%
  of the first minute's, and the last minute's medians of threads and of sockets are not above the
  first minute's by more than max(5, 10%); after recovery, threads and sockets are not above the
  healthy baseline by more than the same margin. (With faults redrawn every few seconds, the
  polling process's sockets swing with a standard deviation of about 7 from one sample to the next,
  and two one-minute medians differ by about 2.3 from that alone: a run without a leak fails the
  margin of 5 now and then. The slope over every sample is printed too; it is no less noisy.)
``--samples-json PATH`` writes every sample, for a closer look at a run.
With ``--slowloris N``, bench_slowloris.py's attacker holds N connections to the endpoint while
faults flap (from 127.0.0.3, and the scraper from 127.0.0.2, as a Prometheus on another host).
``tests/e2e/test_fault_soak.py`` runs the same engine, shorter and smaller.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import logging
import math
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
import urllib.parse
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
# Per-answer delays of the latency fault: below, near and above a 3 s deadline; pool opening slower.
LATENCIES_MS = (200, 1000, 2500)
OPEN_LATENCIES_MS = (0, 1000)
# A host changing state picks "healthy" with this weight against 1 for each fault kind.
HEALTHY_WEIGHT = 4
# What the scheduler grants a run beyond its deadline (exporter.scheduler.HANDOVER_GRACE_SECONDS).
HANDOVER_GRACE = 0.5

RUNS_LINE = re.compile(r'^lync_owa_collector_runs_total\{collector="([^"]*)",target="([^"]*)"\} (\S+)$', re.M)
UP_LINE = re.compile(r'^lync_owa_collector_up\{collector="[^"]*",target="[^"]*"\} (\S+)$', re.M)
FIGURES = ("rss", "threads", "fds", "sockets")


# ------------------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class SoakOptions:
    hosts: int = 50
    duration: float = 600.0  # the flapping phase, seconds
    flap_seconds: float = 5.0
    interval: float = 5.0  # every collector's
    timeout: float = 3.0  # every collector's deadline
    workers: int = 16  # global.max_concurrent_jobs (its default)
    scrape_every: float = 0.5
    scrape_timeout: float = 10.0
    sample_every: float = 5.0
    # Trend windows: the first `window` seconds of flapping are its warm-up, the next `window` the
    # "first minute", the last `window` the "last minute".
    window: float = 60.0
    settle_intervals: int = 3  # healthy intervals waited before the baseline and the final figures
    ready_timeout: float = 180.0  # warm-up: every job up at least once
    recovery_timeout: float = 180.0
    seed: int = 1
    faults: tuple[str, ...] = FAULT_KINDS
    # A slowloris (benchmarks/bench_slowloris.py's attacker) holding this many connections to the
    # endpoint while faults flap; the scraper then connects from another address, as Prometheus would.
    slowloris: int = 0
    slowloris_trickle: float = 5.0
    scraper_address: str = "127.0.0.2"
    # An address of its own, as an attacker on the network has (the endpoint shares its connection
    # slots by client address); the scraper's is another.
    attacker_address: str = "127.0.0.3"

    def stall_bound(self, jobs: int) -> float:
        """How long a live job's runs_total may stand still: four intervals, or the wait in a full
        queue (every job ahead of it hitting its deadline) plus an interval."""
        queued = math.ceil(jobs / self.workers) * (self.timeout + HANDOVER_GRACE) + self.interval
        return max(4 * self.interval, queued)


def growth_margin(reference: float) -> float:
    """How far threads or sockets may end above their reference and still count as flat."""
    return max(5.0, 0.10 * reference)


# ------------------------------------------------------------------------------------------ process figures


def process_figures(pid: int | None = None) -> dict[str, float]:
    """RSS (bytes), OS threads, open fds, sockets and CPU seconds of a process (psutil, else /proc)."""
    pid = pid or os.getpid()
    fds = sockets = 0
    for entry in Path(f"/proc/{pid}/fd").iterdir():
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
    from exporter.scheduler import WORKER_THREAD_PREFIX

    # The scheduler's worker pool grows to --workers under load and keeps its idle threads: bounded
    # by construction, so it is left out of "threads", which must return to its healthy level.
    pool = sum(t.name.startswith(WORKER_THREAD_PREFIX) for t in threading.enumerate()) if pid == os.getpid() else 0
    if psutil is not None:
        proc = psutil.Process(pid)
        times = proc.cpu_times()
        return {"rss": float(proc.memory_info().rss), "threads": float(proc.num_threads() - pool),
                "fds": float(proc.num_fds()), "sockets": float(sockets), "cpu": times.user + times.system}
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    # /proc/PID/stat: fields 14 and 15 (utime, stime) after the parenthesised command name.
    stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(stat[11]) + int(stat[12])) / os.sysconf("SC_CLK_TCK")
    return {"rss": float(status["VmRSS"].split()[0]) * 1024, "threads": float(status["Threads"].strip()) - pool,
            "fds": float(fds), "sockets": float(sockets), "cpu": cpu}


# ------------------------------------------------------------------------------------------ the simulator


def serve_simulator(hosts: int) -> None:
    """Child process: a scaled healthy estate; prints its URLs as one JSON line; stops when stdin closes."""
    from simulator.scenario import load_scenario
    from simulator.server import Simulator

    logging.basicConfig(level=logging.ERROR)
    sim = Simulator(scenario=load_scenario("healthy").scaled(hosts), listen_host="127.0.0.1", control_port=0,
                    username=USERNAME, password=PASSWORD)
    sim.start()
    try:
        hosts_info = {name: dataclasses.asdict(info) for name, info in sim.hosts().items()}
        print(json.dumps({"control_url": sim.control_url, "hosts": hosts_info}), flush=True)
        sys.stdin.read()  # EOF when the parent closes the pipe, or dies
    finally:
        sim.stop()


class SimulatorProcess:
    """The simulated estate in a child process (``soak.py --serve-simulator N``), driven by its control API."""

    def __init__(self, hosts: int) -> None:
        self._hosts = hosts
        self._process: subprocess.Popen | None = None
        self.control_url = ""
        self.hosts: dict[str, types.SimpleNamespace] = {}

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def __enter__(self) -> SimulatorProcess:
        root = str(Path(__file__).resolve().parent.parent)  # the project, importable without installing it
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)}
        self._process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve-simulator", str(self._hosts)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            self.__exit__()
            raise RuntimeError("the simulator exited before it started")
        started = json.loads(line)
        self.control_url = started["control_url"]
        self.hosts = {name: types.SimpleNamespace(**info) for name, info in started["hosts"].items()}
        return self

    def __exit__(self, *exc: Any) -> None:
        process, self._process = self._process, None
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


class FaultSchedule:
    """Seeded: the same seed and hosts give the same sequence of states."""

    def __init__(self, hosts: list[str], kinds: tuple[str, ...], seed: int) -> None:
        self.hosts = sorted(hosts)
        self.kinds = kinds
        self._rng = random.Random(seed)
        self.states = {host: HostState(None) for host in self.hosts}

    def _draw(self) -> HostState:
        kind = self._rng.choice([None] * HEALTHY_WEIGHT + list(self.kinds))
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
                    changes[host] = self.states[host] = state
        return changes

    def faulted(self) -> int:
        return sum(1 for state in self.states.values() if state.kind is not None)

    def heal_all(self) -> None:
        self.states = {host: HostState(None) for host in self.hosts}


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
    """GETs /metrics in a loop, a fresh connection each time as Prometheus may; keeps the latest body."""

    def __init__(self, url: str, every: float, timeout: float, source: str | None = None) -> None:
        super().__init__(name="soak-scraper", daemon=True)
        self.url = url + "/metrics"
        self.address = urllib.parse.urlsplit(url)
        self.source = source  # the client's own address; None: the system's choice
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
                conn = http.client.HTTPConnection(self.address.hostname, self.address.port, timeout=self.timeout,
                                                  source_address=(self.source, 0) if self.source else None)
                try:
                    conn.request("GET", "/metrics")
                    response = conn.getresponse()
                    body = response.read().decode()
                finally:
                    conn.close()
                if response.status != 200:
                    failure = f"HTTP {response.status}"
                elif "lync_owa_collector_runs_total" not in body:
                    failure = "no job health series"
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
    return {f"{collector}/{target}": float(value) for collector, target, value in RUNS_LINE.findall(body)}


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
        """(longest standstill, runs made) per job; a job never seen stood still for ever."""
        gaps, made = {}, {}
        for job in self.jobs:
            seen = self._last.get(job)
            gaps[job] = max(self._longest.get(job, 0.0), self._now - seen[1]) if seen else math.inf
            made[job] = seen[0] - self._first[job] if seen else 0.0
        return gaps, made


# ------------------------------------------------------------------------------------------ log accounting


class LogTally(logging.Handler):
    """Counts the exporter's log records instead of printing thousands of expected warnings.

    Failed runs by kind, the scheduler's missed and skipped firings, and every ERROR record
    (a collector that raised instead of returning a typed failure is a bug)."""

    _QUOTED = re.compile(r'"[^"]*"')
    _NUMBER = re.compile(r"\d[\d:.,]*")

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.failures: Counter = Counter()
        self.scheduler: Counter = Counter()
        self.errors: Counter = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            exc = record.exc_info[1] if record.exc_info else None
            self.errors[message[:120] + (f" ({type(exc).__name__}: {str(exc)[:80]})" if exc else "")] += 1
        elif record.name.startswith("apscheduler"):
            self.scheduler[self._NUMBER.sub("N", self._QUOTED.sub('"job"', message))[:100]] += 1
        elif message.startswith("collector run failed: kind="):
            kind = message.split("kind=", 1)[1].split(" ", 1)[0]
            self.failures["previous run still running" if "still running" in message else kind] += 1


class _QuietExporterLogs:
    def __init__(self) -> None:
        self.tally = LogTally()
        self._saved: list[tuple[logging.Logger, bool, int]] = []

    def __enter__(self) -> LogTally:
        for name in ("exporter", "collectors", "apscheduler"):
            logger = logging.getLogger(name)
            self._saved.append((logger, logger.propagate, logger.level))
            logger.addHandler(self.tally)
            logger.propagate = False
            logger.setLevel(logging.WARNING)
        return self.tally

    def __exit__(self, *exc: Any) -> None:
        for logger, propagate, level in self._saved:
            logger.removeHandler(self.tally)
            logger.propagate = propagate
            logger.setLevel(level)


# ------------------------------------------------------------------------------------------ records


@dataclass
class Sample:
    phase: str  # warmup | flapping | recovery
    elapsed: float  # seconds since flapping started (0 during warm-up)
    rss: float
    threads: float
    fds: float
    sockets: float
    cpu: float  # the exporter's CPU seconds so far
    simulator_cpu: float
    scrapes_ok: int
    scrapes_failed: int
    jobs_up: int
    jobs: int
    hosts_faulted: int
    pools_opened: int
    serving_threads: float = 0.0  # the serving process's (exporter.serving_child): inbound connections live there
    serving_fds: float = 0.0


@dataclass
class Trend:
    first: float  # median over the first minute after the flapping warm-up
    last: float  # median over the last minute
    slope_per_minute: float  # least squares over every flapping sample after the warm-up
    minutes: float  # the time those samples span

    @property
    def growth(self) -> float:
        """How much the fitted line rose over the samples it was fitted to."""
        return self.slope_per_minute * self.minutes


@dataclass
class SoakReport:
    options: SoakOptions
    samples: list[Sample]
    scrapes: ScrapeStats
    jobs: list[str]
    baseline: dict[str, float]  # healthy, before flapping (lowest over the settle period)
    final: dict[str, float]  # healthy, after recovery (lowest over the settle period)
    never_up: list[str]  # jobs that did not succeed during warm-up
    not_recovered: list[str]  # jobs that did not succeed after the faults were cleared
    recovery_seconds: float
    max_gap: dict[str, float]  # per job: longest time its runs_total stood still while flapping
    runs_during_flapping: dict[str, float]
    state_changes: int
    faults_set: Counter
    logs: LogTally
    server_shells_created: int
    server_shells_open: int
    slowloris_opened: str = ""  # the attacker's own count: connections opened (of them reopened)
    serving_restarts: int = 0

    @property
    def stall_bound(self) -> float:
        return self.options.stall_bound(len(self.jobs))

    def flapping(self) -> list[Sample]:
        return [s for s in self.samples if s.phase == "flapping"]

    def has_trend(self) -> bool:
        return self.options.duration >= 3 * self.options.window

    def trend(self, metric: str) -> Trend:
        window, end = self.options.window, self.options.duration
        flapping = [s for s in self.flapping() if s.elapsed >= window]
        first = [getattr(s, metric) for s in flapping if s.elapsed < 2 * window]
        last = [getattr(s, metric) for s in flapping if s.elapsed >= end - window]
        span = (flapping[-1].elapsed - flapping[0].elapsed) / 60 if flapping else 0.0
        return Trend(_median(first), _median(last), _slope([(s.elapsed / 60, getattr(s, metric)) for s in flapping]),
                     span)

    def stalled_jobs(self) -> dict[str, float]:
        return {j: gap for j, gap in sorted(self.max_gap.items()) if gap > self.stall_bound}

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
            found.append(f"jobs without a run while flapping: {self.jobs_without_runs()}")
        if self.stalled_jobs():
            found.append(f"jobs whose runs stood still over {self.stall_bound:g}s: "
                         f"{ {j: round(g, 1) for j, g in self.stalled_jobs().items()} }")
        if self.not_recovered:
            found.append(f"jobs not succeeding again after the faults were cleared: {self.not_recovered}")
        return found + self.flatness_problems()

    def flatness_problems(self) -> list[str]:
        found = []
        if self.has_trend():
            rss = self.trend("rss")
            if rss.last > rss.first * 1.10:
                found.append(f"RSS grew: last-minute median {rss.last / 2**20:.1f} MB > 110% of "
                             f"{rss.first / 2**20:.1f} MB")
            for metric in ("threads", "sockets"):
                t = self.trend(metric)
                if t.last - t.first > growth_margin(t.first):
                    found.append(f"{metric} grew: last-minute median {t.last:g}, first minute {t.first:g}")
        for metric in ("threads", "sockets"):
            before, after = self.baseline[metric], self.final[metric]
            if after - before > growth_margin(before):
                found.append(f"{metric} after recovery {after:g}, healthy baseline {before:g}")
        return found

    def table(self, step: float | None = None) -> str:
        """Markdown: the healthy baseline, one row per `step` of flapping (medians), the end state."""
        step = step or self.options.window
        rows = ["| time | RSS (MB) | threads | open fds | sockets | exporter CPU | jobs up | hosts faulted "
                "| scrapes ok / failed | pools opened |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        previous: list[Sample] = []

        def row(label: str, chunk: list[Sample]) -> str:
            last = chunk[-1]
            before = previous[-1] if previous else chunk[0]
            span = last.elapsed - before.elapsed if last.phase == before.phase == "flapping" else 0
            cpu = f"{100 * (last.cpu - before.cpu) / span:.0f}%" if span > 0 else "-"
            previous[:] = chunk
            return (f"| {label} | {_median([s.rss for s in chunk]) / 2**20:.1f} "
                    f"| {_median([s.threads for s in chunk]):g} | {_median([s.fds for s in chunk]):g} "
                    f"| {_median([s.sockets for s in chunk]):g} | {cpu} | {last.jobs_up}/{last.jobs} "
                    f"| {last.hosts_faulted}/{self.options.hosts} | {last.scrapes_ok} / {last.scrapes_failed} "
                    f"| {last.pools_opened} |")

        warm = [s for s in self.samples if s.phase == "warmup"]
        if warm:
            rows.append(row("healthy, before", warm[-3:]))
        flapping = self.flapping()
        start = 0.0
        while start < self.options.duration and flapping:
            chunk = [s for s in flapping if start <= s.elapsed < start + step]
            if chunk:
                rows.append(row(f"{_clock(start)}-{_clock(start + step)}", chunk))
            start += step
        recovery = [s for s in self.samples if s.phase == "recovery"]
        if recovery:
            rows.append(row("healthy, after", recovery[-3:]))
        return "\n".join(rows)

    def summary(self) -> str:
        o = self.options
        lat = sorted(self.scrapes.latencies) or [0.0]
        flapping = self.flapping()
        span = flapping[-1].elapsed - flapping[0].elapsed if len(flapping) > 1 else 0
        cpu = (flapping[-1].cpu - flapping[0].cpu) / span if span else 0
        sim_cpu = (flapping[-1].simulator_cpu - flapping[0].simulator_cpu) / span if span else 0
        lines = [
            f"hosts={o.hosts} jobs={len(self.jobs)} duration={o.duration:g}s flap={o.flap_seconds:g}s "
            f"interval={o.interval:g}s timeout={o.timeout:g}s workers={o.workers} seed={o.seed}",
            f"host state changes={self.state_changes}; faults set={dict(self.faults_set)}",
            f"scrapes: {self.scrapes.ok} ok, {self.scrapes.failed} failed"
            f"{' ' + str(dict(self.scrapes.failures)) if self.scrapes.failed else ''}; "
            f"latency p50={_pct(lat, 50) * 1000:.1f} ms p99={_pct(lat, 99) * 1000:.1f} ms max={lat[-1] * 1000:.1f} ms",
            f"jobs: runs each while flapping min={min(self.runs_during_flapping.values(), default=0):g} "
            f"max={max(self.runs_during_flapping.values(), default=0):g}; longest standstill "
            f"{max(self.max_gap.values(), default=0):.1f}s (bound {self.stall_bound:g}s); "
            f"all succeeding again {self.recovery_seconds:.1f}s after the faults were cleared "
            f"({len(self.not_recovered)} did not)",
            f"failed runs by kind: {dict(self.logs.failures.most_common())}",
            f"scheduler warnings: {dict(self.logs.scheduler.most_common(5)) or 'none'}",
            f"ERROR log records: {dict(self.logs.errors.most_common(10)) or 'none'}",
            f"CPU while flapping: exporter {100 * cpu:.0f}% of a core, simulator {100 * sim_cpu:.0f}%",
            f"server side: {self.server_shells_created} shells created, "
            f"{self.server_shells_open} still open at the end",
        ]
        healthy = [s for s in self.samples if s.phase != "flapping" and s.serving_fds]
        attacked = [s for s in flapping if s.serving_fds]
        if healthy and attacked:
            lines.append(
                f"serving process: threads {min(s.serving_threads for s in healthy):g}..{max(s.serving_threads for s in healthy):g} "
                f"healthy, {min(s.serving_threads for s in attacked):g}..{max(s.serving_threads for s in attacked):g} "
                f"while flapping; fds {min(s.serving_fds for s in healthy):g}..{max(s.serving_fds for s in healthy):g} "
                f"-> {min(s.serving_fds for s in attacked):g}..{max(s.serving_fds for s in attacked):g}; "
                f"restarts {self.serving_restarts}"
                + (f"; slowloris of {o.slowloris}: {self.slowloris_opened}" if o.slowloris else ""))
        if self.has_trend():
            for metric, scale, unit in (("rss", 2**20, " MB"), ("threads", 1, ""), ("sockets", 1, ""), ("fds", 1, "")):
                t = self.trend(metric)
                lines.append(f"trend {metric}: first minute {t.first / scale:.1f}{unit}, last minute "
                             f"{t.last / scale:.1f}{unit}, slope {t.slope_per_minute / scale:+.2f}{unit}/min, "
                             f"growth {t.growth / scale:+.1f}{unit} over {t.minutes:.1f} min")
        lines.append(f"healthy before -> after: threads {self.baseline['threads']:g} -> {self.final['threads']:g}, "
                     f"sockets {self.baseline['sockets']:g} -> {self.final['sockets']:g}, "
                     f"fds {self.baseline['fds']:g} -> {self.final['fds']:g}, "
                     f"RSS {self.baseline['rss'] / 2**20:.1f} -> {self.final['rss'] / 2**20:.1f} MB")
        problems = self.problems()
        lines.append("PASS" if not problems else "FAIL:\n  " + "\n  ".join(problems))
        return "\n".join(lines)


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def _pct(sorted_values: list[float], pct: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(pct / 100 * (len(sorted_values) - 1))))]


def _slope(points: list[tuple[float, float]]) -> float:
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var if var else 0.0


def _lowest(samples: list[Sample]) -> dict[str, float]:
    """Per figure, the lowest over a healthy settle period: runs in flight come and go, a leak stays."""
    return {m: min(getattr(s, m) for s in samples) for m in FIGURES}


# ------------------------------------------------------------------------------------------ the soak


def soak_config(hosts: dict[str, Any], options: SoakOptions) -> dict[str, Any]:
    """The demo's configuration (every registered collector, default settings) with short intervals."""
    from collectors.helpers.durations import format_duration
    from exporter.demo import demo_config

    document = demo_config(hosts, format_duration(options.interval), None)
    document["global"]["max_concurrent_jobs"] = options.workers
    document["credentials"] = {"simulator": {"username": USERNAME, "password_env": PASSWORD_ENV, "auth": "basic"}}
    for settings in document["collectors"].values():
        settings["interval"] = format_duration(options.interval)
        settings["timeout"] = format_duration(options.timeout)
    return document


def run_soak(options: SoakOptions, progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run the three phases and return every measurement; raises only when the setup fails."""
    from collectors import registry
    from exporter.app import Exporter
    from exporter.config import load_config

    say = progress or (lambda _: None)
    with _QuietExporterLogs() as logs, SimulatorProcess(options.hosts) as sim, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(soak_config(sim.hosts, options), sort_keys=False))
        config = load_config(path, registry.by_name(), environ={PASSWORD_ENV: PASSWORD})
        exporter = Exporter(config, "127.0.0.1:0")
        jobs = sorted(r.job_id for r in exporter.runners)
        scraper = Scraper(exporter.url, options.scrape_every, options.scrape_timeout,
                          source=options.scraper_address if options.slowloris else None)
        attacker: subprocess.Popen | None = None
        slowloris_opened = ""
        schedule = FaultSchedule(list(sim.hosts), options.faults, options.seed)
        samples: list[Sample] = []
        job_progress = JobProgress(jobs)
        faults_set: Counter = Counter()
        state_changes = 0
        flap_start = 0.0

        def sample(phase: str) -> Sample:
            ok, failed, body = scraper.snapshot()
            up, total = count_up(body)
            own = process_figures()
            sim_cpu = process_figures(sim.pid)["cpu"] if sim.pid else 0.0
            try:
                serving = process_figures(exporter.server.pid)
            except OSError:  # restarting at this moment
                serving = {"threads": 0.0, "fds": 0.0}
            taken = Sample(phase, time.monotonic() - flap_start if flap_start else 0.0, own["rss"], own["threads"],
                           own["fds"], own["sockets"], own["cpu"], sim_cpu, ok, failed, up, total, schedule.faulted(),
                           sum(s.pools_opened for s in exporter.sessions.sessions()),
                           serving["threads"], serving["fds"])
            samples.append(taken)
            if phase == "flapping":
                job_progress.observe(taken.elapsed, parse_runs(body))
            return taken

        def sample_until(phase: str, done: Callable[[], bool], limit: float) -> bool:
            end = time.monotonic() + limit
            while time.monotonic() < end:
                sample(phase)
                if done():
                    return True
                time.sleep(options.sample_every)
            return done()

        def not_succeeded_since(moment: float) -> list[str]:
            return sorted(f"{j.collector}/{j.target}" for j in exporter.store.jobs()
                          if (j.last_success_monotonic or 0) <= moment)

        exporter.start()
        scraper.start()
        try:
            # 1. warm-up: healthy until every job has succeeded, then settle.
            say(f"warm-up: {len(jobs)} jobs on {options.hosts} hosts")
            sample_until("warmup", lambda: not not_succeeded_since(0), options.ready_timeout)
            never_up = not_succeeded_since(0)
            settle = options.settle_intervals * options.interval
            settled_from = len(samples)
            sample_until("warmup", lambda: False, settle)
            baseline = _lowest(samples[settled_from:])
            say(f"healthy baseline: threads={baseline['threads']:g} sockets={baseline['sockets']:g} "
                f"rss={baseline['rss'] / 2**20:.1f}MB ({len(never_up)} jobs never up)")

            # 2. flapping, with the slowloris if asked for
            if options.slowloris:
                attacker = start_slowloris(exporter.server.server_address[1], options)
                say(f"slowloris: {options.slowloris} connections, a header line every {options.slowloris_trickle:g} s")
            flap_start = time.monotonic()
            next_flap = next_sample = last_report = flap_start
            while (now := time.monotonic()) < flap_start + options.duration:
                if now >= next_flap:
                    changes = schedule.tick()
                    apply_changes(sim, changes)
                    state_changes += len(changes)
                    faults_set.update(state.kind for state in changes.values() if state.kind)
                    next_flap += options.flap_seconds
                if now >= next_sample:
                    taken = sample("flapping")
                    next_sample += options.sample_every
                    if now - last_report >= 30:
                        last_report = now
                        say(f"{_clock(taken.elapsed)} rss={taken.rss / 2**20:.1f}MB threads={taken.threads:g} "
                            f"fds={taken.fds:g} sockets={taken.sockets:g} up={taken.jobs_up}/{taken.jobs} "
                            f"faulted={taken.hosts_faulted} scrapes={taken.scrapes_ok}/{taken.scrapes_failed}")
                time.sleep(max(min(next_flap, next_sample) - time.monotonic(), 0.01))

            # 3. recovery: clear everything (the slowloris too); every job must succeed again.
            if attacker is not None:
                slowloris_opened, attacker = stop_slowloris(attacker), None
            sim.clear_faults()
            schedule.heal_all()
            cleared = time.monotonic()
            sample_until("recovery", lambda: not not_succeeded_since(cleared), options.recovery_timeout)
            recovery_seconds = time.monotonic() - cleared
            not_recovered = not_succeeded_since(cleared)
            settled_from = len(samples)
            sample_until("recovery", lambda: False, settle)
            final = _lowest(samples[settled_from:])
            say(f"recovered in {recovery_seconds:.1f}s; threads={final['threads']:g} sockets={final['sockets']:g}")
            server = sim.stats()
        finally:
            if attacker is not None:
                stop_slowloris(attacker)
            scraper.stop()
            serving_restarts = exporter.server.restarts
            exporter.stop()

    gaps, runs_made = job_progress.result()
    return SoakReport(
        options=options, samples=samples, scrapes=scraper.stats, jobs=jobs, baseline=baseline, final=final,
        never_up=never_up, not_recovered=not_recovered, recovery_seconds=recovery_seconds, max_gap=gaps,
        runs_during_flapping=runs_made, state_changes=state_changes, faults_set=faults_set, logs=logs,
        server_shells_created=sum(h["shells_created"] for h in server.values()),
        server_shells_open=sum(h["shells_open"] for h in server.values()),
        slowloris_opened=slowloris_opened, serving_restarts=serving_restarts,
    )


def start_slowloris(port: int, options: SoakOptions) -> subprocess.Popen:
    """benchmarks/bench_slowloris.py's attacker in a process of its own (its CPU is not the exporter's)."""
    return subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent / "bench_slowloris.py"), "--attack", "--port", str(port),
         "--connections", str(options.slowloris), "--trickle", str(options.slowloris_trickle),
         "--attacker-address", options.attacker_address],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def stop_slowloris(attacker: subprocess.Popen) -> str:
    assert attacker.stdin is not None and attacker.stdout is not None
    attacker.stdin.close()
    words = attacker.stdout.read().split()
    attacker.wait(30)
    return f"{words[0]} connections opened ({words[1]} of them reopened)" if len(words) == 2 else "no count"


def main(argv: list[str] | None = None) -> int:
    defaults = SoakOptions()
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=defaults.hosts)
    parser.add_argument("--duration", type=float, default=defaults.duration, help="seconds of flapping faults")
    parser.add_argument("--flap-seconds", type=float, default=defaults.flap_seconds,
                        help="how often hosts change state")
    parser.add_argument("--interval", type=float, default=defaults.interval, help="every collector's interval, seconds")
    parser.add_argument("--timeout", type=float, default=defaults.timeout, help="every collector's deadline, seconds")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="global.max_concurrent_jobs")
    parser.add_argument("--sample-every", type=float, default=defaults.sample_every)
    parser.add_argument("--scrape-every", type=float, default=defaults.scrape_every)
    parser.add_argument("--window", type=float, default=defaults.window,
                        help="trend window and flapping warm-up, seconds")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--faults", default=",".join(FAULT_KINDS), help="fault kinds to draw from, comma-separated")
    parser.add_argument("--slowloris", type=int, default=0, metavar="CONNECTIONS",
                        help="also hold this many slowloris connections to the endpoint while faults flap")
    parser.add_argument("--samples-json", type=Path, metavar="PATH", help="write every sample to this file")
    parser.add_argument("--serve-simulator", type=int, metavar="HOSTS", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_simulator:
        serve_simulator(args.serve_simulator)
        return 0
    faults = tuple(k.strip() for k in args.faults.split(",") if k.strip())
    unknown = [k for k in faults if k not in FAULT_KINDS]
    if unknown or not faults:
        parser.error(f"--faults {args.faults!r}: " + (f"unknown kind {unknown[0]!r}" if unknown else "no kind")
                     + f"; the soak draws from {', '.join(FAULT_KINDS)}")
    options = SoakOptions(hosts=args.hosts, duration=args.duration, flap_seconds=args.flap_seconds,
                          interval=args.interval, timeout=args.timeout, workers=args.workers,
                          sample_every=args.sample_every, scrape_every=args.scrape_every, window=args.window,
                          seed=args.seed, faults=faults, slowloris=args.slowloris)
    report = run_soak(options, progress=lambda line: print(line, flush=True))
    print(report.table())
    print(report.summary())
    if args.samples_json:
        args.samples_json.write_text(json.dumps([dataclasses.asdict(s) for s in report.samples], indent=1))
    return 0 if not report.problems() else 1


if __name__ == "__main__":
    sys.exit(main())
