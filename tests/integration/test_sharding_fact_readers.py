"""Fact readers against the simulated estate through the real client: each posts the facts its
collector declares, exports nothing, and costs the remote calls docs/operating.md counts (the
simulator counts the commands each host ran)."""

from __future__ import annotations

import pytest

from collectors import registry
from collectors.contract import FactsBoard
from collectors.edge_hosting_provider import CMS_PROVIDER
from collectors.sources.remoting import SessionPool
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS
from exporter.config import load_config
from exporter.fact_reader import fact_reader_runner
from exporter.job_plan import planned_jobs
from exporter.sharding import FactReaderSpec
from tests.conftest import SIM_PASSWORD, SIM_USERNAME, estate_config, write_config

COLLECTORS = registry.by_name()


@pytest.fixture(scope="module")
def sim():
    from simulator.server import Simulator

    simulator = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                          username=SIM_USERNAME, password=SIM_PASSWORD)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def plan(sim, tmp_path, password_env):
    config = load_config(write_config(tmp_path, estate_config(sim, collectors=list(COLLECTORS), timeout="20s")),
                         COLLECTORS)
    return config, {job.id: job for job in planned_jobs(config, COLLECTORS)}


def commands(sim, host: str) -> int:
    return sim.stats()[host]["commands"]


def read_once(sim, config, job, facts):
    """Run a fact reader for ``job`` once, as a shard that does not poll its target would:
    (the commands its host ran, the reader's own unserved store)."""
    sessions = SessionPool()
    runner = fact_reader_runner(COLLECTORS[job.collector](), FactReaderSpec(job.collector, job.target, job.settings),
                                sessions, config.global_, facts)
    try:
        before = commands(sim, job.target.host)
        runner()
        return commands(sim, job.target.host) - before, runner.store
    finally:
        runner.close()
        sessions.close_all(timeout=5)


@pytest.mark.parametrize("job_id, fact, calls", [
    ("edge_hosting_provider/fe01", CMS_PROVIDER, 1),  # Get-CsHostingProvider (the CMS), and nothing else
    ("lync_topology/fe01", OWA_TRUSTED_POOLS, 2),  # Get-CsTrustedApplicationPool, Get-CsTrustedApplication
])
def test_a_fact_reader_calls_only_what_its_fact_needs(sim, plan, job_id, fact, calls):
    config, jobs = plan
    facts = FactsBoard()
    ran, store = read_once(sim, config, jobs[job_id], facts)
    assert ran == calls
    (status,) = store.jobs()
    assert status.up and status.samples == ()  # ran fine, exported nothing
    assert facts.fresh(fact) is not None


def test_the_posted_facts_are_what_the_full_jobs_post(sim, plan):
    config, jobs = plan
    facts = FactsBoard()
    read_once(sim, config, jobs["edge_hosting_provider/fe01"], facts)
    read_once(sim, config, jobs["lync_topology/fe01"], facts)
    # The healthy scenario's CMS: "Exchange Online" at exap.um.outlook.com; OWA's pool is owa.contoso.com
    # listing ex01 and ex02 (simulator/scenarios/healthy.yaml).
    cms = facts.fresh(CMS_PROVIDER).value
    assert (cms.identity, cms.proxy_fqdn, cms.enabled) == ("Exchange Online", "exap.um.outlook.com", True)
    assert [(pool.fqdn, pool.computers) for pool in facts.fresh(OWA_TRUSTED_POOLS).value] == [
        ("owa.contoso.com", ("ex01.contoso.com", "ex02.contoso.com"))]


def test_every_declared_fact_is_posted_by_a_reader_of_its_collector(sim, plan):
    """Whatever collectors declare: a reader of each posting job posts every fact it declares. Those
    that read over remoting only: a probe of the network would resolve the estate's names here."""
    config, jobs = plan
    for job in jobs.values():
        declared = COLLECTORS[job.collector].facts_posted(job.target.roles)
        if not declared or job.target.name not in ("ex01", "fe01") or not COLLECTORS[job.collector].cmdlets:
            continue
        facts = FactsBoard()
        _, store = read_once(sim, config, job, facts)
        (status,) = store.jobs()
        assert status.up, f"{job.id}: {status.last_error}"
        missing = {name for name in declared if facts._posted.get(name) is None}
        assert not missing, f"{job.id}'s reader did not post {missing}"


def test_a_running_shard_serves_nothing_of_its_readers_target(sim, tmp_path, password_env):
    """Shard 0 of 3 of the simulated estate polls only edge01 and reads the CMS copy on fe01: the Edge
    compares, and no series of fe01 (not even its backoff or series-cap figures) leaves this exporter."""
    import time

    from exporter.app import Exporter
    from exporter.sharding import Shard

    document = estate_config(sim, interval="1s", timeout="800ms", collectors=list(COLLECTORS))
    config = load_config(write_config(tmp_path, document), COLLECTORS)
    switches = {name: name == "edge_hosting_provider" for name in COLLECTORS}  # the drift check alone
    exporter = Exporter(config, "127.0.0.1:0", collector_switches=switches, shard=Shard(0, 3))
    exporter.start()
    try:
        assert sorted(r.job_id for r in exporter.runners) == [
            "edge_hosting_provider/edge01", "edge_hosting_provider/fe01"]
        deadline = time.monotonic() + 20
        body = ""
        while time.monotonic() < deadline:
            body = exporter.cache.render().decode()
            if 'lync_owa_edge_hosting_provider_cms_compared{target="edge01"} 1.0' in body:
                break
            time.sleep(0.2)
        assert 'lync_owa_edge_hosting_provider_cms_compared{target="edge01"} 1.0' in body
        assert 'target="fe01"' not in body
        assert 'shard="0"' in body and 'total_shards="3"' in body
    finally:
        exporter.stop()
