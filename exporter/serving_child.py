"""The serving process: the HTTP endpoint, in a process of its own, answering from the snapshots the
polling process sends it (exporter.serving starts it).

Collection runs Python code in many threads of the polling process, and a scrape answered there
waits for the interpreter lock behind them. Here the gate, its workers and the answers run in a
process that does nothing else: ``/metrics`` writes out bytes the polling process rendered, with
the process figures read at the scrape; ``/`` serves the status page it rendered; ``/healthz`` says
whether its scheduler runs and whether it still talks; ``POST /-/reload`` is forwarded to it.
Everything about connections, TLS, basic authentication and gzip is exporter.http's, unchanged.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from socket import socket

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.process_collector import ProcessCollector

from exporter import logsetup
from exporter.http import ExporterHTTPServer
from exporter.serving_messages import (
    FAILED,
    LOG,
    READY,
    RELOAD,
    RELOAD_RESULT,
    SNAPSHOT,
    STOP,
    WEB_RELOAD,
    ServingOptions,
    Snapshot,
)

log = logging.getLogger("exporter.serving")

RELOAD_WAIT_SECONDS = 60.0  # a reload closes sessions and may wait on hung hosts (a few seconds)
SERVING_NAMESPACE = "lync_owa_serving"  # this process's own process_* figures


@dataclass(frozen=True)
class _Served:
    body: bytes
    gzip_body: bytes
    live: bytes
    status_page: bytes
    healthy: bool
    received: float  # monotonic


class ServedExposition:
    """The latest snapshot, replaced whole (one reference: a scrape reads one consistent state)."""

    def __init__(self, first: Snapshot, polling_pid: int, stale_after: float) -> None:
        self._served = _Served(first.body or b"", first.gzip_body or b"", first.live or b"",
                               first.status_page or b"", first.healthy, time.monotonic())
        self._stale_after = stale_after
        # process_* are the polling process's, as before there were two; this process's own get a prefix.
        self._polling = CollectorRegistry(auto_describe=False)
        ProcessCollector(pid=lambda: polling_pid, registry=self._polling)
        self._serving = CollectorRegistry(auto_describe=False)
        ProcessCollector(namespace=SERVING_NAMESPACE, registry=self._serving)

    def update(self, snapshot: Snapshot) -> None:
        old = self._served
        self._served = _Served(
            old.body if snapshot.body is None else snapshot.body,
            old.gzip_body if snapshot.gzip_body is None else snapshot.gzip_body,
            old.live if snapshot.live is None else snapshot.live,
            old.status_page if snapshot.status_page is None else snapshot.status_page,
            snapshot.healthy, time.monotonic())

    def render_chunks(self, accept_gzip: bool = False) -> list[bytes]:
        """In the order one process served them: the cached exposition, the process metrics, the
        live families; then this process's own figures."""
        served = self._served
        extra = generate_latest(self._polling) + served.live + generate_latest(self._serving)
        if accept_gzip:
            return [served.gzip_body, gzip.compress(extra, compresslevel=1)]
        return [served.body, extra]

    def status_page(self) -> bytes:
        return self._served.status_page

    def healthy(self) -> bool:
        served = self._served
        return served.healthy and time.monotonic() - served.received < self._stale_after


class ForwardedReload:
    """``POST /-/reload`` asks the polling process over the pipe and waits for its answer."""

    def __init__(self, conn: Connection, send_lock: threading.Lock) -> None:
        self._conn = conn
        self._send_lock = send_lock
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[threading.Event, list]] = {}
        self._lock = threading.Lock()

    def __call__(self) -> tuple[bool, str]:
        event, answer = threading.Event(), []
        with self._lock:
            request_id = next(self._ids)
            self._waiting[request_id] = (event, answer)
        try:
            with self._send_lock:
                self._conn.send((RELOAD, request_id))
            if not event.wait(RELOAD_WAIT_SECONDS):
                return False, f"the polling process did not answer within {RELOAD_WAIT_SECONDS:.0f} s"
            return answer[0]
        except OSError:
            return False, "the polling process is gone"
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def answer(self, request_id: int, ok: bool, text: str) -> None:
        with self._lock:
            waiting = self._waiting.get(request_id)
        if waiting is not None:
            waiting[1].append((ok, text))
            waiting[0].set()

    def abandon_all(self) -> None:
        with self._lock:
            waiting = list(self._waiting.values())
        for event, answer in waiting:
            answer.append((False, "the polling process is gone"))
            event.set()


class PipeLogHandler(logging.Handler):
    """Sends log records to the polling process, which logs them as its own: one stream, one format,
    in order, whatever the serving process is."""

    def __init__(self, conn: Connection, send_lock: threading.Lock) -> None:
        super().__init__()
        self._conn = conn
        self._send_lock = send_lock

    def emit(self, record: logging.LogRecord) -> None:
        fields = {key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
                  for key, value in vars(record).items() if key not in ("args", "exc_info", "msg")}
        fields["msg"] = record.getMessage()
        if record.exc_info:
            fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
        try:
            with self._send_lock:
                self._conn.send((LOG, fields))
        except OSError:  # the polling process is gone; so is its log
            pass


def serve(listen_socket: socket, conn: Connection, options: ServingOptions) -> None:
    """The serving process's main: serve until told to stop or until the polling process is gone."""
    # Ctrl-C and a terminal's hang-up reach the whole process group: the polling process decides.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    send_lock = threading.Lock()
    logsetup.configure(options.log_level, options.log_format)  # levels and filters of the libraries
    logging.getLogger().handlers[:] = [PipeLogHandler(conn, send_lock)]
    try:
        server, feed, reload, web = _start(listen_socket, conn, options, send_lock)
    except Exception as exc:  # noqa: BLE001 - said to the polling process, which reports it and stops
        _send_quietly(conn, (FAILED, f"{type(exc).__name__}: {exc}"))
        sys.exit(2)
    try:
        _follow(conn, feed, reload, web)
    finally:
        reload.abandon_all()
        server.shutdown()
        server.server_close()


def _start(listen_socket: socket, conn: Connection, options: ServingOptions, send_lock: threading.Lock):
    first = conn.recv()
    if first[0] != SNAPSHOT:
        raise ValueError(f"expected a first snapshot, got {first[0]!r}")
    feed = ServedExposition(first[1], options.polling_pid, options.stale_after)
    web = None
    if options.web_config_path is not None:
        from exporter.web_config import load_web_config

        web = load_web_config(options.web_config_path)  # validated by the polling process a moment ago
    reload = ForwardedReload(conn, send_lock)
    server = ExporterHTTPServer(
        listen_socket.getsockname()[:2], feed, None, healthy=feed.healthy, web_config=web,
        telemetry_path=options.telemetry_path, reload=reload if options.lifecycle else None,
        status_page=feed.status_page, listen_socket=listen_socket)
    live_web = None
    if web is not None:
        from exporter.web_config_reload import LiveWebConfig

        live_web = LiveWebConfig(web, server)  # re-read at every request when a file changed, as before
    server.serve_in_thread()
    with send_lock:
        conn.send((READY,))
    return server, feed, reload, live_web


def _follow(conn: Connection, feed: ServedExposition, reload: ForwardedReload, web) -> None:
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            log.info("the polling process is gone; the serving process stops")
            return
        kind = message[0]
        if kind == SNAPSHOT:
            feed.update(message[1])
        elif kind == RELOAD_RESULT:
            reload.answer(*message[1:])
        elif kind == WEB_RELOAD and web is not None:
            _reload_web_config(web)
        elif kind == STOP:
            return


def _reload_web_config(live) -> None:
    from exporter.web_config import WebConfigError

    try:
        live.use(live.load())
    except WebConfigError as exc:  # changed again since the polling process checked it
        log.error("web configuration cannot be used; serving with the previous one: %s", "; ".join(exc.problems),
                  extra={"file": str(live.path)})


def _send_quietly(conn: Connection, message: tuple) -> None:
    try:
        conn.send(message)
    except OSError:
        pass
