"""Judging OWA's IM settings (check E3): thumbprints, setting overrides, and the checks in their order."""

from __future__ import annotations

import datetime as dt

import pytest

from collectors.im_certificate.im_settings import (
    IM_CHECKS,
    PROBLEM_OVERRIDE_CONFLICT,
    Certificate,
    ImSettings,
    evaluate,
    im_settings_from_overrides,
    parse_version,
    server_name_matches_pool,
    thumbprint_well_formed,
)

THUMBPRINT = "74D4289D432CCF279E83886B413062367B198913"
NOW = dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc)
POOL = "pool01.contoso.com"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (THUMBPRINT, True),
        (THUMBPRINT.lower(), True),
        ("EA5A332496CC05DA69B75B66111C0F78A110D22d", True),
        (f"  {THUMBPRINT}\r\n\t", True),
        ("\u200e" + THUMBPRINT, False),  # the MMC copy trap
        (THUMBPRINT + "\u200f", False),
        ("\u00a0" + THUMBPRINT, False),  # a no-break space is not ordinary whitespace
        (THUMBPRINT[:-1], False),
        (THUMBPRINT + "0", False),
        ("74 D4 28 9D 43 2C CF 27 9E 83 88 6B 41 30 62 36 7B 19 89 13", False),
        ("G" * 40, False),
        ("\uff10" * 40, False),  # full-width digits
        ("", False),
        (None, False),
    ],
)
def test_thumbprint_well_formed(value, ok):
    assert thumbprint_well_formed(value) is ok


def test_server_name_matches_pool():
    assert server_name_matches_pool("POOL01.contoso.com.", POOL)
    assert server_name_matches_pool(" pool01.contoso.com ", POOL)
    assert not server_name_matches_pool("\u200epool01.contoso.com", POOL)
    assert not server_name_matches_pool("", POOL)


# --- setting overrides -----------------------------------------------------------------------------


def override(parameters, servers=(), component="OwaServer", section="IMSettings", **more):
    """An override with the property names real servers send (../shared/captures/exchange/E19)."""
    return {"ComponentName": component, "SectionName": section, "Parameters": list(parameters),
            "Server": list(servers) or None, "Status": "Accepted", **more}


def test_organisation_wide_override():
    settings = im_settings_from_overrides(
        [override([f"IMServerName={POOL}", f"IMCertificateThumbprint={THUMBPRINT}"])], "ex02.contoso.com")
    assert settings == ImSettings("setting_override", POOL, THUMBPRINT)


def test_other_components_and_sections_are_ignored():
    overrides = [override([f"IMServerName={POOL}"], component="OwaClient"),
                 override([f"IMServerName={POOL}"], section="Other"),
                 override(["IMCertificateThumbprint=" + THUMBPRINT], component=" owaserver ", section="imsettings")]
    assert im_settings_from_overrides(overrides, "ex02.contoso.com") == ImSettings("setting_override", None, THUMBPRINT)


def test_server_scoped_override_wins_and_other_servers_do_not_count():
    overrides = [
        override([f"IMServerName={POOL}", f"IMCertificateThumbprint={THUMBPRINT}"]),
        override(["IMCertificateThumbprint=" + "A" * 40], servers=["EX02"]),
        override(["IMServerName=other.contoso.com"], servers=["ex03.contoso.com"]),
    ]
    assert im_settings_from_overrides(overrides, "ex02.contoso.com") == ImSettings("setting_override", POOL, "A" * 40)
    assert im_settings_from_overrides(overrides, "EX01") == ImSettings("setting_override", POOL, THUMBPRINT)


def test_conflicting_overrides_of_one_scope_are_a_problem():
    overrides = [override([f"IMServerName={POOL}"]), override(["IMServerName=pool02.contoso.com"])]
    conflict = ImSettings("setting_override", problem=PROBLEM_OVERRIDE_CONFLICT)
    assert im_settings_from_overrides(overrides, "ex02") == conflict
    # The same value twice, however spelt, is no conflict.
    same = [override([f"IMServerName={POOL}"]), override([f"imservername = {POOL.upper()}"])]
    assert im_settings_from_overrides(same, "ex02").server_name == POOL


def test_odd_parameter_shapes_are_tolerated():
    overrides = [
        {"ComponentName": "OwaServer", "SectionName": "IMSettings", "Parameters": f"IMServerName={POOL}",
         "Server": None},
        {"ComponentName": None, "SectionName": None, "Parameters": None},
        override(["no equals sign", "=value without key", f"IMCertificateThumbprint={THUMBPRINT}=x"]),
    ]
    assert im_settings_from_overrides(overrides, "10.0.0.5") == ImSettings("setting_override", POOL, THUMBPRINT + "=x")


def test_no_override_means_nothing_configured():
    assert im_settings_from_overrides([], "ex02") == ImSettings("setting_override")


def test_the_old_invented_property_names_configure_nothing():
    # Component/Section were this project's guess; real servers send ComponentName/SectionName.
    old = {"Component": "OwaServer", "Section": "IMSettings", "Parameters": [f"IMServerName={POOL}"]}
    assert im_settings_from_overrides([old], "ex02") == ImSettings("setting_override")


@pytest.mark.parametrize(("pattern", "applies"), [
    ("EX16*", True), ("ex16-0?", True), ("ex16-01.contoso.com", True), ("*.contoso.com", True),
    ("EX19*", False), ("ex16-01.fabrikam.com", False),
])
def test_server_scopes_with_wildcards(pattern, applies):
    # Microsoft's guidance scopes overrides with wildcards: New-SettingOverride -Server EX16*.
    scoped = override(["IMCertificateThumbprint=" + "A" * 40], servers=[pattern])
    settings = im_settings_from_overrides([override([f"IMServerName={POOL}"]), scoped], "ex16-01.contoso.com")
    assert (settings.certificate_thumbprint == "A" * 40) is applies


def test_version_bounds_and_status_decide_whether_an_override_is_in_effect():
    build = (15, 1, 2375, 7)
    bounded = [
        override(["IMServerName=old.contoso.com"], MaxVersion="15.1.2308.8"),
        override([f"IMServerName={POOL}"], MinVersion="15.1.2375.7", MaxVersion="Version 15.1 (Build 2507.6)"),
        override(["IMServerName=rejected.contoso.com"], Status="Rejected"),
    ]
    assert im_settings_from_overrides(bounded, "ex02", build).server_name == POOL
    # An unknown build: every bound is taken as met, so both bounded overrides count and disagree.
    assert im_settings_from_overrides(bounded, "ex02").problem == PROBLEM_OVERRIDE_CONFLICT


def test_parse_version():
    assert parse_version("15.2.1118.7") == (15, 2, 1118, 7)
    assert parse_version("Version 15.1 (Build 2375.7)") == (15, 1, 2375, 7)
    assert parse_version(None) is None and parse_version(" ") is None


# --- the checks in their order ---------------------------------------------------------------------


def cert(**changes) -> Certificate:
    values = dict(thumbprint=THUMBPRINT, subject_cn="mail.contoso.com", not_before=NOW - dt.timedelta(days=10),
                  not_after=NOW + dt.timedelta(days=10), has_private_key=True, public_key_size=2048,
                  dns_names=("mail.contoso.com",))
    values.update(changes)
    return Certificate(**values)


def failing(result) -> set[str]:
    return {check for check, ok in result.checks.items() if not ok}


def test_everything_passes():
    result = evaluate(ImSettings("web_config", POOL, THUMBPRINT.lower()), {THUMBPRINT: cert()}, POOL, NOW)
    assert result.checks == {check: True for check in IM_CHECKS}
    assert result.certificate == cert()


def test_unreadable_settings_judge_nothing_else():
    result = evaluate(ImSettings("web_config", problem="web_config_not_xml"), {THUMBPRINT: cert()}, POOL, NOW)
    assert result.checks == {"settings_readable": False}


def test_nothing_configured():
    result = evaluate(ImSettings("web_config", "  ", None), {THUMBPRINT: cert()}, POOL, NOW)
    assert result.checks == {"settings_readable": True, "thumbprint_configured": False, "server_name_configured": False}


def test_malformed_is_not_also_a_mismatch():
    result = evaluate(ImSettings("web_config", POOL, "\u200e" + THUMBPRINT), {THUMBPRINT: cert()}, POOL, NOW)
    assert failing(result) == {"thumbprint_well_formed"}
    assert "thumbprint_matches_certificate" not in result.checks and result.certificate is None


def test_mismatch():
    result = evaluate(ImSettings("web_config", POOL, "B" * 40), {THUMBPRINT: cert()}, POOL, NOW)
    assert failing(result) == {"thumbprint_matches_certificate"}
    assert "certificate_has_private_key" not in result.checks


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"has_private_key": False}, {"certificate_has_private_key"}),
        ({"not_after": NOW - dt.timedelta(seconds=1)}, {"certificate_valid_now"}),
        ({"not_before": NOW + dt.timedelta(seconds=1)}, {"certificate_valid_now"}),
    ],
)
def test_certificate_checks(changes, expected):
    result = evaluate(ImSettings("web_config", POOL, THUMBPRINT), {THUMBPRINT: cert(**changes)}, POOL, NOW)
    assert failing(result) == expected


def test_a_private_key_the_store_did_not_report_is_not_judged():
    result = evaluate(ImSettings("web_config", POOL, THUMBPRINT), {THUMBPRINT: cert(has_private_key=None)}, POOL, NOW)
    assert "certificate_has_private_key" not in result.checks and not failing(result)


def test_unknown_validity_is_not_judged():
    result = evaluate(ImSettings("web_config", POOL, THUMBPRINT), {THUMBPRINT: cert(not_after=None)}, POOL, NOW)
    assert "certificate_valid_now" not in result.checks and not failing(result)


def test_pool_name_checked_only_when_configured():
    settings = ImSettings("setting_override", "pool02.contoso.com", THUMBPRINT)
    assert failing(evaluate(settings, {THUMBPRINT: cert()}, POOL, NOW)) == {"server_name_matches_pool"}
    assert "server_name_matches_pool" not in evaluate(settings, {THUMBPRINT: cert()}, None, NOW).checks
