"""The OWA trusted application pool as 001 sets it up, through the real client: its Registrar is the
pool IMServerName names (lync_topology on a front end), and the IM certificate of each OWA server
carries the pool's FQDN (im_certificate on the mailbox server, with the pools a front end read)."""

from __future__ import annotations

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.contract import FactsBoard
from collectors.im_certificate.collector import ImCertificateCollector
from collectors.sources.remoting import SessionPool
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS, TrustedPool
from collectors.topology.lync_topology import LyncTopologyCollector
from tests.integration.collector_harness import Job

REGISTRAR = "owa_trusted_pool_registrar_is_lync_pool"
NAMES_POOL = "im_certificate_names_trusted_pool"
HEALTHY_POOLS = (TrustedPool("owa.contoso.com", ("ex01.contoso.com", "ex02.contoso.com"), (5199,)),)


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def config_checks(job: Job) -> dict[str, float]:
    status = job.run()
    assert status.up, status.last_error
    return {labels[0]: value for labels, value in job.values(CONFIG_CHECK_OK.name).items()}


def pool_name_checks(job: Job) -> dict[str, float]:
    """The mailbox server's check of the trusted pool's name (its other E3 checks have tests of their own)."""
    return {check: value for check, value in config_checks(job).items() if check == NAMES_POOL}


def front_end(sim, tmp_path, sessions, board: FactsBoard, **config_kw) -> Job:
    collector = LyncTopologyCollector(lambda host, timeout: True)
    return Job(sim, tmp_path, collector, "fe01", {"resolve_autodiscover": "never"}, sessions=sessions,
               facts=board, **config_kw)


def mailbox(sim, tmp_path, sessions, board: FactsBoard, target: str) -> Job:
    return Job(sim, tmp_path, ImCertificateCollector(), target, sessions=sessions, facts=board)


def test_healthy_registrar_and_certificate_names(sim, tmp_path, password_env, sessions):
    board = FactsBoard()
    # Before any front end has read the pools, the certificate's names are not judged.
    assert NAMES_POOL not in pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex01"))
    assert config_checks(front_end(sim, tmp_path, sessions, board))[REGISTRAR] == 1
    assert board.fresh(OWA_TRUSTED_POOLS).value == HEALTHY_POOLS
    for target in ("ex01", "ex02"):  # Exchange 2013 (web.config) and 2019 (setting override)
        assert pool_name_checks(mailbox(sim, tmp_path, sessions, board, target)) == {NAMES_POOL: 1}


def test_registrar_of_another_pool(sim, tmp_path, password_env, sessions):
    sim.set_scenario("trusted-pool-wrong-registrar")
    board = FactsBoard()
    assert config_checks(front_end(sim, tmp_path, sessions, board))[REGISTRAR] == 0
    # Without a configured Lync pool there is nothing to compare the Registrar with.
    assert REGISTRAR not in config_checks(front_end(sim, tmp_path, sessions, board, lync_pool_fqdn=None))
    # The certificates still name the pool.
    assert pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex01")) == {NAMES_POOL: 1}


def test_pool_settings_other_than_001s(sim, tmp_path, password_env, sessions):
    settings = ("owa_trusted_pool_requires_no_replication", "owa_trusted_pool_throttles_as_server",
                "owa_trusted_pool_treated_as_authenticated")
    job = front_end(sim, tmp_path, sessions, FactsBoard())
    assert {check: value for check, value in config_checks(job).items() if check in settings} == dict.fromkeys(settings, 1)
    sim.set_scenario("trusted-pool-settings-drift")
    result = config_checks(job)
    assert {check: result[check] for check in settings} == dict.fromkeys(settings, 0)
    assert result[REGISTRAR] == 1 and result["owa_trusted_application_present"] == 1


def test_im_certificate_without_the_pool_name(sim, tmp_path, password_env, sessions):
    sim.set_scenario("im-cert-lacks-trusted-pool")
    board = FactsBoard()
    assert config_checks(front_end(sim, tmp_path, sessions, board))[REGISTRAR] == 1
    assert pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex01")) == {NAMES_POOL: 0}
    assert pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex02")) == {NAMES_POOL: 1}


def test_a_server_no_pool_stands_for_is_not_judged(sim, tmp_path, password_env, sessions):
    board = FactsBoard()
    board.post(OWA_TRUSTED_POOLS, (TrustedPool("owa2.contoso.com", ("ex02.contoso.com",)),), lifetime=600)
    assert NAMES_POOL not in pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex01"))
    # ex02's certificate carries owa.contoso.com, not owa2.contoso.com.
    assert pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex02")) == {NAMES_POOL: 0}


def test_without_an_owa_application_no_pool_is_handed_over(sim, tmp_path, password_env, sessions):
    sim.set_scenario("owa-trusted-app-missing")
    board = FactsBoard()
    assert REGISTRAR not in config_checks(front_end(sim, tmp_path, sessions, board))
    assert board.fresh(OWA_TRUSTED_POOLS).value == ()
    assert NAMES_POOL not in pool_name_checks(mailbox(sim, tmp_path, sessions, board, "ex01"))
