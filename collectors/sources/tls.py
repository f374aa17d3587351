"""One TLS handshake from the exporter, bounded in time: the certificate chain a server presents.

The chain is read *without* requiring it to validate (an expired certificate must still be
measured); whether it validates against the system CAs (or a CA file) and names the host is
recorded beside it. Python's ``ssl`` only gains a public API for the presented chain in 3.13
(``SSLSocket.get_unverified_chain``), so the handshake goes through pyOpenSSL's
``Connection.get_peer_cert_chain()``, with OpenSSL's own chain verification run in the same
handshake by a verify callback that records errors instead of failing.
"""

from __future__ import annotations

import os
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from OpenSSL import SSL

from collectors.contract import CollectError, ErrorKind
from collectors.helpers.names import ip_address

# Why a probe got no certificate; a closed set, so it can be a label.
FAILURE_KINDS = ("refused", "timeout", "tls_error", "dns")


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


def probe(host: str, port: int, server_name: str, timeout: float, ca_file: str | None = None) -> ProbeOutcome:
    """Connect to ``host``:``port``, complete a TLS handshake within ``timeout`` seconds, and read the
    presented chain. ``server_name`` is sent (SNI, unless an IP address) and checked."""
    deadline = time.monotonic() + timeout
    try:
        context = _client_context(ca_file)
    except SSL.Error as exc:
        raise CollectError(ErrorKind.SHAPE, f"tls_probe ca_file {ca_file}", f"cannot load the CA file: {exc}") from None
    try:
        sock = _connect(host, port, deadline)
    except _ProbeFailure as failure:
        return ProbeOutcome(failure=failure.kind, detail=failure.detail)
    try:
        errors: list[int] = []
        chain = _handshake(context, sock, server_name, deadline, errors)
    except _ProbeFailure as failure:
        return ProbeOutcome(failure=failure.kind, detail=failure.detail)
    finally:
        sock.close()
    return ProbeOutcome(
        chain=chain,
        chain_trusted=not errors,
        name_matches=hostname_matches(chain[0], server_name),
        detail=_verify_error_text(errors[0]) if errors else "",
    )


# One client context per trust setting, shared by every probe: loading the system CA bundle costs about
# 0.9 MB of C heap and 5 ms of CPU (benchmarks/bench_memory_per_host.py --tls-contexts), and dozens of
# probes at once each built their own in the workers' malloc arenas, which keep the memory. A context only
# holds what the handshakes trust; the verify callback and SNI are set on each connection.
_MAX_CONTEXTS = 16
_contexts: dict[tuple[Any, ...], SSL.Context] = {}
_contexts_lock = threading.Lock()


def _client_context(ca_file: str | None) -> SSL.Context:
    key = _trust_key(ca_file)
    with _contexts_lock:
        context = _contexts.get(key)
        if context is None:
            context = _new_client_context(ca_file)  # a CA file that fails to load is not kept
            if len(_contexts) >= _MAX_CONTEXTS:  # files replaced many times: forget the oldest
                del _contexts[next(iter(_contexts))]
            _contexts[key] = context
        return context


def _trust_key(ca_file: str | None) -> tuple[Any, ...]:
    """What a context's trust depends on: the CA file and its version on disk (a replaced file, or an
    updated system bundle, gets a fresh context at the next probe)."""
    path = ca_file or os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
    try:
        stat = os.stat(path) if path else None
    except OSError:
        stat = None
    version = (stat.st_ino, stat.st_size, stat.st_mtime_ns) if stat is not None else None
    return (ca_file, path, version)


def _new_client_context(ca_file: str | None) -> SSL.Context:
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    if ca_file:
        context.load_verify_locations(ca_file)
    else:
        context.set_default_verify_paths()
    return context


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _ProbeFailure("timeout", "no time left to connect")
    try:
        return socket.create_connection((host, port), timeout=remaining)
    except socket.gaierror as exc:
        raise _ProbeFailure("dns", f"cannot resolve {host}: {exc.strerror or exc}") from None
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
    if ip_address(server_name) is None:
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
    # A selector, not select.select(): that refuses descriptors past 1023, which an exporter polling a
    # thousand hosts holds (a connection or more per remoting endpoint); epoll and poll do not.
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ if readable else selectors.EVENT_WRITE)
        if not selector.select(remaining):
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


# --- reading a presented certificate (a cryptography object) --------------------------------------


def hostname_matches(cert: x509.Certificate, name: str) -> bool:
    """Does the certificate's subjectAltName cover ``name``? (RFC 6125: the CN is not consulted, as in
    Python's ssl; a wildcard stands for exactly one whole left-most label.)"""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    address = ip_address(name)
    if address is not None:
        return address in san.get_values_for_type(x509.IPAddress)
    # Compared as written, case and a final dot aside: RFC 6125 names are not cleaned or trimmed.
    wanted = name.lower().rstrip(".")
    return any(_dns_name_matches(pattern, wanted) for pattern in san.get_values_for_type(x509.DNSName))


def _dns_name_matches(pattern: str, name: str) -> bool:
    pattern = pattern.lower().rstrip(".")
    if not pattern.startswith("*."):
        return pattern == name
    first, _, rest = name.partition(".")
    return bool(first) and "*" not in pattern[2:] and rest == pattern[2:] and rest.count(".") >= 1
