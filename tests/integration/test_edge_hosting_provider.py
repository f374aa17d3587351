"""Checks H1/H2 and the Edge's drift from the CMS: the real jobs against the simulated estate, plus the pure parts."""

from __future__ import annotations

import threading

import pytest

from collectors.cms_replication import CmsReplicationCollector
from collectors.contract import FactsBoard
from collectors.edge_hosting_provider import (
    COMPARED_FIELDS,
    SETTINGS_CHECKED,
    EdgeHostingProviderCollector,
    Provider,
    compare_with_cms,
    read_providers,
    select_provider,
    setting_checks,
)
from tests.integration.collector_harness import Job

EDGE01 = "edge01.contoso.com"
EXO = ("exap.um.outlook.com", "exap.um.partner.outlook.cn")
PREFIX = "lync_owa_"


@pytest.fixture
def jobs(sim, tmp_path, password_env):
    """The collector's jobs on fe01 (the CMS) and edge01 (the local store), sharing one facts board."""
    collector = EdgeHostingProviderCollector()
    facts = FactsBoard()
    created: dict[str, Job] = {}

    def make(target: str, **kw) -> Job:
        job = Job(sim, tmp_path / target, collector, target, facts=facts, **kw)
        created[target] = job
        return job

    for target in ("fe01", "edge01"):
        (tmp_path / target).mkdir()
    yield make
    for job in created.values():
        job.close()


def signals(job: Job) -> dict[tuple[str, tuple[str, ...]], float]:
    """Every domain sample of the job's last successful run: (metric, label values) -> value."""
    return {(s.spec.name, s.label_values): s.value for s in job.status.samples}


def run_both(fe: Job, edge: Job) -> dict[tuple[str, tuple[str, ...]], float]:
    assert fe.run().up, fe.status.last_error
    assert edge.run().up, edge.status.last_error
    return {**signals(fe), **signals(edge)}


HEALTHY = {
    (f"{PREFIX}cms_hosting_provider_present", ()): 1.0,
    (f"{PREFIX}edge_hosting_provider_present", ()): 1.0,
    (f"{PREFIX}edge_federation_enabled", ()): 1.0,
    (f"{PREFIX}edge_federation_dns_srv_routing", ()): 1.0,
    (f"{PREFIX}edge_hosting_provider_cms_compared", ()): 1.0,
    (f"{PREFIX}hybrid_applicable", ()): 1.0,
    **{(f"{PREFIX}edge_hosting_provider_setting_ok", (name,)): 1.0 for name in SETTINGS_CHECKED},
    **{(f"{PREFIX}edge_hosting_provider_matches_cms", (name,)): 1.0 for name in ("present",) + COMPARED_FIELDS},
}


def test_healthy_raises_nothing(jobs):
    fe, edge = jobs("fe01"), jobs("edge01")
    assert run_both(fe, edge) == HEALTHY
    assert set(signals(fe)) == {(f"{PREFIX}cms_hosting_provider_present", ())}  # a front end reads only the CMS


def test_edge_provider_missing_flips_presence_and_drift(sim, jobs):
    fe, edge = jobs("fe01"), jobs("edge01")
    sim.set_scenario("edge-provider-missing")
    per_field = (f"{PREFIX}edge_hosting_provider_setting_ok", f"{PREFIX}edge_hosting_provider_matches_cms")
    expected = {k: v for k, v in HEALTHY.items() if k[0] not in per_field}
    expected[(f"{PREFIX}edge_hosting_provider_present", ())] = 0.0
    expected[(f"{PREFIX}edge_hosting_provider_matches_cms", ("present",))] = 0.0
    assert run_both(fe, edge) == expected


ON_PREMISES_ONLY = """base: healthy
description: an organisation without Exchange Online, its CMS (and so the Edge's replica) without the provider.
lync:
  hosting_providers:
    Exchange Online: !delete
"""


@pytest.mark.parametrize(("declared", "applicable"), [(None, 0.0), ("auto", 0.0), (False, 0.0), (True, 1.0)])
def test_hybrid_applies_only_where_it_exists(sim, jobs, tmp_path, declared, applicable):
    scenario = tmp_path / "on-premises-only.yaml"
    scenario.write_text(ON_PREMISES_ONLY)
    sim.set_scenario(scenario)
    fe, edge = jobs("fe01", hybrid=declared), jobs("edge01", hybrid=declared)
    found = run_both(fe, edge)
    assert found[(f"{PREFIX}cms_hosting_provider_present", ())] == 0.0
    assert found[(f"{PREFIX}edge_hosting_provider_present", ())] == 0.0
    assert found[(f"{PREFIX}hybrid_applicable", ())] == applicable


@pytest.mark.parametrize(("declared", "applicable"), [("auto", 1.0), (False, 0.0)])
def test_hybrid_auto_sees_the_cms_copy_when_the_edge_lost_it(sim, jobs, declared, applicable):
    sim.set_scenario("edge-provider-missing")
    fe, edge = jobs("fe01", hybrid=declared), jobs("edge01", hybrid=declared)
    assert run_both(fe, edge)[(f"{PREFIX}hybrid_applicable", ())] == applicable


def test_edge_provider_drift_flips_one_setting_and_one_field(sim, jobs):
    fe, edge = jobs("fe01"), jobs("edge01")
    sim.set_scenario("edge-provider-drift")
    expected = dict(HEALTHY)
    expected[(f"{PREFIX}edge_hosting_provider_setting_ok", ("enabled_shared_address_space",))] = 0.0
    expected[(f"{PREFIX}edge_hosting_provider_matches_cms", ("enabled_shared_address_space",))] = 0.0
    assert run_both(fe, edge) == expected


@pytest.mark.parametrize("scenario", ["cms-replica-stale", "no-event-112", "thumbprint-drift"])
def test_other_scenarios_raise_nothing_here(sim, jobs, scenario):
    fe, edge = jobs("fe01"), jobs("edge01")
    sim.set_scenario(scenario)
    assert run_both(fe, edge) == HEALTHY


def test_scenario_switch_back_to_healthy_clears_the_drift(sim, jobs):
    fe, edge = jobs("fe01"), jobs("edge01")
    sim.set_scenario("edge-provider-drift")
    assert run_both(fe, edge) != HEALTHY
    sim.set_scenario("healthy")
    assert run_both(fe, edge) == HEALTHY


def test_without_a_cms_copy_the_edge_reports_no_comparison(jobs):
    edge = jobs("edge01", settings={"cms_copy_wait": "0s"})
    assert edge.run().up, edge.status.last_error
    got = signals(edge)
    assert got[(f"{PREFIX}edge_hosting_provider_cms_compared", ())] == 0.0
    assert not any(name == f"{PREFIX}edge_hosting_provider_matches_cms" for name, _ in got)
    assert got[(f"{PREFIX}edge_hosting_provider_present", ())] == 1.0


def test_first_edge_run_waits_for_a_front_end_to_read_the_cms(jobs):
    fe, edge = jobs("fe01"), jobs("edge01", settings={"cms_copy_wait": "15s"})
    edge_thread = threading.Thread(target=edge.run)
    edge_thread.start()
    try:
        assert fe.run().up, fe.status.last_error
    finally:
        edge_thread.join(60)
    assert not edge_thread.is_alive()
    assert edge.status.up, edge.status.last_error
    assert signals(edge)[(f"{PREFIX}edge_hosting_provider_cms_compared", ())] == 1.0


def test_edge_rejecting_authentication_fails_only_its_own_job(sim, jobs, tmp_path):
    fe, edge = jobs("fe01"), jobs("edge01")
    sim.set_fault(EDGE01, "http_401")
    status = edge.run()
    assert not status.up and status.last_error_kind == "auth"
    assert fe.run().up, fe.status.last_error
    cms = Job(sim, tmp_path, CmsReplicationCollector(), "fe01")
    try:
        assert cms.run().up, cms.status.last_error
    finally:
        cms.close()
    sim.clear_faults(EDGE01)
    assert edge.run().up, edge.status.last_error
    assert signals(edge)[(f"{PREFIX}edge_hosting_provider_present", ())] == 1.0


def test_hanging_edge_times_out_alone(sim, jobs):
    fe = jobs("fe01", interval="10s", timeout="3s")
    edge = jobs("edge01", interval="10s", timeout="3s")
    sim.set_fault(EDGE01, "hang")
    status = edge.run()
    assert not status.up and status.last_error_kind == "timeout"
    assert fe.run().up, fe.status.last_error
    assert signals(fe) == {(f"{PREFIX}cms_hosting_provider_present", ()): 1.0}


def test_settings_reach_the_collector(jobs):
    fe = jobs("fe01", settings={"identity": "LyncOnline"})
    edge = jobs("edge01", settings={"identity": "LyncOnline"})
    got = run_both(fe, edge)
    # LyncOnline is not Exchange Online: present, but disabled, hosting users, another ProxyFqdn.
    assert got[(f"{PREFIX}edge_hosting_provider_present", ())] == 1.0
    failing = {labels[0] for (name, labels), v in got.items() if name.endswith("setting_ok") and v == 0}
    assert failing == {"enabled", "enabled_shared_address_space", "hosts_ocs_users", "proxy_fqdn"}
    assert all(v == 1.0 for (name, _), v in got.items() if name.endswith("matches_cms"))


# ---------------------------------------------------------------------------------- pure functions


def _answer(**overrides):
    base = {"Identity": "Exchange Online", "Name": "Exchange Online", "ProxyFqdn": "exap.um.outlook.com",
            "VerificationLevel": "UseSourceVerification", "Enabled": True, "EnabledSharedAddressSpace": True,
            "HostsOCSUsers": False, "IsLocal": False, "AutodiscoverUrl": None, "SipClientPort": 443}
    return {**base, **overrides}


def test_select_by_proxy_fqdn_tolerates_case_whitespace_and_invisible_characters():
    providers = read_providers([
        _answer(Identity="LyncOnline", ProxyFqdn="sipfed.online.lync.com"),
        _answer(Identity="\u200eHybrid EXO ", ProxyFqdn=" EXAP.UM.Outlook.com. "),
    ])
    chosen = select_provider(providers, None, EXO)
    assert chosen is not None and chosen.identity == "Hybrid EXO" and chosen.proxy_fqdn == "exap.um.outlook.com"
    assert select_provider(providers, "hybrid exo", EXO) == chosen
    assert select_provider(providers, "Exchange Online", EXO) is None


def test_select_prefers_the_identity_exchange_online_and_21vianet_counts():
    providers = read_providers([
        _answer(Identity="Other", ProxyFqdn="exap.um.partner.outlook.cn"),
        _answer(Identity="EXCHANGE ONLINE", ProxyFqdn="exap.um.partner.outlook.cn"),
    ])
    assert select_provider(providers, None, EXO).identity == "EXCHANGE ONLINE"
    assert select_provider(providers, None, ("exap.um.outlook.com",)) is None


def test_duplicate_identities_are_read_once():
    assert len(read_providers([_answer(), _answer(Identity="exchange online", Enabled=False)])) == 1


def test_setting_checks_treat_null_as_not_the_required_value():
    provider = Provider.from_answer(
        _answer(Enabled=None, HostsOCSUsers=None, VerificationLevel=" usesourceverification")
    )
    checks = setting_checks(provider, EXO)
    assert [name for name in SETTINGS_CHECKED if not checks[name]] == ["enabled", "hosts_ocs_users"]
    bad = Provider.from_answer(_answer(IsLocal=True, VerificationLevel="AlwaysVerifiable", ProxyFqdn="x.example"))
    assert {n for n, ok in setting_checks(bad, EXO).items() if not ok} == {"is_local", "verification_level",
                                                                          "proxy_fqdn"}


def test_compare_with_cms_field_by_field():
    cms = Provider.from_answer(_answer())
    assert set(compare_with_cms(cms, cms).values()) == {True}
    drifted = compare_with_cms(Provider.from_answer(_answer(SipClientPort=5061, AutodiscoverUrl=" ")), cms)
    assert {n for n, equal in drifted.items() if not equal} == {"sip_client_port"}  # blank URL == null
    assert compare_with_cms(None, cms) == {"present": False}
    assert compare_with_cms(cms, None) == {"present": False}
    assert compare_with_cms(None, None) == {"present": True}
