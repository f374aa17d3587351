"""Generated certificates (simulator/certs.py) and ``${cert:...}`` references in scenarios."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from cryptography import x509

from simulator.certs import CertificateSpec, certificate, windows_name
from simulator.clock import parse_time
from simulator.scenario import ScenarioError, load_scenario

ANCHOR = dt.datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=dt.timezone.utc)


def spec(**changes) -> CertificateSpec:
    fields = dict(subject="CN=mail.contoso.com, OU=IT, O=Contoso, S=WA, C=US",
                  issuer="CN=Contoso Issuing CA, DC=contoso, DC=com", serial_number="7F4F4B9422F778B6",
                  not_before=parse_time("-200d"), not_after=parse_time("+530d"),
                  dns_names=("mail.contoso.com", "ex01.contoso.com"), key_size=2048)
    fields.update(changes)
    return CertificateSpec(**fields)


def test_a_certificate_is_real_and_its_thumbprint_is_the_sha1_of_its_der():
    made = certificate(spec(), ANCHOR)
    parsed = x509.load_der_x509_certificate(made.der)
    assert made.thumbprint == hashlib.sha1(made.der).hexdigest().upper()
    assert parsed.serial_number == 0x7F4F4B9422F778B6 and parsed.public_key().key_size == 2048
    # Windows order (most specific first) in the scenario, DER order in the certificate.
    assert parsed.subject.rfc4514_string() == "CN=mail.contoso.com,OU=IT,O=Contoso,ST=WA,C=US"
    assert windows_name(parsed.subject) == "CN=mail.contoso.com, OU=IT, O=Contoso, S=WA, C=US"
    assert parsed.issuer.rfc4514_string() == "CN=Contoso Issuing CA,DC=contoso,DC=com"
    san = parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["mail.contoso.com", "ex01.contoso.com"]
    # Relative validity is resolved against the estate's start, to the second.
    assert parsed.not_valid_before_utc == (ANCHOR - dt.timedelta(days=200)).replace(microsecond=0)
    assert parsed.not_valid_after_utc == (ANCHOR + dt.timedelta(days=530)).replace(microsecond=0)


def test_the_same_description_is_the_same_certificate_and_a_renewal_is_another():
    first = certificate(spec(), ANCHOR)
    assert certificate(spec(), ANCHOR).der == first.der
    assert certificate(spec(serial_number="5D0C8E11A3B27F40", not_before=parse_time("-2d")), ANCHOR).thumbprint \
        != first.thumbprint
    # Another estate (another start) keeps the key: only the dates differ.
    later = certificate(spec(), ANCHOR + dt.timedelta(hours=1))
    assert later.thumbprint != first.thumbprint and later.key is first.key


def test_self_signed_and_derived_serial():
    made = certificate(spec(issuer=None, serial_number=None, subject="CN=EX01"), ANCHOR)
    parsed = x509.load_der_x509_certificate(made.der)
    assert parsed.issuer == parsed.subject and parsed.serial_number > 0


def test_the_healthy_estate_shares_what_is_one_certificate(sim):
    from simulator.cmdlets import certificates

    view = sim._estate.view("ex01.contoso.com")
    ex01_auth = certificates.find(view, "ex01.contoso.com", "auth")
    ex02_auth = certificates.find(view, "ex02.contoso.com", "auth")
    assert ex01_auth.thumbprint == ex02_auth.thumbprint  # the organisation's Auth certificate
    fe01 = sim._estate.view("fe01.contoso.com")
    uses = {c.label: c.thumbprint for c in certificates.of_host(fe01, kind="lync")}
    assert uses["default"] == uses["web-internal"] == uses["web-external"] != uses["oauth"]
    assert len(certificates.machine_store(fe01)) == 2


@pytest.mark.parametrize(("overlay", "expected"), [
    ("exchange_org:\n  auth_config:\n    current_certificate_thumbprint: ${cert:auth}\n",
     "exchange_org.auth_config.current_certificate_thumbprint: ${cert:auth} needs a host here"),
    ("hosts:\n  ex01.contoso.com:\n    exchange:\n      web_config_im:\n        certificate_thumbprint: ${cert:nope}\n",
     "hosts.ex01.contoso.com.exchange.web_config_im.certificate_thumbprint: ${cert:nope}: ex01.contoso.com has no "
     "certificate labelled 'nope'"),
    ("exchange_org:\n  setting_overrides:\n    IM Settings:\n"
     "      parameters: ['IMCertificateThumbprint=${cert:ex09.contoso.com/im-um}']\n",
     "exchange_org.setting_overrides.IM Settings.parameters.0: ${cert:ex09.contoso.com/im-um} names no host"),
    ("hosts:\n  ex01.contoso.com:\n    exchange:\n      certificates:\n        im-um:\n"
     "          thumbprint: 74D4289D432CCF279E83886B413062367B198913\n",
     "hosts.ex01.contoso.com.exchange.certificates.im-um: thumbprint: a certificate's thumbprint is the SHA-1 of its "
     "DER"),
])
def test_certificate_references_are_checked_when_the_scenario_loads(tmp_path, overlay, expected):
    path = tmp_path / "refs.yaml"
    path.write_text("base: healthy\n" + overlay)
    with pytest.raises(ScenarioError) as err:
        load_scenario(path)
    assert expected in str(err.value)


def test_literal_thumbprints_stay_literal(tmp_path):
    """A setting may still hold any text (a thumbprint no certificate has, for a check to catch)."""
    path = tmp_path / "literal.yaml"
    path.write_text("base: healthy\nhosts:\n  ex01.contoso.com:\n    exchange:\n      web_config_im:\n"
                    "        certificate_thumbprint: '0000000000000000000000000000000000000000'\n")
    scenario = load_scenario(path)
    assert scenario.model.hosts["ex01.contoso.com"].exchange.web_config_im.certificate_thumbprint == "0" * 40
