"""A server that reports thousands of CMS replicas: exposition size and RSS, with and without the cap.

    .venv/bin/python benchmarks/bench_series_cap.py [--replicas 5000]

A front end whose Get-CsManagementStoreReplicationStatus lists ``--replicas`` replicas makes the
``cms_replication`` collector return four samples per replica (its own metric specs: up to date, last
status report, last update creation, replica info). One real JobRunner records them into the
snapshot store and the real ExpositionCache renders them, in a child process per setting of
``global.max_series_per_target``: its default (2,000) and a limit too high to cut anything. Printed
per setting: series kept and dropped, exposition bytes, RSS after rendering.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(replicas: int, limit: int) -> dict:
    from collectors import cms_replication as cms
    from collectors.contract import Collector, CollectorSettings, NoState
    from exporter.config import GlobalSettings, JobSpec, Target
    from exporter.config.model import Credential
    from exporter.metrics import ExpositionCache
    from exporter.scheduler import JobRunner
    from exporter.series_cap import SeriesCap
    from exporter.state import SnapshotStore

    now = time.time()

    class HostileReplicaList(Collector[CollectorSettings, NoState]):
        name = "cms_replication"
        roles = frozenset({"lync_frontend"})
        metrics = cms.CmsReplicationCollector.metrics

        def collect(self, ctx):
            samples = []
            for i in range(replicas):
                name = f"replica{i:05d}.contoso.com"
                samples += [cms.UP_TO_DATE.sample(1, replica=name), cms.LAST_STATUS_REPORT.sample(now, replica=name),
                            cms.LAST_UPDATE_CREATION.sample(now, replica=name),
                            cms.REPLICA_INFO.sample(1, replica=name, product_version="6.0.9319.534")]
            return samples

    start = rss_mb()
    target = Target("fe01", "fe01.contoso.com", frozenset({"lync_frontend"}), Credential("c", "u", password=None))
    store, cap = SnapshotStore(), SeriesCap()
    runner = JobRunner(HostileReplicaList(), JobSpec("cms_replication", target, CollectorSettings(interval=60, timeout=20)),
                       store, sessions=None, global_settings=GlobalSettings(max_series_per_target=limit))
    runner.series_cap = cap
    cache = ExpositionCache(store, HostileReplicaList.metrics, process_metrics=False, live_collectors=[cap])
    runner()
    body = cache.render()
    return {"limit": limit, "kept": len(store.jobs()[0].samples), "dropped": cap.dropped("fe01"),
            "bytes": len(body), "start_mb": round(start, 1), "end_mb": round(rss_mb(), 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicas", type=int, default=5000)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)  # the child's
    args = parser.parse_args(argv)
    if args.limit:
        print(json.dumps(measure(args.replicas, args.limit)))
        return 0
    from exporter.config import GlobalSettings

    for limit in (10**6, GlobalSettings().max_series_per_target):
        child = subprocess.run([sys.executable, __file__, "--replicas", str(args.replicas), "--limit", str(limit)],
                               capture_output=True, text=True, check=True)
        r = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"max_series_per_target {limit}: {r['kept']} series kept, {r['dropped']} dropped; exposition "
              f"{r['bytes'] / 1e6:.2f} MB; RSS {r['start_mb']} MB before the run, {r['end_mb']} MB after rendering")
    return 0


if __name__ == "__main__":
    sys.exit(main())
