"""Fault soak, bounded: ten simulated hosts whose faults flap for a minute under the real exporter.

The engine is ``benchmarks/soak.py`` (the ten-minute benchmark runs the same code with 50 hosts):
the simulator in a child process, the real exporter (configuration loader, scheduler, every
registered collector in its default remote mode, 5 s intervals, 3 s deadlines) in this process,
a scraper thread on /metrics every half second, and hosts switching every few seconds between
healthy, hang, refuse, http_401, http_500, malformed, malformed_soap and latency (seeded).
No timing is asserted: only that the exporter kept serving, kept running every job, recovered,
and did not keep threads or sockets it had no more use for.
"""

from __future__ import annotations

import gc
import time
from pathlib import Path

import pytest

from benchmarks.soak import FAULT_KINDS, SoakOptions, growth_margin, run_soak
from collectors.cms_replication import CmsReplicationCollector
from simulator.server import Simulator
from tests.conftest import SIM_PASSWORD, SIM_USERNAME
from tests.integration.collector_harness import Job
from tests.tcp_connections import connections_to

pytestmark = pytest.mark.e2e

FE01 = "fe01.contoso.com"


@pytest.fixture(scope="module")
def report():
    options = SoakOptions(hosts=10, duration=50, flap_seconds=4, interval=5, timeout=3, sample_every=2, window=12,
                          settle_intervals=2, seed=7, ready_timeout=240, recovery_timeout=240)
    return run_soak(options)


def test_every_scrape_succeeds_while_hosts_flap(report):
    assert report.scrapes.ok > 0
    assert report.scrapes.failed == 0, report.summary()


def test_faults_really_flapped(report):
    assert report.state_changes >= 10
    assert set(FAULT_KINDS) <= set(report.faults_set)
    # Every kind of failure reached the jobs, so what follows held against each of them.
    assert {"timeout", "unreachable", "auth", "command", "shape"} <= set(report.logs.failures), report.summary()


def test_every_job_keeps_running_and_recovers(report):
    assert not report.never_up, report.summary()
    # runs_total, as scraped, went up for every job while its host flapped.
    assert not report.jobs_without_runs(), report.summary()
    # Once the faults are cleared every job succeeds again: pools dropped on failure are reopened.
    assert not report.not_recovered, report.summary()


def test_no_collector_raised_instead_of_failing_typed(report):
    assert not report.logs.errors, report.summary()


@pytest.mark.parametrize("figure", ["threads", "sockets"])
def test_threads_and_sockets_return_to_the_healthy_baseline(report, figure):
    before, after = report.baseline[figure], report.final[figure]
    assert after - before <= growth_margin(before), report.summary()


# --- what the soak found --------------------------------------------------------------------------


def _run_until_up(job: Job, tries: int = 10) -> bool:
    """Run until a success: a run abandoned at its deadline may still be ending, which skips a firing."""
    for _ in range(tries):
        if job.run().up:
            return True
        time.sleep(0.5)
    return False


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts sockets through /proc")
def test_a_pool_dropped_on_failure_leaves_no_connection_open(tmp_path, password_env):
    """A failed run's traceback is a reference cycle that can keep the dropped pool's connection
    alive until the cyclic garbage collector runs; dropping the pool must close it at once."""
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, username=SIM_USERNAME,
                    password=SIM_PASSWORD)
    sim.start()
    job = Job(sim, tmp_path, CmsReplicationCollector(), "fe01", hosts=[FE01], timeout="3s")
    port = sim.hosts()[FE01].port
    gc.disable()
    try:
        assert _run_until_up(job)
        for fault in ("http_500", "http_401", "malformed", "malformed_soap", "hang", "refuse"):
            sim.set_fault(FE01, fault)
            assert not job.run().up
            sim.clear_faults(FE01)
            assert _run_until_up(job), job.status.last_error
            # At most one connection per lane of each pool the job holds on fe01 (the CMS over
            # /OcsPowershell, whose three reads run at once, and the event log over WinRM); a dropped
            # pool's connections must not linger beside them.
            lanes = sum(session.lanes for session in job.sessions.sessions())
            assert 2 <= lanes <= 8, lanes
            assert connections_to(port) <= lanes, f"after {fault}: connections of dropped pools still open"
    finally:
        gc.enable()
        job.close()
        sim.stop()
