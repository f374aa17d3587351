"""collectors.helpers.names: how host names are compared and what counts as one.

The cases are the union of what the normalisers and host-name patterns this replaced handled (the
topology checks, the Edge's hosting provider, CMS replication, OWA's IM settings, the TLS probe's
endpoints, the Lync SIP domain)."""

from __future__ import annotations

import ipaddress

import pytest

from collectors.helpers.names import fqdn, ip_address, is_host, is_host_name


@pytest.mark.parametrize("value, name", [
    ("ex01.contoso.com", "ex01.contoso.com"),
    (" FE01.Contoso.com ", "fe01.contoso.com"),
    ("POOL01.contoso.com.", "pool01.contoso.com"),
    (" EXAP.UM.Outlook.com. ", "exap.um.outlook.com"),
    ("\u200eex01.contoso.com ", "ex01.contoso.com"),
    ("TrustedApplicationPool:OWA.Contoso.com", "owa.contoso.com"),
    ("TrustedApplicationComputer:ex01.contoso.com.", "ex01.contoso.com"),
    ("Registrar:pool01.contoso.com", "pool01.contoso.com"),
    ("https://autodiscover.contoso.com", "https://autodiscover.contoso.com"),  # a URL keeps its scheme
    ("ABCD::1", "abcd::1"),  # an IPv6 address is not a kind prefix and a name
    ("10.0.0.5", "10.0.0.5"),
    ("ex01", "ex01"),
    ("*", "*"),
    ("", ""),
    (None, ""),
])
def test_fqdn(value, name):
    assert fqdn(value) == name


@pytest.mark.parametrize("value, name", [
    ("POOL01.contoso.com.", "pool01.contoso.com"),
    (" pool01.contoso.com \r\n", "pool01.contoso.com"),
    ("\u200epool01.contoso.com", "\u200epool01.contoso.com"),  # pasted with a mark: another name
    ("Registrar:pool01.contoso.com", "registrar:pool01.contoso.com"),
    ("\u00a0pool01.contoso.com", "\u00a0pool01.contoso.com"),
    (None, ""),
])
def test_fqdn_strict_keeps_what_makes_a_setting_another_name(value, name):
    assert fqdn(value, strict=True) == name


@pytest.mark.parametrize("text, ok", [
    ("ex01.contoso.com", True),
    ("EX01.Contoso.COM", True),
    ("ex01", True),
    ("_sip._tls.contoso.com", True),  # Windows allows '_'
    ("a-b.contoso.com", True),
    ("a" * 63 + ".com", True),
    (".".join(["a" * 63] * 3 + ["a" * 61]), True),  # 253 characters
    (".".join(["a" * 63] * 3 + ["a" * 62]), False),  # 254
    ("a" * 64 + ".com", False),
    ("-a.contoso.com", False),
    ("a-.contoso.com", False),
    ("a..contoso.com", False),
    ("ex 01.contoso.com", False),
    ("bad_\u200e.com", False),
    ("caf\u00e9.com", False),
    ("https://mail", False),
    ("mail:443", False),
    ("ex01.contoso.com.", False),
    ("", False),
])
def test_is_host_name(text, ok):
    assert is_host_name(text) is ok


def test_a_trailing_dot_when_asked():
    assert is_host_name("ex01.contoso.com.", trailing_dot=True)
    assert is_host_name(".".join(["a" * 63] * 3 + ["a" * 61]) + ".", trailing_dot=True)
    assert not is_host_name(".", trailing_dot=True)
    assert not is_host_name("ex01..", trailing_dot=True)


@pytest.mark.parametrize("text, ok", [
    ("ex01.contoso.com", True),
    ("10.0.0.5", True),
    ("2001:db8::1", True),
    ("::1", True),
    ("[2001:db8::1]", False),
    ("not a host name", False),
    ("", False),
])
def test_is_host(text, ok):
    assert is_host(text) is ok


def test_ip_address():
    assert ip_address("10.0.0.5") == ipaddress.IPv4Address("10.0.0.5")
    assert ip_address("2001:DB8::1") == ipaddress.IPv6Address("2001:db8::1")
    assert ip_address("ex01.contoso.com") is None and ip_address("") is None
