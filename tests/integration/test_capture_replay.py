"""Every capture of real Exchange servers (../shared/captures/) replayed through the simulator and the real
pypsrp client into the collectors that read it, with the values asserted.

The expected values were read by hand from the files: thumbprints and validity with
``openssl x509 -inform DER -noout -fingerprint -sha1 -startdate -enddate -subject`` on each ``RawData``
(base64-decoded), the rest from the XML. A capture no collector reads yet is listed with the reason,
so a new capture cannot arrive unnoticed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.integration.owa_im_snapshots import (
    Snapshot,
    new_collector,
    snapshot,
    write_scenario,
)

pytestmark = pytest.mark.usefixtures("password_env")

CERT_NOT_BEFORE = "lync_owa_exchange_certificate_not_before_timestamp_seconds"
CERT_NOT_AFTER = "lync_owa_exchange_certificate_not_after_timestamp_seconds"
KEY_SIZE = "lync_owa_exchange_certificate_key_bit_length"
AUTH_FOUND = "lync_owa_exchange_auth_certificate_found"
AUTH_NOT_AFTER = "lync_owa_exchange_auth_certificate_not_after_timestamp_seconds"
IM_CHECK = "lync_owa_im_certificate_check_ok"
SOURCE = "lync_owa_im_settings_source_info"
CONFIG_CHECK = "lync_owa_config_check_ok"
AUTH_CN = "Microsoft Exchange Server Auth Certificate"


def utc(*parts: int) -> float:
    return dt.datetime(*parts, tzinfo=dt.timezone.utc).timestamp()


# thumbprint -> (subject CN, notBefore, notAfter), from openssl on each capture's RawData.
E15_CERTIFICATES = {
    "AF776F9F2771D7097BFC9B1C6EC338F58593C387": (AUTH_CN, utc(2021, 6, 8, 15, 50, 45), utc(2026, 5, 13, 15, 50, 45)),
    "C2030B5E9C17EE267DB39624FB9A50664512DF0C": ("Solo-E15A", utc(2021, 6, 8, 15, 48, 46), utc(2026, 6, 8, 15, 48, 46)),
    "4986654E9D72F216E91FF3A7655CCC4B9D9CA853": ("WMSvc-WIN-H8L9UIMVM7K", utc(2021, 6, 8, 14, 40, 1),
                                                 utc(2031, 6, 6, 14, 40, 1)),
}
E16_CERTIFICATES = {
    "92E196F3C8D3D753FCFC5B7690C3173AA1C0ABE3": (AUTH_CN, utc(2018, 11, 24, 0, 34, 3), utc(2023, 10, 29, 0, 34, 3)),
    "823884A32609DCDC8C4B5462952586C30D814073": ("Solo-E16A", utc(2018, 11, 24, 0, 32, 37), utc(2023, 11, 24, 0, 32, 37)),
    "A60C6E62FF85D208DF668D597A1B077E1534147F": ("WMSvc-WIN-9UC94ETVM30", utc(2018, 11, 23, 23, 22, 56),
                                                 utc(2028, 11, 20, 23, 22, 56)),
}
# wire/GetExchangeCertificateBroken.xml: RawData only, as Exchange remote PowerShell sends it. The first
# has no CN (subject "DC = Windows Azure CRP Certificate Generator"): its subject label is "none".
WIRE_CERTIFICATES = {
    "8BFE845E6DCA42BBDC8F872672CDA1A4E0C3EBF1": ("none", utc(2023, 1, 5, 7, 56, 58), utc(2024, 1, 5, 7, 56, 58)),
    "D003810EBE1624145889D031FBB77ED2BD280FD3": ("E2k16-1", utc(2022, 12, 30, 14, 39, 8), utc(2027, 12, 30, 14, 39, 8)),
    "2759456DC53C76E3DED093B567B6D8DAA42C0ADD": ("mail.contoso.lab", utc(2022, 9, 5, 14, 41, 2),
                                                 utc(2027, 9, 5, 14, 41, 2)),
    "63F480EA98F26E6F8AE7BB5311B33BB2C692D3CA": ("domain.com", utc(2022, 5, 31, 14, 52, 33), utc(2027, 5, 31, 14, 52, 33)),
    "FE0FAE9305F294F49DD2426AB214CC17853A7E87": ("WMSvc-SHA2-E2k16-1", utc(2021, 7, 29, 5, 24, 40),
                                                 utc(2031, 7, 27, 5, 24, 40)),
}

# What each capture feeds; the ones no collector reads, and why (tests/simulator/test_replay.py replays
# those through the real client too, with their values: Get-WinEvent -ListLog).
READ_BY = {
    "E15/GetExchangeCertificate.xml": "im_certificate", "E16/GetExchangeCertificate.xml": "im_certificate",
    "wire/GetExchangeCertificateBroken.xml": "im_certificate",
    "E15/GetAuthConfig.xml": "im_certificate", "E16/GetAuthConfig.xml": "im_certificate",
    "E19/GetSettingOverride.xml": "im_certificate",
    "E15/ExchangeBackEnd-OWA_web.config": "im_certificate",  # ClientAccess\Owa\web.config on Exchange 2013
    "E15/GetOwaVirtualDirectory.xml": "owa_im_settings", "E16/GetOwaVirtualDirectory.xml": "owa_im_settings",
    # Replayed through exchange_topology in tests/integration/test_exchange_servers.py (roles and version).
    "E15/GetExchangeServer.xml": "exchange_topology", "E16/GetExchangeServer.xml": "exchange_topology",
    # Replayed through the server_maintenance collector in tests/integration/test_server_maintenance.py.
    "E15/GetServerComponentState.xml": "server_maintenance", "E16/GetServerComponentState.xml": "server_maintenance",
}
NOT_READ = {
    # The proxy (front-end) OWA web.config: the IM keys live in the back end's (001, Exchange 2013).
    "E15/DefaultWebSite-OWA_web.config": "front-end proxy web.config; the IM keys are in the back end's",
    "E16/DefaultWebSite-OWA_web.config": "front-end proxy web.config; Exchange 2016 uses a setting override",
    "E16/ExchangeBackEnd-OWA_web.config": "Exchange 2016 reads IM settings from a setting override",
    # Get-WinEvent -ListLog Application: the log's configuration, not events.
    "E15/GetWinEventApplication.xml": "the Application log's configuration (-ListLog), not its events",
    "E16/GetWinEventApplication.xml": "the Application log's configuration (-ListLog), not its events",
}


def test_every_capture_is_replayed_or_has_a_reason(captures: Path):
    on_disk = {str(p.relative_to(captures)) for p in captures.rglob("*") if p.is_file()}
    assert on_disk == set(READ_BY) | set(NOT_READ)
    assert not set(READ_BY) & set(NOT_READ)


def replaying(sim, tmp_path: Path, captures: Path, host: str, files: dict[str, str]) -> None:
    lines = "".join(f"      {cmdlet}: {captures / name}\n" for cmdlet, name in files.items())
    sim.set_scenario(write_scenario(tmp_path, "replayed", f"hosts:\n  {host}:\n    replay:\n{lines}"))


def certificates(exported: Snapshot) -> dict[str, tuple[str, float, float]]:
    found = {}
    for (name, labels), value in exported.items():
        if name == CERT_NOT_AFTER:
            thumbprint, subject = labels
            found[thumbprint] = (subject, exported[(CERT_NOT_BEFORE, labels)], value)
            assert exported[(KEY_SIZE, labels)] == 2048
    return found


def uses(exported: Snapshot) -> dict[str, str]:
    return {labels[0]: labels[1] for (name, labels) in exported if name == "lync_owa_exchange_certificate_use_info"}


def checks(exported: Snapshot, metric: str) -> dict[str, float]:
    return {labels[0]: value for (name, labels), value in exported.items() if name == metric}


def test_exchange_2013_server_replayed(sim, tmp_path, captures):
    # ex01 is Exchange 2013 in the healthy estate: IM settings come from web.config.
    replaying(sim, tmp_path, captures, "ex01.contoso.com", {
        "Get-ExchangeCertificate": "E15/GetExchangeCertificate.xml",
        "Get-AuthConfig": "E15/GetAuthConfig.xml",
        "Get-Content": "E15/ExchangeBackEnd-OWA_web.config",
        "Get-OwaVirtualDirectory": "E15/GetOwaVirtualDirectory.xml",
    })
    exported = snapshot(sim, tmp_path, new_collector("im_certificate"), "ex01")
    assert certificates(exported) == E15_CERTIFICATES
    # Get-AuthConfig names AF77..., which is among the server's certificates.
    assert exported[(AUTH_FOUND, ())] == 1.0
    assert exported[(AUTH_NOT_AFTER, ())] == utc(2026, 5, 13, 15, 50, 45)
    assert uses(exported) == {"AF776F9F2771D7097BFC9B1C6EC338F58593C387": "auth"}  # no IM certificate configured
    # That server's web.config has no IM keys: readable, but neither key configured.
    assert exported[(SOURCE, ("web_config",))] == 1.0
    assert checks(exported, IM_CHECK) == {"settings_readable": 1.0, "thumbprint_configured": 0.0,
                                          "server_name_configured": 0.0}

    settings = snapshot(sim, tmp_path, new_collector("owa_im_settings"), "ex01")
    # InstantMessagingEnabled true, InstantMessagingType the enum object whose ToString is None.
    assert checks(settings, CONFIG_CHECK)["owa_vdir_im_enabled"] == 1.0
    assert checks(settings, CONFIG_CHECK)["owa_vdir_im_type_ocs"] == 0.0


def test_exchange_2016_server_replayed_with_a_real_setting_override(sim, tmp_path, captures):
    # ex02 reads a setting override (Exchange 2016 and later).
    replaying(sim, tmp_path, captures, "ex02.contoso.com", {
        "Get-ExchangeCertificate": "E16/GetExchangeCertificate.xml",
        "Get-AuthConfig": "E16/GetAuthConfig.xml",
        "Get-SettingOverride": "E19/GetSettingOverride.xml",
        "Get-OwaVirtualDirectory": "E16/GetOwaVirtualDirectory.xml",
    })
    exported = snapshot(sim, tmp_path, new_collector("im_certificate"), "ex02")
    assert certificates(exported) == E16_CERTIFICATES
    assert exported[(AUTH_FOUND, ())] == 1.0
    assert exported[(AUTH_NOT_AFTER, ())] == utc(2023, 10, 29, 0, 34, 3)
    assert uses(exported) == {"92E196F3C8D3D753FCFC5B7690C3173AA1C0ABE3": "auth"}
    # The real override is Cafe/HttpRequestFiltering (org-wide, Accepted): read without error, and it
    # is not an IM one, so neither IM key is configured.
    assert exported[(SOURCE, ("setting_override",))] == 1.0
    assert checks(exported, IM_CHECK) == {"settings_readable": 1.0, "thumbprint_configured": 0.0,
                                          "server_name_configured": 0.0}

    settings = snapshot(sim, tmp_path, new_collector("owa_im_settings"), "ex02")
    assert checks(settings, CONFIG_CHECK)["owa_vdir_im_enabled"] == 1.0
    assert checks(settings, CONFIG_CHECK)["owa_vdir_im_type_ocs"] == 0.0


def test_the_wire_form_certificate_answer(sim, tmp_path, captures):
    # The answer exactly as Exchange remote PowerShell sent it (RawData only), on the healthy ex02,
    # whose IM override names a certificate that is not among these five: E3 says so.
    replaying(sim, tmp_path, captures, "ex02.contoso.com",
              {"Get-ExchangeCertificate": "wire/GetExchangeCertificateBroken.xml"})
    exported = snapshot(sim, tmp_path, new_collector("im_certificate"), "ex02")
    assert certificates(exported) == WIRE_CERTIFICATES
    im_checks = checks(exported, IM_CHECK)
    assert im_checks["thumbprint_configured"] == 1.0 and im_checks["server_name_configured"] == 1.0
    assert im_checks["thumbprint_matches_certificate"] == 0.0
    # The Auth certificate Get-AuthConfig names (the healthy estate's) is not among them either.
    assert exported[(AUTH_FOUND, ())] == 0.0
    assert uses(exported) == {}  # neither the IM nor the Auth certificate is among them: none is the integration's
