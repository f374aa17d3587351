"""The exporter's HTTP endpoint: ``/metrics``, a landing page ``/``, and ``/healthz``.

With a web configuration (``--web.config.file``) it serves HTTPS and asks for basic authentication on
every path but ``/healthz``, which tells no more than "ok" and is what container health checks call.
"""

from __future__ import annotations

import datetime as dt
import html
import logging
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from exporter import __version__
from exporter.metrics import CONTENT_TYPE, ExpositionCache
from exporter.state import SnapshotStore
from exporter.web_config import BasicAuth, WebConfig

log = logging.getLogger(__name__)

# Each step of a TLS handshake (one read or write) must finish within this; the handshake runs in the
# connection's own thread, so a client that stalls holds only that thread, never the accept loop.
HANDSHAKE_TIMEOUT_SECONDS = 10.0
_TLS_HANDSHAKE_RECORD = 0x16
_PLAIN_HTTP_ON_TLS_ANSWER = (
    b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
    b"Client sent an HTTP request to an HTTPS server.\n"
)
PUBLIC_PATHS = frozenset({"/healthz"})


def parse_listen_address(value: str) -> tuple[str, int]:
    """``:10112`` (all interfaces), ``127.0.0.1:10112`` or ``[::1]:10112`` -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--web.listen-address {value!r}: expected [HOST]:PORT")
    host = host.strip("[]")
    return host, int(port_text)


class ExporterHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        address: tuple[str, int],
        cache: ExpositionCache,
        store: SnapshotStore,
        healthy: Callable[[], bool],
        web_config: WebConfig | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_SECONDS,
    ) -> None:
        self.cache = cache
        self.store = store
        self.healthy = healthy
        self.ssl_context: ssl.SSLContext | None = web_config.ssl_context if web_config else None
        self.basic_auth = BasicAuth(web_config.basic_auth_users) if web_config and web_config.basic_auth_users else None
        self.response_headers: dict[str, str] = dict(web_config.headers) if web_config else {}
        self.handshake_timeout = handshake_timeout
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"

    def finish_request(self, request: socket.socket, client_address: tuple) -> None:
        # Runs in the connection's own thread (ThreadingMixIn), so the handshake happens here, not in accept().
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        connection = self._tls_handshake(request, client_address)
        if connection is None:
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            self.shutdown_request(connection)

    def _tls_handshake(self, sock: socket.socket, client_address: tuple) -> ssl.SSLSocket | None:
        assert self.ssl_context is not None
        timeout = sock.gettimeout()
        sock.settimeout(self.handshake_timeout)
        connection: ssl.SSLSocket | None = None
        try:
            first = sock.recv(1, socket.MSG_PEEK)
            if first and first[0] != _TLS_HANDSHAKE_RECORD:
                sock.recv(65536)  # read what was sent: closing on unread data resets the connection, answer and all
                # Most likely a scrape configured with http:// instead of https://: say so, as Go servers do.
                if first.isalpha():
                    sock.sendall(_PLAIN_HTTP_ON_TLS_ANSWER)
                log.debug("plain HTTP on the TLS port refused", extra={"client": client_address[0]})
                return None
            connection = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
            connection.do_handshake()
        except (ssl.SSLError, OSError) as exc:  # socket.timeout is an OSError
            if connection is not None:
                connection.close()  # it owns the file descriptor now
            reason = getattr(exc, "reason", None) or type(exc).__name__
            log.debug("TLS handshake failed", extra={"client": client_address[0], "reason": reason})
            return None
        connection.settimeout(timeout)
        return connection

    def serve_in_thread(self) -> threading.Thread:
        thread = threading.Thread(target=self.serve_forever, name="http", daemon=True)
        thread.start()
        return thread


class _Handler(BaseHTTPRequestHandler):
    server: ExporterHTTPServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes; without this Nagle holds the last one ~40 ms.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature from the base class
        log.debug("http %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0]
        if path not in PUBLIC_PATHS and not self._authorized():
            self._send(401, b"unauthorized\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="lync-owa-exporter", charset="UTF-8"'})
        elif path == "/metrics":
            gzip_ok = "gzip" in self.headers.get("Accept-Encoding", "")
            chunks = self.server.cache.render_chunks(accept_gzip=gzip_ok)
            self._send(200, chunks, CONTENT_TYPE, {"Content-Encoding": "gzip"} if gzip_ok else None)
        elif path == "/healthz":
            ok = self.server.healthy()
            self._send(200 if ok else 503, b"ok\n" if ok else b"scheduler not running\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, self._landing_page().encode(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def _authorized(self) -> bool:
        auth = self.server.basic_auth
        if auth is None or auth.check_header(self.headers.get("Authorization")):
            return True
        log.debug("basic authentication failed", extra={"client": self.client_address[0]})  # never the user or password
        return False

    def _send(
        self, status: int, body: bytes | list[bytes], content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        chunks = body if isinstance(body, list) else [body]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
        for key, value in {**self.server.response_headers, **(headers or {})}.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            for chunk in chunks:  # no copy of a large cached body per scrape
                self.wfile.write(chunk)

    def _landing_page(self) -> str:
        rows = []
        for job in self.server.store.jobs():
            last = (
                dt.datetime.fromtimestamp(job.last_success_timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
                if job.last_success_timestamp
                else "never"
            )
            status = "up" if job.up else ("pending" if job.runs == 0 else f"failing ({job.last_error_kind})")
            rows.append(
                "<tr>"
                + "".join(
                    f"<td>{html.escape(str(cell))}</td>"
                    for cell in (job.collector, job.target, status, last, f"{job.duration_seconds:.3f}s", job.last_error)
                )
                + "</tr>"
            )
        return (
            "<!DOCTYPE html><html><head><meta charset='utf-8'><title>lync-owa-exporter</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:left}</style></head><body>"
            f"<h1>lync-owa-exporter {html.escape(__version__)}</h1>"
            "<p>Is IM and presence in Outlook Web App working? <a href='/metrics'>Metrics</a> · "
            "<a href='/healthz'>Health</a></p>"
            "<table><tr><th>collector</th><th>target</th><th>status</th><th>last success</th>"
            "<th>last duration</th><th>last error</th></tr>" + "".join(rows) + "</table></body></html>"
        )
