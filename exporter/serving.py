"""The polling process's side of serving: it binds the endpoint, starts the serving process
(exporter.serving_child) and keeps it fed with ready-rendered snapshots.

Scrapes answered in the polling process waited for the interpreter lock behind the collectors' many
threads (scrape p99 2.6 ms idle, 31 ms while polling 200 hosts, issue 16). The endpoint now runs in
a process of its own, started with the ``spawn`` method (no copy of the pollers' threads and locks,
and the same on Windows). This process renders, as before, off the scrape path; after every rebuild
of the exposition (debounced by exporter.metrics; at most every 250 ms) and at least every second,
a publisher thread sends what changed over a pipe: the exposition and its gzip, the live families, the status page (at
most once a second) and whether the scheduler runs. ``POST /-/reload`` comes back over the same
pipe and is answered after the new exposition was sent.

The listening socket is bound here, at construction (a port in use fails as before), and handed to
the serving process; it stays open here too, so connections arriving while a serving process is
restarted wait in the kernel's queue instead of being refused. A serving process that ends while
the exporter runs is restarted, after 1 s, doubling to 30 s while it keeps ending, and counted in
``lync_owa_serving_restarts_total``. If the polling process ends, the serving process sees its pipe
close and ends too.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time
from typing import Callable

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric

from exporter import logsetup
from exporter.fd_budget import raise_open_file_limit
from exporter.http_gate import listening_socket
from exporter.metrics import ExpositionCache
from exporter.serving_child import serve
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
from exporter.web_config import WebConfig, WebConfigError, load_web_config

log = logging.getLogger("exporter.serving")

HEARTBEAT_SECONDS = 1.0  # a snapshot at least this often: /healthz knows the polling process talks
PUBLISH_EVERY = 0.25  # and at most this often (a reload's answer is preceded by one of its own)
STATUS_PAGE_EVERY = 1.0  # the status page is rendered at most this often (the verdict is not free)
STATUS_PAGE_IDLE = 10.0  # and at least this often, for its clock
STALE_AFTER_SECONDS = 30.0  # the serving process's /healthz fails after this long without a snapshot
START_TIMEOUT_SECONDS = 60.0  # a spawned interpreter imports the HTTP stack first (a second or two here)
STOP_WAIT_SECONDS = 2.5  # the serving process closes its connections within 2 s (exporter.http_gate)
RESTART_DELAYS = (1.0, 30.0)  # first delay, longest; doubled while the serving process keeps ending
STEADY_SECONDS = 60.0  # a serving process that lived this long starts the delays again from the first


class ServingError(RuntimeError):
    """The serving process could not start."""


class ServingProcess:
    """Exporter.server: the endpoint, served by a child process."""

    def __init__(self, address: tuple[str, int], cache: ExpositionCache, *, healthy: Callable[[], bool],
                 status_page: Callable[[], bytes], generation: Callable[[], int],
                 web_config: WebConfig | None, telemetry_path: str,
                 reload: Callable[[], tuple[bool, str]] | None) -> None:
        raise_open_file_limit()  # this process's descriptors are for outbound work now; the serving process raises its own
        self.socket = listening_socket(address)
        self.server_address = self.socket.getsockname()
        self.scheme = "https" if web_config is not None and web_config.ssl_context is not None else "http"
        self.telemetry_path = telemetry_path
        self.restarts = 0
        self.bodies_sent = 0  # expositions copied to the serving process (benchmarks read it)
        self._cache = cache
        self._healthy, self._render_status_page, self._generation = healthy, status_page, generation
        self._reload = reload
        self._options = ServingOptions(
            telemetry_path=telemetry_path, lifecycle=reload is not None,
            web_config_path=str(web_config.path) if web_config is not None else None,
            log_level=_log_level(), log_format=_log_format(), polling_pid=os.getpid(),
            stale_after=STALE_AFTER_SECONDS)
        self._context = multiprocessing.get_context("spawn")
        self._process: multiprocessing.process.BaseProcess | None = None
        self._conn = None
        self._send_lock = threading.Lock()  # the publisher, reload answers and stop share the pipe
        self._sent: dict[str, object] = {}
        self._status_page: tuple[float, int, bytes] | None = None  # when rendered, of which generation, the page
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._launched: tuple = ()  # (pipe end, process) between launch and wait_ready
        cache.on_rebuild.append(self._wake.set)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)  # type: ignore[arg-type]

    # -- life cycle ----------------------------------------------------------------------------------

    def serve_in_thread(self) -> None:
        """Start the serving process and wait until it serves; raises ServingError if it cannot."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the serving process; it imports and serves meanwhile (wait_ready waits for that)."""
        self._launched = self._launch()

    def wait_ready(self) -> None:
        """Wait until the launched serving process serves, then keep it fed; raises ServingError."""
        self._wait_ready(*self._launched)
        self._wake.set()  # what changed while it started goes out at once
        for name, target in (("serving-publisher", self._publish_loop), ("serving-listener", self._listen_loop)):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def begin_stop(self) -> None:
        """Tell the serving process to close its connections and end; returns at once."""
        self._stopping.set()
        self._wake.set()
        self._send((STOP,))

    def shutdown(self) -> None:
        """Wait for the serving process to end (it was told to by begin_stop), killing it if it does not."""
        self.begin_stop()
        process = self._process
        if process is not None:
            process.join(STOP_WAIT_SECONDS)
            if process.is_alive():
                log.warning("the serving process did not end in time; killing it", extra={"pid": process.pid})
                process.kill()
                process.join(1.0)
        for thread in self._threads:
            thread.join(timeout=1.0)

    def server_close(self) -> None:
        self.socket.close()
        if self._conn is not None:
            self._conn.close()

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def _spawn(self) -> None:
        self._wait_ready(*self._launch())

    def _launch(self):
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(target=serve, args=(self.socket, child_end, self._options),
                                        name="lync-owa-serving", daemon=True)
        process.start()
        child_end.close()  # only the child's copy stays: its end closes when the child ends
        with self._send_lock:
            if self._conn is not None:
                self._conn.close()
            self._conn, self._process, self._sent = parent_end, process, {}
            parent_end.send((SNAPSHOT, self._snapshot()))
        return parent_end, process

    def _wait_ready(self, parent_end, process) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        try:
            answer: tuple = (LOG,)
            while answer[0] == LOG:  # what it logs while starting comes first
                while not parent_end.poll(0.1):
                    ended = not process.is_alive()
                    if ended and parent_end.poll(0):  # it said why before it ended
                        break
                    if ended or self._stopping.is_set() or time.monotonic() > deadline:
                        raise ServingError(f"the serving process did not start (exit code {process.exitcode})")
                answer = parent_end.recv()
                if answer[0] == LOG:
                    _log_as_own(answer[1])
        except (EOFError, OSError) as exc:
            answer = (FAILED, f"it ended ({type(exc).__name__}, exit code {process.exitcode})")
        except ServingError:
            process.kill()
            raise
        if answer[0] != READY:
            process.join(1.0)
            raise ServingError(f"the serving process did not start: {answer[1]}")
        log.debug("serving process started", extra={"pid": process.pid})

    # -- feeding it ----------------------------------------------------------------------------------

    def _publish_loop(self) -> None:
        last = 0.0
        while not self._stopping.is_set():
            self._wake.wait(HEARTBEAT_SECONDS)
            # While runs complete the exposition is rebuilt every 50 ms; each copy of a large one costs
            # the serving process its lock while it is received, so at most one every PUBLISH_EVERY.
            if self._stopping.wait(max(last + PUBLISH_EVERY - time.monotonic(), 0)):
                return
            self._wake.clear()
            self.publish()
            last = time.monotonic()

    def publish(self) -> None:
        """Send what changed since the last snapshot (and the health, always)."""
        page = self._status_page_now()
        with self._send_lock:
            snapshot = self._snapshot(page)
            self._send_locked((SNAPSHOT, snapshot))
            self.bodies_sent += snapshot.body is not None

    def _snapshot(self, page: bytes | None = None) -> Snapshot:
        """The fields that differ from what the current serving process was last sent (under the send lock)."""
        built = self._cache.latest()
        live = self._cache.render_live() + generate_latest(self._registry)
        page = page if page is not None else self._status_page_now()
        fields: dict[str, object] = {}
        if self._sent.get("built") is not built:
            fields.update(body=built.body, gzip_body=built.gzip_body)
        if self._sent.get("live") != live:
            fields["live"] = live
        if self._sent.get("page") is not page:
            fields["status_page"] = page
        self._sent = {"built": built, "live": live, "page": page}
        return Snapshot(healthy=self._healthy(), **fields)  # type: ignore[arg-type]

    def _status_page_now(self) -> bytes:
        now, generation = time.monotonic(), self._generation()
        last = self._status_page
        if last is not None and (now - last[0] < STATUS_PAGE_EVERY or
                                 (last[1] == generation and now - last[0] < STATUS_PAGE_IDLE)):
            return last[2]
        page = self._render_status_page()
        self._status_page = (now, generation, page)
        return page

    def _send(self, message: tuple) -> None:
        with self._send_lock:
            self._send_locked(message)

    def _send_locked(self, message: tuple) -> None:
        if self._conn is None:
            return
        try:
            self._conn.send(message)
        except OSError:  # the serving process ended: the listener restarts it and sends everything again
            pass

    def collect(self) -> list[Metric]:
        restarts = CounterMetricFamily("lync_owa_serving_restarts",
                                       "Times the serving process (the HTTP endpoint) ended unexpectedly and "
                                       "was started again.")
        restarts.add_metric([], self.restarts)
        return [restarts]

    # -- listening to it -----------------------------------------------------------------------------

    def _listen_loop(self) -> None:
        delay, started = RESTART_DELAYS[0], time.monotonic()
        while not self._stopping.is_set():
            try:
                message = self._conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                if self._stopping.is_set():
                    return
                process = self._process
                assert process is not None
                process.join(1.0)
                delay = RESTART_DELAYS[0] if time.monotonic() - started > STEADY_SECONDS else delay
                log.error("the serving process ended; starting it again",
                          extra={"exit_code": process.exitcode, "after_seconds": delay})
                delay, started = self._restart(delay), time.monotonic()
                continue
            if message[0] == LOG:
                _log_as_own(message[1])
            elif message[0] == RELOAD:  # in a thread of its own: the serving process's logs keep flowing
                threading.Thread(target=self._answer_reload, args=(message[1],), name="serving-reload",
                                 daemon=True).start()

    def _restart(self, delay: float) -> float:
        """Start a new serving process, retrying with a growing delay; the next delay."""
        while not self._stopping.wait(delay):
            delay = min(delay * 2, RESTART_DELAYS[1])
            try:
                self._spawn()
            except ServingError as exc:
                log.error("cannot start the serving process: %s", exc, extra={"next_attempt_seconds": delay})
                continue
            self.restarts += 1
            self.publish()  # the restart counter
            break
        return delay

    def _answer_reload(self, request_id: int) -> None:
        if self._reload is None:
            ok, text = False, "Lifecycle API is not enabled."
        else:
            ok, text = self._reload()
        self.publish()  # the new exposition reaches the serving process before the answer
        self._send((RELOAD_RESULT, request_id, ok, text))

    def reload_web_config(self) -> None:
        self._send((WEB_RELOAD,))


class ForwardedWebConfig:
    """Exporter.web: ``--web.config.file`` as reloads see it. It is validated here (a broken file keeps
    the running one and fails the reload) and then read again by the serving process, which also
    re-reads it by itself when a file changes (exporter.web_config_reload)."""

    def __init__(self, initial: WebConfig, serving: ServingProcess) -> None:
        self.current = initial
        self.path = initial.path
        self._serving = serving

    def load(self) -> WebConfig:
        new = load_web_config(self.path)
        if (new.ssl_context is None) != (self.current.ssl_context is None):
            now = "on" if new.ssl_context is not None else "off"
            raise WebConfigError(self.path, [f"the file now turns TLS {now}; that needs a restart (the running "
                                             f"server keeps TLS {'off' if now == 'on' else 'on'})"])
        return new

    def use(self, new: WebConfig) -> None:
        self.current = new  # its warnings are logged by the serving process, which reads it again
        self._serving.reload_web_config()


def _log_as_own(fields: dict) -> None:
    record = logging.makeLogRecord(fields)
    logging.getLogger(record.name).handle(record)


def _log_level() -> str:
    names = {level: name for name, level in logsetup.LEVELS.items()}
    return names.get(logging.getLogger().level, "info")


def _log_format() -> str:
    handlers = logging.getLogger().handlers
    return "json" if any(isinstance(h.formatter, logsetup.JsonFormatter) for h in handlers) else "logfmt"
