"""The pure parts of three seed checks: OWA's IM endpoint on the trusted application's port and the root
its chain ends at (tls_probe), the IM certificate's names (im_certificate), and whether the IM setting
override is in effect (the VariantConfiguration answer)."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from collectors.im_certificate.im_settings import ImSettings
from collectors.im_certificate.trusted_pool_name import names_server
from collectors.im_certificate.variant_configuration import (
    DiagnosticAnswerError,
    LoadedImSettings,
    override_in_effect,
    parse_loaded_im_settings,
    server_name_argument,
)
from collectors.sources.trusted_pools import TrustedPool
from collectors.tls_probe.collector import TlsProbeSettings
from collectors.tls_probe.owa_im_endpoint import (
    chains_to_lync_root,
    lync_roots_of,
    normalise_name,
    owa_im_endpoints,
    root_name,
)
from collectors.topology.lync_topology import owa_application_ports

THUMBPRINT = "EA5A332496CC05DA69B75B66111C0F78A110D22D"


# --- the trusted application's port -----------------------------------------------------------------

def test_ports_of_outlookwebapp_applications_by_pool():
    apps = [
        {"ApplicationId": "urn:application:outlookwebapp", "TrustedApplicationPoolFqdn": "OWA.contoso.com",
         "Port": 5199},
        {"ApplicationId": "urn:application:outlookwebapp", "Identity": "owa2.contoso.com/urn:application:outlookwebapp",
         "Port": 5200},
        {"ApplicationId": "urn:application:other", "TrustedApplicationPoolFqdn": "owa.contoso.com", "Port": 6000},
        # A port that is not one is left out, not guessed.
        {"ApplicationId": "OutlookWebApp", "TrustedApplicationPoolFqdn": "owa3.contoso.com", "Port": 0},
        {"ApplicationId": "OutlookWebApp", "TrustedApplicationPoolFqdn": "owa3.contoso.com", "Port": None},
    ]
    assert owa_application_ports(apps) == {"owa.contoso.com": (5199,), "owa2.contoso.com": (5200,)}


def test_im_endpoints_of_the_pools_that_stand_for_the_server():
    pools = (TrustedPool("owa.contoso.com", ("ex01.contoso.com", "ex02.contoso.com"), (5199,)),
             TrustedPool("ex03.contoso.com", (), (5199, 5201)),
             TrustedPool("owa-other.contoso.com", ("ex04.contoso.com",), (5300,)))
    assert [str(e) for e in owa_im_endpoints(pools, "ex01.contoso.com")] == ["ex01.contoso.com:5199"]
    assert [str(e) for e in owa_im_endpoints(pools, "ex03.contoso.com")] == ["ex03.contoso.com:5199",
                                                                             "ex03.contoso.com:5201"]
    assert owa_im_endpoints(pools, "ex09.contoso.com") == []  # no pool stands for it: nothing to probe


# --- the root a chain ends at -------------------------------------------------------------------------

def _name(cn: str, org: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "com"), x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "contoso")]
    if org:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name([*parts, x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _certificate(subject: x509.Name, issuer: x509.Name) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))


ROOT = _name("Contoso Root CA")
ISSUING = _name("Contoso Issuing CA")


def test_root_of_a_chain_is_the_issuer_of_its_last_certificate():
    leaf = _certificate(_name("ex01.contoso.com"), ISSUING)
    intermediate = _certificate(ISSUING, ROOT)
    assert root_name((leaf, intermediate)) == "cn=contoso root ca,dc=contoso,dc=com"
    # A leaf sent alone: its issuer, the intermediate, is as far as the chain goes.
    assert root_name((leaf,)) == "cn=contoso issuing ca,dc=contoso,dc=com"
    self_signed = _certificate(_name("ex01.contoso.com"), _name("ex01.contoso.com"))
    assert root_name((self_signed,)) == "cn=ex01.contoso.com,dc=contoso,dc=com"
    assert lync_roots_of([(leaf, intermediate), ()]) == frozenset({"cn=contoso root ca,dc=contoso,dc=com"})


def test_chains_to_a_lync_root_compares_names_as_windows_writes_them():
    chain = (_certificate(_name("ex01.contoso.com"), ISSUING), _certificate(ISSUING, ROOT))
    assert normalise_name("CN=Contoso Root CA, DC=contoso, DC=com") == "cn=contoso root ca,dc=contoso,dc=com"
    assert chains_to_lync_root(chain, ["CN=Contoso Root CA, DC=contoso, DC=com"])
    assert not chains_to_lync_root(chain, ["CN=Contoso Issuing CA, DC=contoso, DC=com"])
    assert not chains_to_lync_root(chain, [])


def test_settings_of_the_im_endpoint_probe():
    settings = TlsProbeSettings(lync_trusted_roots=["CN=Contoso Root CA, DC=contoso, DC=com"])
    assert settings.lync_trusted_roots == ("cn=contoso root ca,dc=contoso,dc=com",)
    with pytest.raises(ValidationError, match="not a distinguished name"):
        TlsProbeSettings(lync_trusted_roots=["Contoso Root CA"])
    # An address for an endpoint found at run time (the trusted application's port) is accepted...
    TlsProbeSettings(endpoints=["ex01.contoso.com:443"], connect_addresses={"ex01.contoso.com:5199": "127.0.0.1:1"})
    # ...and still refused as a typo when those ports are not probed.
    with pytest.raises(ValidationError, match="not in endpoints"):
        TlsProbeSettings(endpoints=["ex01.contoso.com:443"], connect_addresses={"ex01.contoso.com:5199": "127.0.0.1:1"},
                         probe_trusted_application_ports=False)


# --- the certificate carries the server's FQDN ------------------------------------------------------

def test_names_server_in_subject_or_san():
    assert names_server("mail.contoso.com", ["ex01.contoso.com", "owa.contoso.com"], "EX01.contoso.com.") is True
    assert names_server("ex01.contoso.com", [], "ex01.contoso.com") is True
    assert names_server("mail.contoso.com", ["owa.contoso.com"], "ex01.contoso.com") is False
    # Only an FQDN can be looked for.
    assert names_server("mail.contoso.com", ["ex01.contoso.com"], "ex01") is None
    assert names_server("mail.contoso.com", ["10.0.0.5"], "10.0.0.5") is None


# --- the setting override in effect -----------------------------------------------------------------

CONFIGURED = ImSettings("setting_override", "pool01.contoso.com", THUMBPRINT)


def _answer(im_settings: str) -> str:
    return ("<Diagnostics><ProcessInfo><id>1</id></ProcessInfo><Components><VariantConfiguration><Configuration>"
            f"<OwaServer>{im_settings}</OwaServer></Configuration></VariantConfiguration></Components></Diagnostics>")


@pytest.mark.parametrize("im_settings", [
    f'<IMSettings Name="IMSettings" IMServerName="pool01.contoso.com" IMCertificateThumbprint="{THUMBPRINT}" />',
    f"<IMSettings><IMServerName>pool01.contoso.com</IMServerName>"
    f"<IMCertificateThumbprint>{THUMBPRINT}</IMCertificateThumbprint></IMSettings>",
])
def test_loaded_settings_as_attributes_or_child_elements(im_settings):
    loaded = parse_loaded_im_settings(_answer(im_settings))
    assert loaded == LoadedImSettings("pool01.contoso.com", THUMBPRINT)
    assert override_in_effect(CONFIGURED, loaded)


def test_in_effect_compares_as_the_other_e3_checks():
    assert override_in_effect(CONFIGURED, LoadedImSettings("POOL01.contoso.com.", THUMBPRINT.lower()))
    assert not override_in_effect(CONFIGURED, LoadedImSettings("pool01.contoso.com", "AB" * 20))
    assert not override_in_effect(CONFIGURED, LoadedImSettings("pool02.contoso.com", THUMBPRINT))
    # Nothing loaded (a new override never refreshed) is not in effect.
    nothing = parse_loaded_im_settings(_answer(""))
    assert nothing == LoadedImSettings(None, None) and not override_in_effect(CONFIGURED, nothing)


@pytest.mark.parametrize(("text", "why"), [
    ("", "empty"),
    ("Process MSExchangeMailboxAssistants not found", "not XML"),
    ("<Result><Components /></Result>", "not <Diagnostics>"),
    ('<!DOCTYPE d [<!ENTITY a "a">]><Diagnostics>&a;</Diagnostics>', "not XML"),
])
def test_an_answer_the_check_cannot_read_says_why(text, why):
    with pytest.raises(DiagnosticAnswerError, match=why):
        parse_loaded_im_settings(text)


def test_server_is_named_without_its_domain():
    assert server_name_argument("ex02.contoso.com") == "ex02"
    assert server_name_argument("EX02") == "EX02"
    assert server_name_argument("10.0.0.5") == "10.0.0.5"
