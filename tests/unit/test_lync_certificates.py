"""Pure parts of the Lync certificate collector: subjects, labels, key sizes, the OAuth certificate in effect."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from collectors.lync_certificates import (
    CN_NONE,
    THUMBPRINT_MALFORMED,
    USE_OTHER,
    LyncCertificate,
    LyncCertificateSettings,
    cn_label,
    current_oauth_certificate,
    holds_domain,
    key_size_of,
    parse_certificate,
    sip_domain_from_pool,
    thumbprint_label,
    use_label,
)

NOW = dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize("value, label", [
    ("OAuthTokenIssuer", "OAuthTokenIssuer"),
    (" Default ", "Default"),
    ("Web Services", USE_OTHER),
    ("", USE_OTHER),
    (None, USE_OTHER),
    ("x" * 60, USE_OTHER),
])
def test_use_label(value, label):
    assert use_label(value) == label


@pytest.mark.parametrize("value, label", [
    ("a486523d61bf788600f05f4947fa41a118549469", "A486523D61BF788600F05F4947FA41A118549469"),
    ("\u200eA486523D61BF788600F05F4947FA41A118549469", "A486523D61BF788600F05F4947FA41A118549469"),
    ("A4 86 52 3D 61 BF 78 86 00 F0 5F 49 47 FA 41 A1 18 54 94 69", "A486523D61BF788600F05F4947FA41A118549469"),
    ("A486523D", THUMBPRINT_MALFORMED),
    ("Z486523D61BF788600F05F4947FA41A118549469", THUMBPRINT_MALFORMED),
    (None, THUMBPRINT_MALFORMED),
])
def test_thumbprint_label(value, label):
    assert thumbprint_label(value) == label


def test_cn_label_is_bounded_and_never_empty():
    assert cn_label("") == CN_NONE
    long = cn_label("a" * 200)
    assert len(long) == 64 and long.endswith("…")


@pytest.mark.parametrize("obj, bits", [
    ({}, None),  # Get-CsCertificate: no key size at all
    ({"KeySize": 2048}, 2048),
    ({"PublicKeySize": "4096"}, 4096),
    ({"KeySize": None, "PublicKeySize": 1024}, 1024),
    ({"KeySize": True}, None),
    ({"KeySize": "big"}, None),
    ({"KeySize": 0}, None),
])
def test_key_size_of(obj, bits):
    assert key_size_of(obj) == bits


@pytest.mark.parametrize("pool, domain", [
    ("pool01.contoso.com", "contoso.com"),
    ("POOL01.Corp.Contoso.com.", "corp.contoso.com"),
    ("contoso.com", None),
    ("pool01", None),
    (None, None),
])
def test_sip_domain_from_pool(pool, domain):
    assert sip_domain_from_pool(pool) == domain


@pytest.mark.parametrize("cn, ok", [
    ("contoso.com", True),
    ("Contoso.COM.", True),
    ("pool01.contoso.com", True),
    ("*.contoso.com", True),
    ("notcontoso.com", False),
    ("contoso.com.evil.net", False),
    ("", False),
])
def test_holds_domain(cn, ok):
    assert holds_domain(cn, "contoso.com") is ok


def test_settings_sip_domain_is_normalised_and_validated():
    assert LyncCertificateSettings(sip_domain=" Contoso.COM. ").sip_domain == "contoso.com"
    assert LyncCertificateSettings().sip_domain is None
    for bad in ("contoso", "con toso.com", "*.contoso.com"):
        with pytest.raises(ValidationError):
            LyncCertificateSettings(sip_domain=bad)


def _cert(thumb: str, effective: dt.datetime | None, use: str = "OAuthTokenIssuer") -> LyncCertificate:
    return LyncCertificate(use, thumb, "contoso.com", None, None, effective, None)


def test_current_oauth_certificate_during_a_roll_over():
    old = _cert("A" * 40, NOW - dt.timedelta(days=300))
    new = _cert("B" * 40, NOW + dt.timedelta(days=2))
    other = _cert("C" * 40, None, use="Default")
    assert current_oauth_certificate([other, new, old], NOW) is old
    assert current_oauth_certificate([other, new, old], NOW + dt.timedelta(days=3)) is new
    assert current_oauth_certificate([new], NOW) is new  # only future ones: the first to come
    assert current_oauth_certificate([other], NOW) is None
    undated = _cert("D" * 40, None)
    assert current_oauth_certificate([undated], NOW) is undated


def test_parse_certificate_tolerates_null_use_and_thumbprint():
    cert = parse_certificate({"Use": None, "Thumbprint": None, "Subject": None})
    assert (cert.use, cert.thumbprint, cert.subject_cn) == (USE_OTHER, THUMBPRINT_MALFORMED, "")


def test_parse_certificate_tolerates_missing_optional_properties():
    cert = parse_certificate({"Use": "oauthtokenissuer", "Thumbprint": "a" * 40})
    assert cert.use == "oauthtokenissuer" and cert.thumbprint == "A" * 40
    assert cert.subject_cn == "" and cert.not_after is None and cert.key_size is None
    assert cert.labels == {"use": "oauthtokenissuer", "thumbprint": "A" * 40, "subject_cn": CN_NONE}
