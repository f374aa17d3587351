"""An HTTP/1.1 server that cannot be held open: one thread watches every connection, a fixed pool of
workers answers complete requests.

The standard library's servers give each connection a thread that blocks in ``recv`` for as long as
the client likes, so idle or slow clients ("slowloris") hold threads and file descriptors without
bound. Here one gate thread (``selectors``: epoll on Linux) accepts connections, performs TLS
handshakes and reads request heads without blocking, each under a deadline for the whole step, not
per read, so a client that trickles a byte at a time is dropped as surely as a silent one. Only a
complete request reaches a worker, which parses and answers it with ``BaseHTTPRequestHandler`` and
hands the connection back for the next request. Workers take requests round robin by client address
(``fair_queue``). At the connection limit, the address holding the most connections gives up one of
its idle or slow ones to a newcomer, so a flood from one address cannot lock out a scraper.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from exporter.fair_queue import RoundRobinQueue
from exporter.fd_budget import inbound_connection_cap, raise_open_file_limit
from exporter.http_request import GatedRequestHandler, body_length, plain_answer

__all__ = ["ConnectionLimits", "GatedHTTPServer", "GatedRequestHandler", "listening_socket"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionLimits:
    """What one client may take. The defaults suit Prometheus (one request per scrape, keep-alive)."""

    max_connections: int = 100  # further capped to a share of the open-file limit (fd_budget)
    workers: int = 8  # threads answering complete requests
    handshake_timeout: float = 10.0  # whole TLS handshake
    header_timeout: float = 10.0  # whole request head (and body), from the connection or its first byte
    idle_timeout: float = 60.0  # keep-alive connection waiting for its next request
    write_timeout: float = 10.0  # each write of an answer to a client that does not read
    max_head_bytes: int = 16 * 1024  # request line and headers; a scrape sends about 300 bytes
    max_body_bytes: int = 64 * 1024
    backlog: int = 1024  # connections the kernel queues before accept; clamped to net.core.somaxconn


# A connection is read by the gate (handshake, head, idle), then queued for a worker, then answered (busy).
# A queued request may be cancelled to make room; a busy one never is.
_HANDSHAKE, _HEAD, _IDLE, _QUEUED, _BUSY, _CANCELLED = "handshake", "head", "idle", "queued", "busy", "cancelled"
_READING = (_HANDSHAKE, _HEAD, _IDLE)
_TLS_HANDSHAKE_RECORD = 0x16
_ACCEPTS_PER_TURN = 64  # a flood of new connections cannot starve the ones already open
_TICK = 0.25  # the longest wait of the gate loop; deadlines are checked at least this often
_STOP_WAIT = 2.0  # the longest a stop waits for the threads; they are daemons and end with the process
_ACCEPT_PAUSE = 0.1  # out of descriptors: wait this long before accepting again, instead of spinning
_RESOURCE_ERRNOS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


_PLAIN_HTTP_ON_TLS = plain_answer("400 Bad Request", "Client sent an HTTP request to an HTTPS server.\n")


class _Connection:
    __slots__ = ("sock", "fd", "client", "phase", "buffer", "deadline")

    def __init__(self, sock: socket.socket, client: tuple, phase: str, deadline: float) -> None:
        self.sock: Any = sock  # socket.socket, or ssl.SSLSocket once wrapped
        self.fd = sock.fileno()  # kept: a closed socket's fileno() is -1
        self.client = client
        self.phase = phase
        self.buffer = b""
        self.deadline = deadline


class GatedHTTPServer:
    """Serves ``handler_class`` (a GatedRequestHandler) on ``address``, over TLS with ``ssl_context``."""

    def __init__(self, address: tuple[str, int], handler_class: type[GatedRequestHandler],
                 ssl_context: ssl.SSLContext | None = None, limits: ConnectionLimits | None = None,
                 listen_socket: socket.socket | None = None) -> None:
        self.handler_class = handler_class
        self.ssl_context = ssl_context
        self.limits = limits or ConnectionLimits()
        raise_open_file_limit()  # first, so the inbound share is taken of the raised limit
        self.max_connections = inbound_connection_cap(self.limits.max_connections)
        # A socket bound elsewhere (exporter.serving: the polling process binds, a serving process answers).
        self.socket = listen_socket or listening_socket(address, self.limits.backlog)
        self.socket.setblocking(False)
        self.server_address = self.socket.getsockname()
        self.dropped_at_limit = 0  # connections closed to make room, for benchmarks and tests
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.socket, selectors.EVENT_READ, "accept")
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._selector.register(self._wake_reader, selectors.EVENT_READ, "wake")
        self._connections: dict[int, _Connection] = {}
        self._per_client: Counter[str] = Counter()  # open connections per client address
        self._ready: RoundRobinQueue[tuple[_Connection, bytes]] = RoundRobinQueue()
        self._returned: list[tuple[_Connection, bool]] = []
        self._lock = threading.Lock()
        self._closing = False
        self._accept_paused_until = 0.0
        self._accept_warned = float("-inf")
        self._threads: list[threading.Thread] = []

    # -- life cycle ----------------------------------------------------------------------------------

    def serve_in_thread(self) -> threading.Thread:
        for n in range(self.limits.workers):
            worker = threading.Thread(target=self._work, name=f"http-worker-{n}", daemon=True)
            worker.start()
            self._threads.append(worker)
        gate = threading.Thread(target=self._gate, name="http", daemon=True)
        gate.start()
        self._threads.append(gate)
        return gate

    def shutdown(self) -> None:
        """Stop serving: close every connection and stop the threads (a worker in the middle of a
        write stops when its connection is shut down under it)."""
        with self._lock:
            self._closing = True
        self._wake()
        self._ready.close()
        deadline = time.monotonic() + _STOP_WAIT  # one wait for all: the stop has its own deadline
        for thread in self._threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))

    def server_close(self) -> None:
        for sock in (self.socket, self._wake_reader, self._wake_writer):
            sock.close()
        self._selector.close()

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    # -- the gate thread -----------------------------------------------------------------------------

    def _gate(self) -> None:
        while not self._closing:
            try:
                self._turn()
            except Exception as exc:  # noqa: BLE001 - a bug must cost a turn, never the endpoint
                log.error("HTTP connection handling failed", extra={"reason": f"{type(exc).__name__}: {exc}"})
        for conn in list(self._connections.values()):
            if self._cancel(conn):
                self._close(conn)
            else:  # busy: its worker fails its write and gives it back, then it is closed
                _shutdown_quietly(conn.sock)

    def _turn(self) -> None:
        for key, _ in self._selector.select(_TICK):
            if key.data == "accept":
                self._accept()
            elif key.data == "wake":
                self._take_back()
            elif key.data.phase in _READING and self._connections.get(key.fd) is key.data:
                # Checked: an earlier event of this turn may have closed it, or queued it, and its
                # descriptor number may belong to a new connection by now.
                self._on_ready(key.data)
        self._expire(time.monotonic())

    def _accept(self) -> None:
        now = time.monotonic()
        if now < self._accept_paused_until:
            return
        for _ in range(_ACCEPTS_PER_TURN):
            try:
                sock, client = self.socket.accept()
            except BlockingIOError:
                return
            except OSError as exc:
                if exc.errno in _RESOURCE_ERRNOS:
                    self._accept_paused_until = now + _ACCEPT_PAUSE
                    if now - self._accept_warned >= 60:  # once a minute, not ten times a second
                        self._accept_warned = now
                        log.warning("cannot accept connections",
                                    extra={"reason": exc.strerror, "open": self.open_connections})
                return
            sock.setblocking(False)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                # Headers and body go out in separate writes; without this Nagle holds the last one ~40 ms.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if len(self._connections) >= self.max_connections and (
                    self._per_client[client[0]] >= self.max_connections // 2 or not self._make_room(client[0])):
                # At the limit, an address holding half the connections already loses its newest at once
                # (an accept and a close, the cheapest answer to a flood); any other client makes room.
                sock.close()
                self.dropped_at_limit += 1
                continue
            if self.ssl_context is not None:
                conn = _Connection(sock, client, _HANDSHAKE, now + self.limits.handshake_timeout)
            else:
                conn = _Connection(sock, client, _HEAD, now + self.limits.header_timeout)
            self._connections[conn.fd] = conn
            self._per_client[client[0]] += 1
            self._selector.register(sock, selectors.EVENT_READ, conn)

    def _make_room(self, newcomer: str) -> bool:
        """Close one connection for a newcomer from address ``newcomer``: an idle or slow one first,
        from the address holding the most connections (a flood from one address sheds its own), the
        one that has waited longest; else a complete request still waiting for a worker, but only of
        an address holding more connections than the newcomer would. False if none can go."""
        mine = self._per_client[newcomer] + 1
        candidates = [c for c in self._connections.values()
                      if c.phase in _READING or (c.phase == _QUEUED and self._per_client[c.client[0]] > mine)]
        for conn in sorted(candidates, key=lambda c: (c.phase not in _READING, -self._per_client[c.client[0]],
                                                      self._waiting_since(c))):
            if self._cancel(conn):  # false only if a worker took it meanwhile
                self.dropped_at_limit += 1
                self._close(conn, "dropped at the connection limit")
                return True
        return False

    def _cancel(self, conn: _Connection) -> bool:
        with self._lock:  # against a worker taking the request at this moment
            if conn.phase == _QUEUED:
                conn.phase = _CANCELLED
            return conn.phase != _BUSY

    def _waiting_since(self, conn: _Connection) -> float:
        return conn.deadline - self._timeout_of(conn.phase)

    def _timeout_of(self, phase: str) -> float:
        limits = self.limits
        timeouts = {_HANDSHAKE: limits.handshake_timeout, _HEAD: limits.header_timeout, _IDLE: limits.idle_timeout}
        return timeouts.get(phase, 0.0)  # queued: the deadline is the time it was queued

    def _on_ready(self, conn: _Connection) -> None:
        if conn.phase == _HANDSHAKE:
            self._handshake(conn)
        else:
            self._read(conn)

    def _handshake(self, conn: _Connection) -> None:
        assert self.ssl_context is not None
        try:
            if not isinstance(conn.sock, ssl.SSLSocket):
                first = conn.sock.recv(1, socket.MSG_PEEK)
                if not first:
                    return self._close(conn)
                if first[0] != _TLS_HANDSHAKE_RECORD:
                    return self._refuse_plain_http(conn, first)
                self._selector.unregister(conn.sock)
                conn.sock = self.ssl_context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False)
                self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            conn.sock.do_handshake()
        except BlockingIOError:  # a wake-up without data
            return None
        except ssl.SSLWantReadError:
            return self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        except ssl.SSLWantWriteError:
            return self._selector.modify(conn.sock, selectors.EVENT_WRITE, conn)
        except (ssl.SSLError, OSError) as exc:
            return self._close(conn, "TLS handshake failed", getattr(exc, "reason", None) or type(exc).__name__)
        conn.phase, conn.deadline = _HEAD, time.monotonic() + self.limits.header_timeout  # a new deadline
        self._selector.modify(conn.sock, selectors.EVENT_READ, conn)
        self._read(conn)  # the request may have come with the end of the handshake

    def _refuse_plain_http(self, conn: _Connection, first: bytes) -> None:
        # Most likely a scrape configured with http:// instead of https://: say so, as Go servers do.
        try:
            conn.sock.recv(65536)  # read what was sent: closing on unread data resets the connection, answer and all
            if first.isalpha():
                conn.sock.send(_PLAIN_HTTP_ON_TLS)
        except OSError:
            pass
        self._close(conn, "plain HTTP on the TLS port refused")

    def _read(self, conn: _Connection) -> None:
        limit = self.limits.max_head_bytes + self.limits.max_body_bytes
        try:
            while len(conn.buffer) <= limit:
                chunk = conn.sock.recv(16384)
                if not chunk:
                    return self._close(conn, "client closed the connection" if conn.buffer else None)
                conn.buffer += chunk
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            pass
        except OSError as exc:
            return self._close(conn, "client disconnected", type(exc).__name__)
        if conn.phase == _IDLE and conn.buffer:
            conn.phase, conn.deadline = _HEAD, time.monotonic() + self.limits.header_timeout
        self._parse(conn)

    def _parse(self, conn: _Connection) -> None:
        """Hand a complete request to the workers, refuse an oversized one, or wait for more."""
        buffer = conn.buffer
        ends = [i + len(m) for m in (b"\r\n\r\n", b"\n\n") if (i := buffer.find(m)) >= 0]
        if not ends:
            if len(buffer) > self.limits.max_head_bytes:
                status = "431 Request Header Fields Too Large" if b"\n" in buffer else "414 URI Too Long"
                self._reject(conn, status, f"the request head is larger than {self.limits.max_head_bytes} bytes")
            return
        head_end = min(ends)
        if head_end > self.limits.max_head_bytes:
            return self._reject(conn, "431 Request Header Fields Too Large",
                                f"the request head is larger than {self.limits.max_head_bytes} bytes")
        length, problem = body_length(buffer[:head_end])
        if problem is not None:
            return self._reject(conn, *problem)
        if length > self.limits.max_body_bytes:
            return self._reject(conn, "413 Content Too Large", f"the body is larger than {self.limits.max_body_bytes} bytes")
        if len(buffer) < head_end + length:
            return  # the body is still coming, within the same deadline
        request, conn.buffer = buffer[: head_end + length], buffer[head_end + length:]
        self._selector.unregister(conn.sock)
        conn.phase, conn.deadline = _QUEUED, time.monotonic()
        self._ready.put(conn.client[0], (conn, request))

    def _reject(self, conn: _Connection, status: str, why: str) -> None:
        try:
            conn.sock.send(plain_answer(status, why + "\n"))
        except OSError:  # SSLWantWriteError too: the answer is a courtesy
            pass
        self._close(conn, "request refused", why)

    def _expire(self, now: float) -> None:
        for conn in [c for c in self._connections.values() if c.phase in _READING and c.deadline <= now]:
            if conn.phase == _HEAD and conn.buffer:
                self._reject(conn, "408 Request Timeout", "the request did not arrive in time")
            else:
                self._close(conn, {_HANDSHAKE: "TLS handshake timed out", _IDLE: "idle connection closed"}.get(
                    conn.phase, "no request received in time"))

    def _close(self, conn: _Connection, why: str | None = None, reason: str | None = None) -> None:
        if self._connections.get(conn.fd) is conn:
            del self._connections[conn.fd]
            self._per_client[conn.client[0]] -= 1
            if not self._per_client[conn.client[0]]:
                del self._per_client[conn.client[0]]
            if conn.phase in _READING:
                try:
                    self._selector.unregister(conn.sock)
                except (KeyError, ValueError):  # its socket was closed under it: nothing registered
                    pass
        if why:
            extra = {"client": conn.client[0], "phase": conn.phase}
            log.debug(why, extra={**extra, "reason": reason} if reason else extra)
        conn.sock.close()

    # -- between the gate and the workers ------------------------------------------------------------

    def _wake(self) -> None:
        try:
            self._wake_writer.send(b"\0")
        except OSError:  # the pipe is full: the gate is awake already
            pass

    def _give_back(self, conn: _Connection, keep: bool) -> None:
        with self._lock:
            if not self._closing:
                self._returned.append((conn, keep))
                self._wake()
                return
        conn.sock.close()  # the gate has stopped: nobody else holds this connection

    def _take_back(self) -> None:
        try:
            while self._wake_reader.recv(4096):
                pass
        except BlockingIOError:
            pass
        with self._lock:
            returned, self._returned = self._returned, []
        now = time.monotonic()
        for conn, keep in returned:
            if not keep or conn.sock.fileno() < 0:
                self._close(conn)
                continue
            conn.sock.setblocking(False)
            conn.phase, conn.deadline = (_HEAD, now + self.limits.header_timeout) if conn.buffer else \
                (_IDLE, now + self.limits.idle_timeout)
            self._selector.register(conn.sock, selectors.EVENT_READ, conn)
            if conn.buffer:  # pipelined: the next request may be complete already
                self._parse(conn)

    # -- the workers ---------------------------------------------------------------------------------

    def _work(self) -> None:
        while (item := self._ready.get()) is not None:
            conn, request = item
            with self._lock:
                if conn.phase != _QUEUED:
                    continue  # cancelled to make room, and closed
                conn.phase = _BUSY
            self._give_back(conn, self._answer_one(conn, request))

    def _answer_one(self, conn: _Connection, request: bytes) -> bool:
        """Answer one request; True when the connection stays open for the next."""
        try:
            conn.sock.settimeout(self.limits.write_timeout)
            handler = self.handler_class(conn.sock, conn.client, self, request)
            return not handler.close_connection
        except OSError as exc:  # ssl.SSLError and timeouts too: the client went away or stopped reading
            log.debug("client disconnected", extra={"client": conn.client[0], "phase": "response",
                                                    "reason": type(exc).__name__})
        except Exception as exc:  # noqa: BLE001 - a bug must cost one answer, never the worker
            log.error("request failed", extra={"client": conn.client[0], "reason": f"{type(exc).__name__}: {exc}"})
        return False


def listening_socket(address: tuple[str, int], backlog: int = ConnectionLimits.backlog) -> socket.socket:
    family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
    return socket.create_server(address, family=family, backlog=backlog)


def _shutdown_quietly(sock: Any) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
