"""Certificates for the simulator's TLS: the HTTPS listeners, and the hosts' TLS services.

``TlsMaterial``: a throwaway CA signs one server certificate whose SANs cover 127.0.0.1, localhost
and every simulated host name, so a client can verify with ``verify=<ca_cert_path>`` (the CA, with
the extensions strict X.509 checking wants). Files live in a private temp directory removed at stop.

The builders below (:func:`new_key`, :func:`ca_certificate`, :func:`leaf_certificate`,
:func:`parse_distinguished_name`) also make the certificates the simulated OWA, front-end and Edge
TLS services present (see ``tls_endpoints.py``).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import shutil
import ssl
import tempfile
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey


class TlsMaterial:
    def __init__(self, host_names: Iterable[str]) -> None:
        self.directory = tempfile.mkdtemp(prefix="lync-owa-sim-tls-")
        os.chmod(self.directory, 0o700)
        self.ca_cert_path = os.path.join(self.directory, "ca.pem")
        self.cert_path = os.path.join(self.directory, "server.pem")
        self.key_path = os.path.join(self.directory, "server-key.pem")
        _generate(list(host_names), self.ca_cert_path, self.cert_path, self.key_path)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.cert_path, self.key_path)
        return context

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# ------------------------------------------------------------ builders


def new_key() -> PrivateKey:
    # P-256: generated in a millisecond, so certificates can be made on demand.
    return ec.generate_private_key(ec.SECP256R1())


def ca_certificate(
    subject: x509.Name,
    key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: tuple[x509.Certificate, PrivateKey] | None = None,
) -> x509.Certificate:
    """A CA certificate: self-signed (a root) when ``issuer`` is None, else signed by it (an intermediate)."""
    issuer_name, issuer_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def leaf_certificate(
    subject: x509.Name,
    alt_names: list[x509.GeneralName],
    key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    issuer: tuple[x509.Certificate, PrivateKey],
) -> x509.Certificate:
    """A TLS server certificate signed by ``issuer`` (certificate, key)."""
    issuer_cert, issuer_key = issuer
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def self_signed_leaf(
    subject: x509.Name,
    alt_names: list[x509.GeneralName],
    key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A self-signed TLS server certificate (what Exchange setup makes, "CN=EX01"): it chains to no CA."""
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    if alt_names:
        builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
    return builder.sign(key, hashes.SHA256())


def dns_names(names: Iterable[str]) -> list[x509.GeneralName]:
    """SAN entries for host names (IP literals become IP entries); blanks and duplicates dropped."""
    result: list[x509.GeneralName] = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        try:
            entry: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(name))
        except ValueError:
            entry = x509.DNSName(name)
        if entry not in result:
            result.append(entry)
    return result


# Windows writes "S=" where RFC 4514 writes "ST="; DC and E appear in AD CS names.
_ATTRIBUTES = {
    "CN": NameOID.COMMON_NAME,
    "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
    "O": NameOID.ORGANIZATION_NAME,
    "L": NameOID.LOCALITY_NAME,
    "S": NameOID.STATE_OR_PROVINCE_NAME,
    "ST": NameOID.STATE_OR_PROVINCE_NAME,
    "C": NameOID.COUNTRY_NAME,
    "DC": NameOID.DOMAIN_COMPONENT,
    "E": NameOID.EMAIL_ADDRESS,
}


def parse_distinguished_name(text: str, fallback_cn: str = "unnamed") -> x509.Name:
    """A Windows-style subject ("CN=mail.contoso.com, OU=IT, O=Contoso, S=WA, C=US") as an x509.Name.

    Tolerant: unknown attributes and values cryptography refuses are left out; a name with nothing
    usable becomes ``CN=<fallback_cn>``.
    """
    attributes = []
    for part in re.split(r",(?=\s*[A-Za-z]+=)", text or ""):
        key, sep, value = part.partition("=")
        oid = _ATTRIBUTES.get(key.strip().upper())
        value = value.strip().strip('"')
        if not sep or oid is None or not value:
            continue
        try:
            attributes.append(x509.NameAttribute(oid, value))
        except ValueError:  # e.g. a country that is not two letters
            continue
    return x509.Name(attributes or [x509.NameAttribute(NameOID.COMMON_NAME, fallback_cn)])


def write_pem(path: str, *certificates: x509.Certificate) -> None:
    with open(path, "wb") as handle:
        for certificate in certificates:
            handle.write(certificate.public_bytes(serialization.Encoding.PEM))


def write_key(path: str, key: PrivateKey) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))


# ------------------------------------------------------------ the HTTPS listeners' certificate


def _name(common_name: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "lync-owa-exporter simulator"),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


def _generate(host_names: list[str], ca_path: str, cert_path: str, key_path: str) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    start, end = now - dt.timedelta(minutes=5), now + dt.timedelta(days=30)
    ca_key = new_key()
    ca_cert = ca_certificate(_name("Simulated estate CA"), ca_key, start, end)
    key = new_key()
    alt_names = dns_names(["127.0.0.1", "localhost", *host_names])
    cert = leaf_certificate(_name("localhost"), alt_names, key, start, end, issuer=(ca_cert, ca_key))
    write_pem(ca_path, ca_cert)
    write_pem(cert_path, cert)
    write_key(key_path, key)
