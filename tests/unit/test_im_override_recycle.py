"""Which setting overrides' change time counts for OWA's worker, and the clock tolerance (pure parts)."""

from __future__ import annotations

import datetime as dt

from collectors.im_certificate.override_recycle import (
    CLOCK_TOLERANCE,
    change_time,
    last_change_in_use,
    recycled_after,
)

UTC = dt.timezone.utc
T0 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def override(parameters: list[str], changed: dt.datetime, servers: list[str] | None = None,
             component: str = "OwaServer", status: str = "Accepted") -> dict:
    # The property names and forms of a real Get-SettingOverride object (captures/exchange/E19).
    return {"ComponentName": component, "SectionName": "IMSettings", "Parameters": parameters,
            "Server": servers, "Status": status, "MinVersion": None, "MaxVersion": None,
            "WhenChangedUTC": changed, "WhenChanged": changed.astimezone(dt.timezone(dt.timedelta(hours=1)))}


BOTH = ["IMServerName=pool01.contoso.com", "IMCertificateThumbprint=" + "A" * 40]


def test_change_time_prefers_the_utc_property_and_falls_back():
    local = dt.datetime(2021, 11, 17, 19, 31, 45, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert change_time({"WhenChangedUTC": T0, "WhenChanged": local}) == T0
    assert change_time({"WhenChangedUTC": None, "WhenChanged": local}) == dt.datetime(2021, 11, 17, 18, 31, 45,
                                                                                        tzinfo=UTC)
    assert change_time({"WhenChanged": dt.datetime(2021, 1, 1)}) == dt.datetime(2021, 1, 1, tzinfo=UTC)
    assert change_time({"WhenChanged": "2021-01-01"}) is None
    assert change_time({}) is None


def test_the_organisation_override_counts_when_it_is_the_one_in_use():
    org = override(BOTH, T0)
    cafe = override(["Enabled=True"], T0 + dt.timedelta(days=1), component="Cafe")
    assert last_change_in_use([org, cafe], "ex02.contoso.com", (15, 2, 1118, 7)) == T0


def test_a_server_override_setting_both_keys_hides_a_newer_organisation_one():
    server = override(BOTH, T0, servers=["EX02"])
    org = override(BOTH, T0 + dt.timedelta(hours=3))
    assert last_change_in_use([server, org], "ex02.contoso.com", None) == T0
    # ...but not on another server, which uses the organisation's values.
    assert last_change_in_use([server, org], "ex03.contoso.com", None) == T0 + dt.timedelta(hours=3)


def test_keys_from_both_scopes_take_the_newer_change():
    server = override(["IMCertificateThumbprint=" + "B" * 40], T0, servers=["EX02"])
    org = override(BOTH, T0 + dt.timedelta(hours=3))
    assert last_change_in_use([server, org], "ex02.contoso.com", None) == T0 + dt.timedelta(hours=3)


def test_overrides_not_in_effect_do_not_count():
    pending = override(BOTH, T0 + dt.timedelta(hours=3), status="NotAccepted")
    assert last_change_in_use([override(BOTH, T0), pending], "ex02", None) == T0
    assert last_change_in_use([pending], "ex02", None) is None


def test_the_tolerance_boundary():
    assert CLOCK_TOLERANCE == dt.timedelta(minutes=5)
    assert recycled_after(T0, T0 + dt.timedelta(seconds=1))
    assert recycled_after(T0, T0 - CLOCK_TOLERANCE)
    assert not recycled_after(T0, T0 - CLOCK_TOLERANCE - dt.timedelta(seconds=1))
