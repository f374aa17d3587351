"""H2's routing check through the real path: Get-CsAccessEdgeConfiguration -LocalStore on the simulated
Edge over pypsrp (the Edge job), with a front end's job reading the CMS copy for hybrid: auto."""

from __future__ import annotations

import pytest

from collectors.contract import FactsBoard
from collectors.edge_hosting_provider import EdgeHostingProviderCollector
from tests.integration.collector_harness import Job

ROUTING = "lync_owa_edge_federation_dns_srv_routing"
FEDERATION = "lync_owa_edge_federation_enabled"
PRESENT = "lync_owa_edge_hosting_provider_present"
HYBRID = "lync_owa_hybrid_applicable"


@pytest.fixture
def run_jobs(sim, tmp_path, password_env):
    """Run fe01 (the CMS copy) then edge01 (its local store) on one facts board; metric -> value of the Edge."""
    collector, facts, made = EdgeHostingProviderCollector(), FactsBoard(), []

    def run() -> dict[str, float]:
        values = {}
        for target in ("fe01", "edge01"):
            (tmp_path / target).mkdir(exist_ok=True)
            job = Job(sim, tmp_path / target, collector, target, facts=facts)
            made.append(job)
            status = job.run()
            assert status.up, (target, status.last_error)
            values = {s.spec.name: s.value for s in status.samples if not s.label_values}
        return values

    yield run
    for job in made:
        job.close()


def test_healthy_edge_routes_by_dns_srv(sim, run_jobs):
    found = run_jobs()
    assert found[ROUTING] == 1.0 and found[FEDERATION] == 1.0 and found[HYBRID] == 1.0


def test_default_route_fails_only_the_routing_check(sim, run_jobs):
    sim.set_scenario("edge-default-routing")
    found = run_jobs()
    assert found[ROUTING] == 0.0
    # Federation stays allowed and the provider stays in place: only the routing is wrong.
    assert found[FEDERATION] == 1.0 and found[PRESENT] == 1.0 and found[HYBRID] == 1.0
    sim.set_scenario("healthy")
    assert run_jobs()[ROUTING] == 1.0


def test_the_edges_replica_is_what_counts(sim, run_jobs, tmp_path):
    """The CMS says DNS SRV, the Edge's replica still holds a default route: the Edge acts on its replica."""
    scenario = tmp_path / "edge-replica-default-route.yaml"
    scenario.write_text(
        "base: healthy\n"
        "description: edge01's replica still routes federation through a default route.\n"
        "hosts:\n  edge01.contoso.com:\n    lync:\n      local_store:\n        access_edge:\n"
        "          routing_method: UseDefaultRouting\n          default_route_fqdn: sipfed.partner.example\n")
    sim.set_scenario(scenario)
    assert run_jobs()[ROUTING] == 0.0
