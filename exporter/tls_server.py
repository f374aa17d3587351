"""The TLS side of ``--web.config.file``: the versions and cipher suites exporter-toolkit's format names,
and the server context built from a validated ``tls_server_config``."""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

CLIENT_AUTH_TYPES = ("NoClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
OBSOLETE_TLS_VERSIONS = ("TLS10", "TLS11")

# Go's names (crypto/tls.CipherSuites(), the secure ones) -> OpenSSL's. They only apply up to TLS 1.2;
# TLS 1.3 suites are not configurable in Go either and are accepted as no-ops.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")


@dataclass(frozen=True)
class TLSServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()


def build_ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """The server-side context: versions, certificate and key, client certificate policy, ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.client_auth_type != "NoClientCert":
        context.load_verify_locations(cafile=str(tls.client_ca_file))
        optional = tls.client_auth_type == "VerifyClientCertIfGiven"
        context.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
    openssl_names = [CIPHER_SUITES[name] for name in tls.cipher_suites if name in CIPHER_SUITES]
    if openssl_names:
        context.set_ciphers(":".join(openssl_names))
    return context
