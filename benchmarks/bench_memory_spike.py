"""Does memory come back after large answers? RSS before, during and after a spike of 32 MiB answers.

    .venv/bin/python benchmarks/bench_memory_spike.py [--answers 24] [--threads 4] [--no-release]

The simulated estate runs in a child process (soak.py's), so RSS is this process's alone. Real
JobRunners of ``cms_replication`` (the real pypsrp client over loopback), one per front end, run here in ``--threads``
threads at once as the scheduler's workers would. Phases:

1. baseline: every runner succeeds 5 times;
2. spike: the front ends take the simulator's ``huge`` fault (an answer of 256 MiB, of which the
   exporter reads its 32 MiB cap and drops the connection), and ``--answers`` runs meet it;
3. after: the fault is cleared, every runner succeeds 5 times, then the process idles 5 s.

RSS is printed after each phase, then after an explicit ``gc.collect()`` (what reference cycles
held) and an explicit ``malloc_trim(0)`` (what glibc could still return). ``--no-release`` turns off the exporter's own release after large answers
(``collectors.sources.response_cap.release_memory``) to show the figures without it.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from soak import PASSWORD, PASSWORD_ENV, SimulatorProcess, process_figures  # noqa: E402


def rss_mb() -> float:
    return process_figures()["rss"] / 2**20


def run(answers: int, threads: int, release: bool) -> None:
    from collectors import registry
    from collectors.cms_replication import CmsReplicationCollector
    from collectors.sources import response_cap
    from collectors.sources.remoting import SessionPool
    from exporter.config import load_config
    from exporter.scheduler import JobRunner
    from exporter.state import SnapshotStore

    response_cap.RELEASE_AFTER_LARGE_ANSWERS = release
    with SimulatorProcess(3 * threads + 2) as sim, tempfile.TemporaryDirectory() as tmp:
        fronts = sorted(h for h, info in sim.hosts.items() if "lync_frontend" in info.roles)
        targets = []
        for name in fronts:
            info = sim.hosts[name]
            endpoints = {"windows": {"url": info.windows_url, "encryption": "never"}}
            if getattr(info, "lync_url", None):
                endpoints["lync"] = {"url": info.lync_url, "encryption": "never"}
            targets.append({"name": name.split(".")[0], "host": name, "roles": list(info.roles),
                            "credential": "sim", "endpoints": endpoints})
        document = {"global": {}, "credentials": {"sim": {"username": "sim-monitor", "password_env": PASSWORD_ENV,
                                                          "auth": "basic"}},
                    "collectors": {"cms_replication": {"interval": "120s", "timeout": "60s"}}, "targets": targets}
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(document))
        config = load_config(path, registry.by_name(), environ={PASSWORD_ENV: PASSWORD})
        sessions = SessionPool()
        store = SnapshotStore()
        runners = [JobRunner(CmsReplicationCollector(), job, store, sessions)
                   for job in config.jobs(registry.by_name()) if job.collector == "cms_replication"]

        def each(count: int) -> None:
            """``count`` runs spread over ``threads`` threads, each thread on its own runner in turn."""
            todo = list(range(count))
            lock = threading.Lock()

            def worker(index: int) -> None:
                while True:
                    with lock:
                        if not todo:
                            return
                        todo.pop()
                    runners[index]()

            pool = [threading.Thread(target=worker, args=(i,)) for i in range(min(threads, len(runners)))]
            for t in pool:
                t.start()
            for t in pool:
                t.join()

        print(f"start: {rss_mb():.1f} MB ({len(runners)} runners, {threads} threads, release {release})")
        each(5 * len(runners))
        print(f"baseline (healthy runs): {rss_mb():.1f} MB")
        for host in fronts:
            sim.set_fault(host, "huge", size_mb=256)
        peak = 0.0
        for _ in range(max(answers // threads, 1)):
            each(threads)
            peak = max(peak, rss_mb())
        failed = sum(j.error_count("shape") for j in store.jobs())
        print(f"spike ({failed} answers over the cap): peak {peak:.1f} MB, now {rss_mb():.1f} MB")
        sim.clear_faults()
        each(5 * len(runners))
        time.sleep(5)
        print(f"after (healthy runs, 5 s idle): {rss_mb():.1f} MB")
        gc.collect()
        after = rss_mb()
        print(f"after an explicit gc.collect(): {after:.1f} MB")
        response_cap.trim_heap()
        print(f"after an explicit malloc_trim(0): {rss_mb():.1f} MB (what glibc still held: "
              f"{after - rss_mb():.1f} MB)")
        sessions.close_all(timeout=5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--answers", type=int, default=24)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--no-release", action="store_true")
    args = parser.parse_args(argv)
    run(args.answers, args.threads, not args.no_release)
    return 0


if __name__ == "__main__":
    sys.exit(main())
