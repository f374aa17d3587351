"""Pure parts of the L2/L4 checks: trusted pools and applications, autodiscover URLs, the bounded resolver."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from collectors.contract import CollectError, ErrorKind
from collectors.topology.exchange_topology import (
    is_command_not_found,
    sipname_um_servers,
    this_server,
)
from collectors.topology.lync_topology import (
    LyncTopologySettings,
    autodiscover_url_is_svc,
    duplicated_um_servers,
    global_autodiscover_url,
    owa_application_present,
    resolve,
    url_host,
)
from collectors.topology.shared import is_http_url, known_um_servers

OWA_POOL = {"Identity": "TrustedApplicationPool:owa.contoso.com", "PoolFqdn": "owa.contoso.com",
            "Computers": ["ex01.contoso.com", "ex02.contoso.com"]}
OWA_APP = {"Identity": "owa.contoso.com/urn:application:outlookwebapp",
           "ApplicationId": "urn:application:outlookwebapp", "TrustedApplicationPoolFqdn": "owa.contoso.com"}


@pytest.mark.parametrize("um_servers, duplicates", [
    ([], []),
    (["ex03.contoso.com"], []),
    (["EX01.contoso.com"], ["ex01.contoso.com"]),
    (["ex02"], ["ex02.contoso.com"]),  # a short name matches the first label
    (["owa.contoso.com"], ["owa.contoso.com"]),  # the pool's own FQDN is a computer for a one-server pool
    (["ex01.fabrikam.com"], []),
])
def test_duplicated_um_servers(um_servers, duplicates):
    assert duplicated_um_servers([OWA_POOL], um_servers) == duplicates


def test_pool_without_pool_fqdn_uses_the_identity_and_tolerates_null_computers():
    pool = {"Identity": "TrustedApplicationPool:ex01.contoso.com", "Computers": None}
    assert duplicated_um_servers([pool], ["ex01.contoso.com"]) == ["ex01.contoso.com"]


@pytest.mark.parametrize("apps, present", [
    ([OWA_APP], True),
    ([{**OWA_APP, "ApplicationId": " OutlookWebApp "}], True),
    ([{**OWA_APP, "ApplicationId": "URN:APPLICATION:OUTLOOKWEBAPP"}], True),
    ([{**OWA_APP, "TrustedApplicationPoolFqdn": None}], True),  # the pool from the Identity
    ([{**OWA_APP, "TrustedApplicationPoolFqdn": "gone.contoso.com"}], False),  # on a pool that does not exist
    ([{"ApplicationId": "urn:application:outlookwebapp"}], True),  # no pool named at all: trust it
    ([{**OWA_APP, "ApplicationId": "urn:application:ucwa"}], False),
    ([], False),
])
def test_owa_application_present(apps, present):
    assert owa_application_present(apps, [OWA_POOL]) is present


@pytest.mark.parametrize("url, ok", [
    ("https://autodiscover.contoso.com/autodiscover/autodiscover.svc", True),
    ("https://AutoDiscover.contoso.com/AutoDiscover/AutoDiscover.SVC/", True),
    ("\u200ehttps://autodiscover.contoso.com/autodiscover/autodiscover.svc ", True),
    ("https://autodiscover.contoso.com/autodiscover/autodiscover.xml", False),
    ("https://autodiscover.contoso.com/autodiscover.svc", False),
    ("https://autodiscover.contoso.com/EWS/autodiscover.svc", False),
    ("autodiscover.contoso.com/autodiscover/autodiscover.svc", False),
    ("https://host:notaport/autodiscover/autodiscover.svc", False),
    ("", False),
    (None, False),
])
def test_autodiscover_url_is_svc(url, ok):
    assert autodiscover_url_is_svc(url) is ok


def test_global_autodiscover_url():
    site = {"Identity": "Site:Redmond", "ExchangeAutodiscoverUrl": "https://site/autodiscover/autodiscover.svc"}
    glob = {"Identity": " global ", "ExchangeAutodiscoverUrl": "https://glob/autodiscover/autodiscover.svc"}
    assert global_autodiscover_url([site, glob]) == glob["ExchangeAutodiscoverUrl"]
    assert global_autodiscover_url([site]) == site["ExchangeAutodiscoverUrl"]
    assert global_autodiscover_url([]) is None


def test_url_host_and_http_url():
    assert url_host("https://Autodiscover.Contoso.com:443/autodiscover/autodiscover.svc") == "autodiscover.contoso.com"
    assert url_host("not a url") == "" and url_host(None) == ""
    assert is_http_url("https://autodiscover.contoso.com/Autodiscover/Autodiscover.xml")
    assert not is_http_url("") and not is_http_url("ftp://x.contoso.com/") and not is_http_url("https://")


def test_settings():
    settings = LyncTopologySettings()
    assert settings.sipname_um_servers is None and settings.resolve_autodiscover == "auto" and settings.dns_timeout == 5
    assert LyncTopologySettings(sipname_um_servers=["EX01.Contoso.com."]).sipname_um_servers == ("ex01.contoso.com",)
    with pytest.raises(ValidationError):
        LyncTopologySettings(sipname_um_servers=["not a host"])
    with pytest.raises(ValidationError):
        LyncTopologySettings(resolve_autodiscover="sometimes")


def test_resolve_without_dns():
    assert resolve("127.0.0.1", 2) is True and resolve("::1", 2) is True
    assert resolve("localhost", 10) is True
    assert resolve("not a host name", 2) is False
    assert not resolve("autodiscover.example.invalid", 10)  # False, or None when the resolver is slow


def test_command_not_found_and_this_server():
    assert is_command_not_found(CollectError(ErrorKind.COMMAND, "x", "terminating error CommandNotFoundException: no"))
    assert not is_command_not_found(CollectError(ErrorKind.COMMAND, "x", "terminating error Other: CommandNotFound"))
    assert not is_command_not_found(CollectError(ErrorKind.TIMEOUT, "x", "CommandNotFoundException"))
    ex01 = {"Name": "EX01", "Fqdn": "ex01.contoso.com"}
    ex02 = {"Name": "EX02", "Fqdn": None}
    assert this_server([ex02, ex01], "ex01.contoso.com") is ex01
    assert this_server([ex01, ex02], "EX02.contoso.com") is ex02
    assert this_server([{"Name": None}], "ex01.contoso.com") == {"Name": None}  # the only answer
    assert this_server([ex01, ex02], "ex03.contoso.com") is None


def test_sipname_um_servers_from_dial_plans():
    plans = [
        {"Name": "Contoso-DP", "URIType": "TelExtn", "UMServers": ["EX03"]},
        {"Name": "Contoso-SIP", "URIType": " SipName ", "UMServers": ["EX01", "ex01", "ex02.contoso.com."]},
        {"Name": "Other-SIP", "URIType": "SIPNAME", "UMServers": None},
        {"Name": "Broken", "URIType": None, "UMServers": ["EX04"]},
    ]
    assert sipname_um_servers(plans) == ["ex01", "ex02.contoso.com"]
    assert sipname_um_servers([]) == []


def test_known_um_servers_are_each_named_once_by_fqdn():
    assert known_um_servers(["EX01", "ex01", "", "ex02.contoso.com"]) == ("ex01", "ex02.contoso.com")
    assert known_um_servers([]) == ()  # known: no SipName dial plan
