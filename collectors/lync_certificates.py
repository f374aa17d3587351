"""Check L3: the certificates assigned on a Lync front end or Edge (``Get-CsCertificate``).

Every assigned certificate becomes one series per use (a certificate serving Default and both web
services gives three), with its validity window, so expiry alerts can warn weeks and page days ahead.

On a front end the OAuthTokenIssuer certificate is also judged: it must be the same on every front
end, at least 2048 bits, with the SIP domain in its subject. One job sees one front end, so the
"same everywhere" part is left to Prometheus: each front end exports the thumbprint it uses as
``lync_owa_lync_oauth_certificate_info{thumbprint}`` and a rule compares them
(``count(count by (thumbprint) (lync_owa_lync_oauth_certificate_info)) > 1``).

``Get-CsCertificate`` reports no key size: it returns ``CertificateReference`` objects (Use, Thumbprint,
Subject, Issuer, validity, AlternativeNames, ...; Microsoft's reference for Get-CsCertificate). The
OAuthTokenIssuer certificate is deployed to every front end by Lync's replication ("Assign a
server-to-server authentication certificate to Skype for Business Server"), so on a front end its key
size is read from the certificate itself: ``Get-Item -LiteralPath Cert:\\LocalMachine\\My\\<thumbprint>``
on the Windows endpoint, whose answer carries the DER (``RawData``, PowerShell's type table for
X509Certificate2). An answer that does carry a key size (``KeySize`` or ``PublicKeySize``, e.g. from a
JEA proxy command) is used as it is. A certificate not in the store, or a Windows endpoint that fails,
leaves the key size unknown (logged), not failed: the expiry data of this job does not depend on it.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, replace
from typing import Any, Mapping

from pydantic import field_validator

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    Field,
    MetricSpec,
    NoState,
    Sample,
    Shape,
)
from collectors.helpers.certificates import CertificateUnreadable, facts_from_der
from collectors.helpers.cmdlet_policy import Matching
from collectors.helpers.endpoints import LYNC, WINDOWS, lync_endpoint
from collectors.helpers.names import fqdn, is_host_name
from collectors.helpers.text import clean_text
from collectors.helpers.x509_names import subject_cn

CMDLET = "Get-CsCertificate"
OAUTH_USE = "OAuthTokenIssuer"
MIN_OAUTH_KEY_BITS = 2048
# Properties that may carry a key size; the Lync cmdlet itself has none.
KEY_SIZE_PROPERTIES = ("KeySize", "PublicKeySize")

# The OAuth certificate itself, from the front end's machine store (its DER carries the key).
STORE_ITEM_CMDLET = "Get-Item"
STORE_PATH = "Cert:\\LocalMachine\\My\\{thumbprint}"
STORE_PATH_RULE = Matching(r"Cert:\\LocalMachine\\My\\[0-9A-F]{40}")
STORE_NOT_FOUND_IDS = ("PathNotFound", "ItemNotFound")
STORE_CERTIFICATE = Shape(STORE_ITEM_CMDLET, (Field("RawData", "bytes"),))

CHECK_OAUTH_SIP_DOMAIN = "lync_oauth_certificate_sip_domain"
CHECK_OAUTH_KEY_SIZE = "lync_oauth_certificate_key_size"

CERTIFICATE = Shape(
    CMDLET,
    (
        # Present on every certificate object; a null one is labelled "other" / "malformed".
        Field("Use", "str", nullable=True),
        Field("Thumbprint", "str", nullable=True),
        Field("Subject", "str", required=False, nullable=True),
        Field("NotBefore", "datetime", required=False, nullable=True),
        Field("NotAfter", "datetime", required=False, nullable=True),
        Field("EffectiveDate", "datetime", required=False, nullable=True),
    ),
)

_LABELS = ("use", "thumbprint", "subject_cn")
NOT_AFTER = MetricSpec(
    "lync_owa_lync_certificate_not_after_timestamp_seconds",
    "gauge",
    "When the Lync certificate assigned to this use expires (Get-CsCertificate NotAfter).",
    _LABELS,
)
NOT_BEFORE = MetricSpec(
    "lync_owa_lync_certificate_not_before_timestamp_seconds",
    "gauge",
    "When the Lync certificate assigned to this use became valid (Get-CsCertificate NotBefore).",
    _LABELS,
)
KEY_SIZE = MetricSpec(
    "lync_owa_lync_certificate_key_bit_length",
    "gauge",
    "Key size in bits of the Lync certificate assigned to this use; only when it is known.",
    _LABELS,
)
OAUTH_INFO = MetricSpec(
    "lync_owa_lync_oauth_certificate_info",
    "gauge",
    "The OAuthTokenIssuer certificate this front end uses; always 1. Must be the same on every front end.",
    ("thumbprint",),
)

# Labels stay bounded and printable whatever a server sends.
_USE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{0,47}")
_THUMBPRINT = re.compile(r"[0-9A-F]{40}")
MAX_CN_CHARS = 64
USE_OTHER = "other"
THUMBPRINT_MALFORMED = "malformed"
CN_NONE = "none"


class LyncCertificateSettings(CollectorSettings):
    # The SIP domain the OAuth certificate's subject must hold. Unset: the parent domain of the
    # global lync_pool_fqdn (pool01.contoso.com -> contoso.com); neither set: not judged.
    sip_domain: str | None = None

    @field_validator("sip_domain")
    @classmethod
    def _domain_name(cls, domain: str | None) -> str | None:
        if domain is None:
            return None
        name = fqdn(domain, strict=True)
        if "." not in name or not is_host_name(name):
            raise ValueError(f"not a DNS domain name: {domain!r}")
        return name


# --- pure parsing -------------------------------------------------------------------------------


def use_label(use: Any) -> str:
    name = clean_text(use)
    return name if _USE_NAME.fullmatch(name) else USE_OTHER


def thumbprint_label(thumbprint: Any) -> str:
    """40 hex digits in upper case, spaces and invisible marks (the MMC's U+200E) left out: a label
    names the certificate Lync uses. Anything else (a wrong length, not hex) is 'malformed'."""
    text = clean_text(thumbprint).replace(" ", "").upper()
    return text if _THUMBPRINT.fullmatch(text) else THUMBPRINT_MALFORMED


def cn_label(cn: str) -> str:
    if not cn:
        return CN_NONE
    return cn if len(cn) <= MAX_CN_CHARS else cn[: MAX_CN_CHARS - 1] + "…"


def key_size_of(obj: Mapping[str, Any]) -> int | None:
    """The key size an answer carries, in bits, or None when it carries none (Get-CsCertificate)."""
    for name in KEY_SIZE_PROPERTIES:
        value = obj.get(name)
        if isinstance(value, bool) or value is None:
            continue
        try:
            bits = int(str(value).strip())
        except ValueError:
            continue
        if 0 < bits <= 65536:
            return bits
    return None


def sip_domain_from_pool(pool_fqdn: str | None) -> str | None:
    """pool01.contoso.com -> contoso.com; a name of one or two labels has no usable parent."""
    labels = [label for label in fqdn(pool_fqdn).split(".") if label]
    return ".".join(labels[1:]) if len(labels) >= 3 else None


def holds_domain(cn: str, domain: str) -> bool:
    """The CN is the domain itself or a name inside it (pool01.contoso.com, *.contoso.com)."""
    name = fqdn(cn, strict=True)
    domain = domain.casefold()
    return name == domain or name.endswith("." + domain)


@dataclass(frozen=True)
class LyncCertificate:
    use: str
    thumbprint: str
    subject_cn: str
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    effective_date: dt.datetime | None
    key_size: int | None

    @property
    def labels(self) -> dict[str, str]:
        return {"use": self.use, "thumbprint": self.thumbprint, "subject_cn": cn_label(self.subject_cn)}


def parse_certificate(obj: Mapping[str, Any]) -> LyncCertificate:
    """One Get-CsCertificate object (as converted by :data:`CERTIFICATE`)."""
    return LyncCertificate(
        use=use_label(obj["Use"]),
        thumbprint=thumbprint_label(obj["Thumbprint"]),
        subject_cn=subject_cn(obj.get("Subject")),
        not_before=obj.get("NotBefore"),
        not_after=obj.get("NotAfter"),
        effective_date=obj.get("EffectiveDate"),
        key_size=key_size_of(obj),
    )


def current_oauth_certificate(certs: list[LyncCertificate], now: dt.datetime) -> LyncCertificate | None:
    """The OAuthTokenIssuer certificate in effect now.

    During a roll-over (``Set-CsCertificate -Roll -EffectiveDate``) two are listed: the one whose
    EffectiveDate has passed most recently is in use; one without an EffectiveDate is in use from
    its assignment. When every one lies in the future, the earliest is the one that will be used.
    """
    oauth = [c for c in certs if c.use.casefold() == OAUTH_USE.casefold()]
    if not oauth:
        return None
    started = [c for c in oauth if c.effective_date is None or c.effective_date <= now]
    if started:
        epoch = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
        return max(started, key=lambda c: c.effective_date or epoch)
    return min(oauth, key=lambda c: c.effective_date)  # type: ignore[arg-type,return-value]


# --- the collector ------------------------------------------------------------------------------


Context = CollectContext[LyncCertificateSettings, NoState]


class LyncCertificatesCollector(Collector[LyncCertificateSettings, NoState]):
    name = "lync_certificates"
    roles = frozenset({"lync_frontend", "lync_edge"})
    settings_model = LyncCertificateSettings
    metrics = (NOT_AFTER, NOT_BEFORE, KEY_SIZE, OAUTH_INFO, CONFIG_CHECK_OK)
    # Front ends: /OcsPowershell; Edge: WinRM. A front end's OAuth certificate key: its store, over WinRM.
    cmdlets = ((LYNC, CMDLET), (WINDOWS, CMDLET), (WINDOWS, STORE_ITEM_CMDLET))
    cmdlet_parameters = {CMDLET: {}, STORE_ITEM_CMDLET: {"LiteralPath": STORE_PATH_RULE}}

    def collect(self, ctx: Context) -> list[Sample]:
        answer = ctx.run(lync_endpoint(ctx.target.roles), CMDLET, None, CERTIFICATE)
        certs = [parse_certificate(obj) for obj in answer.objects]
        samples = self._certificate_samples(certs)
        if "lync_frontend" in ctx.target.roles:
            samples += self._oauth_samples(ctx, certs)
        return samples

    @staticmethod
    def _certificate_samples(certs: list[LyncCertificate]) -> list[Sample]:
        samples: list[Sample] = []
        seen: set[tuple[str, str]] = set()
        for cert in certs:
            key = (cert.use.casefold(), cert.thumbprint)
            if key in seen:  # one series per use and certificate, however often it is listed
                continue
            seen.add(key)
            if cert.not_after is not None:
                samples.append(NOT_AFTER.sample(cert.not_after.timestamp(), **cert.labels))
            if cert.not_before is not None:
                samples.append(NOT_BEFORE.sample(cert.not_before.timestamp(), **cert.labels))
            if cert.key_size is not None:
                samples.append(KEY_SIZE.sample(cert.key_size, **cert.labels))
        return samples

    @staticmethod
    def _oauth_samples(ctx: Context, certs: list[LyncCertificate]) -> list[Sample]:
        oauth = current_oauth_certificate(certs, dt.datetime.now(dt.timezone.utc))
        domain = ctx.settings.sip_domain or sip_domain_from_pool(ctx.estate.lync_pool_fqdn)
        samples: list[Sample] = []
        if oauth is not None:
            samples.append(OAUTH_INFO.sample(1, thumbprint=oauth.thumbprint))
            if oauth.key_size is None:
                oauth = replace(oauth, key_size=_store_key_size(ctx, oauth.thumbprint))
                if oauth.key_size is not None:
                    samples.append(KEY_SIZE.sample(oauth.key_size, **oauth.labels))
        if domain is None:
            ctx.log.debug("no sip_domain setting and no global lync_pool_fqdn: OAuth subject not judged")
        else:
            # No OAuth certificate at all cannot hold the domain: that fails too.
            holds = oauth is not None and holds_domain(oauth.subject_cn, domain)
            samples.append(check_sample(CHECK_OAUTH_SIP_DOMAIN, holds))
        if oauth is not None and oauth.key_size is not None:
            samples.append(check_sample(CHECK_OAUTH_KEY_SIZE, oauth.key_size >= MIN_OAUTH_KEY_BITS))
        return samples


def _store_key_size(ctx: Context, thumbprint: str) -> int | None:
    """The key size of the certificate ``thumbprint`` names in the front end's LocalMachine\\My, read
    from its DER; None (logged) when the store does not hold it or cannot be read."""
    if thumbprint == THUMBPRINT_MALFORMED:
        return None
    path = STORE_PATH.format(thumbprint=thumbprint)
    try:
        answer = ctx.run(WINDOWS, STORE_ITEM_CMDLET, {"LiteralPath": path}, STORE_CERTIFICATE,
                         accept_error_ids=STORE_NOT_FOUND_IDS)
    except CollectError as exc:
        ctx.log.warning("%s: the OAuthTokenIssuer certificate's key size is unknown: %s", ctx.target.name, exc)
        return None
    if not answer.objects:
        ctx.log.warning("%s: %s is not in the machine store: the OAuthTokenIssuer certificate's key size is unknown",
                        ctx.target.name, path)
        return None
    try:
        return facts_from_der(answer.objects[0]["RawData"]).key_size
    except CertificateUnreadable as exc:
        ctx.log.warning("%s: %s RawData: %s", ctx.target.name, path, exc)
        return None
