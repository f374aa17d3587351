"""Checks L2 and L4 through the real path: the Lync topology on a front end, Exchange's side on ex01/ex02."""

from __future__ import annotations

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.contract import FactsBoard
from collectors.sources.remoting import SessionPool
from collectors.topology.exchange_topology import (
    SERVER_CMDLET,
    SERVICE_CMDLET,
    ExchangeTopologyCollector,
)
from collectors.topology.lync_topology import LyncTopologyCollector
from collectors.topology.shared import SIPNAME_UM_SERVERS
from simulator.scenario import scenario_names
from tests.integration.collector_harness import Job

ESTATE_NAMES = ("fe01.contoso.com", "fe02.contoso.com", "autodiscover.contoso.com")
POOL_SETTING_CHECKS = ("owa_trusted_pool_requires_no_replication", "owa_trusted_pool_throttles_as_server",
                       "owa_trusted_pool_treated_as_authenticated")
LYNC_CHECKS = {"trusted_pool_not_duplicating_um", "owa_trusted_application_present", "oauth_autodiscover_url_svc",
               "autodiscover_host_resolves", "owa_trusted_pool_registrar_is_lync_pool", *POOL_SETTING_CHECKS}


class FakeResolver:
    """Answers from a fixed list of names, and remembers what it was asked and within how long."""

    def __init__(self, *known: str, answer_unknown: bool | None = False) -> None:
        self.known = {name.casefold() for name in known}
        self.answer_unknown = answer_unknown
        self.asked: list[tuple[str, float]] = []

    def __call__(self, host: str, timeout: float) -> bool | None:
        self.asked.append((host, timeout))
        return True if host.casefold() in self.known else self.answer_unknown


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def checks(job: Job) -> dict[str, float]:
    status = job.run()
    assert status.up, status.last_error
    return {labels[0]: value for labels, value in job.values(CONFIG_CHECK_OK.name).items()}


def lync_job(sim, tmp_path, sessions, resolver=None, reports=None, settings=None, target="fe01") -> Job:
    collector = LyncTopologyCollector(resolver or FakeResolver(*ESTATE_NAMES))
    return Job(sim, tmp_path, collector, target, settings, sessions=sessions, facts=reports)


def exchange_job(sim, tmp_path, sessions, target, reports=None) -> Job:
    return Job(sim, tmp_path, ExchangeTopologyCollector(), target, sessions=sessions, facts=reports)


def um_servers(board: FactsBoard) -> tuple[str, ...] | None:
    """The SipName UM servers an exchange_topology job left on the board, while fresh."""
    posted = board.fresh(SIPNAME_UM_SERVERS)
    return posted.value if posted is not None else None


# ---------------------------------------------------------------- L2 and L4 on the front end


def test_healthy_front_end_passes_every_check(sim, tmp_path, password_env, sessions):
    reports = FactsBoard()
    resolver = FakeResolver(*ESTATE_NAMES)
    job = lync_job(sim, tmp_path, sessions, resolver, reports)
    # No Exchange job has reported the SipName UM servers yet: the duplicate check waits for one.
    assert checks(job) == {"owa_trusted_application_present": 1, "oauth_autodiscover_url_svc": 1,
                           "autodiscover_host_resolves": 1, "owa_trusted_pool_registrar_is_lync_pool": 1,
                           **{check: 1 for check in POOL_SETTING_CHECKS}}
    assert [host for host, _ in resolver.asked] == ["fe01.contoso.com", "autodiscover.contoso.com"]
    assert all(0 < budget <= 5 for _, budget in resolver.asked)
    # The front end handed the OWA pools over: ex01 stands in owa.contoso.com, so Lync knows it.
    assert checks(exchange_job(sim, tmp_path, sessions, "ex01", reports)) == {"autodiscover_internal_uri_set": 1,
                                                                              "owa_server_known_to_lync": 1}
    assert um_servers(reports) == ()  # ex01 (Exchange 2013) answered Get-UMDialPlan: no SipName dial plan
    assert set(checks(job)) == LYNC_CHECKS and set(checks(job).values()) == {1}


def test_autodiscover_resolution_modes(sim, tmp_path, password_env, sessions):
    # auto: the exporter does not resolve the front end's own name, so it is not in the estate's DNS.
    outsider = FakeResolver()
    assert "autodiscover_host_resolves" not in checks(lync_job(sim, tmp_path, sessions, outsider))
    assert [host for host, _ in outsider.asked] == ["fe01.contoso.com"]
    # auto, inside the estate's DNS, but the autodiscover record is missing.
    no_record = FakeResolver("fe01.contoso.com")
    assert checks(lync_job(sim, tmp_path, sessions, no_record))["autodiscover_host_resolves"] == 0
    # always: judged whatever the exporter's own view; a lookup without an answer in time fails it.
    slow = FakeResolver(answer_unknown=None)
    job = lync_job(sim, tmp_path, sessions, slow, settings={"resolve_autodiscover": "always", "dns_timeout": "2s"})
    assert checks(job)["autodiscover_host_resolves"] == 0
    assert [host for host, _ in slow.asked] == ["autodiscover.contoso.com"] and 0 < slow.asked[0][1] <= 2
    # never: no lookup at all.
    silent = FakeResolver(*ESTATE_NAMES)
    job = lync_job(sim, tmp_path, sessions, silent, settings={"resolve_autodiscover": "never"})
    assert "autodiscover_host_resolves" not in checks(job) and silent.asked == []


def test_real_resolver_in_auto_mode_is_bounded_and_does_not_fail_the_run(sim, tmp_path, password_env, sessions):
    # The simulated names are not in this machine's DNS: the check is simply not run.
    job = Job(sim, tmp_path, LyncTopologyCollector(), "fe01",
              {"dns_timeout": "3s"}, sessions=sessions)
    result = checks(job)
    assert result["oauth_autodiscover_url_svc"] == 1 and result["owa_trusted_application_present"] == 1


def test_oauth_autodiscover_xml_fails_only_the_url_check(sim, tmp_path, password_env, sessions):
    sim.set_scenario("oauth-autodiscover-xml")
    result = checks(lync_job(sim, tmp_path, sessions))
    assert result == {"owa_trusted_application_present": 1, "oauth_autodiscover_url_svc": 0,
                      "autodiscover_host_resolves": 1, "owa_trusted_pool_registrar_is_lync_pool": 1,
                      **{check: 1 for check in POOL_SETTING_CHECKS}}


def test_missing_owa_trusted_application(sim, tmp_path, password_env, sessions):
    sim.set_scenario("owa-trusted-app-missing")
    assert checks(lync_job(sim, tmp_path, sessions))["owa_trusted_application_present"] == 0
    # When Lync autodiscovers Exchange servers through a SipName dial plan, no trusted application is needed.
    covered = lync_job(sim, tmp_path, sessions, settings={"sipname_um_servers": ["ex09.contoso.com"]})
    result = checks(covered)
    assert result["owa_trusted_application_present"] == 1 and result["trusted_pool_not_duplicating_um"] == 1


def test_trusted_pool_duplicating_a_sipname_um_server(sim, tmp_path, password_env, sessions):
    sim.set_scenario("trusted-pool-duplicates-um")
    reports = FactsBoard()
    # ex02 runs Exchange 2019: no Unified Messaging, no Get-UMDialPlan, nothing handed over.
    ex02 = exchange_job(sim, tmp_path, sessions, "ex02", reports)
    assert checks(ex02) == {"autodiscover_internal_uri_set": 1} and um_servers(reports) is None
    assert ex02.runner.state.no_um_dial_plan_cmdlet is True
    job = lync_job(sim, tmp_path, sessions, reports=reports)
    assert "trusted_pool_not_duplicating_um" not in checks(job)
    checks(exchange_job(sim, tmp_path, sessions, "ex01", reports))
    # ex01 runs Exchange 2013 with the Mailbox and Client Access roles: both UM services, autodiscovered.
    assert um_servers(reports) == ("ex01.contoso.com",)
    result = checks(job)
    assert result["trusted_pool_not_duplicating_um"] == 0 and result["owa_trusted_application_present"] == 1


def test_setting_names_the_um_servers_instead_of_exchange(sim, tmp_path, password_env, sessions):
    reports = FactsBoard()
    reports.post(SIPNAME_UM_SERVERS, ("ex01",), lifetime=600)
    job = lync_job(sim, tmp_path, sessions, reports=reports, settings={"sipname_um_servers": ["EX02.contoso.com"]})
    assert checks(job)["trusted_pool_not_duplicating_um"] == 0
    job = lync_job(sim, tmp_path, sessions, reports=reports, settings={"sipname_um_servers": []})
    assert checks(job)["trusted_pool_not_duplicating_um"] == 1


# ---------------------------------------------------------------- L4 on Exchange


def test_client_access_cmdlet_by_exchange_version(sim, tmp_path, password_env, sessions):
    ex01 = exchange_job(sim, tmp_path, sessions, "ex01")
    assert checks(ex01) == {"autodiscover_internal_uri_set": 1}
    assert ex01.runner.state.client_access_cmdlet == SERVER_CMDLET  # Exchange 2013
    assert checks(ex01) == {"autodiscover_internal_uri_set": 1}  # the remembered cmdlet, first time
    ex02 = exchange_job(sim, tmp_path, sessions, "ex02")
    assert checks(ex02) == {"autodiscover_internal_uri_set": 1}
    assert ex02.runner.state.client_access_cmdlet == SERVICE_CMDLET  # Exchange 2019


def test_missing_internal_autodiscover_uri(sim, tmp_path, password_env, sessions):
    sim.set_scenario("autodiscover-uri-missing")
    assert checks(exchange_job(sim, tmp_path, sessions, "ex02")) == {"autodiscover_internal_uri_set": 0}
    assert checks(exchange_job(sim, tmp_path, sessions, "ex01")) == {"autodiscover_internal_uri_set": 1}


@pytest.mark.parametrize("target, cmdlet, make", [
    ("fe01", "Get-CsOAuthConfiguration", lync_job),
    ("fe01", "Get-CsTrustedApplication", lync_job),
    ("ex01", "Get-UMDialPlan", lambda sim, tmp_path, sessions: exchange_job(sim, tmp_path, sessions, "ex01")),
    ("ex02", "Get-ClientAccessService", lambda sim, tmp_path, sessions: exchange_job(sim, tmp_path, sessions, "ex02")),
])
def test_a_failing_cmdlet_fails_only_this_job(sim, tmp_path, password_env, sessions, target, cmdlet, make):
    host = f"{target}.contoso.com"
    sim.set_fault(host, "terminating_error", cmdlet=cmdlet)
    job = make(sim, tmp_path, sessions)
    status = job.run()
    assert not status.up and status.last_error_kind == "command" and cmdlet in status.last_error
    sim.clear_faults(host)
    assert job.run().up


# ---------------------------------------------------------------- every scenario flips only what it should


EXPECTED_CHANGES = {
    "oauth-autodiscover-xml": {("fe01", "oauth_autodiscover_url_svc")},
    "owa-trusted-app-missing": {("fe01", "owa_trusted_application_present")},
    "trusted-pool-duplicates-um": {("fe01", "trusted_pool_not_duplicating_um")},
    "trusted-pool-wrong-registrar": {("fe01", "owa_trusted_pool_registrar_is_lync_pool")},
    "trusted-pool-settings-drift": {("fe01", check) for check in POOL_SETTING_CHECKS},
    "autodiscover-uri-missing": {("ex02", "autodiscover_internal_uri_set")},
    "owa-server-unknown-to-lync": {("ex02", "owa_server_known_to_lync")},
}

# Checks that rest on what a scenario removes are not exported there: no OWA pool, no Registrar to judge.
# Without any path for OWA (no pool hosting OutlookWebApp, no autodiscovered UM server) the per-server
# owa_server_known_to_lync is not judged: the front end's owa_trusted_application_present says it once.
NOT_JUDGED = {"owa-trusted-app-missing": {("fe01", check) for check in
                                          ("owa_trusted_pool_registrar_is_lync_pool", *POOL_SETTING_CHECKS)}
              | {("ex01", "owa_server_known_to_lync"), ("ex02", "owa_server_known_to_lync")},
              "owa-server-unknown-to-lync": {("fe01", check) for check in
                                             ("owa_trusted_pool_registrar_is_lync_pool", *POOL_SETTING_CHECKS)}}


def test_each_scenario_changes_only_its_own_checks(sim, tmp_path, password_env, sessions):
    reports = FactsBoard()
    # Exchange first: the front end's job compares with what ex01 handed over in the same round.
    jobs = {"ex01": exchange_job(sim, tmp_path, sessions, "ex01", reports),
            "ex02": exchange_job(sim, tmp_path, sessions, "ex02", reports),
            "fe01": lync_job(sim, tmp_path, sessions, reports=reports)}

    def snapshot() -> dict[tuple[str, str], float]:
        return {(target, check): value for target, job in jobs.items() for check, value in checks(job).items()}

    # Twice per state: the Exchange jobs read the pools the front end's job posted in the round before.
    snapshot()
    healthy = snapshot()
    assert {check for target, check in healthy if target == "fe01"} == LYNC_CHECKS
    assert set(healthy.values()) == {1.0}, healthy  # the healthy estate raises none
    for scenario in scenario_names():
        sim.set_scenario(scenario)
        snapshot()
        now = snapshot()
        assert set(now) == set(healthy) - NOT_JUDGED.get(scenario, set()), scenario
        failing = {key for key, value in now.items() if value != 1.0}
        assert failing == EXPECTED_CHANGES.get(scenario, set()), scenario
