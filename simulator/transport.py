"""Listening sockets for many simulated hosts, with one acceptor thread and a thread per connection.

One selector watches every listening socket (200 hosts must not mean 200 polling server threads).
Each accepted connection gets its own thread running the HTTP handler (keep-alive, as WinRM and
requests use). The transport can close one host's listener and its live connections (the
``refuse`` fault: connection refused, pooled connections dropped) and bind the same port again,
and ``stop()`` closes everything and joins every thread it started.

While a listener is closed its port stays held by a bound socket that never listens: a SYN to a
bound but not listening TCP port is answered with RST, so clients get ECONNREFUSED, and the port
cannot be handed out meanwhile as the local port of some other connection on the same address
(which made binding it again fail with EADDRINUSE under load). Listener, placeholder and the new
listener share the port through SO_REUSEPORT (same user; verified on Linux only); where the
placeholder cannot be bound the port is let go of, with a warning, as before.
"""

from __future__ import annotations

import logging
import queue
import selectors
import socket
import ssl
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

ConnectionHandler = Callable[[socket.socket, tuple], None]
_HANDSHAKE_TIMEOUT = 10.0


class Listener:
    """One host's listening address; ``port`` stays the same across close/re-bind."""

    def __init__(self, name: str, host: str, port: int, handler: ConnectionHandler) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.handler = handler
        self.sock: socket.socket | None = None
        # Bound, never listening: keeps the port while the listener is closed (see the module doc).
        self.placeholder: socket.socket | None = None


class Transport:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._ssl = ssl_context
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._ops: queue.Queue[tuple[Callable[[], None], threading.Event]] = queue.Queue()
        self._lock = threading.Lock()
        self._connections: dict[socket.socket, tuple[Listener, threading.Thread]] = {}
        self._placeholders: set[Listener] = set()  # listeners whose port a placeholder holds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sim-acceptor", daemon=True)
        self._started = False

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread.start()
        self._started = True

    def bind(self, listener: Listener) -> None:
        """Open the listening socket (port 0 picks one; afterwards the same port is reused).

        A placeholder holding the port is closed only once the new listener listens, so the port
        is never free in between."""
        taking_over = listener.placeholder is not None
        sock = _port_socket(share=taking_over)
        try:
            sock.bind((listener.host, listener.port))
            if not taking_over:
                # Shared only from now on: a first bind still fails on a port someone else holds.
                _share_port(sock)
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        sock.setblocking(False)
        listener.port = sock.getsockname()[1]
        listener.sock = sock
        try:
            self._run(lambda: self._selector.register(sock, selectors.EVENT_READ, listener))
        finally:
            self._release_placeholder(listener)

    def unbind(self, listener: Listener) -> None:
        """Close the listening socket and every live connection of this listener; the port stays held."""
        sock = listener.sock
        if sock is not None:
            listener.sock = None
            self._hold_port(listener)

            def close() -> None:
                self._selector.unregister(sock)
                sock.close()

            self._run(close)
        self.drop_connections(listener)

    def _hold_port(self, listener: Listener) -> None:
        """Bind the placeholder before the listener closes (both carry SO_REUSEPORT)."""
        if listener.placeholder is not None:
            return
        if not hasattr(socket, "SO_REUSEPORT"):
            log.warning("%s: port %d not held while refused (no SO_REUSEPORT here); binding it again may fail",
                        listener.name, listener.port)
            return
        placeholder = _port_socket(share=True)
        try:
            placeholder.bind((listener.host, listener.port))
        except OSError as err:
            placeholder.close()
            log.warning("%s: port %d not held while refused (%s); binding it again may fail",
                        listener.name, listener.port, err)
            return
        listener.placeholder = placeholder
        with self._lock:
            self._placeholders.add(listener)

    def _release_placeholder(self, listener: Listener) -> None:
        placeholder, listener.placeholder = listener.placeholder, None
        if placeholder is not None:
            placeholder.close()
            with self._lock:
                self._placeholders.discard(listener)

    def drop_connections(self, listener: Listener) -> None:
        with self._lock:
            victims = [s for s, (owner, _) in self._connections.items() if owner is listener]
        for conn in victims:
            _shutdown(conn)

    def stop(self, join_timeout: float = 5.0) -> None:
        """Close every socket and join every thread (hung handlers are woken by the caller first)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._wake()
        if self._started:
            self._thread.join(join_timeout)
        for key in list(self._selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self._selector.close()
        self._wake_w.close()
        with self._lock:
            held = list(self._placeholders)
        for listener in held:
            self._release_placeholder(listener)
        with self._lock:
            connections = list(self._connections.items())
        for conn, _ in connections:
            _shutdown(conn)
        for _, (_, thread) in connections:
            thread.join(join_timeout)

    def thread_count(self) -> int:
        with self._lock:
            return sum(1 for _, t in self._connections.values() if t.is_alive()) + int(self._thread.is_alive())

    # ------------------------------------------------------------ acceptor thread

    def _run(self, operation: Callable[[], None]) -> None:
        """Run a selector change on the acceptor thread (selectors are not thread-safe) and wait."""
        if not self._started or threading.current_thread() is self._thread or self._stopping.is_set():
            try:
                operation()
            except (OSError, KeyError, ValueError):
                if not self._stopping.is_set():
                    raise
            return
        done = threading.Event()
        self._ops.put((operation, done))
        self._wake()
        if not done.wait(5.0):
            raise RuntimeError("the simulator's acceptor thread did not respond")

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def _loop(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=1.0):
                if key.data is None:
                    self._drain_wake()
                else:
                    self._accept(key.fileobj, key.data)  # type: ignore[arg-type]
            self._apply_ops()
        self._apply_ops()

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except (BlockingIOError, OSError):
            pass

    def _apply_ops(self) -> None:
        while True:
            try:
                operation, done = self._ops.get_nowait()
            except queue.Empty:
                return
            try:
                operation()
            except Exception:  # a failed selector change must not kill the acceptor
                log.exception("listener change failed")
            finally:
                done.set()

    def _accept(self, sock: socket.socket, listener: Listener) -> None:
        try:
            conn, address = sock.accept()
        except (BlockingIOError, OSError):
            return
        conn.setblocking(True)
        # Headers and body go out in separate writes; without this, Nagle plus the client's delayed
        # ACK would add ~40 ms to every answer.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(target=self._serve, args=(conn, address, listener),
                                  name=f"sim-{listener.name}", daemon=True)
        with self._lock:
            self._connections[conn] = (listener, thread)
        thread.start()

    def _serve(self, conn: socket.socket, address: tuple, listener: Listener) -> None:
        active = conn
        try:
            if self._ssl is not None:
                conn.settimeout(_HANDSHAKE_TIMEOUT)
                active = self._ssl.wrap_socket(conn, server_side=True)
                with self._lock:  # track the TLS socket so drop/stop shut it down
                    self._connections[active] = self._connections.pop(conn)
            listener.handler(active, address)
        except (OSError, ssl.SSLError) as err:
            log.debug("connection to %s ended: %s", listener.name, err)
        finally:
            with self._lock:
                self._connections.pop(active, None)
                self._connections.pop(conn, None)
            _shutdown(active)
            active.close()


def _port_socket(share: bool) -> socket.socket:
    """A TCP socket; ``share``: it binds a port its listener or placeholder holds (SO_REUSEPORT)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if share:
        _share_port(sock)
    return sock


def _share_port(sock: socket.socket) -> None:
    """Let a later socket of this process bind the same port (Linux: SO_REUSEPORT, same user)."""
    if hasattr(socket, "SO_REUSEPORT"):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        except OSError:  # defined but not supported by this kernel
            pass


def _shutdown(conn: socket.socket) -> None:
    try:
        conn.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
