"""The estate's X.509 certificates: real DER, so a thumbprint is what Windows computes, the SHA-1 of it.

A scenario describes a certificate (subject, issuer, SANs, validity, key size, serial) under a label;
it never states a thumbprint, which is a hash of bytes the simulator makes. :func:`certificate`
turns a description into a certificate and caches it, so within a run the same description always
gives the same DER (and thumbprint):

- the key (RSA, the scenario's ``public_key_size``) is made once per description and process, keyed
  by the description's text (times as written, ``-200d``), so two estates started one after the
  other share keys and key generation is paid once;
- relative validity (``-200d``, ``+5d``) is resolved against the estate's start, not against each
  answer's "now": a certificate's dates are fixed, like a real one's;
- a certificate whose ``issuer`` differs from its subject is signed by an issuing CA of that name
  (one key per CA name and process), so Issuer/AKI say what a real chain says; otherwise it is
  self-signed;
- extensions follow what Exchange's own certificates carry (the captures' DER, e.g.
  ../shared/captures/exchange/E16/GetExchangeCertificate.xml): KeyUsage digitalSignature +
  keyEncipherment, EKU serverAuth (Lync certificates: serverAuth + clientAuth), BasicConstraints
  CA:FALSE, SANs as DNS names.

Two descriptions that agree in every field are the same certificate (the same Lync certificate
assigned to several uses, the organisation's Auth certificate on every Exchange server), and
changing any field (a renewal: new validity and serial) makes another one.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from simulator.clock import TimeSpec
from simulator.tls import dns_names, parse_distinguished_name

_CA_VALIDITY = dt.timedelta(days=20 * 365)
_LOCK = threading.Lock()
_KEYS: dict[tuple, rsa.RSAPrivateKey] = {}
_ISSUERS: dict[tuple[str, int], tuple[x509.Name, rsa.RSAPrivateKey]] = {}
_CERTS: dict[tuple, GeneratedCertificate] = {}


@dataclasses.dataclass(frozen=True)
class CertificateSpec:
    """What a scenario says about one certificate; every field is part of its identity."""

    subject: str
    issuer: str | None  # None or equal to the subject: self-signed
    serial_number: str | None  # hex; None: derived from the other fields
    not_before: TimeSpec | None
    not_after: TimeSpec | None
    dns_names: tuple[str, ...] = ()
    key_size: int = 2048
    client_auth: bool = False  # EKU clientAuth besides serverAuth (Lync's certificates)

    @property
    def self_signed(self) -> bool:
        return not self.issuer or self.issuer.strip().lower() == self.subject.strip().lower()

    def identity(self) -> tuple:
        """The description as written (relative times as text): the key's cache key."""
        return (self.subject, self.issuer or "", self.serial_number or "", _text(self.not_before),
                _text(self.not_after), self.dns_names, self.key_size, self.client_auth)


@dataclasses.dataclass(frozen=True)
class GeneratedCertificate:
    certificate: x509.Certificate
    der: bytes
    thumbprint: str  # upper-case hex SHA-1 of the DER, as Windows shows it
    key: rsa.RSAPrivateKey

    @property
    def not_before(self) -> dt.datetime:
        return self.certificate.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        return self.certificate.not_valid_after_utc

    @property
    def serial_hex(self) -> str:
        """The serial as Windows shows it: upper-case hex, even length."""
        text = f"{self.certificate.serial_number:X}"
        return text if len(text) % 2 == 0 else "0" + text

    @property
    def subject(self) -> str:
        return windows_name(self.certificate.subject)

    @property
    def issuer(self) -> str:
        return windows_name(self.certificate.issuer)


def _text(spec: TimeSpec | None) -> str:
    return "" if spec is None else (spec.text or str(spec.offset or spec.absolute))


def thumbprint_of(der: bytes) -> str:
    return hashlib.sha1(der).hexdigest().upper()  # noqa: S324 - what Windows calls the thumbprint


def certificate(spec: CertificateSpec, anchor: dt.datetime) -> GeneratedCertificate:
    """The certificate ``spec`` describes, relative times resolved against ``anchor`` (the estate's start)."""
    not_before = _second(spec.not_before.resolve(anchor) if spec.not_before else anchor - dt.timedelta(days=365))
    not_after = _second(spec.not_after.resolve(anchor) if spec.not_after else not_before + dt.timedelta(days=730))
    if not_after <= not_before:
        not_before = not_after - dt.timedelta(days=1)
    cache_key = (spec.identity(), not_before, not_after)
    with _LOCK:
        found = _CERTS.get(cache_key)
        if found is not None:
            return found
        key = _key(spec.identity(), spec.key_size)
        if spec.self_signed:
            issuer_name, issuer_key = None, key
        else:
            issuer_name, issuer_key = _issuer(spec.issuer or "", spec.key_size)
        made = _build(spec, key, issuer_name, issuer_key, not_before, not_after)
        der = made.public_bytes(serialization.Encoding.DER)
        found = _CERTS[cache_key] = GeneratedCertificate(made, der, thumbprint_of(der), key)
        return found


def _second(moment: dt.datetime) -> dt.datetime:
    """X.509 validity has whole seconds."""
    return moment.astimezone(dt.timezone.utc).replace(microsecond=0)


def _key(identity: tuple, size: int) -> rsa.RSAPrivateKey:
    key = _KEYS.get(identity)
    if key is None:
        key = _KEYS[identity] = rsa.generate_private_key(public_exponent=65537, key_size=size)
    return key


def _issuer(name: str, size: int) -> tuple[x509.Name, rsa.RSAPrivateKey]:
    found = _ISSUERS.get((name, size))
    if found is None:
        parsed = parse_distinguished_name(_der_order(name), fallback_cn="Simulated Issuing CA")
        found = _ISSUERS[(name, size)] = (parsed, rsa.generate_private_key(public_exponent=65537, key_size=size))
    return found


def _serial(spec: CertificateSpec) -> int:
    if spec.serial_number:
        value = int(spec.serial_number.replace(" ", ""), 16)
        if value > 0:
            return value
    digest = hashlib.sha256(repr(spec.identity()).encode()).digest()
    return int.from_bytes(digest[:16], "big") >> 1 or 1  # positive, under 2^127


def _der_order(text: str) -> str:
    """Windows shows a name most specific first ("CN=x, OU=y, O=z, C=US"), the reverse of the DER
    sequence; parse_distinguished_name keeps the order it reads, so reverse the parts."""
    parts = [p.strip() for p in re.split(r",(?=\s*[A-Za-z]+=)", text or "") if p.strip()]
    return ", ".join(reversed(parts))


def _build(spec: CertificateSpec, key: rsa.RSAPrivateKey, issuer_name: x509.Name | None,
           issuer_key: rsa.RSAPrivateKey, not_before: dt.datetime, not_after: dt.datetime) -> x509.Certificate:
    subject = parse_distinguished_name(_der_order(spec.subject), fallback_cn="unnamed")
    usages = [ExtendedKeyUsageOID.SERVER_AUTH] + ([ExtendedKeyUsageOID.CLIENT_AUTH] if spec.client_auth else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name or subject)
        .public_key(key.public_key())
        .serial_number(_serial(spec))
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )
    names = dns_names(spec.dns_names)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if issuer_name is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


# Windows' short names for the attributes parse_distinguished_name reads.
_SHORT = {"2.5.4.3": "CN", "2.5.4.11": "OU", "2.5.4.10": "O", "2.5.4.7": "L", "2.5.4.8": "S", "2.5.4.6": "C",
          "0.9.2342.19200300.100.1.25": "DC", "1.2.840.113549.1.9.1": "E"}


def windows_name(name: x509.Name) -> str:
    """A name as X500DistinguishedName.Name shows it: most specific first, ", " between parts."""
    parts = [f"{_SHORT.get(a.oid.dotted_string, a.oid.dotted_string)}={a.value}" for a in name]
    return ", ".join(reversed(parts))


def to_string(cert: GeneratedCertificate, tz: dt.tzinfo) -> str:
    """X509Certificate.ToString(): the text the captures' <ToString> holds for every certificate
    (../shared/captures/exchange/*/GetExchangeCertificate.xml), times in the server's zone."""
    def when(moment: dt.datetime) -> str:
        return moment.astimezone(tz).strftime("%m/%d/%Y %H:%M:%S")

    return (f"[Subject]\r\n  {cert.subject}\r\n\r\n[Issuer]\r\n  {cert.issuer}\r\n\r\n"
            f"[Serial Number]\r\n  {cert.serial_hex}\r\n\r\n[Not Before]\r\n  {when(cert.not_before)}\r\n\r\n"
            f"[Not After]\r\n  {when(cert.not_after)}\r\n\r\n[Thumbprint]\r\n  {cert.thumbprint}\r\n")
