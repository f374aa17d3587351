"""L3's key size check through the real path: the OAuthTokenIssuer certificate Get-CsCertificate names,
read from the front end's machine store over WinRM with pypsrp, its key size taken from its DER."""

from __future__ import annotations

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.lync_certificates import (
    CHECK_OAUTH_KEY_SIZE,
    KEY_SIZE,
    OAUTH_INFO,
    LyncCertificatesCollector,
)
from collectors.sources.remoting import SessionPool
from simulator.cmdlets import certificates
from tests.integration.collector_harness import Job


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def oauth_thumbprint(sim, host: str) -> str:
    found = certificates.find(sim._estate.view(host), host, "oauth")
    assert found is not None
    return found.thumbprint


def run(sim, tmp_path, sessions, target: str) -> Job:
    job = Job(sim, tmp_path, LyncCertificatesCollector(), target, sessions=sessions)
    status = job.run()
    assert status.up, status.last_error
    return job


@pytest.mark.parametrize("target", ["fe01", "fe02"])
def test_a_1024_bit_oauth_key_fails_the_check_on_every_front_end(sim, tmp_path, password_env, sessions, target):
    sim.set_scenario("oauth-cert-weak-key")
    job = run(sim, tmp_path, sessions, target)
    thumbprint = oauth_thumbprint(sim, f"{target}.contoso.com")
    assert job.values(KEY_SIZE.name) == {("OAuthTokenIssuer", thumbprint, "contoso.com"): 1024.0}
    assert job.values(CONFIG_CHECK_OK.name)[(CHECK_OAUTH_KEY_SIZE,)] == 0.0
    # The same certificate on both front ends: the "same everywhere" rule stays quiet.
    assert job.values(OAUTH_INFO.name) == {(thumbprint,): 1.0}


def test_healing_brings_the_check_back(sim, tmp_path, password_env, sessions):
    sim.set_scenario("oauth-cert-weak-key")
    job = Job(sim, tmp_path, LyncCertificatesCollector(), "fe01", sessions=sessions)
    assert job.run().up and job.values(CONFIG_CHECK_OK.name)[(CHECK_OAUTH_KEY_SIZE,)] == 0.0
    sim.set_scenario("healthy")
    assert job.run().up and job.values(CONFIG_CHECK_OK.name)[(CHECK_OAUTH_KEY_SIZE,)] == 1.0


def test_a_failing_windows_endpoint_leaves_the_key_size_unknown_and_the_job_up(sim, tmp_path, password_env, sessions):
    sim.set_fault("fe01.contoso.com", "terminating_error", cmdlet="Get-Item")
    try:
        job = Job(sim, tmp_path, LyncCertificatesCollector(), "fe01", sessions=sessions)
        status = job.run()
        assert status.up, status.last_error
        assert job.values(KEY_SIZE.name) == {}
        assert (CHECK_OAUTH_KEY_SIZE,) not in job.values(CONFIG_CHECK_OK.name)
        assert job.values(OAUTH_INFO.name) == {(oauth_thumbprint(sim, "fe01.contoso.com"),): 1.0}
    finally:
        sim.clear_faults("fe01.contoso.com")
