"""The exporter's HTTP endpoint: ``/metrics``, a landing page ``/``, and ``/healthz``."""

from __future__ import annotations

import datetime as dt
import html
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from exporter import __version__
from exporter.metrics import CONTENT_TYPE, ExpositionCache
from exporter.state import SnapshotStore

log = logging.getLogger(__name__)


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
        self, address: tuple[str, int], cache: ExpositionCache, store: SnapshotStore, healthy: Callable[[], bool]
    ) -> None:
        self.cache = cache
        self.store = store
        self.healthy = healthy
        if ":" in address[0]:
            import socket

            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

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
        if path == "/metrics":
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

    def _send(
        self, status: int, body: bytes | list[bytes], content_type: str, headers: dict[str, str] | None = None
    ) -> None:
        chunks = body if isinstance(body, list) else [body]
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(sum(len(c) for c in chunks)))
        for key, value in (headers or {}).items():
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
