"""Exchange cmdlets on /PowerShell (Microsoft.Exchange) over the real pypsrp client."""

from __future__ import annotations

import re

from pypsrp.complex_objects import GenericComplexObject
from pypsrp.powershell import PowerShell

from tests.simulator.helpers import error_ids, props, run

LST_ITEM = re.compile(r"<S>([^<]*)</S>")


def multi_valued(value) -> list[str]:
    """What a consumer has to do with an Exchange MultiValuedProperty as pypsrp delivers it."""
    assert isinstance(value, GenericComplexObject) and str(value) == "None"
    assert value.types[0].startswith("Microsoft.Exchange.Data.MultiValuedProperty`1[[")
    (raw,) = value.property_sets
    assert raw.startswith("<LST")
    return LST_ITEM.findall(raw)


def test_exchange_certificate_shapes(ex01_exchange):
    certs = {props(c)["Thumbprint"]: c for c in run(ex01_exchange, "Get-ExchangeCertificate").output}
    im = certs["74D4289D432CCF279E83886B413062367B198913"]
    assert im.types[0] == "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate"
    p = props(im)
    assert p["HasPrivateKey"] is True and p["IsSelfSigned"] is False and p["PublicKeySize"] == 2048
    assert "ex01.contoso.com" in multi_valued(p["CertificateDomains"])
    assert str(p["Services"]) == "IMAP, POP, UM, IIS, SMTP" and p["Services"].property_sets == [31]
    assert str(p["Status"]) == "Valid" and p["Status"].property_sets == [1]
    assert str(p["RootCAType"]) == "Enterprise"
    assert p["Identity"] == "EX01\\74D4289D432CCF279E83886B413062367B198913"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+01:00$", p["NotAfter"])


def test_exchange_certificate_other_server_and_unknown_server(ex01_exchange):
    ps = run(ex01_exchange, "Get-ExchangeCertificate", Server="EX02")
    assert {props(c)["Identity"].split("\\")[0] for c in ps.output} == {"EX02"}
    ps = run(ex01_exchange, "Get-ExchangeCertificate", Server="EX99")
    assert not ps.had_errors and ps.output == []
    assert error_ids(ps) == ["ManagementObjectNotFoundException,"
                             "Microsoft.Exchange.Management.SystemConfigurationTasks.GetExchangeCertificate"]


def test_auth_config(ex01_exchange):
    (config,) = run(ex01_exchange, "Get-AuthConfig").output
    p = props(config)
    assert p["CurrentCertificateThumbprint"] == "E313C667F628E2D46DD0926D4536C1CCDF1F47BA"
    assert p["PreviousCertificateThumbprint"] is None and p["NextCertificateEffectiveDate"] is None


def test_owa_virtual_directory(ex01_exchange):
    vdirs = run(ex01_exchange, "Get-OwaVirtualDirectory", Server="ex01.contoso.com").output
    (front,) = vdirs
    p = props(front)
    assert p["Identity"] == "EX01\\owa (Default Web Site)" and p["Server"] == "EX01"
    assert p["InstantMessagingEnabled"] is True
    assert str(p["InstantMessagingType"]) == "Ocs" and p["InstantMessagingType"].property_sets == [1]
    assert p["InternalUrl"] == "https://mail.contoso.com/owa"
    everything = run(ex01_exchange, "Get-OwaVirtualDirectory", ShowMailboxVirtualDirectories=None).output
    assert {props(v)["Identity"] for v in everything} == {
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
    assert (p["Component"], p["Section"]) == ("OwaServer", "IMSettings")
    assert multi_valued(p["Parameters"]) == [
        "IMServerName=pool01.contoso.com", "IMCertificateThumbprint=AAF6F96EFBDD84EA4A7F1A4B222DC07942C1BA56"]


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
