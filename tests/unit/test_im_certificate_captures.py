"""Check E3 on what real Exchange 2013, 2016 and 2019 servers sent (../shared/captures), parsed by the
collector's own shapes from pypsrp's deserialisation: certificates from RawData, Get-AuthConfig, the
real setting override shape, OWA's real web.config files and virtual directories."""

from __future__ import annotations

import datetime as dt

import pytest

from collectors.helpers.certificates import facts_from_der
from collectors.im_certificate.answers import (
    AUTH_CONFIG,
    EXCHANGE_CERTIFICATE,
    SETTING_OVERRIDE,
)
from collectors.im_certificate.im_settings import ImSettings, im_settings_from_overrides
from collectors.im_certificate.owa_web_config import parse_im_app_settings
from collectors.owa_im_settings import (
    VIRTUAL_DIRECTORY,
    im_enabled,
    im_type_ocs,
    is_back_end,
)
from collectors.sources.normalize import convert, convert_all
from tests.captures import deserialised, to_string_field

CERTIFICATE_FILES = ["E15/GetExchangeCertificate.xml", "E16/GetExchangeCertificate.xml",
                     "wire/GetExchangeCertificateBroken.xml"]


@pytest.mark.parametrize("name", CERTIFICATE_FILES)
def test_every_real_certificate_is_read_from_its_der(captures, name):
    objects = deserialised(captures / name)
    assert objects
    for obj, plain in zip(objects, convert_all(EXCHANGE_CERTIFICATE, objects)):
        facts = facts_from_der(plain["RawData"])
        # The server's own ToString of the same certificate is the oracle.
        assert facts.thumbprint == to_string_field(obj.to_string, "Thumbprint")
        shown_not_after = dt.datetime.strptime(to_string_field(obj.to_string, "Not After"), "%m/%d/%Y %H:%M:%S")
        assert abs(facts.not_after.replace(tzinfo=None) - shown_not_after) <= dt.timedelta(hours=14)  # any zone
        assert facts.key_size == 2048


def test_the_wire_form_has_only_rawdata(captures):
    objects = deserialised(captures / "wire/GetExchangeCertificateBroken.xml")
    assert [sorted(o.adapted_properties) for o in objects] == [["RawData"]] * 5
    facts = [facts_from_der(convert(EXCHANGE_CERTIFICATE, o)["RawData"]) for o in objects]
    assert facts[2].thumbprint == "2759456DC53C76E3DED093B567B6D8DAA42C0ADD"
    assert facts[2].subject_cn == "mail.contoso.lab"
    assert facts[2].dns_names == ("mail.contoso.lab", "autodiscover.contoso.lab", "e2k16-1.contoso.lab",
                                  "e2k16-2.contoso.lab")
    assert facts[2].not_after == dt.datetime(2027, 9, 5, 14, 41, 2, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("version", "auth_thumbprint"), [
    ("E15", "AF776F9F2771D7097BFC9B1C6EC338F58593C387"),
    ("E16", "92E196F3C8D3D753FCFC5B7690C3173AA1C0ABE3"),
])
def test_the_auth_certificate_get_authconfig_names_is_among_the_servers_certificates(captures, version,
                                                                                       auth_thumbprint):
    current = [convert(AUTH_CONFIG, o)["CurrentCertificateThumbprint"]
               for o in deserialised(captures / version / "GetAuthConfig.xml")]
    assert current == [auth_thumbprint]
    certificates = {facts_from_der(c["RawData"]).thumbprint: facts_from_der(c["RawData"]) for c in
                    convert_all(EXCHANGE_CERTIFICATE, deserialised(captures / version / "GetExchangeCertificate.xml"))}
    assert certificates[auth_thumbprint].subject_cn == "Microsoft Exchange Server Auth Certificate"


def test_the_real_setting_override_shape(captures):
    overrides = convert_all(SETTING_OVERRIDE, deserialised(captures / "E19/GetSettingOverride.xml"))
    first = overrides[0]
    assert (first["ComponentName"], first["SectionName"], first["Parameters"]) == (
        "Cafe", "HttpRequestFiltering", ["Enabled=True"])
    assert first["Server"] is None and first["Status"] == "Accepted" and first["MinVersion"] is None
    # No OwaServer/IMSettings override on that server: nothing configured, and no error.
    assert im_settings_from_overrides(overrides, "ex19.exlab.dom") == ImSettings("setting_override")
    # The same real object, made an IM override, is read: the names are the ones real servers use.
    im = {**first, "ComponentName": "OwaServer", "SectionName": "IMSettings",
          "Parameters": ["IMServerName=pool01.exlab.dom", "IMCertificateThumbprint=" + "AB" * 20]}
    assert im_settings_from_overrides([im], "ex19.exlab.dom") == ImSettings(
        "setting_override", "pool01.exlab.dom", "AB" * 20)


@pytest.mark.parametrize("name", ["E15/ExchangeBackEnd-OWA_web.config", "E15/DefaultWebSite-OWA_web.config",
                                  "E16/ExchangeBackEnd-OWA_web.config", "E16/DefaultWebSite-OWA_web.config"])
def test_real_owa_web_config_files_parse(captures, name):
    # Real files, with and without a byte order mark; these servers had no IM settings.
    parsed = parse_im_app_settings((captures / name).read_bytes().decode("utf-8-sig"))
    assert (parsed.server_name, parsed.certificate_thumbprint) == (None, None)


@pytest.mark.parametrize("version", ["E15", "E16"])
def test_real_owa_virtual_directories(captures, version):
    (vdir,) = convert_all(VIRTUAL_DIRECTORY, deserialised(captures / version / "GetOwaVirtualDirectory.xml"))
    assert vdir["Identity"] == f"SOLO-{version}A\\owa (Default Web Site)"  # an object's ToString
    assert not is_back_end(vdir) and im_enabled(vdir)
    assert vdir["InstantMessagingType"] == "None" and not im_type_ocs(vdir)  # IM off: the default
