"""Check L3 through the real path: Get-CsCertificate on the simulated front ends and Edge, over pypsrp."""

from __future__ import annotations

import time

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.lync_certificates import (
    CHECK_OAUTH_KEY_SIZE,
    CHECK_OAUTH_SIP_DOMAIN,
    KEY_SIZE,
    NOT_AFTER,
    NOT_BEFORE,
    OAUTH_INFO,
    LyncCertificatesCollector,
)
from collectors.sources.remoting import SessionPool
from simulator.cmdlets import certificates
from simulator.scenario import scenario_names
from tests.integration.collector_harness import Job

DAY = 86400.0
TARGETS = ("fe01", "fe02", "edge01")
FE01_WEB_USES = {"Default", "WebServicesInternal", "WebServicesExternal"}
FE01, FE02 = "fe01.contoso.com", "fe02.contoso.com"


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def run(sim, tmp_path, sessions, target, settings=None, **config_kw):
    job = Job(sim, tmp_path, LyncCertificatesCollector(), target, settings, sessions=sessions, **config_kw)
    status = job.run()
    assert status.up, status.last_error
    return job


def thumbprint(sim, host: str, label: str) -> str:
    """The thumbprint of the certificate the active scenario labels ``label`` on ``host``: the SHA-1
    of the DER the simulator generated (simulator/certs.py), as Get-CsCertificate reports it."""
    found = certificates.find(sim._estate.view(host), host, label)
    assert found is not None, (host, label)
    return found.thumbprint


def by_use(job, metric):
    """use -> (thumbprint, subject_cn, value)"""
    return {labels[0]: (labels[1], labels[2], value) for labels, value in job.values(metric).items()}


def test_healthy_front_end_exports_each_use_and_its_oauth_certificate(sim, tmp_path, password_env, sessions):
    job = run(sim, tmp_path, sessions, "fe01")
    not_after = by_use(job, NOT_AFTER.name)
    assert set(not_after) == FE01_WEB_USES | {"OAuthTokenIssuer"}
    now = time.time()
    oauth_thumbprint = thumbprint(sim, FE01, "oauth")
    thumb, cn, expires = not_after["Default"]
    assert (thumb, cn) == (thumbprint(sim, FE01, "default"), "fe01.contoso.com")
    assert 425 * DAY < expires - now < 435 * DAY
    assert not_after["OAuthTokenIssuer"][:2] == (oauth_thumbprint, "contoso.com")
    assert oauth_thumbprint != thumb
    not_before = by_use(job, NOT_BEFORE.name)
    assert set(not_before) == set(not_after) and all(v[2] < now for v in not_before.values())
    # Get-CsCertificate reports no key size: the OAuth certificate's comes from its DER in the machine
    # store (the healthy scenario's certificates have 2048-bit keys); the other uses' stay unknown.
    assert job.values(KEY_SIZE.name) == {("OAuthTokenIssuer", oauth_thumbprint, "contoso.com"): 2048.0}
    assert job.values(OAUTH_INFO.name) == {(oauth_thumbprint,): 1.0}
    assert job.values(CONFIG_CHECK_OK.name) == {(CHECK_OAUTH_SIP_DOMAIN,): 1.0, (CHECK_OAUTH_KEY_SIZE,): 1.0}


def test_every_front_end_uses_the_same_oauth_certificate(sim, tmp_path, password_env, sessions):
    thumbprints = {target: set(run(sim, tmp_path, sessions, target).values(OAUTH_INFO.name))
                   for target in ("fe01", "fe02")}
    assert thumbprints["fe01"] == thumbprints["fe02"] == {(thumbprint(sim, FE01, "oauth"),)}


def test_edge_exports_its_certificates_and_no_oauth_judgement(sim, tmp_path, password_env, sessions):
    job = run(sim, tmp_path, sessions, "edge01")
    assert set(by_use(job, NOT_AFTER.name)) == {"AccessEdgeExternal", "DataEdgeExternal", "AudioVideoAuthentication",
                                                "Internal"}
    assert by_use(job, NOT_AFTER.name)["AccessEdgeExternal"][1] == "sip.contoso.com"
    assert job.values(OAUTH_INFO.name) == {} and job.values(CONFIG_CHECK_OK.name) == {}


def test_cert_expiring_shows_fe01_web_certificates_at_five_days(sim, tmp_path, password_env, sessions):
    sim.set_scenario("cert-expiring")
    not_after = by_use(run(sim, tmp_path, sessions, "fe01"), NOT_AFTER.name)
    now = time.time()
    for use in FE01_WEB_USES:
        assert 4 * DAY < not_after[use][2] - now < 6 * DAY, use
    assert not_after["OAuthTokenIssuer"][2] - now > 400 * DAY


def test_oauth_certificate_mismatch_shows_two_thumbprints(sim, tmp_path, password_env, sessions):
    sim.set_scenario("oauth-cert-mismatch")
    jobs = {target: run(sim, tmp_path, sessions, target) for target in ("fe01", "fe02")}
    infos = {target: set(job.values(OAUTH_INFO.name)) for target, job in jobs.items()}
    fe01_oauth, fe02_oauth = thumbprint(sim, FE01, "oauth"), thumbprint(sim, FE02, "oauth")
    assert fe01_oauth != fe02_oauth
    assert infos["fe01"] == {(fe01_oauth,)}
    assert infos["fe02"] == {(fe02_oauth,)}
    # Same subject on both: only the cross-front-end comparison (a Prometheus rule) can tell.
    assert all(job.values(CONFIG_CHECK_OK.name) == {(CHECK_OAUTH_SIP_DOMAIN,): 1.0, (CHECK_OAUTH_KEY_SIZE,): 1.0}
               for job in jobs.values())


def test_sip_domain_from_setting_or_pool_fqdn(sim, tmp_path, password_env, sessions):
    key_ok = {(CHECK_OAUTH_KEY_SIZE,): 1.0}
    other_domain = run(sim, tmp_path, sessions, "fe01", {"sip_domain": "Fabrikam.com"})
    assert other_domain.values(CONFIG_CHECK_OK.name) == {(CHECK_OAUTH_SIP_DOMAIN,): 0.0, **key_ok}
    other_pool = run(sim, tmp_path, sessions, "fe01", lync_pool_fqdn="pool01.fabrikam.com")
    assert other_pool.values(CONFIG_CHECK_OK.name) == {(CHECK_OAUTH_SIP_DOMAIN,): 0.0, **key_ok}
    setting_wins = run(sim, tmp_path, sessions, "fe01", {"sip_domain": "contoso.com"},
                       lync_pool_fqdn="pool01.fabrikam.com")
    assert setting_wins.values(CONFIG_CHECK_OK.name) == {(CHECK_OAUTH_SIP_DOMAIN,): 1.0, **key_ok}
    unknown = run(sim, tmp_path, sessions, "fe01", lync_pool_fqdn=None)
    assert unknown.values(CONFIG_CHECK_OK.name) == key_ok  # no SIP domain known: the subject is not judged
    assert unknown.values(OAUTH_INFO.name) == {(thumbprint(sim, FE01, "oauth"),): 1.0}


@pytest.mark.parametrize("fault, kind", [("terminating_error", "command"), ("non_terminating_error", "command"),
                                         ("malformed", "shape")])
def test_a_failing_server_fails_only_this_job(sim, tmp_path, password_env, sessions, fault, kind):
    options = {"cmdlet": "Get-CsCertificate"} if fault != "malformed" else {}
    sim.set_fault("fe01.contoso.com", fault, **options)
    job = Job(sim, tmp_path, LyncCertificatesCollector(), "fe01", sessions=sessions)
    status = job.run()
    assert not status.up and status.last_error_kind == kind and status.error_count(kind) == 1
    sim.clear_faults("fe01.contoso.com")
    assert job.run().up


# ---------------------------------------------------------------- every scenario flips only what it should


_BY_USE = {NOT_AFTER.name, NOT_BEFORE.name, KEY_SIZE.name}  # labels (use, thumbprint, subject_cn)


def _snapshot(jobs: dict[str, Job]) -> dict[tuple, float]:
    """(target, metric, labels) -> value. A certificate's dates are keyed by (use, subject_cn), not by
    thumbprint: a changed NotAfter is a new certificate with a new thumbprint, as a real renewal is,
    and only the NotAfter signal should move. OAUTH_INFO keeps its thumbprint label: which certificate
    is the OAuth one is the signal there."""
    values = {}
    for target, job in jobs.items():
        status = job.run()
        assert status.up, (target, status.last_error)
        for sample in status.samples:
            labels = sample.label_values
            if sample.spec.name in _BY_USE:
                use, _thumbprint, subject_cn = labels
                labels = (use, subject_cn)
            key = (target, sample.spec.name, labels)
            assert key not in values, key
            values[key] = sample.value
    return values


def _changed(before: dict[tuple, float], after: dict[tuple, float]) -> set[tuple[str, str]]:
    """(target, metric) of every series that appeared, vanished or moved (timestamps: by over an hour)."""
    changed = set()
    for key in set(before) | set(after):
        target, metric, _ = key
        tolerance = 3600 if metric.endswith("_timestamp_seconds") else 0
        if key not in before or key not in after or abs(before[key] - after[key]) > tolerance:
            changed.add((target, metric))
    return changed


EXPECTED_CHANGES = {
    "cert-expiring": {("fe01", NOT_AFTER.name)},
    "oauth-cert-mismatch": {("fe02", NOT_AFTER.name), ("fe02", NOT_BEFORE.name), ("fe02", OAUTH_INFO.name)},
    # A new key is a new certificate (another thumbprint) with the same dates and subject.
    "oauth-cert-weak-key": {(fe, metric) for fe in ("fe01", "fe02")
                            for metric in (KEY_SIZE.name, OAUTH_INFO.name, CONFIG_CHECK_OK.name)},
}


def test_each_scenario_changes_only_its_own_certificate_signals(sim, tmp_path, password_env, sessions):
    jobs = {target: Job(sim, tmp_path, LyncCertificatesCollector(), target, sessions=sessions) for target in TARGETS}
    healthy = _snapshot(jobs)
    assert healthy[("fe01", CONFIG_CHECK_OK.name, (CHECK_OAUTH_SIP_DOMAIN,))] == 1.0
    assert all(value == 1.0 for (_, metric, _), value in healthy.items() if metric == CONFIG_CHECK_OK.name)
    for scenario in scenario_names():
        sim.set_scenario(scenario)
        assert _changed(healthy, _snapshot(jobs)) == EXPECTED_CHANGES.get(scenario, set()), scenario
    sim.set_scenario("cert-expiring")
    fe01 = {labels[0] for (target, metric, labels) in _changed_keys(healthy, _snapshot(jobs)) if target == "fe01"}
    assert fe01 == FE01_WEB_USES


def _changed_keys(before: dict[tuple, float], after: dict[tuple, float]) -> set[tuple]:
    return {key for key in set(before) & set(after) if abs(before[key] - after[key]) > 3600}
