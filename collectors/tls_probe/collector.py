"""Every certificate: expiry, as the network sees it. A TLS handshake with OWA, the pool and the Edge.

The certificate stores (Get-ExchangeCertificate, Get-CsCertificate) say what is installed; this
probe says what a client is actually shown: IIS may still be bound to the old certificate after a
renewal, and a load balancer may present its own. For every configured endpoint it completes a TLS
handshake, reads the chain the server presents and measures it *without* requiring it to validate
(an expired certificate must still be measured); whether the chain validates against the system
CAs (or ``ca_file``) and names the host is recorded separately. The handshake itself is the source
:mod:`collectors.sources.tls`; the endpoints, their defaults by role and where to connect are in
:mod:`collectors.tls_probe.targets`.

A probe that fails is a metric (``..._probe_success`` 0, ``..._probe_failures_total{kind}``), not a
failed run: the run fails only when the configuration cannot be used.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from pydantic import Field as SettingField
from pydantic import StrictBool, ValidationInfo, field_validator, model_validator

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CollectContext,
    Collector,
    CollectorSettings,
    Duration,
    MetricSpec,
    Sample,
)
from collectors.helpers.certificates import certificate_cn, thumbprint
from collectors.helpers.durations import format_duration
from collectors.helpers.names import fqdn, is_host
from collectors.helpers.paths import check_ca_file
from collectors.sources.tls import FAILURE_KINDS, ProbeOutcome, probe
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS
from collectors.tls_probe.owa_im_endpoint import (
    CHECK_CHAINS_TO_LYNC_ROOT,
    CHECK_PORT_ACCEPTS_TLS,
    LYNC_CHAIN_ROOTS,
    LYNC_SIP_TLS_PORT,
    chains_to_lync_root,
    lync_roots_of,
    normalise_name,
    owa_im_endpoints,
)
from collectors.tls_probe.targets import (
    HostPort,
    ProbeTarget,
    default_endpoints,
    parse_host_port,
)

MAX_ENDPOINTS = 16
DEFAULT_PROBE_TIMEOUT = 10.0
# Leave this much of the run's deadline for handing the result over after the probes.
_MARGIN_SECONDS = 0.5

NOT_AFTER = MetricSpec(
    "lync_owa_tls_certificate_not_after_timestamp_seconds",
    "gauge",
    "When the certificate the endpoint presents (the leaf) expires.",
    ("endpoint",),
)
NOT_BEFORE = MetricSpec(
    "lync_owa_tls_certificate_not_before_timestamp_seconds",
    "gauge",
    "When the certificate the endpoint presents (the leaf) becomes valid.",
    ("endpoint",),
)
CHAIN_EARLIEST_NOT_AFTER = MetricSpec(
    "lync_owa_tls_chain_earliest_not_after_timestamp_seconds",
    "gauge",
    "When the first certificate of the chain the endpoint presents (leaf or intermediate) expires.",
    ("endpoint",),
)
CERT_INFO = MetricSpec(
    "lync_owa_tls_certificate_info",
    "gauge",
    "The certificate the endpoint presents: SHA-1 thumbprint as Windows shows it, and subject CN; always 1.",
    ("endpoint", "thumbprint", "subject_cn"),
)
VERIFIED = MetricSpec(
    "lync_owa_tls_certificate_verified",
    "gauge",
    "1 when the presented chain validates against the trusted CAs, is within its validity and names the host.",
    ("endpoint",),
)
PROBE_SUCCESS = MetricSpec(
    "lync_owa_tls_probe_success",
    "gauge",
    "1 when the last TLS handshake with the endpoint completed and its certificate was read, else 0.",
    ("endpoint",),
)
PROBE_FAILURES = MetricSpec(
    "lync_owa_tls_probe_failures_total",
    "counter",
    "TLS probes of the endpoint that got no certificate, by kind (refused, timeout, tls_error, dns).",
    ("endpoint", "kind"),
)


# --------------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------------


class TlsProbeSettings(CollectorSettings):
    # "host:port" to probe; unset: derived from the target's host and roles (default_endpoints).
    endpoints: tuple[str, ...] | None = SettingField(default=None, min_length=1, max_length=MAX_ENDPOINTS)
    # "host:port" (an endpoint) -> "address:port" to connect to instead; the endpoint's host name is
    # still the one sent (SNI) and checked. For load-balancer VIPs, NAT, or a simulated estate.
    connect_addresses: dict[str, str] = SettingField(default_factory=dict)
    # Host name sent (SNI) and checked for every endpoint instead of the endpoint's own.
    server_name: str | None = None
    # PEM bundle of the CAs to trust; unset: the system's.
    ca_file: str | None = SettingField(default=None, min_length=1)
    # One endpoint's connect + handshake (endpoints are probed at the same time); unset: half of
    # `timeout`, at most 10 s.
    probe_timeout: Duration | None = SettingField(default=None, gt=0)
    # Exchange targets: also probe <host>:<port> for each OutlookWebApp trusted application port whose pool
    # stands for the host (read by a lync_topology job), and judge what answers there (owa_im_endpoint).
    probe_trusted_application_ports: StrictBool = True
    # Distinguished names of roots the front ends trust besides those their own chains end at.
    lync_trusted_roots: tuple[str, ...] = SettingField(default=(), max_length=50)

    @field_validator("endpoints")
    @classmethod
    def _endpoints_shape(cls, endpoints: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if endpoints is None:
            return None
        parsed = [str(parse_host_port(text)) for text in endpoints]
        duplicates = sorted({e for e in parsed if parsed.count(e) > 1})
        if duplicates:
            raise ValueError(f"endpoint {duplicates[0]} is listed twice")
        return tuple(parsed)

    @field_validator("connect_addresses")
    @classmethod
    def _connect_addresses_shape(cls, mapping: dict[str, str]) -> dict[str, str]:
        return {str(parse_host_port(key)): str(parse_host_port(value)) for key, value in mapping.items()}

    @field_validator("server_name")
    @classmethod
    def _server_name_shape(cls, name: str | None) -> str | None:
        if name is None:
            return None
        name = fqdn(name, strict=True)
        if not is_host(name):
            raise ValueError("must be a DNS name or an IP address")
        return name

    @field_validator("ca_file")
    @classmethod
    def _ca_file_usable(cls, ca_file: str | None, info: ValidationInfo) -> str | None:
        return None if ca_file is None else check_ca_file(ca_file, info, require_certificate=True)

    @field_validator("lync_trusted_roots")
    @classmethod
    def _root_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in names if "=" not in name]
        if bad:
            raise ValueError(f"{bad[0][:80]!r} is not a distinguished name such as 'CN=Contoso Root CA, DC=contoso, DC=com'")
        return tuple(normalise_name(name) for name in names)

    @property
    def effective_probe_timeout(self) -> float:
        return self.probe_timeout if self.probe_timeout is not None else min(DEFAULT_PROBE_TIMEOUT, self.timeout / 2)

    @model_validator(mode="after")
    def _probe_fits_the_run(self) -> TlsProbeSettings:
        if self.probe_timeout is not None and self.probe_timeout >= self.timeout:
            raise ValueError(
                f"probe_timeout ({format_duration(self.probe_timeout)}) must be shorter than timeout "
                f"({format_duration(self.timeout)})"
            )
        # With the trusted application ports probed, connect_addresses may name one of them (found at run time).
        if self.endpoints is not None and not self.probe_trusted_application_ports:
            unused = sorted(set(self.connect_addresses) - set(self.endpoints))
            if unused:
                raise ValueError(f"connect_addresses names {unused[0]}, which is not in endpoints")
        return self


# --------------------------------------------------------------------------------------------------
# Samples
# --------------------------------------------------------------------------------------------------


def certificate_samples(endpoint: str, chain: tuple[x509.Certificate, ...], verified: bool) -> list[Sample]:
    leaf = chain[0]
    return [
        NOT_AFTER.sample(leaf.not_valid_after_utc.timestamp(), endpoint=endpoint),
        NOT_BEFORE.sample(leaf.not_valid_before_utc.timestamp(), endpoint=endpoint),
        CHAIN_EARLIEST_NOT_AFTER.sample(min(c.not_valid_after_utc.timestamp() for c in chain), endpoint=endpoint),
        CERT_INFO.sample(1, endpoint=endpoint, thumbprint=thumbprint(leaf), subject_cn=certificate_cn(leaf) or "none"),
        VERIFIED.sample(1 if verified else 0, endpoint=endpoint),
    ]


# --------------------------------------------------------------------------------------------------
# The collector
# --------------------------------------------------------------------------------------------------


@dataclass
class TlsProbeState:
    """Failure counters and what was last logged, per endpoint."""

    failures: dict[tuple[str, str], int] = field(default_factory=dict)
    last_outcome: dict[str, str] = field(default_factory=dict)  # endpoint -> what was last logged


def probe_targets(
    settings: TlsProbeSettings, host: str, roles: frozenset[str], pool_fqdn: str | None,
    discovered: list[HostPort] | None = None,
) -> list[ProbeTarget]:
    """What to probe: the configured or default endpoints and those ``discovered`` (OWA's IM endpoints),
    each once, with where to connect and the name to check."""
    if settings.endpoints is not None:
        endpoints = [parse_host_port(text) for text in settings.endpoints]
    else:
        endpoints = default_endpoints(host, roles, pool_fqdn)
    endpoints += [endpoint for endpoint in discovered or () if endpoint not in endpoints]
    targets = []
    for endpoint in endpoints:
        override = settings.connect_addresses.get(str(endpoint))
        connect = parse_host_port(override) if override else endpoint
        targets.append(ProbeTarget(endpoint, connect, settings.server_name or endpoint.host))
    return targets


Context = CollectContext[TlsProbeSettings, TlsProbeState]


class TlsProbeCollector(Collector[TlsProbeSettings, TlsProbeState]):
    name = "tls_probe"
    roles = frozenset({"exchange_mailbox", "exchange_client_access", "lync_frontend", "lync_edge"})
    settings_model = TlsProbeSettings
    state_model = TlsProbeState
    metrics = (NOT_AFTER, NOT_BEFORE, CHAIN_EARLIEST_NOT_AFTER, CERT_INFO, VERIFIED, PROBE_SUCCESS, PROBE_FAILURES,
               CONFIG_CHECK_OK)
    cmdlets = ()  # nothing remote: a TLS handshake from the exporter
    posts_facts = {"lync_frontend": (LYNC_CHAIN_ROOTS,)}
    reads_facts = {role: (OWA_TRUSTED_POOLS, LYNC_CHAIN_ROOTS) for role in ("exchange_mailbox", "exchange_client_access")}

    @classmethod
    def facts_read(cls, roles: Iterable[str], settings: Any) -> frozenset[str]:
        # Without the trusted application ports, an Exchange target's probe reads nothing of other jobs.
        read = super().facts_read(roles, settings)
        return read if getattr(settings, "probe_trusted_application_ports", True) else frozenset()

    def collect(self, ctx: Context) -> list[Sample]:
        settings, memory = ctx.settings, ctx.state
        owa_im = self._owa_im_endpoints(ctx)
        targets = probe_targets(settings, ctx.target.host, ctx.target.roles, ctx.estate.lync_pool_fqdn, owa_im)
        outcomes = self._probe_all(ctx, settings, targets)
        samples: list[Sample] = []
        for target in targets:
            endpoint = str(target.endpoint)
            outcome = outcomes[endpoint]
            self._log_change(ctx, memory, endpoint, outcome)
            if outcome.failure is None:
                samples.append(PROBE_SUCCESS.sample(1, endpoint=endpoint))
                samples += certificate_samples(endpoint, outcome.chain, outcome.verified)
            else:
                samples.append(PROBE_SUCCESS.sample(0, endpoint=endpoint))
                key = (endpoint, outcome.failure)
                memory.failures[key] = memory.failures.get(key, 0) + 1
            for kind in FAILURE_KINDS:
                count = memory.failures.get((endpoint, kind), 0)
                samples.append(PROBE_FAILURES.sample(count, endpoint=endpoint, kind=kind))
        samples += self._owa_im_checks(ctx, [outcomes[str(endpoint)] for endpoint in owa_im])
        if "lync_frontend" in ctx.target.roles:
            self._post_lync_roots(ctx, [outcomes[str(t.endpoint)].chain for t in targets
                                        if t.endpoint.port == LYNC_SIP_TLS_PORT and outcomes[str(t.endpoint)].chain])
        return samples

    @staticmethod
    def _owa_im_endpoints(ctx: Context) -> list[HostPort]:
        """An Exchange target's IM endpoints (the OWA trusted application's ports), once a front end's
        lync_topology job has read them; none on other targets or with the setting off."""
        if not ctx.settings.probe_trusted_application_ports:
            return []
        if not ctx.target.roles & {"exchange_mailbox", "exchange_client_access"}:
            return []
        pools = ctx.facts.fresh(OWA_TRUSTED_POOLS)
        return owa_im_endpoints(pools.value, ctx.target.host) if pools is not None else []

    @staticmethod
    def _owa_im_checks(ctx: Context, outcomes: list[ProbeOutcome]) -> list[Sample]:
        """Every IM endpoint completes a handshake; what they present chains to a root Lync trusts (judged
        once a front end's probe has said which roots those are, or the setting names them)."""
        if not outcomes:
            return []
        samples = [check_sample(CHECK_PORT_ACCEPTS_TLS, all(o.failure is None for o in outcomes))]
        chains = [o.chain for o in outcomes if o.chain]
        posted = ctx.facts.fresh(LYNC_CHAIN_ROOTS)
        roots = set(ctx.settings.lync_trusted_roots) | set(posted.value if posted is not None else ())
        if chains and (posted is not None or roots):
            samples.append(check_sample(CHECK_CHAINS_TO_LYNC_ROOT, all(chains_to_lync_root(c, roots) for c in chains)))
        return samples

    @staticmethod
    def _post_lync_roots(ctx: Context, chains: list[tuple[x509.Certificate, ...]]) -> None:
        """The roots this front end's chains on 5061 end at, added to those other front ends posted."""
        mine = lync_roots_of(chains)
        if not mine:
            return
        posted = ctx.facts.fresh(LYNC_CHAIN_ROOTS)
        ctx.post(LYNC_CHAIN_ROOTS, mine | (posted.value if posted is not None else frozenset()))

    def _probe_all(
        self, ctx: Context, settings: TlsProbeSettings, targets: list[ProbeTarget]
    ) -> dict[str, ProbeOutcome]:
        """Probe every endpoint at once, so one that hangs costs the run one probe_timeout, not one each."""
        timeout = min(settings.effective_probe_timeout, ctx.deadline.remaining() - _MARGIN_SECONDS)
        late = ProbeOutcome(failure="timeout", detail="no time left in the run")
        if timeout <= 0:
            return {str(t.endpoint): late for t in targets}
        pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(targets), thread_name_prefix="tls-probe")
        try:
            futures = {
                pool.submit(probe, t.connect.host, t.connect.port, t.server_name, timeout, settings.ca_file):
                    str(t.endpoint)
                for t in targets
            }
            # DNS lookups have no timeout of their own: never wait past the run's deadline for one.
            concurrent.futures.wait(futures, timeout=max(min(timeout + 1.0, ctx.deadline.remaining() - 0.2), 0))
            outcomes = {}
            for future, endpoint in futures.items():
                outcomes[endpoint] = future.result() if future.done() else late
            return outcomes
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _log_change(ctx: Context, memory: TlsProbeState, endpoint: str, outcome: ProbeOutcome) -> None:
        """Say why once per change of outcome, not at every run."""
        if outcome.failure is not None:
            state, level = f"failed ({outcome.failure}): {outcome.detail}", "warning"
        elif not outcome.verified:
            why = outcome.detail if not outcome.chain_trusted else "the certificate does not name the host"
            state, level = f"presents a certificate that does not verify: {why}", "info"
        else:
            state, level = "ok", "debug"
        if memory.last_outcome.get(endpoint) != state:
            memory.last_outcome[endpoint] = state
            getattr(ctx.log, level)("TLS probe of %s %s", endpoint, state)
