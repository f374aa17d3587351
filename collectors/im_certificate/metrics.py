"""The metrics of check E3 (collectors.im_certificate.collector): OWA's IM settings, the certificate they
name, every Exchange certificate's validity and the Exchange Server Auth certificate."""

from __future__ import annotations

from collectors.contract import MetricSpec

CERT_LABELS = ("thumbprint", "subject_cn")

CHECK_OK = MetricSpec(
    "lync_owa_im_certificate_check_ok",
    "gauge",
    "1 when the named check of OWA's IM settings (IMServerName, IMCertificateThumbprint and the certificate it "
    "names) passes, 0 when it fails; a check is absent when the one it depends on failed (docs/metrics.md lists "
    "the order).",
    ("check",),
)
SOURCE_INFO = MetricSpec(
    "lync_owa_im_settings_source_info",
    "gauge",
    "Always 1; where this server keeps OWA's IM settings (web_config on Exchange 2013, setting_override on 2016+).",
    ("source",),
)
SETTINGS_PROBLEM = MetricSpec(
    "lync_owa_im_settings_problem",
    "gauge",
    "1 for the reason OWA's IM settings could not be read (missing or malformed web.config, conflicting "
    "setting overrides), 0 for every other reason.",
    ("problem",),
)
IM_CERT_NOT_AFTER = MetricSpec(
    "lync_owa_im_certificate_not_after_timestamp_seconds",
    "gauge",
    "When the certificate IMCertificateThumbprint names expires (absent while it names no installed certificate).",
)
CERT_NOT_BEFORE = MetricSpec(
    "lync_owa_exchange_certificate_not_before_timestamp_seconds",
    "gauge",
    "When an Exchange certificate on this server becomes valid (Get-ExchangeCertificate NotBefore).",
    CERT_LABELS,
)
CERT_NOT_AFTER = MetricSpec(
    "lync_owa_exchange_certificate_not_after_timestamp_seconds",
    "gauge",
    "When an Exchange certificate on this server expires (Get-ExchangeCertificate NotAfter).",
    CERT_LABELS,
)
CERT_KEY_SIZE = MetricSpec(
    "lync_owa_exchange_certificate_key_bit_length",
    "gauge",
    "Public key size of an Exchange certificate on this server, in bits (PublicKeySize).",
    CERT_LABELS,
)
CERT_PRIVATE_KEY = MetricSpec(
    "lync_owa_exchange_certificate_has_private_key",
    "gauge",
    "1 when the server holds the private key of the Exchange certificate.",
    CERT_LABELS,
)
CERT_USE = MetricSpec(
    "lync_owa_exchange_certificate_use_info",
    "gauge",
    "What the IM integration uses an Exchange certificate on this server for: im (IMCertificateThumbprint names "
    "it) or auth (Get-AuthConfig's current Exchange Server Auth certificate); always 1. Certificates without "
    "a use here are not the integration's: their expiry never pages.",
    ("thumbprint", "use"),
)
AUTH_FOUND = MetricSpec(
    "lync_owa_exchange_auth_certificate_found",
    "gauge",
    "1 when the Exchange Server Auth certificate (Get-AuthConfig CurrentCertificateThumbprint) is installed "
    "on this server.",
)
AUTH_NOT_AFTER = MetricSpec(
    "lync_owa_exchange_auth_certificate_not_after_timestamp_seconds",
    "gauge",
    "When the Exchange Server Auth certificate expires (absent while it is not found on this server).",
)
