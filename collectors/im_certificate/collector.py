"""Check E3: OWA's IM settings (server name, certificate thumbprint) against the installed certificates.

Exchange 2013 keeps ``IMServerName`` and ``IMCertificateThumbprint`` in OWA's web.config (read over
the Windows endpoint; the install path and version come from Exchange's Setup registry key);
Exchange 2016/2019 keep them in a setting override (``Get-SettingOverride``). The thumbprint must
name a certificate installed on the server (``Get-ExchangeCertificate``) that has its private key and
is valid now; the server name must be the Lync pool. The checks are exported in dependency order,
so a rule can say *why* IM is broken. Every Exchange certificate's validity is exported too, and
the Exchange Server Auth certificate (``Get-AuthConfig``), whose expiry breaks server-to-server OAuth.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from pydantic import Field as SettingField
from pydantic import field_validator

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    ErrorKind,
    Sample,
    label_value,
)
from collectors.helpers.certificates import (
    CertificateFacts,
    CertificateUnreadable,
    facts_from_der,
)
from collectors.helpers.cmdlet_policy import Matching, OneOf
from collectors.helpers.text import clean_text
from collectors.im_certificate.answers import (
    AUTH_CONFIG,
    CERT_STORE,
    EXCHANGE_2013,
    EXCHANGE_CERTIFICATE,
    SETTING_OVERRIDE,
    SETUP,
    SETUP_KEY,
    STORE_CERTIFICATE,
    WEB_CONFIG_RELATIVE,
)
from collectors.im_certificate.im_settings import (
    PROBLEM_WEB_CONFIG_MISSING,
    SETTINGS_PROBLEMS,
    SOURCE_SETTING_OVERRIDE,
    SOURCE_WEB_CONFIG,
    Certificate,
    ImSettings,
    evaluate,
    im_settings_from_overrides,
    normalise_thumbprint,
    thumbprint_well_formed,
)
from collectors.im_certificate.metrics import (
    AUTH_FOUND,
    AUTH_NOT_AFTER,
    CERT_KEY_SIZE,
    CERT_NOT_AFTER,
    CERT_NOT_BEFORE,
    CERT_PRIVATE_KEY,
    CERT_USE,
    CHECK_OK,
    IM_CERT_NOT_AFTER,
    SETTINGS_PROBLEM,
    SOURCE_INFO,
)
from collectors.im_certificate.override_recycle import (
    CHECK_RECYCLED,
    judge_recycled,
    last_change_in_use,
)
from collectors.im_certificate.owa_web_config import (
    WebConfigError,
    parse_im_app_settings,
)
from collectors.im_certificate.trusted_pool_name import (
    CHECK_NAMES_SERVER,
    CHECK_NAMES_TRUSTED_POOL,
    names_server,
    names_trusted_pools,
)
from collectors.im_certificate.variant_configuration import (
    CHECK_OVERRIDE_IN_EFFECT,
    DIAGNOSTIC_PARAMETERS,
    judge_override,
)
from collectors.im_certificate.variant_configuration import CMDLET as DIAGNOSTIC_CMDLET
from collectors.sources.app_pool_workers import PROCESS_CMDLET, PROCESS_PARAMETERS
from collectors.sources.file_text import FILE_TEXT
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS


class ImCertificateSettings(CollectorSettings):
    # auto: web.config on Exchange 2013 (version 15.0), the setting override on 2016/2019.
    source: Literal["auto", "web_config", "setting_override"] = "auto"
    # The name Exchange knows this server by (-Server, setting override scope); default: the target's host.
    exchange_server: str | None = SettingField(default=None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9_.-]+$")
    # At most this many certificates are exported per server (all of them are still checked).
    max_certificates: int = SettingField(default=100, ge=1, le=1000)
    # Thumbprints of certificates the integration does not use to leave out of the metrics (and so out
    # of the unused-certificate warnings), e.g. a leftover the team keeps on purpose. The IM and the
    # Auth certificate are exported whatever this says.
    ignored_certificates: tuple[str, ...] = SettingField(default=(), max_length=1000)

    @field_validator("ignored_certificates")
    @classmethod
    def _thumbprints(cls, values: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in values if not thumbprint_well_formed(v)]
        if bad:
            raise ValueError(f"not a certificate thumbprint (40 hex digits): {bad[0][:60]!r}")
        return tuple(normalise_thumbprint(v) for v in values)


@dataclass(frozen=True)
class ExchangeSetup:
    install_path: str
    version: tuple[int, int]
    build: tuple[int, ...] | None = None  # e.g. (15, 1, 2375, 7), when the Setup key holds it

    @property
    def web_config_path(self) -> str:
        return self.install_path.rstrip("\\") + "\\" + WEB_CONFIG_RELATIVE


@dataclass
class ImCertificateState:
    setup: ExchangeSetup | None = None  # read once per job: it changes only on reinstall
    logged: tuple[str | None, str] | None = None  # (problem, note) last logged: said once per change
    diagnostic_logged: str = ""  # why the loaded IM settings were last unreadable: said once per change


Context = CollectContext[ImCertificateSettings, ImCertificateState]


class ImCertificateCollector(Collector[ImCertificateSettings, ImCertificateState]):
    name = "im_certificate"
    roles = frozenset({"exchange_mailbox"})
    reads_facts = {"exchange_mailbox": (OWA_TRUSTED_POOLS,)}
    settings_model = ImCertificateSettings
    state_model = ImCertificateState
    metrics = (
        CHECK_OK,
        SOURCE_INFO,
        SETTINGS_PROBLEM,
        IM_CERT_NOT_AFTER,
        CERT_NOT_BEFORE,
        CERT_NOT_AFTER,
        CERT_KEY_SIZE,
        CERT_PRIVATE_KEY,
        CERT_USE,
        AUTH_FOUND,
        AUTH_NOT_AFTER,
        CONFIG_CHECK_OK,
    )
    cmdlets = (
        ("windows", "Get-ItemProperty"),
        ("windows", "Get-Content"),
        ("windows", "Get-ChildItem"),
        ("windows", "Select-Object"),
        ("windows", PROCESS_CMDLET),
        ("exchange", "Get-SettingOverride"),
        ("exchange", "Get-ExchangeCertificate"),
        ("exchange", "Get-AuthConfig"),
        ("exchange", DIAGNOSTIC_CMDLET),
    )
    cmdlet_parameters = {
        "Get-ItemProperty": {"Path": OneOf((SETUP_KEY,))},
        # Only OWA's web.config, wherever Exchange is installed.
        "Get-Content": {"Path": Matching(r"[a-z]:\\.*\\ClientAccess\\Owa\\web\.config"), "Raw": None},
        # Only the computer's personal store: read-only, and only for HasPrivateKey.
        "Get-ChildItem": {"Path": OneOf((CERT_STORE,))},
        "Select-Object": {"Property": None},
        PROCESS_CMDLET: PROCESS_PARAMETERS,
        "Get-SettingOverride": {},
        "Get-ExchangeCertificate": {"Server": None},
        "Get-AuthConfig": {},
        DIAGNOSTIC_CMDLET: DIAGNOSTIC_PARAMETERS,
    }

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        server = settings.exchange_server or ctx.target.host
        certificates = self._certificates(ctx, server)
        im, override_changed = self._im_settings(ctx, settings.source, server)
        now = dt.datetime.now(dt.timezone.utc)
        result = evaluate(im, certificates, ctx.estate.lync_pool_fqdn, now)

        samples = [SOURCE_INFO.sample(1, source=im.source)]
        samples += [SETTINGS_PROBLEM.sample(1 if im.problem == p else 0, problem=p) for p in SETTINGS_PROBLEMS]
        samples += [CHECK_OK.sample(1 if ok else 0, check=check) for check, ok in result.checks.items()]
        if result.certificate is not None and result.certificate.not_after is not None:
            samples.append(IM_CERT_NOT_AFTER.sample(result.certificate.not_after.timestamp()))
        pools = ctx.facts.fresh(OWA_TRUSTED_POOLS)  # posted by a front end's lync_topology job
        if result.certificate is not None and pools is not None:
            cert = result.certificate
            named = names_trusted_pools(cert.subject_cn, cert.dns_names, pools.value, server)
            if named is not None:
                samples.append(check_sample(CHECK_NAMES_TRUSTED_POOL, named))
        if result.certificate is not None:
            names_host = names_server(result.certificate.subject_cn, result.certificate.dns_names, ctx.target.host)
            if names_host is not None:
                samples.append(check_sample(CHECK_NAMES_SERVER, names_host))
        in_effect, ctx.state.diagnostic_logged = judge_override(ctx, im, server, ctx.state.diagnostic_logged)
        if in_effect is not None:
            samples.append(check_sample(CHECK_OVERRIDE_IN_EFFECT, in_effect))
        recycled = judge_recycled(ctx, im, override_changed)
        if recycled is not None:
            samples.append(check_sample(CHECK_RECYCLED, recycled))
        auth = self._auth_certificate(ctx, certificates)
        uses = {cert.thumbprint: use for use, cert in (("im", result.certificate), ("auth", auth)) if cert}
        samples += self._certificate_samples(ctx, certificates, settings, uses)
        samples.append(AUTH_FOUND.sample(1 if auth is not None else 0))
        if auth is not None and auth.not_after is not None:
            samples.append(AUTH_NOT_AFTER.sample(auth.not_after.timestamp()))
        return samples

    # --- where the IM settings come from ------------------------------------------------------
    def _im_settings(self, ctx: Context, source: str, server: str) -> tuple[ImSettings, dt.datetime | None]:
        """The settings, and when the setting overrides they come from last changed (None: web.config)."""
        build: tuple[int, ...] | None = None
        changed: dt.datetime | None = None
        if source == "auto":
            setup = self._setup(ctx)
            source = SOURCE_WEB_CONFIG if setup.version == EXCHANGE_2013 else SOURCE_SETTING_OVERRIDE
            build = setup.build
        if source == SOURCE_SETTING_OVERRIDE:
            overrides = ctx.run("exchange", "Get-SettingOverride", None, SETTING_OVERRIDE).objects
            im, note = im_settings_from_overrides(overrides, server, build), "Get-SettingOverride"
            changed = last_change_in_use(overrides, server, build)
        else:
            im, note = self._from_web_config(ctx, self._setup(ctx))
        # Said once per change, not every run: the metrics carry the state, the log names the file.
        if (im.problem, note) != ctx.state.logged:
            ctx.state.logged = (im.problem, note)
            if im.problem is not None:
                ctx.log.warning("OWA IM settings of %s unreadable (%s): %s", ctx.target.host, im.problem, note)
            elif note.startswith("duplicate"):
                ctx.log.warning("OWA IM settings of %s: %s", ctx.target.host, note)
        return im, changed

    def _setup(self, ctx: Context) -> ExchangeSetup:
        """Install path and version from Exchange's Setup key; read once per job (they change only on reinstall)."""
        cached = ctx.state.setup
        if cached is not None:
            return cached
        answer = ctx.run("windows", "Get-ItemProperty", {"Path": SETUP_KEY}, SETUP)
        install_path = clean_text(answer.objects[0]["MsiInstallPath"]) if len(answer.objects) == 1 else ""
        if not install_path:
            raise CollectError(ErrorKind.SHAPE, f"{ctx.target.host} Get-ItemProperty",
                              f"{SETUP_KEY} gave {len(answer.objects)} objects or an empty MsiInstallPath")
        key = answer.objects[0]
        version = (key["MsiProductMajor"], key["MsiProductMinor"])
        builds = (key["MsiBuildMajor"], key["MsiBuildMinor"])
        setup = ExchangeSetup(install_path, version, (*version, *builds) if None not in builds else None)
        ctx.state.setup = setup
        return setup

    def _from_web_config(self, ctx: Context, setup: ExchangeSetup) -> tuple[ImSettings, str]:
        """The settings and a note for the log (the file, and what is wrong with it)."""
        path = setup.web_config_path
        answer = ctx.run("windows", "Get-Content", {"Path": path, "Raw": True}, FILE_TEXT,
                         accept_error_ids=("PathNotFound",))
        if "PathNotFound" in answer.error_ids() and not answer.objects:
            ctx.state.setup = None  # read the install path again next time: it may have moved
            return ImSettings(SOURCE_WEB_CONFIG, problem=PROBLEM_WEB_CONFIG_MISSING), f"file not found: {path}"
        parsed = parse_im_app_settings("".join(obj["Text"] for obj in answer.objects))
        if isinstance(parsed, WebConfigError):
            return ImSettings(SOURCE_WEB_CONFIG, problem=parsed.problem.value), f"{parsed.detail}: {path}"
        note = path
        if parsed.duplicate_keys:
            note = f"duplicate {', '.join(parsed.duplicate_keys)} (the last one counts): {path}"
        return ImSettings(SOURCE_WEB_CONFIG, parsed.server_name, parsed.certificate_thumbprint), note

    # --- certificates -------------------------------------------------------------------------
    def _certificates(self, ctx: Context, server: str) -> dict[str, Certificate]:
        """The server's Exchange certificates by thumbprint, read from their DER, with whether the server
        holds each private key (from its certificate store)."""
        answer = ctx.run("exchange", "Get-ExchangeCertificate", {"Server": server}, EXCHANGE_CERTIFICATE)
        facts: list[CertificateFacts] = []
        for obj in answer.objects:
            try:
                facts.append(facts_from_der(obj["RawData"]))
            except CertificateUnreadable as exc:
                raise CollectError(ErrorKind.SHAPE, f"{ctx.where('exchange')} Get-ExchangeCertificate",
                                   f"RawData: {exc}") from None
        private_keys = self._private_keys(ctx) if facts else {}
        certificates: dict[str, Certificate] = {}
        for cert in facts:
            certificates.setdefault(cert.thumbprint, Certificate(
                thumbprint=cert.thumbprint,
                subject_cn=cert.subject_cn or "none",
                dns_names=cert.dns_names,
                not_before=cert.not_before,
                not_after=cert.not_after,
                has_private_key=private_keys.get(cert.thumbprint),
                public_key_size=cert.key_size,
            ))
        return certificates

    @staticmethod
    def _private_keys(ctx: Context) -> dict[str, bool]:
        """Thumbprint -> HasPrivateKey for the certificates in LocalMachine\\My."""
        answer = ctx.run("windows", "Get-ChildItem", {"Path": CERT_STORE}, STORE_CERTIFICATE)
        return {normalise_thumbprint(obj["Thumbprint"]): obj["HasPrivateKey"] for obj in answer.objects
                if obj["Thumbprint"] and isinstance(obj["HasPrivateKey"], bool)}

    def _certificate_samples(
        self, ctx: Context, certificates: dict[str, Certificate], settings: ImCertificateSettings,
        uses: dict[str, str],
    ) -> list[Sample]:
        limit = settings.max_certificates
        # The integration's certificates first, so the limit never cuts them; ignored ones never.
        ordered = sorted((c for c in certificates.values()
                          if c.thumbprint in uses or c.thumbprint not in settings.ignored_certificates),
                         key=lambda c: c.thumbprint not in uses)
        if len(certificates) > limit:
            ctx.log.warning("%s has %d Exchange certificates; exporting the first %d (max_certificates)",
                            ctx.target.host, len(certificates), limit)
        samples: list[Sample] = []
        exported: set[str] = set()
        for cert in ordered:
            # Two odd thumbprints could look alike once made label-safe: one series each, never two.
            label = label_value(cert.thumbprint)
            if label in exported:
                continue
            if len(exported) >= limit:
                break
            exported.add(label)
            labels = {"thumbprint": cert.thumbprint, "subject_cn": cert.subject_cn}
            if cert.not_before is not None:
                samples.append(CERT_NOT_BEFORE.sample(cert.not_before.timestamp(), **labels))
            if cert.not_after is not None:
                samples.append(CERT_NOT_AFTER.sample(cert.not_after.timestamp(), **labels))
            if cert.public_key_size is not None:
                samples.append(CERT_KEY_SIZE.sample(cert.public_key_size, **labels))
            if cert.has_private_key is not None:
                samples.append(CERT_PRIVATE_KEY.sample(1 if cert.has_private_key else 0, **labels))
            if cert.thumbprint in uses:
                samples.append(CERT_USE.sample(1, thumbprint=cert.thumbprint, use=uses[cert.thumbprint]))
        return samples

    def _auth_certificate(self, ctx: Context, certificates: dict[str, Certificate]) -> Certificate | None:
        answer = ctx.run("exchange", "Get-AuthConfig", None, AUTH_CONFIG)
        current = answer.objects[0]["CurrentCertificateThumbprint"] if answer.objects else None
        return certificates.get(normalise_thumbprint(current)) if current else None
