"""Three shards, one estate, Prometheus as the aggregator: three `run --shard N --total-shards 3`
exporters poll the simulated estate, a real Prometheus scrapes them as one job with the shipped rules,
and a real Alertmanager routes the pages to a webhook here.

Asserted: every job of the unsharded plan has its lync_owa_collector_up series from exactly one
exporter, the one its target's name hashes to; the Edge, alone in its shard, still compares its copy
of the hosting provider with the CMS copy a front end holds; the organisation-wide recording rules
see facts coming from different exporters; and a killed shard pages LyncOwaExporterDown for its own
scrape target, and only for it.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
from pathlib import Path

import pytest
import yaml

from collectors import registry
from exporter.config import load_config
from exporter.demo import DEMO_PASSWORD_ENV, DEMO_USERNAME, demo_config
from exporter.job_plan import planned_jobs
from exporter.sharding import shard_of
from tests.conftest import PROJECT_ROOT, free_port
from tests.e2e.alerting_stack import JOB_NAME, AlertingStack, Process, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOTAL_SHARDS = 3
COLLECTOR_INTERVAL = "3s"  # three exporters and the estate share this machine: a little slower than the demo's
KILLED = 1


class ShardedStack(AlertingStack):
    """The simulator (in this process), three exporter shards, and alerting_stack's Prometheus,
    Alertmanager and webhook scraping the shards as one job."""

    def __init__(self) -> None:
        super().__init__(workdir_prefix="lync-owa-shards-")
        self.shards: list[Process] = []
        self.sim = None

    def start(self) -> "ShardedStack":
        from simulator.server import Simulator

        password = secrets.token_urlsafe(18)
        self.sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0,
                             username=DEMO_USERNAME, password=password)
        self.sim.start()
        self.config_path = self.workdir / "config.yaml"
        self.config_path.write_text(yaml.safe_dump(demo_config(self.sim.hosts(), COLLECTOR_INTERVAL, None),
                                                   sort_keys=False))
        # The shards inherit it; load_config in this process reads it too (the plan to compare with).
        os.environ[DEMO_PASSWORD_ENV] = password
        self.shard_addresses = [f"127.0.0.1:{free_port()}" for _ in range(TOTAL_SHARDS)]
        for index, address in enumerate(self.shard_addresses):
            self.shards.append(self._spawn(f"shard{index}", [
                sys.executable, "-m", "exporter.cli", "run", "--config.file", str(self.config_path),
                "--web.listen-address", address, "--shard", str(index), "--total-shards", str(TOTAL_SHARDS),
            ], cwd=PROJECT_ROOT))
        self.start_alerting(self.shard_addresses, "every shard scraped successfully", self._all_shards_up, 120)
        return self

    def _all_shards_up(self) -> bool:
        result = self.query(f'up{{job="{JOB_NAME}"}}')
        return len(result) == TOTAL_SHARDS and all(r["value"][1] == "1" for r in result)

    def stop(self) -> None:
        self.processes += [s for s in self.shards if s not in self.processes]  # the killed one too: its log
        super().stop()
        if self.sim is not None:
            self.sim.stop()
        os.environ.pop(DEMO_PASSWORD_ENV, None)


@pytest.fixture(scope="module")
def stack():
    stack = ShardedStack()
    try:
        yield stack.start()
    finally:
        stack.stop()


def unsharded_job_ids(config_path: Path) -> set[tuple[str, str]]:
    config = load_config(config_path, registry.by_name())
    return {(job.collector, job.target.name) for job in planned_jobs(config, registry.by_name())}


def test_three_shards_cover_every_job_exactly_once(stack):
    expected = unsharded_job_ids(stack.config_path)
    wait_until("every job's lync_owa_collector_up series in Prometheus",
               lambda: len(stack.query("lync_owa_collector_up")) >= len(expected), 60, stack.processes)
    series = stack.query("lync_owa_collector_up")
    seen = [(r["metric"]["collector"], r["metric"]["target"]) for r in series]
    assert sorted(seen) == sorted(expected)  # complete, and no job twice (same job, two instances)
    for r in series:
        target = r["metric"]["target"]
        assert r["metric"]["instance"] == stack.shard_addresses[shard_of(target, TOTAL_SHARDS)], r["metric"]
    # The demo estate spreads over all three: edge01 -> 0, ex02 and fe02 -> 1, ex01 and fe01 -> 2.
    by_instance = {}
    for r in series:
        by_instance.setdefault(r["metric"]["instance"], set()).add(r["metric"]["target"])
    assert by_instance == {stack.shard_addresses[0]: {"edge01"}, stack.shard_addresses[1]: {"ex02", "fe02"},
                           stack.shard_addresses[2]: {"ex01", "fe01"}}


def test_build_info_names_each_shard(stack):
    info = {r["metric"]["instance"]: (r["metric"]["shard"], r["metric"]["total_shards"])
            for r in stack.query("lync_owa_build_info")}
    assert info == {address: (str(index), "3") for index, address in enumerate(stack.shard_addresses)}


def test_facts_cross_shards(stack):
    # Shard 0 polls only the Edge; its fact reader reads the CMS copy on fe01, which shard 2 exports.
    def compared() -> bool:
        result = stack.query('lync_owa_edge_hosting_provider_cms_compared{target="edge01"}')
        return len(result) == 1 and result[0]["value"][1] == "1"

    wait_until("the Edge compared with the CMS copy", compared, 60, stack.processes)
    (edge,) = stack.query('lync_owa_edge_hosting_provider_cms_compared{target="edge01"}')
    assert edge["metric"]["instance"] == stack.shard_addresses[0]
    drift = stack.query('lync_owa_edge_hosting_provider_matches_cms{target="edge01"}')
    assert drift and all(r["value"][1] == "1" for r in drift)
    # fe01's own series stay with its shard: the fact reader exported nothing of fe01.
    elsewhere = [r["metric"] for r in stack.query('{target="fe01", __name__=~"lync_owa_.+"}')
                 if r["metric"]["instance"] != stack.shard_addresses[2]]
    assert elsewhere == []

    # The organisation-wide rules aggregate by job, over every shard: the OWA servers come from two
    # exporters (ex01 from shard 2, ex02 from shard 1) and the CMS copy from the front ends' shards.
    def recorded() -> bool:
        return bool(stack.query("lync_owa:owa_server")) and bool(stack.query("lync_owa:cms_hosting_provider_present:max"))

    wait_until("the recording rules", recorded, 30, stack.processes)
    owa = {r["metric"]["target"]: r["metric"]["instance"] for r in stack.query("lync_owa:owa_server")}
    assert owa == {"ex01": stack.shard_addresses[2], "ex02": stack.shard_addresses[1]}
    (present,) = stack.query("lync_owa:cms_hosting_provider_present:max")
    assert present["metric"] == {"__name__": "lync_owa:cms_hosting_provider_present:max", "job": JOB_NAME}
    assert present["value"][1] == "1"


def test_a_dead_shard_pages_for_its_own_scrape_target(stack):
    import time

    since = time.monotonic()
    dead = stack.shard_addresses[KILLED]
    stack.shards[KILLED].popen.send_signal(signal.SIGKILL)
    stack.processes.remove(stack.shards[KILLED])  # its exit is the point, not a failure of the stack

    page = stack.webhook.wait_for(
        lambda n, a: n.status == "firing" and a["labels"].get("alertname") == "LyncOwaExporterDown", since, 60)
    assert page is not None, "no LyncOwaExporterDown page for the killed shard"
    notification, alert = page
    assert alert["labels"]["instance"] == dead and alert["labels"]["severity"] == "critical"
    down = [a["labels"]["instance"] for _, a in stack.webhook.alerts(since)
            if a["labels"].get("alertname") == "LyncOwaExporterDown" and a["status"] == "firing"]
    assert set(down) == {dead}  # the other shards are not down
    # The live shards keep serving their share.
    up = {r["metric"]["instance"]: r["value"][1] for r in stack.query(f'up{{job="{JOB_NAME}"}}')}
    assert up == {address: ("0" if address == dead else "1") for address in stack.shard_addresses}
