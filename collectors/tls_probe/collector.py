"""Every certificate: expiry, as the network sees it. A TLS handshake with OWA, the pool and the Edge.

The certificate stores (Get-ExchangeCertificate, Get-CsCertificate) say what is installed; this
probe says what a client is actually shown: IIS may still be bound to the old certificate after a
renewal, and a load balancer may present its own. For every configured endpoint it completes a TLS
handshake, reads the chain the server presents and measures it *without* requiring it to validate
(an expired certificate must still be measured); whether the chain validates against the system
CAs (or ``ca_file``) and names the host is recorded separately.

Python's ``ssl`` only gains a public API for the presented chain in 3.13
(``SSLSocket.get_unverified_chain``), so the handshake goes through pyOpenSSL's
``Connection.get_peer_cert_chain()``, with OpenSSL's own chain verification run in the same
handshake by a verify callback that records errors instead of failing.

A probe that fails is a metric (``..._probe_success`` 0, ``..._probe_failures_total{kind}``), not a
failed run: the run fails only when the configuration cannot be used.
"""

from __future__ import annotations

import concurrent.futures
import ipaddress
import os
import re
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from OpenSSL import SSL
from pydantic import Field as SettingField
from pydantic import ValidationInfo, field_validator, model_validator

from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    Duration,
    ErrorKind,
    MetricSpec,
    Sample,
)
from collectors.helpers.durations import format_duration
from collectors.helpers.paths import resolve_path

# Why a probe got no certificate; a closed set, all exported at 0 from the start.
FAILURE_KINDS = ("refused", "timeout", "tls_error", "dns")
# Well-known ports: OWA (and the Edge's external web/access port) and SIP over TLS.
HTTPS_PORT = 443
SIP_TLS_PORT = 5061
MAX_ENDPOINTS = 16
DEFAULT_PROBE_TIMEOUT = 10.0
# Leave this much of the run's deadline for handing the result over after the probes.
_MARGIN_SECONDS = 0.5
_EXCHANGE_ROLES = frozenset({"exchange_mailbox", "exchange_client_access"})

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
# Endpoints: "host:port" as configured, and where to connect
# --------------------------------------------------------------------------------------------------

_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}$){_HOST_LABEL}(?:\.{_HOST_LABEL})*")


@dataclass(frozen=True, order=True)
class HostPort:
    host: str  # lower case; an IPv6 address without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        return _ip(self.host) is not None


def parse_host_port(text: str) -> HostPort:
    """ "host:port", "1.2.3.4:port" or "[v6]:port"; ValueError says what is wrong (the text is short)."""
    if not isinstance(text, str):
        raise ValueError("must be a string 'host:port'")
    value = text.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]\s]+):(\d{1,5})", value)
    if not match:
        raise ValueError(f"{value[:80]!r} is not 'host:port' (IPv6 as '[addr]:port')")
    host = (match.group(1) or match.group(3)).lower().rstrip(".")
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise ValueError(f"{value[:80]!r}: port {port} is not between 1 and 65535")
    if match.group(1) is not None and not isinstance(_ip(host), ipaddress.IPv6Address):
        raise ValueError(f"{value[:80]!r}: {host!r} in brackets is not an IPv6 address")
    if _ip(host) is None and not _HOSTNAME_RE.fullmatch(host):
        raise ValueError(f"{value[:80]!r}: {host!r} is not a DNS name or an IP address")
    return HostPort(host, port)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def default_endpoints(host: str, roles: frozenset[str], pool_fqdn: str | None) -> list[HostPort]:
    """OWA on 443 of an Exchange server; a front end (and its pool) on 5061; an Edge on 443 and 5061."""
    wanted: list[tuple[str, int]] = []
    if roles & _EXCHANGE_ROLES:
        wanted.append((host, HTTPS_PORT))
    if "lync_frontend" in roles:
        wanted.append((host, SIP_TLS_PORT))
        if pool_fqdn:
            wanted.append((pool_fqdn, SIP_TLS_PORT))
    if "lync_edge" in roles:
        wanted += [(host, HTTPS_PORT), (host, SIP_TLS_PORT)]
    result: list[HostPort] = []
    for name, port in wanted:
        endpoint = parse_host_port(f"[{name}]:{port}" if ":" in name else f"{name}:{port}")
        if endpoint not in result:
            result.append(endpoint)
    return result


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
        name = name.strip().lower().rstrip(".")
        if _ip(name) is None and not _HOSTNAME_RE.fullmatch(name):
            raise ValueError("must be a DNS name or an IP address")
        return name

    @field_validator("ca_file")
    @classmethod
    def _ca_file_usable(cls, ca_file: str | None, info: ValidationInfo) -> str | None:
        if ca_file is None:
            return None
        path = resolve_path(ca_file, info)
        if not path.is_file() or not os.access(path, os.R_OK):
            raise ValueError(f"CA file {str(path)!r} does not exist or is not readable")
        try:
            certificates = x509.load_pem_x509_certificates(path.read_bytes())
        except (ValueError, OSError):
            certificates = []
        if not certificates:
            raise ValueError(f"CA file {str(path)!r} holds no PEM certificate")
        return str(path)

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
        if self.endpoints is not None:
            unused = sorted(set(self.connect_addresses) - set(self.endpoints))
            if unused:
                raise ValueError(f"connect_addresses names {unused[0]}, which is not in endpoints")
        return self


# --------------------------------------------------------------------------------------------------
# One probe
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeTarget:
    endpoint: HostPort  # what the metrics name
    connect: HostPort  # where the TCP connection goes
    server_name: str  # sent as SNI (unless an IP address) and checked against the certificate


@dataclass(frozen=True)
class ProbeOutcome:
    chain: tuple[x509.Certificate, ...] = ()  # as presented, leaf first
    chain_trusted: bool = False
    name_matches: bool = False
    failure: str | None = None  # one of FAILURE_KINDS when no certificate was read
    detail: str = ""  # for the log only

    @property
    def verified(self) -> bool:
        return bool(self.chain) and self.chain_trusted and self.name_matches


class _ProbeFailure(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


def probe(target: ProbeTarget, timeout: float, ca_file: str | None = None) -> ProbeOutcome:
    """Connect, complete a TLS handshake within ``timeout`` seconds, and read the presented chain."""
    deadline = time.monotonic() + timeout
    try:
        context = _client_context(ca_file)
    except SSL.Error as exc:
        raise CollectError(ErrorKind.SHAPE, f"tls_probe ca_file {ca_file}", f"cannot load the CA file: {exc}") from None
    try:
        sock = _connect(target.connect, deadline)
    except _ProbeFailure as failure:
        return ProbeOutcome(failure=failure.kind, detail=failure.detail)
    try:
        errors: list[int] = []
        chain = _handshake(context, sock, target.server_name, deadline, errors)
    except _ProbeFailure as failure:
        return ProbeOutcome(failure=failure.kind, detail=failure.detail)
    finally:
        sock.close()
    return ProbeOutcome(
        chain=chain,
        chain_trusted=not errors,
        name_matches=hostname_matches(chain[0], target.server_name),
        detail=_verify_error_text(errors[0]) if errors else "",
    )


def _client_context(ca_file: str | None) -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if ca_file:
        context.load_verify_locations(ca_file)
    else:
        context.set_default_verify_paths()
    return context


def _connect(address: HostPort, deadline: float) -> socket.socket:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _ProbeFailure("timeout", "no time left to connect")
    try:
        return socket.create_connection((address.host, address.port), timeout=remaining)
    except socket.gaierror as exc:
        raise _ProbeFailure("dns", f"cannot resolve {address.host}: {exc.strerror or exc}") from None
    except TimeoutError:
        raise _ProbeFailure("timeout", f"no TCP connection to {address} in time") from None
    except OSError as exc:
        # Refused, or the network says the host cannot be reached: either way no TCP connection.
        raise _ProbeFailure("refused", f"TCP connection to {address} failed: {exc.strerror or exc}") from None


def _handshake(
    context: SSL.Context, sock: socket.socket, server_name: str, deadline: float, errors: list[int]
) -> tuple[x509.Certificate, ...]:
    def record(conn: SSL.Connection, cert: Any, errnum: int, depth: int, ok: int) -> bool:
        if not ok:
            errors.append(errnum)
        return True  # measure whatever is presented; trust is judged from `errors`

    sock.setblocking(False)
    conn = SSL.Connection(context, sock)
    conn.set_verify(SSL.VERIFY_PEER, record)
    if _ip(server_name) is None:
        conn.set_tlsext_host_name(server_name.encode("idna"))
    conn.set_connect_state()
    while True:
        try:
            conn.do_handshake()
            break
        except SSL.WantReadError:
            _wait(sock, deadline, readable=True)
        except SSL.WantWriteError:
            _wait(sock, deadline, readable=False)
        except SSL.Error as exc:
            raise _ProbeFailure("tls_error", f"TLS handshake failed: {_ssl_error_text(exc)}") from None
        except OSError as exc:  # reset by the peer mid-handshake
            raise _ProbeFailure("tls_error", f"TLS handshake failed: {exc.strerror or exc}") from None
    chain = conn.get_peer_cert_chain(as_cryptography=True) or []
    if not chain:
        leaf = conn.get_peer_certificate(as_cryptography=True)
        chain = [leaf] if leaf is not None else []
    try:
        conn.shutdown()  # a polite close_notify; the answer is not awaited
    except (SSL.Error, OSError):
        pass
    if not chain:
        raise _ProbeFailure("tls_error", "the server presented no certificate")
    return tuple(chain)


def _wait(sock: socket.socket, deadline: float, *, readable: bool) -> None:
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _ProbeFailure("timeout", "TLS handshake not completed in time")
    ready = select.select([sock], [], [], remaining) if readable else select.select([], [sock], [], remaining)
    if not any(ready):
        raise _ProbeFailure("timeout", "TLS handshake not completed in time")


# The X509_V_ERR_* codes an operator meets most; others are logged by number.
_VERIFY_ERRORS = {
    2: "the issuer's certificate is not available",
    9: "a certificate is not yet valid",
    10: "a certificate has expired",
    18: "the leaf is self-signed",
    19: "self-signed certificate in the chain",
    20: "the issuer is not a trusted CA (unable to get local issuer certificate)",
    21: "unable to verify the leaf signature",
    26: "a certificate is not meant for this purpose",
}


def _verify_error_text(code: int) -> str:
    return f"OpenSSL verify error {code}: {_VERIFY_ERRORS.get(code, 'see X509_V_ERR codes')}"


def _ssl_error_text(exc: SSL.Error) -> str:
    # SSL.Error carries [(lib, func, reason), ...]; SysCallError carries (errno, text).
    parts = exc.args[0] if exc.args and isinstance(exc.args[0], list) else exc.args
    texts = [str(p[-1]) if isinstance(p, tuple) else str(p) for p in parts]
    return "; ".join(t for t in texts if t)[:200] or type(exc).__name__


# --------------------------------------------------------------------------------------------------
# Reading certificates
# --------------------------------------------------------------------------------------------------


def thumbprint(cert: x509.Certificate) -> str:
    """SHA-1 of the DER certificate, upper-case hex: what Get-ExchangeCertificate and the MMC show."""
    return cert.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an identifier, not a signature


def subject_cn(cert: x509.Certificate) -> str:
    try:
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:  # a subject that does not parse
        return ""
    value = names[0].value if names else ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """Does the certificate's subjectAltName cover ``name``? (RFC 6125: the CN is not consulted, as in
    Python's ssl; a wildcard stands for exactly one whole left-most label.)"""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    address = _ip(name)
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    wanted = name.lower().rstrip(".")
    return any(_dns_name_matches(pattern, wanted) for pattern in san.get_values_for_type(x509.DNSName))


def _dns_name_matches(pattern: str, name: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == name
    first, _, rest = name.partition(".")
    return bool(first) and "*" not in pattern[2:] and rest == pattern[2:] and rest.count(".") >= 1


def certificate_samples(endpoint: str, chain: tuple[x509.Certificate, ...], verified: bool) -> list[Sample]:
    leaf = chain[0]
    return [
        NOT_AFTER.sample(leaf.not_valid_after_utc.timestamp(), endpoint=endpoint),
        NOT_BEFORE.sample(leaf.not_valid_before_utc.timestamp(), endpoint=endpoint),
        CHAIN_EARLIEST_NOT_AFTER.sample(min(c.not_valid_after_utc.timestamp() for c in chain), endpoint=endpoint),
        CERT_INFO.sample(1, endpoint=endpoint, thumbprint=thumbprint(leaf), subject_cn=subject_cn(leaf) or "none"),
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
    settings: TlsProbeSettings, host: str, roles: frozenset[str], pool_fqdn: str | None
) -> list[ProbeTarget]:
    """What to probe: the configured or default endpoints, each with where to connect and the name to check."""
    if settings.endpoints is not None:
        endpoints = [parse_host_port(text) for text in settings.endpoints]
    else:
        endpoints = default_endpoints(host, roles, pool_fqdn)
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
    metrics = (NOT_AFTER, NOT_BEFORE, CHAIN_EARLIEST_NOT_AFTER, CERT_INFO, VERIFIED, PROBE_SUCCESS, PROBE_FAILURES)
    cmdlets = ()  # nothing remote: a TLS handshake from the exporter

    def collect(self, ctx: Context) -> list[Sample]:
        settings, memory = ctx.settings, ctx.state
        targets = probe_targets(settings, ctx.target.host, ctx.target.roles, ctx.estate.lync_pool_fqdn)
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
        return samples

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
            futures = {pool.submit(probe, t, timeout, settings.ca_file): str(t.endpoint) for t in targets}
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
