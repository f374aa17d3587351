"""The hosts' own TLS services: what OWA (443 and its IM port), a front end (5061) and an Edge (443, 5061) present.

Real clients meet these servers' certificates on the network; the exporter's ``tls_probe``
collector measures them. Each service is a loopback listener of its own (a free port: a real host
uses 443 and 5061, so a client maps the real endpoint to the listener, see ``endpoints()``) that
completes a TLS handshake and then waits for the client to hang up.

The certificate presented is made from the *active* scenario's certificate for that service, on
the connection that needs it, so a live scenario switch changes what clients see:

| service | host role | port | certificate (scenario) | endpoint names |
| --- | --- | --- | --- | --- |
| owa | exchange_* | 443 | the Exchange certificate bound to IIS (not self-signed first) | the host |
| owa_im | exchange_* | the OutlookWebApp trusted application's Port (5199) | the one of the IMCertificateThumbprint the server has loaded | the host |
| frontend | lync_frontend | 5061 | the Lync certificate of use Default | the host, the pool FQDN |
| access_edge | lync_edge | 443 | the Lync certificate of use AccessEdgeExternal | its first alternative name |
| edge_internal | lync_edge | 5061 | the Lync certificate of use Internal | the host |

Subject, SANs (Exchange ``domains``, Lync ``alternative_names``), NotBefore and NotAfter follow the
scenario; the chain is leaf -> an intermediate named after the scenario's issuer -> a throwaway root
(``ca_cert_path``). Thumbprints cannot equal the scenario's: they are hashes of the real bytes.
A certificate the scenario marks self-signed (Exchange ``is_self_signed``, a Lync certificate whose
issuer is its subject) is presented alone, self-signed: it chains to no CA.
A host with no such certificate in the active scenario closes the connection before the handshake.

``owa_im`` is OWA's IM endpoint, where the front ends connect to the OWA trusted application: one
listener per port of an OutlookWebApp trusted application whose pool stands for the host (the pool's
FQDN is the host's, or the pool lists it), chosen when the simulator starts. It completes a handshake
only while the host's ``exchange.im_listen_port`` is that port. A real OWA whose IM certificate is
missing does not start its IM endpoint; here the IIS certificate is presented instead, so that one
fault (the thumbprint, checked by E3) is one page and not two.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import shutil
import socket
import ssl
import tempfile
import threading
from typing import Any

from cryptography import x509

from simulator.certs import certificate
from simulator.clock import TimeSpec
from simulator.cmdlets import certificates
from simulator.cmdlets.certificates import spec_of
from simulator.cmdlets.diagnostics import loaded_im_settings
from simulator.estate import Estate, HostView
from simulator.scenario import Scenario
from simulator.tls import (
    PrivateKey,
    ca_certificate,
    dns_names,
    leaf_certificate,
    new_key,
    parse_distinguished_name,
    self_signed_leaf,
    write_key,
    write_pem,
)
from simulator.transport import Listener, Transport

log = logging.getLogger(__name__)

_HANDSHAKE_TIMEOUT = 10.0
_IDLE_TIMEOUT = 30.0  # a client that completed the handshake and stays silent is let go after this
_CA_YEARS = dt.timedelta(days=20 * 365)
_DEFAULT_ISSUER = "CN=Simulated Issuing CA, O=lync-owa-exporter simulator"
_LYNC_USE = {"frontend": "default", "access_edge": "accessedgeexternal", "edge_internal": "internal"}
_OWA_APPLICATION_IDS = ("urn:application:outlookwebapp", "outlookwebapp")


@dataclasses.dataclass(frozen=True)
class Service:
    host: str  # the simulated host's FQDN
    purpose: str  # owa | owa_im | frontend | access_edge | edge_internal
    port: int  # the port it stands for on a real server
    names: tuple[str, ...]  # the host names clients reach it by


@dataclasses.dataclass(frozen=True)
class _Wanted:
    """The scenario's certificate for a service, as a cache key: a change makes a new certificate."""

    subject: str
    issuer: str
    alt_names: tuple[str, ...]
    not_before: str
    not_after: str
    thumbprint: str
    self_signed: bool = False


def services_of(scenario: Scenario, host: str) -> list[Service]:
    """The TLS services a host runs, by its roles (names from the scenario as it is now)."""
    model = scenario.model.hosts[host]
    roles = set(model.roles)
    services = []
    if roles & {"exchange_mailbox", "exchange_client_access"}:
        services.append(Service(host, "owa", 443, (host,)))
        services += [Service(host, "owa_im", port, (host,)) for port in owa_trusted_application_ports(scenario, host)]
    if "lync_frontend" in roles:
        pool = scenario.model.lync.pool_fqdn if scenario.model.lync else None
        names = (host, pool) if pool and pool.lower() != host.lower() else (host,)
        services.append(Service(host, "frontend", 5061, names))
    if "lync_edge" in roles:
        external = _lync_certificate(model, "access_edge")
        external_name = (external.alternative_names or [host])[0] if external else host
        services.append(Service(host, "access_edge", 443, (external_name.lower(),)))
        services.append(Service(host, "edge_internal", 5061, (host,)))
    return services


def owa_trusted_application_ports(scenario: Scenario, host: str) -> list[int]:
    """The ports of the OutlookWebApp trusted applications whose pool stands for ``host``, in order."""
    topology = scenario.model.lync
    if topology is None:
        return []
    name = host.lower()
    pools = {fqdn.lower() for fqdn, pool in topology.trusted_application_pools.items()
             if fqdn.lower() == name or name in {c.lower() for c in pool.computers}}
    ports: list[int] = []
    for app in topology.trusted_applications.values():
        if app.application_id.lower() in _OWA_APPLICATION_IDS and app.trusted_application_pool_fqdn.lower() in pools:
            if app.port not in ports:
                ports.append(app.port)
    return ports


def _im_certificate(view: HostView) -> Any:
    """The installed Exchange certificate whose thumbprint the server has loaded as IMCertificateThumbprint."""
    _, thumbprint = loaded_im_settings(view, view.name, view.host)  # what OWA runs with
    wanted = (thumbprint or "").strip().upper()
    return next((entry.model for entry in certificates.of_host(view, kind="exchange")
                 if entry.installed and entry.thumbprint == wanted), None)


def _lync_certificate(model: Any, purpose: str) -> Any:
    if model.lync is None:
        return None
    use = _LYNC_USE[purpose]
    return next((c for c in model.lync.certificates.values() if c.use.strip().lower() == use), None)


def _choose(view: HostView, service: Service) -> tuple[_Wanted, dt.datetime | None, dt.datetime | None] | None:
    """The scenario's certificate for a service now: its cache key and its resolved NotBefore/NotAfter."""
    purpose = service.purpose
    exchange = view.host.exchange
    if purpose == "owa_im" and (exchange is None or exchange.im_listen_port != service.port):
        return None  # OWA's IM endpoint listens elsewhere (or nowhere)
    if purpose in ("owa", "owa_im"):
        cert = _im_certificate(view) if purpose == "owa_im" else None
        if cert is None:
            bound = [c for c in (exchange.certificates.values() if exchange else ())
                     if "IIS" in c.services and c.installed]
            bound.sort(key=lambda c: c.is_self_signed)  # stable: scenario order within each group
            if not bound:
                return None
            cert = bound[0]
        names = tuple(cert.domains)
        issuer = cert.issuer or (cert.subject if cert.is_self_signed else _DEFAULT_ISSUER)
        self_signed = cert.is_self_signed
    else:
        cert = _lync_certificate(view.host, purpose)
        if cert is None:
            return None
        names, issuer = tuple(cert.alternative_names), cert.issuer
        self_signed = bool(issuer) and issuer.strip().lower() == cert.subject.strip().lower()
    # The identity of the scenario's certificate: the thumbprint of the one the store holds
    # (simulator/cmdlets/certificates.py), so a renewal makes a new presented certificate too.
    stored = certificate(spec_of(cert), view.started_at).thumbprint
    wanted = _Wanted(cert.subject, issuer or _DEFAULT_ISSUER, names, _text(cert.not_before), _text(cert.not_after),
                     stored, self_signed)
    return wanted, view.at(cert.not_before), view.at(cert.not_after)


def _text(spec: TimeSpec | None) -> str:
    return "" if spec is None else str(spec)


class TlsServices:
    """Every host's TLS services on loopback, with the certificates the active scenario names."""

    def __init__(self, estate: Estate, listen_host: str) -> None:
        self._estate = estate
        self._listen_host = listen_host
        self._directory = tempfile.mkdtemp(prefix="lync-owa-sim-services-")
        os.chmod(self._directory, 0o700)
        self.ca_cert_path = os.path.join(self._directory, "root-ca.pem")
        now = dt.datetime.now(dt.timezone.utc)
        self._root_key = new_key()
        self._root = ca_certificate(parse_distinguished_name("CN=Simulated Root CA, O=lync-owa-exporter simulator"),
                                    self._root_key, now - _CA_YEARS, now + _CA_YEARS)
        write_pem(self.ca_cert_path, self._root)
        self._lock = threading.Lock()
        self._intermediates: dict[str, tuple[x509.Certificate, PrivateKey]] = {}
        self._contexts: dict[_Wanted, ssl.SSLContext] = {}
        self._serial = 0
        self._active: dict[ssl.SSLSocket, str] = {}
        self._listeners: dict[str, list[tuple[Service, Listener]]] = {}
        self._transport = Transport(None)  # TLS is wrapped per connection, with that moment's certificate
        self._stopping = threading.Event()

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._transport.start()
        scenario = self._estate.scenario
        for host in scenario.host_names():
            for service in services_of(scenario, host):
                listener = Listener(f"{host}:{service.port}", self._listen_host, 0,
                                    handler=functools.partial(self._serve, service))
                self._transport.bind(listener)
                self._listeners.setdefault(host, []).append((service, listener))

    def stop(self) -> None:
        self._stopping.set()
        self._drop(None)
        self._transport.stop()
        shutil.rmtree(self._directory, ignore_errors=True)

    # ------------------------------------------------------------ information

    def endpoints(self, host: str) -> dict[str, str]:
        """Real endpoint ("name:port") -> the loopback address serving it ("127.0.0.1:port")."""
        address = f"[{self._listen_host}]" if ":" in self._listen_host else self._listen_host
        result = {}
        for service, listener in self._listeners.get(host, []):
            for name in service.names:
                result[f"{name}:{service.port}"] = f"{address}:{listener.port}"
        return result

    # ------------------------------------------------------------ the refuse fault

    def refuse(self, host: str) -> None:
        for _, listener in self._listeners.get(host, []):
            self._transport.unbind(listener)
        self._drop(host)

    def restore(self, host: str) -> None:
        for _, listener in self._listeners.get(host, []):
            if listener.sock is None:
                self._transport.bind(listener)

    def _drop(self, host: str | None) -> None:
        with self._lock:
            victims = [s for s, owner in self._active.items() if host is None or owner == host]
        for tls in victims:
            try:
                tls.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    # ------------------------------------------------------------ connections

    def _serve(self, service: Service, conn: socket.socket, address: tuple) -> None:
        context = self._context_for(service)
        if context is None or self._stopping.is_set():
            return  # the transport closes the connection: the client's handshake fails
        conn.settimeout(_HANDSHAKE_TIMEOUT)
        tls = context.wrap_socket(conn, server_side=True, do_handshake_on_connect=False)
        with self._lock:
            self._active[tls] = service.host
        try:
            tls.do_handshake()
            tls.settimeout(_IDLE_TIMEOUT)
            while tls.recv(4096):  # nothing to answer: a prober hangs up after the handshake
                pass
        except (OSError, ssl.SSLError) as err:
            log.debug("TLS service %s:%d: connection ended: %s", service.host, service.port, err)
        finally:
            with self._lock:
                self._active.pop(tls, None)
            tls.close()

    def _context_for(self, service: Service) -> ssl.SSLContext | None:
        view = self._estate.view(service.host)
        choice = _choose(view, service)
        if choice is None:
            return None
        wanted, not_before, not_after = choice
        with self._lock:
            context = self._contexts.get(wanted)
            if context is None:
                # Relative times ("+5d") are resolved once: a certificate's dates are fixed.
                not_before = not_before or view.now - dt.timedelta(days=1)
                not_after = not_after or view.now + dt.timedelta(days=365)
                context = self._contexts[wanted] = self._make_context(wanted, service, not_before, not_after)
            return context

    def _make_context(
        self, wanted: _Wanted, service: Service, not_before: dt.datetime, not_after: dt.datetime
    ) -> ssl.SSLContext:
        if not_after <= not_before:
            not_before = not_after - dt.timedelta(days=1)
        key = new_key()
        subject = parse_distinguished_name(wanted.subject, fallback_cn=service.names[0])
        alt_names = dns_names(wanted.alt_names or service.names)
        self._serial += 1
        chain_path = os.path.join(self._directory, f"service-{self._serial}.pem")
        key_path = os.path.join(self._directory, f"service-{self._serial}-key.pem")
        if wanted.self_signed:
            write_pem(chain_path, self_signed_leaf(subject, alt_names, key, not_before, not_after))
        else:
            issuer = self._intermediate(wanted.issuer)
            leaf = leaf_certificate(subject, alt_names, key, not_before, not_after, issuer=issuer)
            write_pem(chain_path, leaf, issuer[0])  # leaf and intermediate, as real servers send them
        write_key(key_path, key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain_path, key_path)
        log.debug("TLS service %s:%d presents %s until %s", service.host, service.port, wanted.subject, not_after)
        return context

    def _intermediate(self, issuer: str) -> tuple[x509.Certificate, PrivateKey]:
        found = self._intermediates.get(issuer)
        if found is None:
            now = dt.datetime.now(dt.timezone.utc)
            key = new_key()
            name = parse_distinguished_name(issuer, fallback_cn="Simulated Issuing CA")
            cert = ca_certificate(name, key, now - _CA_YEARS / 2, now + _CA_YEARS / 2,
                                  issuer=(self._root, self._root_key))
            found = self._intermediates[issuer] = (cert, key)
        return found

