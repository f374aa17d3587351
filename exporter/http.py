"""The exporter's HTTP endpoint: ``/metrics`` (``--web.telemetry-path``), a landing page ``/``,
``/healthz``, and ``POST /-/reload`` when ``--web.enable-lifecycle`` is given (Prometheus' flag).

With a web configuration (``--web.config.file``) it serves HTTPS and asks for basic authentication on
every path but ``/healthz``, which tells no more than "ok" and is what container health checks call.
"""

from __future__ import annotations

import dataclasses
import logging
import socket
from typing import TYPE_CHECKING, Callable, Protocol

from exporter.accept_encoding import accepts_gzip
from exporter.basic_auth import BasicAuth
from exporter.http_gate import ConnectionLimits, GatedHTTPServer, GatedRequestHandler

if TYPE_CHECKING:  # not imported to serve: the serving process stays small when no web config is given
    from exporter.state import SnapshotStore
    from exporter.web_config import WebConfig

# The Prometheus text format's type, as prometheus_client's CONTENT_TYPE_LATEST (exporter.metrics).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

log = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/healthz"})


def parse_listen_address(value: str) -> tuple[str, int]:
    """``:10112`` (all interfaces), ``127.0.0.1:10112`` or ``[::1]:10112`` -> (host, port)."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"--web.listen-address {value!r}: expected [HOST]:PORT")
    host = host.strip("[]")
    return host, int(port_text)


class Exposition(Protocol):
    """What ``/metrics`` serves: exporter.metrics.ExpositionCache in one process, or the snapshot a
    serving process was sent (exporter.serving_child)."""

    def render_chunks(self, accept_gzip: bool = False) -> list[bytes]: ...


class ExporterHTTPServer(GatedHTTPServer):
    """Connections, timeouts and limits are the gate's (http_gate); routing and answers are here."""

    def __init__(
        self,
        address: tuple[str, int],
        cache: Exposition,
        store: SnapshotStore | None,
        healthy: Callable[[], bool],
        web_config: WebConfig | None = None,
        handshake_timeout: float | None = None,
        limits: ConnectionLimits | None = None,
        telemetry_path: str = "/metrics",
        reload: Callable[[], tuple[bool, str]] | None = None,
        *,
        status_page: Callable[[], bytes] | None = None,
        listen_socket: socket.socket | None = None,
    ) -> None:
        self.cache = cache
        self.store = store
        # The page at ``/``: rendered here from the store, or handed over ready (a serving process).
        self.status_page = status_page or self._render_status_page
        self.healthy = healthy
        self.telemetry_path = telemetry_path
        self.reload = reload  # None: the lifecycle API is off, as in Prometheus by default
        # Keeps --web.config.file current (exporter.web_config_reload); nothing to do without one.
        self.before_request: Callable[[], None] = lambda: None
        self.basic_auth = BasicAuth(web_config.basic_auth_users) if web_config and web_config.basic_auth_users else None
        self.response_headers: dict[str, str] = dict(web_config.headers) if web_config else {}
        limits = limits or ConnectionLimits()
        if handshake_timeout is not None:
            limits = dataclasses.replace(limits, handshake_timeout=handshake_timeout)
        super().__init__(address, _Handler, web_config.ssl_context if web_config else None, limits,
                         listen_socket=listen_socket)

    def _render_status_page(self) -> bytes:
        # Imported here: the verdict's modules are needed only where a store is rendered.
        from exporter import status_page

        assert self.store is not None, "a server without a store is given its status page"
        return status_page.render(self.store, self.telemetry_path).encode()

    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context is not None else "http"


class _Handler(GatedRequestHandler):
    server: ExporterHTTPServer

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - signature from the base class
        log.debug("http %s", format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self.server.before_request()
        path = self.path.split("?", 1)[0]
        if path not in PUBLIC_PATHS and not self._authorized():
            self._send(401, b"unauthorized\n", "text/plain; charset=utf-8",
                       {"WWW-Authenticate": 'Basic realm="lync-owa-exporter", charset="UTF-8"'})
        elif path == "/-/reload":
            self._send(405, b"This endpoint requires a PUT or POST request.\n", "text/plain; charset=utf-8",
                       {"Allow": "POST, PUT"})
        elif path == self.server.telemetry_path:
            gzip_ok = accepts_gzip(self.headers.get("Accept-Encoding"))
            chunks = self.server.cache.render_chunks(accept_gzip=gzip_ok)
            encoding = {"Content-Encoding": "gzip"} if gzip_ok else {}
            self._send(200, chunks, CONTENT_TYPE, {**encoding, "Vary": "Accept-Encoding"})
        elif path == "/healthz":
            ok = self.server.healthy()
            self._send(200 if ok else 503, b"ok\n" if ok else b"scheduler not running\n", "text/plain; charset=utf-8")
        elif path == "/":
            self._send(200, self.server.status_page(), "text/html; charset=utf-8")
        else:
            self._send(404, b"not found\n", "text/plain; charset=utf-8")

    def do_HEAD(self) -> None:  # noqa: N802
        self.do_GET()

    def do_POST(self) -> None:  # noqa: N802
        """``/-/reload``, answered as Prometheus answers it: 403 while the lifecycle API is off, 500
        with the problems when the new configuration is refused (the running one stays)."""
        self.server.before_request()
        path = self.path.split("?", 1)[0]
        self.rfile.read(int(self.headers.get("Content-Length") or 0))  # the body means nothing here
        text = "text/plain; charset=utf-8"
        if not self._authorized():
            self._send(401, b"unauthorized\n", text,
                       {"WWW-Authenticate": 'Basic realm="lync-owa-exporter", charset="UTF-8"'})
        elif path != "/-/reload":
            known = path in (self.server.telemetry_path, "/", "/healthz")
            self._send(405 if known else 404, b"method not allowed\n" if known else b"not found\n", text)
        elif self.server.reload is None:
            self._send(403, b"Lifecycle API is not enabled.\n", text)
        else:
            ok, message = self.server.reload()
            answer = f"configuration reloaded: {message}\n" if ok else f"failed to reload config: {message}\n"
            self._send(200 if ok else 500, answer.encode(), text)

    def do_PUT(self) -> None:  # noqa: N802
        self.do_POST()

    def _authorized(self) -> bool:
        auth = self.server.basic_auth
        if auth is None or auth.check_header(self.headers.get("Authorization"), client=self.client_address[0]):
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
