"""Hung hosts cannot starve the others: healthy jobs stay fresh while hung targets back off.

The real exporter (every registered collector, 2 s intervals, 1.5 s deadlines, 6 workers) against
the simulator, two of whose hosts take the ``hang`` fault (requests read, never answered). Before
the per-target cap and the backoff (exporter.host_guard), the hung hosts' eleven jobs each held a
worker for its whole deadline at every interval, more than the six workers there are, and the
healthy jobs' data aged without bound. The bound asserted is docs/reliability.md's: every healthy
job's data is at most two intervals old.
"""

from __future__ import annotations

import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from collectors import registry
from exporter.app import Exporter
from exporter.config import load_config
from exporter.host_guard import BACKOFF_AFTER
from simulator.server import Simulator
from tests.conftest import (
    PASSWORD_ENV,
    SIM_PASSWORD,
    SIM_USERNAME,
    estate_config,
    write_config,
)

pytestmark = pytest.mark.slow

INTERVAL = 2.0
WORKERS = 6
HUNG = ("fe01.contoso.com", "ex01.contoso.com")
OBSERVED_INTERVALS = 10


def scrape(url: str) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(url + "/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.fixture
def estate():
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=SIM_USERNAME, password=SIM_PASSWORD)
    sim.start()
    yield sim
    sim.clear_faults()
    sim.stop()


def test_healthy_jobs_stay_within_two_intervals_while_hung_hosts_back_off(estate, tmp_path):
    document = estate_config(estate, interval="2s", timeout="1500ms", collectors=list(registry.by_name()))
    document["global"]["max_concurrent_jobs"] = WORKERS
    config = load_config(write_config(tmp_path, document), registry.by_name(), environ={PASSWORD_ENV: SIM_PASSWORD})
    exporter = Exporter(config, "127.0.0.1:0")
    hung_targets = {host.split(".")[0] for host in HUNG}
    exporter.start()
    try:
        end = time.monotonic() + 60
        while any(j.last_success_monotonic is None for j in exporter.store.jobs()) and time.monotonic() < end:
            time.sleep(0.2)
        never = [j.key for j in exporter.store.jobs() if j.last_success_monotonic is None]
        assert not never, f"jobs that never succeeded on a healthy estate: {never}"
        remoting = {r.job_id for r in exporter.runners if r.collector.cmdlets}
        healthy = [j.key for j in exporter.store.jobs() if j.target not in hung_targets]
        hung_remote = [j.key for j in exporter.store.jobs()
                       if j.target in hung_targets and f"{j.collector}/{j.target}" in remoting]
        assert len(hung_remote) > WORKERS  # enough to take every worker without the cap

        for host in HUNG:
            estate.set_fault(host, "hang")
        worst: dict[tuple[str, str], float] = {}
        observe_until = time.monotonic() + OBSERVED_INTERVALS * INTERVAL
        while (now := time.monotonic()) < observe_until:
            for job in exporter.store.jobs():
                if job.key in healthy:
                    worst[job.key] = max(worst.get(job.key, 0.0), now - job.last_success_monotonic)
            time.sleep(0.1)
        assert len(worst) == len(healthy)
        too_old = {f"{c}/{t}": round(age, 1) for (c, t), age in worst.items() if age > 2 * INTERVAL}
        assert not too_old, f"healthy jobs whose data aged past two intervals: {too_old}"

        metrics = scrape(exporter.url)
        for target in sorted(hung_targets):
            backoff = metrics[("lync_owa_target_backoff_seconds", (("target", target),))]
            assert backoff >= INTERVAL, (target, backoff)  # at least one interval, doubled while it hangs
            guard = exporter.scheduler.guards.for_target(target)
            assert guard.timeouts_in_a_row >= BACKOFF_AFTER
        for collector, target in hung_remote:
            assert metrics[("lync_owa_collector_up", (("collector", collector), ("target", target)))] == 0
        healthy_remote_targets = {t for c, t in healthy if f"{c}/{t}" in remoting}
        assert healthy_remote_targets
        for target in sorted(healthy_remote_targets):
            assert metrics[("lync_owa_target_backoff_seconds", (("target", target),))] == 0, target
    finally:
        exporter.stop()
