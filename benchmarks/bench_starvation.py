"""Hung hosts against healthy ones: how old do the healthy jobs' data get while a third of the hosts hang?

    .venv/bin/python benchmarks/bench_starvation.py [--hosts 30] [--hung 10] [--interval 20] [--timeout 10]
                                                    [--workers 16] [--duration 300]

The simulated estate (``healthy`` scaled to ``--hosts``) runs in a child process; the real exporter
(every registered collector, every interval ``--interval``, every deadline ``--timeout``,
``global.max_concurrent_jobs`` ``--workers``) runs in this one. Once every job has succeeded and one
interval more has passed, ``--hung`` hosts (every third one, so every role is among them) take the
simulator's ``hang`` fault: requests are read and never answered. For ``--duration`` seconds, every
second, the age of every healthy job's data (now minus its last success) is sampled from the
snapshot store, with each hung target's backoff.

Printed: the healthy jobs' data age (median, p99, max over every sample), the number of healthy jobs
whose age ever passed two intervals (the bound of docs/reliability.md), runs and skips by kind on the
hung hosts, and the backoff of the hung targets at the end. Exit status 1 when a healthy job's data
aged past two intervals.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soak import (  # noqa: E402 - the soak's estate in a child process and its configuration
    PASSWORD,
    PASSWORD_ENV,
    SimulatorProcess,
    SoakOptions,
    _QuietExporterLogs,
    soak_config,
)


def percentile(sorted_values: list[float], pct: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(round(pct / 100 * (len(sorted_values) - 1))))]


def run(hosts: int, hung: int, interval: float, timeout: float, workers: int, duration: float) -> int:
    from collectors import registry
    from exporter.app import Exporter
    from exporter.config import load_config

    options = SoakOptions(hosts=hosts, interval=interval, timeout=timeout, workers=workers)
    with _QuietExporterLogs(), SimulatorProcess(hosts) as sim, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(soak_config(sim.hosts, options), sort_keys=False))
        config = load_config(path, registry.by_name(), environ={PASSWORD_ENV: PASSWORD})
        exporter = Exporter(config, "127.0.0.1:0")
        names = sorted(sim.hosts)
        hung_hosts = names[::max(len(names) // hung, 1)][:hung]
        hung_targets = {name.split(".")[0] for name in hung_hosts}
        exporter.start()
        try:
            start = time.monotonic()
            while any(job.last_success_monotonic is None for job in exporter.store.jobs()):
                if time.monotonic() - start > 300:
                    print("warm-up: some jobs never succeeded", file=sys.stderr)
                    return 2
                time.sleep(1)
            time.sleep(interval)
            jobs = exporter.store.jobs()
            healthy = [j.key for j in jobs if j.target not in hung_targets]
            print(f"{len(jobs)} jobs on {hosts} hosts; hanging {len(hung_hosts)} hosts "
                  f"({sum(j.target in hung_targets for j in jobs)} jobs), {len(healthy)} healthy jobs")
            for host in hung_hosts:
                sim.set_fault(host, "hang")
            ages: list[float] = []
            worst: dict[tuple[str, str], float] = {}
            began = time.monotonic()
            while (now := time.monotonic()) < began + duration:
                for job in exporter.store.jobs():
                    if job.key in healthy and job.last_success_monotonic is not None:
                        age = now - job.last_success_monotonic
                        ages.append(age)
                        worst[job.key] = max(worst.get(job.key, 0.0), age)
                time.sleep(1)
            kinds: Counter = Counter()
            for job in exporter.store.jobs():
                if job.target in hung_targets:
                    kinds.update(dict(job.errors))
            guards = getattr(exporter.scheduler, "guards", None)
            backoffs = sorted(guards.for_target(t).backoff_seconds for t in hung_targets) if guards else []
        finally:
            sim.clear_faults()
            exporter.stop()
    ages.sort()
    bound = 2 * interval
    over = sorted(f"{c}/{t} {age:.0f}s" for (c, t), age in worst.items() if age > bound)
    print(f"healthy data age over {duration:.0f}s: median {statistics.median(ages):.1f}s, "
          f"p99 {percentile(ages, 99):.1f}s, max {ages[-1]:.1f}s (bound {bound:g}s)")
    print(f"healthy jobs past the bound: {len(over)} of {len(worst)}" + (f": {', '.join(over[:10])}" if over else ""))
    print(f"failed runs on hung targets by kind: {dict(kinds)}")
    if backoffs:
        print(f"backoff of the hung targets at the end: {backoffs}")
    return 1 if over else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--hung", type=int, default=10)
    parser.add_argument("--interval", type=float, default=20.0)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--duration", type=float, default=300.0)
    args = parser.parse_args(argv)
    return run(args.hosts, args.hung, args.interval, args.timeout, args.workers, args.duration)


if __name__ == "__main__":
    sys.exit(main())
