"""Authentication as production does it, against a real MIT KDC (tests/kdc.py) and the simulator's real
acceptors (simulator/auth.py): Kerberos with WinRM message encryption over HTTP (Exchange's
/PowerShell as installed), Kerberos over HTTPS, NTLM with encryption, Negotiate falling back to NTLM
where the SPN is unknown, tickets from a keytab (renewed before they run out) and from an existing
ticket cache; and every failure an operator meets, each ``kind="auth"`` with what to fix.

The hosts here offer what Windows offers as installed (``simulator.auth.PRODUCTION``: no Basic at all)
and refuse unencrypted plain-HTTP messages, so no test can pass by falling back to Basic; each one
also reads, from the simulator's own counters, which mechanism authenticated the requests.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest

from collectors import registry
from collectors.sources.kerberos import tickets_for
from collectors.sources.remoting import SessionPool
from simulator.auth import PRODUCTION
from simulator.server import Simulator
from tests.conftest import SIM_PASSWORD, SIM_USERNAME, ClientAuth
from tests.integration.collector_harness import Job
from tests.kdc import TestKDC, require_kerberos_tools, tool

pytestmark = pytest.mark.usefixtures("password_env")

EX01, FE01 = "ex01.contoso.com", "fe01.contoso.com"


def _simulator(kdc, tls: bool) -> Simulator:
    return Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=tls,
                     username=SIM_USERNAME, password=SIM_PASSWORD, auth=PRODUCTION, keytab=kdc.service_keytab,
                     ntlm_user_file=kdc.ntlm_user_file, allow_unencrypted=False).start()


@pytest.fixture(scope="module")
def krb_sim(kdc):
    """Hosts as installed: WinRM offers Negotiate and Kerberos, Exchange's /PowerShell Kerberos only."""
    sim = _simulator(kdc, tls=False)
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def krb_tls_sim(kdc):
    sim = _simulator(kdc, tls=True)
    yield sim
    sim.stop()


@pytest.fixture(autouse=True)
def _reset(request):
    yield
    for name in ("krb_sim", "krb_tls_sim"):
        if name in request.fixturenames:
            sim = request.getfixturevalue(name)
            sim.set_auth(None, None)
            sim.clear_faults()


def kerberos(kdc, **kw) -> ClientAuth:
    return ClientAuth(exchange=kw.pop("exchange", "kerberos"), other=kw.pop("other", "kerberos"),
                      principal=kw.pop("principal", kdc.user_principal), **kw)


def job(sim, tmp_path, collector, target, auth: ClientAuth, **kw) -> Job:
    folder = tmp_path / f"{collector.name}-{target}-{time.monotonic_ns()}"
    folder.mkdir()
    return Job(sim, folder, collector, target, auth=auth, **kw)


def counters(sim, host: str) -> dict[str, int]:
    return sim.stats()[host]


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {key: after.get(key, 0) - before.get(key, 0) for key in after if after.get(key, 0) != before.get(key, 0)}


def run_auth_failure(sim, tmp_path, auth: ClientAuth, target="ex01", collector=None, **kw):
    collector = collector or registry.by_name()["owa_im_settings"]()
    failing = job(sim, tmp_path, collector, target, auth, **kw)
    try:
        status = failing.run()
    finally:
        failing.close()
    assert not status.up, "a failing credential produced data"
    assert status.last_error_kind == "auth", status.last_error
    assert status.error_count("auth") == 1
    assert SIM_PASSWORD not in status.last_error
    return status.last_error


# ------------------------------------------------------------------------------------------------
# What works
# ------------------------------------------------------------------------------------------------


def test_every_collector_through_kerberos_with_message_encryption(krb_sim, kdc, tmp_path):
    """Each collector once, on a host of its roles, through Kerberos and sealed messages over HTTP."""
    before = {host: counters(krb_sim, host) for host in krb_sim.hosts()}
    hosts = krb_sim.hosts()
    failures = {}
    for name, cls in sorted(registry.by_name().items()):
        collector = cls()
        target = next((host for host, info in hosts.items() if set(info.roles) & set(collector.roles)), None)
        assert target is not None, f"no simulated host has a role of {name}"
        one = job(krb_sim, tmp_path, collector, target.split(".")[0], kerberos(kdc))
        try:
            status = one.run()
        finally:
            one.close()
        if not status.up:
            failures[name] = f"{status.last_error_kind}: {status.last_error}"
    assert not failures, failures
    used = {host: delta(before[host], counters(krb_sim, host)) for host in hosts}
    assert not any(d.get("auth_basic") for d in used.values()), used
    assert used[EX01].get("auth_exchange_kerberos", 0) > 0, used[EX01]
    assert used[FE01].get("auth_windows_kerberos", 0) > 0, used[FE01]
    # Over plain HTTP every message with a body was sealed (the hosts refuse anything else).
    assert sum(d.get("requests_encrypted", 0) for d in used.values()) > 0
    assert sum(d.get("auth_failures", 0) for d in used.values()) == 0


def test_kerberos_over_https_needs_no_message_encryption(krb_tls_sim, kdc, tmp_path):
    before = counters(krb_tls_sim, EX01)
    for name in ("owa_im_settings", "owa_app_pool"):  # the Exchange endpoint, then the Windows one
        one = job(krb_tls_sim, tmp_path, registry.by_name()[name](), "ex01", kerberos(kdc),
                  ca_file=krb_tls_sim.ca_cert_path)
        try:
            status = one.run()
        finally:
            one.close()
        assert status.up, status.last_error
    used = delta(before, counters(krb_tls_sim, EX01))
    assert used.get("auth_exchange_kerberos", 0) > 0 and used.get("auth_windows_kerberos", 0) > 0, used
    assert not used.get("requests_encrypted") and not used.get("auth_basic"), used


def assert_fe01_used_encrypted_ntlm(sim, tmp_path, auth: ClientAuth) -> None:
    """One cms_replication run on fe01 succeeds, and the simulator served it with NTLM, encrypted."""
    before = counters(sim, FE01)
    one = job(sim, tmp_path, registry.by_name()["cms_replication"](), "fe01", auth)
    try:
        status = one.run()
    finally:
        one.close()
    assert status.up, status.last_error
    used = delta(before, counters(sim, FE01))
    assert used.get("auth_windows_ntlm", 0) > 0 and used.get("requests_encrypted", 0) > 0, used
    assert not used.get("auth_kerberos") and not used.get("auth_basic"), used


def test_ntlm_with_message_encryption(krb_sim, kdc, tmp_path):
    assert_fe01_used_encrypted_ntlm(krb_sim, tmp_path, kerberos(kdc, other="ntlm"))


def test_negotiate_falls_back_to_ntlm_where_the_spn_is_unknown(krb_sim, kdc, tmp_path):
    """A load-balanced name without an SPN: Negotiate's Kerberos part fails, NTLM carries on."""
    auth = kerberos(kdc, other="negotiate", spn_hostname={FE01: "lyncpool-vip.contoso.com"})
    assert_fe01_used_encrypted_ntlm(krb_sim, tmp_path, auth)


def test_negotiate_uses_kerberos_where_the_spn_is_known(krb_sim, kdc, tmp_path):
    before = counters(krb_sim, FE01)
    one = job(krb_sim, tmp_path, registry.by_name()["cms_replication"](), "fe01", kerberos(kdc, other="negotiate"))
    try:
        assert one.run().up, one.status.last_error
    finally:
        one.close()
    used = delta(before, counters(krb_sim, FE01))
    assert used.get("auth_windows_kerberos", 0) > 0 and not used.get("auth_ntlm"), used


def test_keytab_tickets_are_kept_in_memory_and_renewed_before_they_run_out(krb_sim, kdc, tmp_path):
    """A principal whose tickets live 20 s: two runs 12 s apart, each opening its own pool."""
    keytab = tmp_path / "short.keytab"
    principal = kdc.add_user("svc-shortlived", SIM_PASSWORD, keytab=keytab)
    kdc.kadmin(f'modprinc -maxlife "20 seconds" {principal}')
    auth = kerberos(kdc, principal=principal, keytab=str(keytab))
    collector = registry.by_name()["owa_im_settings"]()
    written_before = set(os.listdir(tmp_path))
    for attempt in (1, 2):
        one = job(krb_sim, tmp_path, collector, "ex01", auth, sessions=SessionPool())
        try:
            status = one.run()
            keeper = tickets_for(one.runner.endpoints.spec("exchange"))
        finally:
            one.close()
        assert status.up, f"run {attempt}: {status.last_error}"
        assert keeper.cache.startswith("MEMORY:")
        assert keeper.expires_at - time.time() < 25
        if attempt == 1:
            time.sleep(12)  # past the renewal point (half of a 20 s life), before the end of it
    assert keeper.acquired == 2, "the tickets were not renewed before the second run"
    created = {name for name in set(os.listdir(tmp_path)) - written_before if not name.startswith("owa_im")}
    assert not created, f"a keytab credential wrote files: {created}"


def test_keytab_tickets_under_a_configured_writable_path(krb_sim, kdc, tmp_path):
    cache = tmp_path / "run" / "krb5cc"
    cache.parent.mkdir()
    principal = kdc.add_user("svc-filecache", SIM_PASSWORD, keytab=tmp_path / "file.keytab")
    one = job(krb_sim, tmp_path, registry.by_name()["owa_im_settings"](), "ex01",
              kerberos(kdc, principal=principal, keytab=str(tmp_path / "file.keytab"), ticket_cache=str(cache)))
    try:
        status = one.run()
    finally:
        one.close()
    assert status.up, status.last_error
    assert cache.is_file() and cache.stat().st_size > 0


def test_an_existing_ticket_cache(krb_sim, kdc, tmp_path):
    """Tickets someone else keeps (kinit, k5start): the credential names the cache and has no password."""
    cache = tmp_path / "krb5cc_existing"
    result = subprocess.run([tool("kinit"), "-c", f"FILE:{cache}", kdc.user_principal], input=SIM_PASSWORD + "\n",
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    before = counters(krb_sim, EX01)
    one = job(krb_sim, tmp_path, registry.by_name()["owa_im_settings"](), "ex01",
              kerberos(kdc, ticket_cache=f"FILE:{cache}"))
    try:
        status = one.run()
    finally:
        one.close()
    assert status.up, status.last_error
    assert delta(before, counters(krb_sim, EX01)).get("auth_exchange_kerberos", 0) > 0


def test_an_empty_ticket_cache_says_how_to_fill_it(krb_sim, kdc, tmp_path):
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc, ticket_cache=f"FILE:{tmp_path / 'krb5cc_none'}"))
    assert "no valid ticket" in message and "kinit" in message and "keytab_file" in message, message


# ------------------------------------------------------------------------------------------------
# What fails, and what the operator reads
# ------------------------------------------------------------------------------------------------


def test_wrong_password(krb_sim, kdc, tmp_path, monkeypatch):
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc), password_env="WRONG_PASSWORD")
    assert "refused the password" in message and kdc.user_principal in message, message


def test_wrong_password_through_negotiate_gives_the_kdcs_reason_without_hastening_lockout(
        krb_sim, kdc, tmp_path, monkeypatch):
    """Negotiate drops Kerberos (the KDC refuses the password) and NTLM is refused too: the operator
    reads the KDC's reason. Finding it costs one more attempt with the wrong password, once per
    credential and SPN every ten minutes, not once per run (each bad attempt counts towards lockout)."""
    principal = kdc.add_user("svc-lockout", SIM_PASSWORD)
    monkeypatch.setenv("WRONG_PASSWORD", "not-the-password")
    auth = kerberos(kdc, exchange="negotiate", principal=principal)

    def refusals() -> int:
        return kdc.log_file.read_text().count(f"PREAUTH_FAILED: {principal} ")

    counts = [refusals()]
    for _ in (1, 2):
        message = run_auth_failure(krb_sim, tmp_path, auth, password_env="WRONG_PASSWORD",
                                   collector=registry.by_name()["owa_app_pool"]())
        assert "the KDC refused the password" in message and "Negotiate then tried NTLM" in message, message
        counts.append(refusals())
    # Each run: Negotiate's own attempt; the first one also the diagnosis's.
    assert (counts[1] - counts[0], counts[2] - counts[1]) == (2, 1), counts


def test_unknown_principal(krb_sim, kdc, tmp_path):
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc, principal=f"nobody@{kdc.realm}"))
    assert "does not know the user" in message and f"nobody@{kdc.realm}" in message, message


def test_unknown_spn_with_kerberos_only(krb_sim, kdc, tmp_path):
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc, spn_hostname={EX01: "mail.contoso.com"}))
    assert "HTTP/mail.contoso.com" in message and "setspn" in message and "spn_hostname" in message, message


def test_a_ticket_for_another_host_is_refused(krb_sim, kdc, tmp_path):
    """A ticket for HTTP/ex02 shown to ex01 (a name whose SPN is registered on another server): Windows
    cannot decrypt it with its own keys and refuses it; so does the simulator, on both endpoints."""
    wrong_name = {EX01: "ex02.contoso.com"}
    before = counters(krb_sim, EX01)
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc, spn_hostname=wrong_name))
    assert "could not use the ticket for HTTP/ex02.contoso.com" in message and "spn_hostname" in message, message
    run_auth_failure(krb_sim, tmp_path, kerberos(kdc, exchange="negotiate", spn_hostname=wrong_name),
                     collector=registry.by_name()["owa_app_pool"]())  # /wsman, Negotiate with Kerberos inside
    used = delta(before, counters(krb_sim, EX01))
    assert used.get("auth_failures", 0) >= 2, used
    assert not any(key.startswith("auth_") and key != "auth_failures" for key in used), used  # nothing accepted


def test_a_host_that_does_not_accept_the_configured_mechanism(krb_sim, kdc, tmp_path):
    """Exchange's /PowerShell takes Kerberos only: NTLM and Basic are refused with the fix."""
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc, exchange="ntlm"))
    assert "accepts only Kerberos" in message and "auth: ntlm" in message, message
    message = run_auth_failure(krb_sim, tmp_path, ClientAuth(exchange="basic"))
    assert "Basic" in message and "kerberos" in message, message


def test_a_host_that_offers_basic_only(krb_sim, kdc, tmp_path):
    krb_sim.set_auth(EX01, ["basic"])
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc))
    assert "does not offer kerberos" in message and "Basic" in message, message


@pytest.fixture(scope="module")
def skewed_kdc(kdc, tmp_path_factory):
    """A second realm whose KDC's clock runs an hour ahead (libfaketime), with ex01's own SPN in it
    (``HTTP/ex01.contoso.com@SKEWED.TEST``, its keys beside the main realm's in the hosts' keytab)."""
    require_kerberos_tools(faketime=True)
    realm = TestKDC(tmp_path_factory.mktemp("skewed-kdc"), [], realm="SKEWED.TEST", clock_offset="+1h").start()
    realm.add_service(EX01, kdc.service_keytab)
    yield realm
    realm.stop()


def _knowing_the_skewed_realm(kdc, skewed_kdc, tmp_path, monkeypatch) -> None:
    """Clients and acceptors know both realms, and look for ex01's SPN in the skewed one."""
    both = tmp_path / "krb5.conf"
    kdc.extra_realms["SKEWED.TEST"] = skewed_kdc.port
    try:
        # [domain_realm] is the file's last section: the most specific name wins.
        both.write_text(kdc.krb5_conf_text() + f"    {EX01} = SKEWED.TEST\n")
    finally:
        kdc.extra_realms.pop("SKEWED.TEST")
    monkeypatch.setenv("KRB5_CONFIG", str(both))


def test_clock_skew_beyond_the_kdcs_limit(krb_sim, kdc, skewed_kdc, tmp_path, monkeypatch):
    _knowing_the_skewed_realm(kdc, skewed_kdc, tmp_path, monkeypatch)
    message = run_auth_failure(krb_sim, tmp_path, kerberos(kdc, principal=skewed_kdc.user_principal))
    assert "clock skew" in message and "NTP" in message, message


def test_clock_skew_through_negotiate(krb_sim, kdc, skewed_kdc, tmp_path, monkeypatch):
    """Negotiate drops Kerberos when the KDC refuses it for the clock and tries NTLM, which the server
    refuses for this user: the operator must still read that the clocks differ, not a generic 401."""
    _knowing_the_skewed_realm(kdc, skewed_kdc, tmp_path, monkeypatch)
    auth = kerberos(kdc, exchange="negotiate", principal=skewed_kdc.user_principal)
    before = counters(krb_sim, EX01)
    message = run_auth_failure(krb_sim, tmp_path, auth, collector=registry.by_name()["owa_app_pool"]())
    # The skewed KDC runs an hour ahead (skewed_kdc): the message gives that offset, and the fix.
    assert "clock skew between the exporter and the KDC" in message, message
    assert "60 minutes ahead of this machine's" in message and "sync time (NTP)" in message, message
    assert delta(before, counters(krb_sim, EX01)).get("auth_failures", 0) > 0  # it did reach the server
