"""What an X.509 certificate says, read from the certificate itself (a ``cryptography`` object or its DER).

Exchange's remote endpoint sends a certificate as ``RawData`` (the DER) and nothing else the checks
need: no Thumbprint, NotBefore/NotAfter or subject (../shared/captures: Get-ExchangeCertificate over
remoting). Everything here is derived from the DER, as the certificate MMC and Get-ExchangeCertificate
derive it on the server: the thumbprint is the SHA-1 of the DER.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import dsa, ec, rsa
from cryptography.x509.oid import NameOID


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 of the DER certificate, upper-case hex: what Get-ExchangeCertificate and the MMC show."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an identifier, not a signature


def certificate_cn(cert: x509.Certificate) -> str:
    """The first CN of the certificate's subject, as the certificate holds it; "" when it has none.
    (A subject written out as text, as cmdlets give it, is :func:`collectors.helpers.x509_names.subject_cn`'s.)"""
    try:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:  # a subject that does not parse
        return ""
    value = names[0].value if names else ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def dns_names(cert: x509.Certificate) -> tuple[str, ...]:
    """The subjectAltName DNS names, as written; () without the extension (or with a broken one)."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return ()
    return tuple(san.get_values_for_type(x509.DNSName))


def key_size(cert: x509.Certificate) -> int | None:
    """The public key's size in bits (RSA modulus, DSA, EC curve); None for other key types."""
    try:
        key = cert.public_key()
    except (ValueError, TypeError):  # an algorithm cryptography does not know
        return None
    return key.key_size if isinstance(key, (rsa.RSAPublicKey, dsa.DSAPublicKey, ec.EllipticCurvePublicKey)) else None


def signature_algorithm(cert: x509.Certificate) -> str:
    """The signature algorithm's name ("sha256WithRSAEncryption"), or its dotted OID when unnamed."""
    oid = cert.signature_algorithm_oid
    return getattr(oid, "_name", None) or oid.dotted_string


@dataclass(frozen=True)
class CertificateFacts:
    thumbprint: str
    subject: str  # RFC 4514, as cryptography writes it
    subject_cn: str
    dns_names: tuple[str, ...]
    not_before: dt.datetime  # aware, UTC
    not_after: dt.datetime
    key_size: int | None
    signature_algorithm: str


class CertificateUnreadable(ValueError):
    """The bytes are not a DER X.509 certificate."""


def facts_from_der(der: bytes) -> CertificateFacts:
    try:
        cert = x509.load_der_x509_certificate(der)
        with warnings.catch_warnings():  # e.g. a country name longer than two letters: shown as written
            warnings.simplefilter("ignore", UserWarning)
            subject = cert.subject.rfc4514_string()
        return CertificateFacts(
            thumbprint=thumbprint(cert),
            subject=subject,
            subject_cn=certificate_cn(cert),
            dns_names=dns_names(cert),
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            key_size=key_size(cert),
            signature_algorithm=signature_algorithm(cert),
        )
    except ValueError as exc:  # cryptography raises ValueError for every kind of malformed DER
        raise CertificateUnreadable(f"not a DER X.509 certificate ({str(exc)[:80]})") from None
