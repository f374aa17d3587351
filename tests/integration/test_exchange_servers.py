"""Each Exchange server judged by its own role and version (issue 19 items 13 and 10), through the real path:
Get-ExchangeServer over the real pypsrp client, natively simulated and replayed from the real captures,
the facts a front end's jobs hand over, and the checks exchange_topology exports."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.cms_replication import CmsReplicationCollector
from collectors.contract import FactsBoard
from collectors.sources.lync_versions import LYNC_SERVER_VERSIONS
from collectors.sources.remoting import SessionPool
from collectors.topology.exchange_topology import SERVER_INFO, ExchangeTopologyCollector
from collectors.topology.lync_topology import LyncTopologyCollector
from collectors.topology.shared import SIPNAME_UM_SERVERS
from tests.integration.collector_harness import Job
from tests.integration.owa_im_snapshots import write_scenario
from tests.integration.test_lync_topology import ESTATE_NAMES, FakeResolver, checks

SIPNAME_PLAN_EX01 = """
exchange_org:
  um_dial_plans:
    Contoso-SIP: {uri_type: SipName, um_servers: [EX01]}
"""


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def exchange_job(sim, tmp_path, sessions, target, board) -> Job:
    return Job(sim, tmp_path, ExchangeTopologyCollector(), target, sessions=sessions, facts=board)


def front_end(sim, tmp_path, sessions, board) -> Job:
    return Job(sim, tmp_path, LyncTopologyCollector(FakeResolver(*ESTATE_NAMES)), "fe01", sessions=sessions,
               facts=board)


def server_info(job: Job) -> set[tuple[str, ...]]:
    return set(job.values(SERVER_INFO.name))


def posted(board: FactsBoard, fact):
    found = board.fresh(fact)
    return found.value if found is not None else None


def test_each_server_reports_its_own_product_build_and_roles(sim, tmp_path, password_env, sessions):
    board = FactsBoard()
    ex01, ex02 = (exchange_job(sim, tmp_path, sessions, host, board) for host in ("ex01", "ex02"))
    checks(ex01), checks(ex02)
    # The healthy scenario: ex01 Exchange 2013 build 15.0.1497.2, both roles; ex02 Exchange 2019 15.2.1118.7.
    assert server_info(ex01) == {("2013", "15.0.1497.2", "clientaccess,mailbox")}
    assert server_info(ex02) == {("2019", "15.2.1118.7", "mailbox")}


@pytest.mark.parametrize("capture, expected", [
    ("E15/GetExchangeServer.xml", ("2013", "15.0.1497.2", "clientaccess,mailbox")),
    ("E16/GetExchangeServer.xml", ("2016", "15.1.2375.7", "mailbox")),
])
def test_real_servers_answers_are_read(sim, tmp_path, password_env, sessions, captures: Path, capture, expected):
    """The captured answers (a 2013 server with both roles, a 2016 Mailbox server) replayed on ex01."""
    sim.set_scenario(write_scenario(tmp_path, "replayed", f"hosts:\n  ex01.contoso.com:\n    replay:\n"
                                                          f"      Get-ExchangeServer: {captures / capture}\n"))
    job = exchange_job(sim, tmp_path, sessions, "ex01", FactsBoard())
    checks(job)
    assert server_info(job) == {expected}


def test_split_role_2013_server_is_not_autodiscovered_and_needs_its_trusted_pool(sim, tmp_path, password_env,
                                                                                sessions):
    """Exchange 2013 with the Mailbox role only: the UM call router runs on another computer, so Lync does not
    autodiscover it even though a SipName dial plan lists it. The trusted pool listing it is what 001 asks
    for, not a duplicate."""
    sim.set_scenario(write_scenario(tmp_path, "split", SIPNAME_PLAN_EX01 + """
hosts:
  ex01.contoso.com:
    exchange: {server_role: [Mailbox]}
"""))
    board = FactsBoard()
    fe01 = front_end(sim, tmp_path, sessions, board)
    checks(fe01)
    ex01 = exchange_job(sim, tmp_path, sessions, "ex01", board)
    assert checks(ex01)["owa_server_known_to_lync"] == 1  # by the pool owa.contoso.com, which lists it
    assert server_info(ex01) == {("2013", "15.0.1497.2", "mailbox")}
    assert posted(board, SIPNAME_UM_SERVERS) == ()
    result = checks(fe01)
    assert result["trusted_pool_not_duplicating_um"] == 1 and result["owa_trusted_application_present"] == 1


def test_combined_2013_server_in_a_sipname_plan_is_autodiscovered(sim, tmp_path, password_env, sessions):
    sim.set_scenario("trusted-pool-duplicates-um")
    board = FactsBoard()
    checks(exchange_job(sim, tmp_path, sessions, "ex01", board))
    assert posted(board, SIPNAME_UM_SERVERS) == ("ex01.contoso.com",)
    assert checks(front_end(sim, tmp_path, sessions, board))["trusted_pool_not_duplicating_um"] == 0


def test_autodiscovery_of_one_server_does_not_cover_another(sim, tmp_path, password_env, sessions):
    """owa-server-unknown-to-lync: UM autodiscovery covers ex01 (2013, both roles), nothing covers ex02 (2019)."""
    sim.set_scenario("owa-server-unknown-to-lync")
    board = FactsBoard()
    ex01, ex02 = (exchange_job(sim, tmp_path, sessions, host, board) for host in ("ex01", "ex02"))
    fe01 = front_end(sim, tmp_path, sessions, board)
    assert "owa_server_known_to_lync" not in checks(ex01)  # no front end has handed the pools over yet
    fe_checks = checks(fe01)
    # Organisation-wide, a path exists (UM autodiscovery): the front end's own check passes.
    assert fe_checks["owa_trusted_application_present"] == 1 and fe_checks["trusted_pool_not_duplicating_um"] == 1
    assert checks(ex01)["owa_server_known_to_lync"] == 1
    # ex02 has no Get-UMDialPlan (Exchange 2019): it judges with the servers ex01's job posted.
    assert checks(ex02)["owa_server_known_to_lync"] == 0


def test_no_path_at_all_is_left_to_the_front_ends_check(sim, tmp_path, password_env, sessions):
    sim.set_scenario("owa-trusted-app-missing")
    board = FactsBoard()
    assert checks(front_end(sim, tmp_path, sessions, board))["owa_trusted_application_present"] == 0
    assert "owa_server_known_to_lync" not in checks(exchange_job(sim, tmp_path, sessions, "ex02", board))


def test_a_sipname_server_exchange_does_not_know_is_left_out(sim, tmp_path, password_env, sessions, caplog):
    sim.set_scenario(write_scenario(tmp_path, "unknown-um", """
exchange_org:
  um_dial_plans:
    Contoso-SIP: {uri_type: SipName, um_servers: [EX09]}
"""))
    board = FactsBoard()
    job = exchange_job(sim, tmp_path, sessions, "ex01", board)
    assert checks(job)["autodiscover_internal_uri_set"] == 1
    assert posted(board, SIPNAME_UM_SERVERS) == ()
    assert "ex09" in caplog.text and "not counted as autodiscovered" in caplog.text


def test_a_server_exchange_does_not_know_keeps_the_autodiscover_check(sim, tmp_path, password_env, sessions,
                                                                    caplog):
    """Get-ExchangeServer -Identity <host> finds nothing (the target named by an alias): the server's own
    checks are left out with a warning, the L4 check and the hand-over still run."""
    empty = tmp_path / "no-servers.xml"
    empty.write_text('<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04" />')
    sim.set_scenario(write_scenario(tmp_path, "unknown-server", SIPNAME_PLAN_EX01 + f"""
hosts:
  ex01.contoso.com:
    replay:
      Get-ExchangeServer: {empty}
"""))
    board = FactsBoard()
    job = exchange_job(sim, tmp_path, sessions, "ex01", board)
    assert checks(job) == {"autodiscover_internal_uri_set": 1} and server_info(job) == set()
    assert "found 0 servers" in caplog.text
    assert posted(board, SIPNAME_UM_SERVERS) == ()  # EX01's roles cannot be read either: not counted


def test_a_failing_get_exchange_server_fails_only_this_job(sim, tmp_path, password_env, sessions):
    sim.set_fault("ex02.contoso.com", "terminating_error", cmdlet="Get-ExchangeServer")
    job = exchange_job(sim, tmp_path, sessions, "ex02", FactsBoard())
    status = job.run()
    assert not status.up and status.last_error_kind == "command" and "Get-ExchangeServer" in status.last_error
    assert exchange_job(sim, tmp_path, sessions, "ex01", FactsBoard()).run().up
    sim.clear_faults("ex02.contoso.com")
    assert job.run().up


# ---------------------------------------------------------------- item 10: the version pair


def versions_from_front_end(sim, tmp_path, sessions, board) -> None:
    job = Job(sim, tmp_path, CmsReplicationCollector(), "fe01", sessions=sessions, facts=board)
    assert job.run().up


def test_supported_pairs_pass(sim, tmp_path, password_env, sessions):
    board = FactsBoard()
    assert "exchange_lync_versions_supported" not in checks(exchange_job(sim, tmp_path, sessions, "ex02", board))
    versions_from_front_end(sim, tmp_path, sessions, board)
    assert posted(board, LYNC_SERVER_VERSIONS) == (("edge01.contoso.com", "6.0.9319.534"),
                                                   ("fe01.contoso.com", "6.0.9319.534"),
                                                   ("fe02.contoso.com", "6.0.9319.534"))
    for host in ("ex01", "ex02"):  # Skype for Business Server 2015 with Exchange 2013 and 2019
        assert checks(exchange_job(sim, tmp_path, sessions, host, board))["exchange_lync_versions_supported"] == 1


def test_lync_2013_with_exchange_2019_is_reported(sim, tmp_path, password_env, sessions):
    sim.set_scenario("lync-2013-with-exchange-2019")
    board = FactsBoard()
    versions_from_front_end(sim, tmp_path, sessions, board)
    assert checks(exchange_job(sim, tmp_path, sessions, "ex02", board))["exchange_lync_versions_supported"] == 0
    # Lync Server 2013 with Exchange 2013: 001's own setup.
    assert checks(exchange_job(sim, tmp_path, sessions, "ex01", board))["exchange_lync_versions_supported"] == 1
