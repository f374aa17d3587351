"""Exchange cmdlets on /PowerShell (Microsoft.Exchange) over the real pypsrp client."""

from __future__ import annotations

import datetime as dt
import re

from pypsrp.complex_objects import GenericComplexObject
from pypsrp.powershell import PowerShell

from tests.simulator.helpers import (
    der_certificates,
    dns_names,
    error_ids,
    props,
    run,
    thumbprint_with_serial,
)

LST_ITEM = re.compile(r"<S>([^<]*)</S>")


def multi_valued(value) -> list[str]:
    """What a consumer has to do with an Exchange MultiValuedProperty as pypsrp delivers it."""
    assert isinstance(value, GenericComplexObject) and str(value) == "None"
    assert value.types[0].startswith("Microsoft.Exchange.Data.MultiValuedProperty`1[[")
    (raw,) = value.property_sets
    assert raw.startswith("<LST")
    return LST_ITEM.findall(raw)


EX01_IM_SERIAL, EX02_IM_SERIAL = "7F4F4B9422F778B6", "16E0CD236BD11129"  # healthy.yaml


def test_exchange_certificate_wire_form(ex01_exchange):
    """What Exchange sends: RawData (the DER) and a SerializationData note, and the ToString; the
    thumbprint, validity, names and key are in the DER (../shared/captures README)."""
    output = run(ex01_exchange, "Get-ExchangeCertificate").output
    assert len(output) == 3
    for obj in output:
        assert obj.types[0] == "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate"
        assert set(obj.adapted_properties) == {"RawData"} and set(obj.extended_properties) == {"SerializationData"}
        assert isinstance(obj.extended_properties["SerializationData"], bytes)
    certs = der_certificates(output)
    im_thumbprint = thumbprint_with_serial(output, EX01_IM_SERIAL)
    im = certs[im_thumbprint]
    assert im.subject.rfc4514_string() == "CN=mail.contoso.com,OU=IT,O=Contoso,L=Redmond,ST=WA,C=US"
    assert im.issuer.rfc4514_string() == "CN=Contoso Issuing CA,DC=contoso,DC=com"
    assert "ex01.contoso.com" in dns_names(im) and im.public_key().key_size == 2048
    days_left = (im.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).days
    assert 528 <= days_left <= 530
    # The ToString is the certificate's own text, thumbprint included.
    text = next(str(o) for o in output if im_thumbprint in str(o))
    assert text.startswith("[Subject]\r\n  CN=mail.contoso.com, OU=IT, O=Contoso, L=Redmond, S=WA, C=US\r\n")
    assert f"[Serial Number]\r\n  {EX01_IM_SERIAL}\r\n" in text


def test_exchange_certificate_by_thumbprint(ex01_exchange):
    thumbprint = thumbprint_with_serial(run(ex01_exchange, "Get-ExchangeCertificate").output, EX01_IM_SERIAL)
    for wanted in (thumbprint, thumbprint.lower(), f"EX01\\{thumbprint}"):
        (only,) = run(ex01_exchange, "Get-ExchangeCertificate", Thumbprint=wanted).output
        assert list(der_certificates([only])) == [thumbprint]
    assert run(ex01_exchange, "Get-ExchangeCertificate", Thumbprint="00" * 20).output == []


def test_exchange_certificate_other_server_and_unknown_server(ex01_exchange):
    ps = run(ex01_exchange, "Get-ExchangeCertificate", Server="EX02")
    subjects = {c.subject.rfc4514_string() for c in der_certificates(ps.output).values()}
    assert "CN=EX02" in subjects and "CN=EX01" not in subjects
    ps = run(ex01_exchange, "Get-ExchangeCertificate", Server="EX99")
    assert not ps.had_errors and ps.output == []
    assert error_ids(ps) == ["ManagementObjectNotFoundException,"
                             "Microsoft.Exchange.Management.SystemConfigurationTasks.GetExchangeCertificate"]


def test_auth_config(ex01_exchange):
    (config,) = run(ex01_exchange, "Get-AuthConfig").output
    p = props(config)
    auth = [t for t, c in der_certificates(run(ex01_exchange, "Get-ExchangeCertificate").output).items()
            if c.subject.rfc4514_string() == "CN=Microsoft Exchange Server Auth Certificate"]
    assert [p["CurrentCertificateThumbprint"]] == auth
    # Unset: an empty string for a thumbprint, Nil for the date (E15/E16 GetAuthConfig.xml).
    assert p["PreviousCertificateThumbprint"] == "" and p["NextCertificateEffectiveDate"] is None
    assert str(p["Identity"]) == "Auth Configuration" and p["Identity"].types[0].endswith(".ADObjectId")
    assert str(p["ObjectState"]) == "Unchanged"


def test_owa_virtual_directory(ex01_exchange):
    vdirs = run(ex01_exchange, "Get-OwaVirtualDirectory", Server="ex01.contoso.com").output
    (front,) = vdirs
    p = props(front)
    # Identity and Server are ADObjectId objects: their ToString is what PowerShell shows.
    assert str(p["Identity"]) == "EX01\\owa (Default Web Site)" and str(p["Server"]) == "EX01"
    assert str(front) == "EX01\\owa (Default Web Site)"
    assert p["InstantMessagingEnabled"] is True
    assert str(p["InstantMessagingType"]) == "Ocs" and p["InstantMessagingType"].property_sets == [1]
    assert p["InstantMessagingServerName"] == "" and p["InstantMessagingCertificateThumbprint"] == ""
    assert p["InternalUrl"] == "https://mail.contoso.com/owa"
    assert str(p["AdminDisplayVersion"]) == "Version 15.0 (Build 1497.2)"
    everything = run(ex01_exchange, "Get-OwaVirtualDirectory", ShowMailboxVirtualDirectories=None).output
    assert {str(props(v)["Identity"]) for v in everything} == {
        "EX01\\owa (Default Web Site)", "EX01\\owa (Exchange Back End)",
        "EX02\\owa (Default Web Site)", "EX02\\owa (Exchange Back End)"}


def test_owa_mailbox_policy(ex01_exchange):
    (policy,) = run(ex01_exchange, "Get-OwaMailboxPolicy").output
    p = props(policy)
    assert p["Name"] == "Default" and p["IsDefault"] is True
    assert p["InstantMessagingEnabled"] is True and str(p["InstantMessagingType"]) == "Ocs"


def test_client_access_server_and_service(ex01_exchange, ex02_exchange):
    servers = run(ex01_exchange, "Get-ClientAccessServer").output
    assert {props(s)["Name"] for s in servers} == {"EX01", "EX02"}
    assert all(props(s)["AutoDiscoverServiceInternalUri"].startswith("https://") for s in servers)
    # Exchange 2013 has no Get-ClientAccessService; 2019 has it and warns on the old name.
    assert error_ids(run(ex01_exchange, "Get-ClientAccessService")) == ["CommandNotFoundException"]
    ps = run(ex02_exchange, "Get-ClientAccessServer")
    assert ps.output and "Get-ClientAccessService" in ps.streams.warning[0].message
    service = run(ex02_exchange, "Get-ClientAccessService").output[0]
    assert service.types[0] == "Microsoft.Exchange.Data.Directory.Management.ClientAccessService"


def test_setting_override_only_on_2016_and_later(ex01_exchange, ex02_exchange):
    assert error_ids(run(ex01_exchange, "Get-SettingOverride")) == ["CommandNotFoundException"]
    (override,) = run(ex02_exchange, "Get-SettingOverride").output
    p = props(override)
    assert (p["ComponentName"], p["SectionName"]) == ("OwaServer", "IMSettings")
    im = thumbprint_with_serial(run(ex02_exchange, "Get-ExchangeCertificate").output, EX02_IM_SERIAL)
    assert multi_valued(p["Parameters"]) == ["IMServerName=pool01.contoso.com", f"IMCertificateThumbprint={im}"]
    assert p["Server"] is None  # organisation-wide
    assert str(p["Status"]) == "Accepted" and p["Status"].property_sets == [3]


def test_um_dial_plan_gone_in_2019(ex01_exchange, ex02_exchange):
    (plan,) = run(ex01_exchange, "Get-UMDialPlan").output
    assert props(plan)["Name"] == "Contoso-DP" and str(props(plan)["URIType"]) == "TelExtn"
    assert error_ids(run(ex02_exchange, "Get-UMDialPlan")) == ["CommandNotFoundException"]


def test_no_language_mode_rejects_scripts(ex01_exchange):
    ps = PowerShell(ex01_exchange)
    ps.add_script("Get-ExchangeCertificate | Select-Object Thumbprint")
    ps.invoke()
    assert ps.had_errors and error_ids(ps) == ["ScriptsNotAllowed"]
    assert "no-language mode" in str(ps.streams.error[0])


def test_windows_cmdlets_are_not_on_the_exchange_endpoint(ex01_exchange):
    assert error_ids(run(ex01_exchange, "Get-WinEvent", LogName="Application")) == ["CommandNotFoundException"]
