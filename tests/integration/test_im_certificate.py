"""Check E3 through the real path: the im_certificate collector against the simulated estate.

ex01 is Exchange 2013 (IM settings in OWA's web.config, read over the Windows endpoint), ex02 is
Exchange 2019 (a setting override, read over the Exchange endpoint). Each scenario must flip the
collector's own signals on the server it breaks, and nothing else.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from collectors.im_certificate.collector import ImCertificateCollector
from collectors.im_certificate.im_settings import IM_CHECKS, SETTINGS_PROBLEMS
from tests.integration.owa_im_snapshots import (
    Snapshot,
    assert_same,
    assert_untouched,
    healthy_estate,
    run_once,
    snapshot,
    write_scenario,
)

pytestmark = pytest.mark.usefixtures("password_env")

CHECK = "lync_owa_im_certificate_check_ok"
PROBLEM = "lync_owa_im_settings_problem"
SOURCE = "lync_owa_im_settings_source_info"
IM_NOT_AFTER = "lync_owa_im_certificate_not_after_timestamp_seconds"
CERT_NOT_AFTER = "lync_owa_exchange_certificate_not_after_timestamp_seconds"
CERT_PRIVATE_KEY = "lync_owa_exchange_certificate_has_private_key"
AUTH_FOUND = "lync_owa_exchange_auth_certificate_found"
AUTH_NOT_AFTER = "lync_owa_exchange_auth_certificate_not_after_timestamp_seconds"

MAIL, AUTH = "mail.contoso.com", "Microsoft Exchange Server Auth Certificate"
DAY = 86400.0


def thumbprints(exported: Snapshot) -> dict[str, str]:
    """subject CN -> thumbprint of the certificates exported (the simulator makes real ones per run)."""
    return {labels[1]: labels[0] for (name, labels) in exported if name == CERT_NOT_AFTER}


def collect(sim, tmp_path: Path, target: str, settings: dict | None = None, **config_kw) -> Snapshot:
    return snapshot(sim, tmp_path, ImCertificateCollector(), target, settings, **config_kw)


def failed_run(sim, tmp_path: Path, target: str, settings: dict | None = None):
    return run_once(sim, tmp_path, ImCertificateCollector(), target, settings)


def checks(exported: Snapshot) -> dict[str, float]:
    return {labels[0]: value for (name, labels), value in exported.items() if name == CHECK}


def problems(exported: Snapshot) -> dict[str, float]:
    return {labels[0]: value for (name, labels), value in exported.items() if name == PROBLEM}


def value(exported: Snapshot, metric: str, *labels: str) -> float | None:
    return exported.get((metric, labels))


def all_checks_pass(exported: Snapshot) -> None:
    assert checks(exported) == {check: 1.0 for check in IM_CHECKS}
    assert problems(exported) == {problem: 0.0 for problem in SETTINGS_PROBLEMS}
    assert value(exported, AUTH_FOUND) == 1.0


# --- healthy ---------------------------------------------------------------------------------------


def test_healthy_every_check_passes_on_both_versions(sim, tmp_path):
    ex01 = collect(sim, tmp_path, "ex01")
    ex02 = collect(sim, tmp_path, "ex02")
    all_checks_pass(ex01)
    all_checks_pass(ex02)
    assert value(ex01, SOURCE, "web_config") == 1.0
    assert value(ex02, SOURCE, "setting_override") == 1.0
    now = time.time()
    assert 500 * DAY < value(ex01, IM_NOT_AFTER) - now < 560 * DAY
    # Every certificate is read from its DER (RawData is all Exchange sends) and exported with its CN;
    # the web.config thumbprint is the SHA-1 of the DER the server sent, or the match above would fail.
    certs = thumbprints(ex01)
    assert set(certs) == {MAIL, "EX01", AUTH} and all(len(t) == 40 and t.isupper() for t in certs.values())
    assert value(ex01, IM_NOT_AFTER) == value(ex01, CERT_NOT_AFTER, certs[MAIL], MAIL)
    assert value(ex01, AUTH_NOT_AFTER) == value(ex01, CERT_NOT_AFTER, certs[AUTH], AUTH)
    # The private key, from the server's certificate store (Get-ChildItem | Select-Object).
    assert {labels: v for (name, labels), v in ex01.items() if name == CERT_PRIVATE_KEY} == {
        (certs[MAIL], MAIL): 1.0, (certs["EX01"], "EX01"): 1.0, (certs[AUTH], AUTH): 1.0}
    # One Auth certificate for the organisation: the same on both servers.
    assert thumbprints(ex02)[AUTH] == certs[AUTH]


# --- shipped scenarios: each flips only what it breaks ---------------------------------------------


@pytest.fixture
def healthy(sim, tmp_path):
    """Both servers' E3 and E6 answers in the healthy estate, to compare a broken one with."""
    return healthy_estate(sim, tmp_path)


def test_thumbprint_drift_is_a_mismatch_on_ex01_only(sim, tmp_path, healthy):
    sim.set_scenario("thumbprint-drift")
    ex01 = collect(sim, tmp_path, "ex01")
    assert checks(ex01) == {
        "settings_readable": 1.0,
        "thumbprint_configured": 1.0,
        "thumbprint_well_formed": 1.0,
        "thumbprint_matches_certificate": 0.0,
        "server_name_configured": 1.0,
        "server_name_matches_pool": 1.0,
    }
    assert value(ex01, IM_NOT_AFTER) is None
    # Renewed: another certificate with the same subject; the old one (still in web.config) is gone.
    before = thumbprints(healthy[("ex01", "im_certificate")])[MAIL]
    assert thumbprints(ex01)[MAIL] != before
    assert value(ex01, CERT_NOT_AFTER, before, MAIL) is None
    assert value(ex01, AUTH_FOUND) == 1.0
    assert_untouched(sim, tmp_path, healthy, ("ex01", "im_certificate"))


def test_thumbprint_malformed_is_not_reported_as_a_mismatch(sim, tmp_path, healthy):
    sim.set_scenario("thumbprint-malformed")
    ex01 = collect(sim, tmp_path, "ex01")
    assert checks(ex01) == {
        "settings_readable": 1.0,
        "thumbprint_configured": 1.0,
        "thumbprint_well_formed": 0.0,
        "server_name_configured": 1.0,
        "server_name_matches_pool": 1.0,
    }
    assert value(ex01, IM_NOT_AFTER) is None
    # The certificate itself is fine and still exported.
    mail = thumbprints(ex01)[MAIL]
    assert value(ex01, CERT_PRIVATE_KEY, mail, MAIL) == 1.0 and value(ex01, CERT_NOT_AFTER, mail, MAIL) is not None
    assert_untouched(sim, tmp_path, healthy, ("ex01", "im_certificate"))


def test_cert_expiring_moves_only_the_not_after(sim, tmp_path, healthy):
    sim.set_scenario("cert-expiring")
    ex01 = collect(sim, tmp_path, "ex01")
    all_checks_pass(ex01)
    left = value(ex01, IM_NOT_AFTER) - time.time()
    assert 4 * DAY < left < 6 * DAY
    # A new NotAfter is a new certificate (a new DER, so a new thumbprint), as a real renewal is: its
    # series replace the old one's, and nothing else of this server changes.
    old, new = thumbprints(healthy[("ex01", "im_certificate")])[MAIL], thumbprints(ex01)[MAIL]
    assert old != new
    expected = {key: v for key, v in healthy[("ex01", "im_certificate")].items() if old not in key[1]}
    expected.update({key: v for key, v in ex01.items() if new in key[1]})
    expected[(IM_NOT_AFTER, ())] = ex01[(IM_NOT_AFTER, ())]
    assert_same(expected, ex01)
    assert_untouched(sim, tmp_path, healthy, ("ex01", "im_certificate"))


# --- settings sources ------------------------------------------------------------------------------


def test_source_can_be_forced(sim, tmp_path):
    # Exchange 2019 has no IM keys in web.config: forced to read it, both settings are missing.
    ex02 = collect(sim, tmp_path, "ex02", {"source": "web_config"})
    assert value(ex02, SOURCE, "web_config") == 1.0
    assert checks(ex02) == {"settings_readable": 1.0, "thumbprint_configured": 0.0, "server_name_configured": 0.0}
    # Exchange 2013 has no Get-SettingOverride: the run fails as a command error, it does not guess.
    status = failed_run(sim, tmp_path, "ex01", {"source": "setting_override"})
    assert not status.up and status.last_error_kind == "command"


def test_cumulative_update_dropped_the_keys(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "cu-dropped-keys", """
hosts:
  ex01.contoso.com:
    exchange:
      web_config_im: null
"""))
    ex01 = collect(sim, tmp_path, "ex01")
    assert checks(ex01) == {"settings_readable": 1.0, "thumbprint_configured": 0.0, "server_name_configured": 0.0}


def test_missing_web_config_is_a_typed_problem(sim, tmp_path, caplog):
    # The Setup key points somewhere that has no OWA: the file is not found.
    sim.set_scenario(write_scenario(tmp_path, "moved-install", r"""
hosts:
  ex01.contoso.com:
    windows:
      registry:
        'HKLM:\SOFTWARE\Microsoft\ExchangeServer\v15\Setup':
          MsiInstallPath: 'D:\Exchange\'
"""))
    with caplog.at_level(logging.WARNING):
        ex01 = collect(sim, tmp_path, "ex01")
    assert checks(ex01) == {"settings_readable": 0.0}
    assert {p for p, v in problems(ex01).items() if v} == {"web_config_missing"}
    assert value(ex01, AUTH_FOUND) == 1.0  # the certificates are still exported
    assert any("ex01.contoso.com" in r.getMessage() and r"D:\Exchange\ClientAccess\Owa\web.config" in r.getMessage()
               for r in caplog.records)


def test_oversized_web_config_is_refused_unparsed(sim, tmp_path, caplog):
    sim.set_scenario(write_scenario(tmp_path, "huge-web-config", f"""
hosts:
  ex01.contoso.com:
    exchange:
      web_config_im:
        server_name: {"x" * (1024 * 1024 + 10)}
"""))
    with caplog.at_level(logging.WARNING):
        ex01 = collect(sim, tmp_path, "ex01")
    assert checks(ex01) == {"settings_readable": 0.0}
    assert {p for p, v in problems(ex01).items() if v} == {"web_config_too_large"}
    assert any("ex01.contoso.com" in r.getMessage() and "web.config" in r.getMessage() for r in caplog.records)


def test_server_scoped_override_wins_and_conflicts_are_reported(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "ex02-own-override", """
exchange_org:
  setting_overrides:
    IM Settings EX02:
      parameters: ["IMCertificateThumbprint=${cert:ex02.contoso.com/exchange-self-signed}"]
      servers: [EX02]
    IM Settings EX01:
      parameters: [IMCertificateThumbprint=0000000000000000000000000000000000000000]
      servers: [ex01.contoso.com]
"""))
    ex02 = collect(sim, tmp_path, "ex02")
    all_checks_pass(ex02)  # EX02's own override names its self-signed certificate, which is installed
    assert value(ex02, IM_NOT_AFTER) == value(ex02, CERT_NOT_AFTER, thumbprints(ex02)["EX02"], "EX02")

    sim.set_scenario(write_scenario(tmp_path, "conflicting-overrides", """
exchange_org:
  setting_overrides:
    IM Settings again:
      parameters: [IMServerName=pool02.contoso.com]
"""))
    ex02 = collect(sim, tmp_path, "ex02")
    assert checks(ex02) == {"settings_readable": 0.0}
    assert {p for p, v in problems(ex02).items() if v} == {"setting_override_conflict"}


@pytest.mark.parametrize(
    ("thumbprint", "failing"),
    [
        ("\u200eAAF6F96EFBDD84EA4A7F1A4B222DC07942C1BA56", "thumbprint_well_formed"),  # pasted from the MMC
        ("DD6F96EFBDD84EA4A7F1A4B222DC07942C1BA5FF", "thumbprint_matches_certificate"),  # not installed
    ],
)
def test_setting_override_thumbprint_problems_on_exchange_2019(sim, tmp_path, thumbprint, failing):
    sim.set_scenario(write_scenario(tmp_path, "ex02-override-thumbprint", f"""
exchange_org:
  setting_overrides:
    IM Settings:
      parameters: ["IMServerName=pool01.contoso.com", "IMCertificateThumbprint={thumbprint}"]
"""))
    ex02 = collect(sim, tmp_path, "ex02")
    assert {check for check, v in checks(ex02).items() if v == 0.0} == {failing}
    assert value(ex02, IM_NOT_AFTER) is None
    assert value(ex02, SOURCE, "setting_override") == 1.0


# --- the certificate the thumbprint names ---------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "failing"),
    [
        ("has_private_key: false", {"certificate_has_private_key"}),
        ("not_after: -1d", {"certificate_valid_now"}),
        ("not_before: +1d", {"certificate_valid_now"}),
    ],
)
def test_certificate_problems(sim, tmp_path, change, failing):
    sim.set_scenario(write_scenario(tmp_path, "cert-problem", f"""
hosts:
  ex01.contoso.com:
    exchange:
      certificates:
        im-um:
          {change}
"""))
    ex01 = collect(sim, tmp_path, "ex01")
    assert {check for check, v in checks(ex01).items() if v == 0.0} == failing
    assert set(checks(ex01)) == set(IM_CHECKS)


def test_server_name_against_the_configured_pool(sim, tmp_path):
    other_pool = collect(sim, tmp_path, "ex01", lync_pool_fqdn="pool02.contoso.com")
    assert checks(other_pool)["server_name_matches_pool"] == 0.0
    no_pool = collect(sim, tmp_path, "ex02", lync_pool_fqdn=None)
    assert "server_name_matches_pool" not in checks(no_pool)
    assert checks(no_pool)["server_name_configured"] == 1.0
    upper_case = collect(sim, tmp_path, "ex01", lync_pool_fqdn="POOL01.Contoso.COM")
    assert checks(upper_case)["server_name_matches_pool"] == 1.0


def test_auth_certificate_not_installed(sim, tmp_path):
    sim.set_scenario(write_scenario(tmp_path, "auth-missing", """
exchange_org:
  auth_config:
    current_certificate_thumbprint: "1111111111111111111111111111111111111111"
"""))
    ex02 = collect(sim, tmp_path, "ex02")
    assert value(ex02, AUTH_FOUND) == 0.0
    assert value(ex02, AUTH_NOT_AFTER) is None
    assert checks(ex02) == {check: 1.0 for check in IM_CHECKS}


def test_failing_cmdlet_fails_the_run_with_its_kind(sim, tmp_path):
    sim.set_fault("ex02.contoso.com", "terminating_error", cmdlet="Get-ExchangeCertificate")
    status = failed_run(sim, tmp_path, "ex02")
    assert not status.up and status.last_error_kind == "command"
    sim.clear_faults()
    assert failed_run(sim, tmp_path, "ex02").up


# --- which certificates are the integration's ------------------------------------------------------


USE_INFO = "lync_owa_exchange_certificate_use_info"


def uses(exported: Snapshot) -> dict[str, str]:
    return {labels[0]: labels[1] for (name, labels) in exported if name == USE_INFO}


@pytest.mark.parametrize("target", ["ex01", "ex02"])
def test_the_im_and_the_auth_certificate_are_marked_as_the_integrations(sim, tmp_path, target):
    exported = collect(sim, tmp_path, target)
    by_cn = thumbprints(exported)
    marked = uses(exported)
    assert marked[by_cn[AUTH]] == "auth"
    assert sorted(marked.values()) == ["auth", "im"]
    (im_thumbprint,) = [t for t, use in marked.items() if use == "im"]
    assert value(exported, IM_NOT_AFTER) == value(exported, CERT_NOT_AFTER, im_thumbprint, next(
        cn for cn, t in by_cn.items() if t == im_thumbprint))
    assert len(by_cn) > 2  # and the server has others, which are not the integration's


def test_ignored_certificates_leave_the_metrics_but_never_the_integrations_own(sim, tmp_path):
    exported = collect(sim, tmp_path, "ex01")
    marked = uses(exported)
    others = sorted(t for t in thumbprints(exported).values() if t not in marked)
    ignored = [others[0].lower(), *marked]  # any case; the integration's own are listed too
    again = collect(sim, tmp_path, "ex01", {"ignored_certificates": ignored})
    assert set(thumbprints(again).values()) == set(thumbprints(exported).values()) - {others[0]}
    assert uses(again) == marked
