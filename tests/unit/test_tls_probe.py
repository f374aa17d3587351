"""Pure parts of the TLS endpoint probe: endpoints, settings, certificate reading, name matching."""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError

from collectors.helpers.certificates import certificate_cn, thumbprint
from collectors.sources.tls import FAILURE_KINDS, hostname_matches
from collectors.tls_probe.collector import (
    TlsProbeCollector,
    TlsProbeSettings,
    certificate_samples,
    probe_targets,
)
from collectors.tls_probe.targets import HostPort, default_endpoints, parse_host_port
from simulator.tls import parse_distinguished_name

NOW = dt.datetime.now(dt.timezone.utc)


def make_cert(cn: str | None = "host.contoso.com", san: list[x509.GeneralName] | None = None,
              days: tuple[int, int] = (-1, 30)) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn else [])
    builder = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days[0])).not_valid_after(NOW + dt.timedelta(days=days[1]))
    )
    if san is not None:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    return builder.sign(key, hashes.SHA256())


# ------------------------------------------------------------ endpoints


@pytest.mark.parametrize("text, host, port, label", [
    ("ex01.contoso.com:443", "ex01.contoso.com", 443, "ex01.contoso.com:443"),
    (" EX01.Contoso.COM.:5061 ", "ex01.contoso.com", 5061, "ex01.contoso.com:5061"),
    ("10.0.0.5:443", "10.0.0.5", 443, "10.0.0.5:443"),
    ("[2001:DB8::1]:5061", "2001:db8::1", 5061, "[2001:db8::1]:5061"),
])
def test_parse_host_port(text, host, port, label):
    parsed = parse_host_port(text)
    assert (parsed.host, parsed.port, str(parsed)) == (host, port, label)


@pytest.mark.parametrize("text", [
    "ex01.contoso.com", "ex01.contoso.com:0", "ex01.contoso.com:70000", "https://ex01:443", "2001:db8::1:443",
    "[not-v6]:443", "ex 01:443", ":443", "ex01.contoso.com:44a", "bad_\u200e.com:443x",
])
def test_parse_host_port_refuses(text):
    with pytest.raises(ValueError):
        parse_host_port(text)


def test_default_endpoints_by_role():
    assert [str(e) for e in default_endpoints("ex01.contoso.com", frozenset({"exchange_mailbox"}), None)] == [
        "ex01.contoso.com:443"]
    assert [str(e) for e in default_endpoints(
        "fe01.contoso.com", frozenset({"lync_frontend"}), "pool01.contoso.com")] == [
        "fe01.contoso.com:5061", "pool01.contoso.com:5061"]
    edge = default_endpoints("edge01.contoso.com", frozenset({"lync_edge"}), "pool01.contoso.com")
    assert [str(e) for e in edge] == ["edge01.contoso.com:443", "edge01.contoso.com:5061"]
    # A one-server "pool" (Standard Edition) is not probed twice; roles combine without duplicates.
    both = default_endpoints("se01.contoso.com", frozenset({"exchange_client_access", "lync_frontend", "lync_edge"}),
                             "SE01.contoso.com")
    assert [str(e) for e in both] == ["se01.contoso.com:443", "se01.contoso.com:5061"]


def test_probe_targets_map_connect_addresses_and_server_name():
    settings = TlsProbeSettings(connect_addresses={"fe01.contoso.com:5061": "127.0.0.1:40001"})
    targets = probe_targets(settings, "fe01.contoso.com", frozenset({"lync_frontend"}), "pool01.contoso.com")
    assert [(str(t.endpoint), str(t.connect), t.server_name) for t in targets] == [
        ("fe01.contoso.com:5061", "127.0.0.1:40001", "fe01.contoso.com"),
        ("pool01.contoso.com:5061", "pool01.contoso.com:5061", "pool01.contoso.com"),
    ]
    vip = TlsProbeSettings(endpoints=("10.1.2.3:443",), server_name="mail.contoso.com")
    (target,) = probe_targets(vip, "ex01.contoso.com", frozenset({"exchange_mailbox"}), None)
    assert (str(target.endpoint), str(target.connect), target.server_name) == (
        "10.1.2.3:443", "10.1.2.3:443", "mail.contoso.com")


# ------------------------------------------------------------ settings


def test_settings_defaults_and_normalisation():
    settings = TlsProbeSettings()
    assert settings.endpoints is None and settings.connect_addresses == {} and settings.ca_file is None
    assert settings.effective_probe_timeout == 10.0  # default run timeout 30 s
    assert TlsProbeSettings(interval=10.0, timeout=8.0).effective_probe_timeout == 4.0
    normalised = TlsProbeSettings(endpoints=("EX01.contoso.com:443",),
                                  connect_addresses={"ex01.contoso.com.:443": "127.0.0.1:1234"})
    assert normalised.endpoints == ("ex01.contoso.com:443",)
    assert normalised.connect_addresses == {"ex01.contoso.com:443": "127.0.0.1:1234"}


@pytest.mark.parametrize("settings, message", [
    ({"endpoints": ["ex01.contoso.com"]}, "is not 'host:port'"),
    ({"endpoints": []}, "at least 1"),
    ({"endpoints": ["a.contoso.com:443", "A.contoso.com:443"]}, "listed twice"),
    ({"endpoints": [f"h{i}.contoso.com:443" for i in range(17)]}, "at most 16"),
    # A typo in connect_addresses is refused while only the listed endpoints are probed (with the OWA trusted
    # application's ports probed too, an address may be for one of those, found at run time).
    ({"endpoints": ["a.contoso.com:443"], "connect_addresses": {"b.contoso.com:443": "127.0.0.1:1"},
      "probe_trusted_application_ports": False}, "not in endpoints"),
    ({"connect_addresses": {"a.contoso.com:443": "127.0.0.1"}}, "is not 'host:port'"),
    ({"server_name": "https://mail"}, "DNS name"),
    ({"probe_timeout": 30.0}, "shorter than timeout"),
    ({"ca_file": "/nonexistent/ca.pem"}, "does not exist"),
    ({"unknown_key": 1}, "Extra inputs"),
])
def test_settings_refused(settings, message):
    with pytest.raises(ValidationError, match=message):
        TlsProbeSettings(**settings)


def test_ca_file_must_hold_a_certificate(tmp_path):
    not_pem = tmp_path / "ca.pem"
    not_pem.write_text("not a certificate")
    with pytest.raises(ValidationError, match="holds no PEM certificate"):
        TlsProbeSettings(ca_file=str(not_pem))
    good = tmp_path / "good.pem"
    good.write_bytes(make_cert().public_bytes(serialization.Encoding.PEM))
    # Relative to the configuration file's folder, as in Prometheus.
    settings = TlsProbeSettings.model_validate({"ca_file": "good.pem"}, context={"base_dir": tmp_path})
    assert settings.ca_file == str(good)


# ------------------------------------------------------------ certificates


def test_thumbprint_is_upper_case_sha1_of_der():
    cert = make_cert()
    expected = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    assert thumbprint(cert) == expected and len(expected) == 40


def test_certificate_cn():
    assert certificate_cn(make_cert("mail.contoso.com")) == "mail.contoso.com"
    assert certificate_cn(make_cert(None, san=[x509.DNSName("x.contoso.com")])) == ""


@pytest.mark.parametrize("san, name, matches", [
    ([x509.DNSName("mail.contoso.com")], "mail.contoso.com", True),
    ([x509.DNSName("Mail.Contoso.com")], "mail.contoso.COM.", True),
    ([x509.DNSName("*.contoso.com")], "mail.contoso.com", True),
    ([x509.DNSName("*.contoso.com")], "a.mail.contoso.com", False),
    ([x509.DNSName("*.contoso.com")], "contoso.com", False),
    ([x509.DNSName("*.com")], "contoso.com", False),
    ([x509.DNSName("m*.contoso.com")], "mail.contoso.com", False),
    ([x509.DNSName("other.contoso.com")], "mail.contoso.com", False),
    ([x509.IPAddress(ipaddress.ip_address("10.0.0.5"))], "10.0.0.5", True),
    ([x509.DNSName("10.0.0.5")], "10.0.0.5", False),
])
def test_hostname_matches(san, name, matches):
    assert hostname_matches(make_cert("ignored", san=san), name) is matches


def test_hostname_ignores_the_common_name():
    # As Python's ssl and current browsers: without a SAN the CN is not consulted.
    assert hostname_matches(make_cert("mail.contoso.com"), "mail.contoso.com") is False


def test_certificate_samples_take_the_earliest_expiry_of_the_chain():
    leaf, intermediate = make_cert("leaf.contoso.com", days=(-1, 300)), make_cert("Issuing CA", days=(-100, 20))
    samples = {s.spec.name: s for s in certificate_samples("leaf.contoso.com:443", (leaf, intermediate), True)}
    assert samples["lync_owa_tls_certificate_not_after_timestamp_seconds"].value == leaf.not_valid_after_utc.timestamp()
    assert samples["lync_owa_tls_chain_earliest_not_after_timestamp_seconds"].value == (
        intermediate.not_valid_after_utc.timestamp())
    info = samples["lync_owa_tls_certificate_info"]
    assert info.label_values == ("leaf.contoso.com:443", thumbprint(leaf), "leaf.contoso.com")
    assert samples["lync_owa_tls_certificate_verified"].value == 1


def test_collector_declares_its_metrics_and_no_cmdlets():
    collector = TlsProbeCollector()
    names = {m.name for m in collector.metrics}
    assert "lync_owa_tls_probe_failures_total" in names and collector.cmdlets == ()
    assert collector.roles == {"exchange_mailbox", "exchange_client_access", "lync_frontend", "lync_edge"}
    assert FAILURE_KINDS == ("refused", "timeout", "tls_error", "dns")
    assert HostPort("::1", 443).is_ip


# ------------------------------------------------------------ the simulator's certificate names


def test_windows_subjects_become_x509_names():
    name = parse_distinguished_name("CN=mail.contoso.com, OU=IT, O=Contoso, L=Redmond, S=WA, C=US")
    assert name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "mail.contoso.com"
    assert name.get_attributes_for_oid(NameOID.STATE_OR_PROVINCE_NAME)[0].value == "WA"
    issuer = parse_distinguished_name("CN=Contoso Issuing CA, DC=contoso, DC=com")
    assert [a.value for a in issuer.get_attributes_for_oid(NameOID.DOMAIN_COMPONENT)] == ["contoso", "com"]
    # Nothing usable, or a country that is not two letters: tolerated.
    assert parse_distinguished_name("garbage", "fallback").rfc4514_string() == "CN=fallback"
    assert parse_distinguished_name("CN=x, C=USA").rfc4514_string() == "CN=x"
