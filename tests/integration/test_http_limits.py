"""The exporter's HTTP endpoint under hostile clients (exporter.http_gate): idle and trickling
connections are closed, over TLS too once the handshake is done; oversized requests and bodies are
refused; a client that stops reading is dropped after the write timeout; a flood of connections neither adds threads nor locks out a scraper; a client that goes away
in the middle of an answer costs one debug line in logfmt, never a traceback. Real sockets on loopback.
The listen backlog has its own tests (test_http_backlog.py).

Timeouts here are short so the tests are quick; they bound waits and never measure anything.
"""

from __future__ import annotations

import gzip
import http.client
import io
import logging
import os
import socket
import ssl
import struct
import threading
import time

import pytest

from collectors.contract import MetricSpec
from exporter import logsetup
from exporter.http import ExporterHTTPServer
from exporter.http_gate import ConnectionLimits
from exporter.metrics import ExpositionCache
from exporter.state import SnapshotStore
from exporter.web_config import load_web_config
from tests.tls_material import TestCA, write_web_config

WAIT = 20.0  # the longest any client here waits for the server; never reached when the server is right
SPEC = MetricSpec("lync_owa_test_value", "gauge", "A value.", ("replica",))


def store_with(samples: int, label_bytes: int = 8) -> SnapshotStore:
    store = SnapshotStore()
    store.register("test", "host", 60)
    pad = "r" * label_bytes
    store.record_success("test", "host", [SPEC.sample(i, replica=f"{pad}{i}") for i in range(samples)], 0.01)
    return store


@pytest.fixture
def serve():
    """Start the real exporter HTTP server with the given limits; returns it (stopped afterwards)."""
    servers: list[ExporterHTTPServer] = []

    def start(limits: ConnectionLimits, store: SnapshotStore | None = None, web_config=None) -> ExporterHTTPServer:
        store = store or store_with(3)
        cache = ExpositionCache(store, [SPEC], process_metrics=False)
        server = ExporterHTTPServer(("127.0.0.1", 0), cache, store, healthy=lambda: True, web_config=web_config,
                                    limits=limits)
        server.serve_in_thread()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def connect(server: ExporterHTTPServer) -> socket.socket:
    return socket.create_connection(server.server_address[:2], timeout=WAIT)


def closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
    except ConnectionResetError:
        pass
    return received


def wait_until(condition, seconds: float = WAIT) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


# --- idle connections are closed -----------------------------------------------------------------------


def test_a_connection_that_never_sends_a_request_is_closed(serve):
    server = serve(ConnectionLimits(header_timeout=0.5))
    with connect(server) as silent:
        assert wait_until(lambda: server.open_connections == 1)
        assert closed_by_server(silent) == b""  # closed without a word: there was no request to answer
    assert wait_until(lambda: server.open_connections == 0)


def test_a_kept_alive_connection_is_closed_after_the_idle_timeout(serve):
    server = serve(ConnectionLimits(idle_timeout=0.5))
    client = http.client.HTTPConnection(*server.server_address[:2], timeout=WAIT)
    client.request("GET", "/healthz")
    response = client.getresponse()
    assert (response.status, response.read(), response.getheader("Connection")) == (200, b"ok\n", None)
    assert server.open_connections == 1  # HTTP/1.1: kept open for the next scrape
    assert closed_by_server(client.sock) == b""
    assert wait_until(lambda: server.open_connections == 0)
    client.close()


def test_a_request_trickled_a_header_at_a_time_gets_408_within_the_header_timeout(serve):
    """Slowloris: each byte resets no timer; the whole head has to arrive within header_timeout."""
    server = serve(ConnectionLimits(header_timeout=1.0))
    with connect(server) as slow:
        slow.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        answer = b""
        for n in range(100):  # 10 s of trickling if the server never gave up
            try:
                slow.sendall(f"X-Trickle-{n}: y\r\n".encode())
            except OSError:  # closed under us: the server gave up
                break
            time.sleep(0.1)
        answer = closed_by_server(slow)
    assert answer.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert n < 100


def test_after_the_tls_handshake_an_idle_connection_is_closed_too(serve, tmp_path):
    ca = TestCA(tmp_path)
    leaf = ca.issue("server", server=True)
    config = load_web_config(write_web_config(tmp_path, {"tls_server_config": {
        "cert_file": str(leaf.cert_path), "key_file": str(leaf.key_path)}}))
    server = serve(ConnectionLimits(header_timeout=0.5, handshake_timeout=5.0), web_config=config)
    context = ssl.create_default_context(cafile=str(ca.cert_path))
    with context.wrap_socket(connect(server), server_hostname="localhost") as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")  # the handshake is done
        assert closed_by_server(tls) == b""
    assert wait_until(lambda: server.open_connections == 0)


# --- per-request limits --------------------------------------------------------------------------------


def test_a_request_head_over_the_limit_gets_431(serve):
    server = serve(ConnectionLimits(max_head_bytes=1024))
    with connect(server) as big:
        big.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 2000 + b"\r\n\r\n")
        assert closed_by_server(big).startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")


def test_a_request_line_over_the_limit_gets_414(serve):
    server = serve(ConnectionLimits(max_head_bytes=1024))
    with connect(server) as big:
        big.sendall(b"GET /" + b"a" * 2000)
        assert closed_by_server(big).startswith(b"HTTP/1.1 414 URI Too Long\r\n")


def test_a_chunked_request_body_gets_501(serve):
    server = serve(ConnectionLimits())
    with connect(server) as client:
        client.sendall(b"POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        assert closed_by_server(client).startswith(b"HTTP/1.1 501 Not Implemented\r\n")


def test_a_request_body_over_the_limit_gets_413_and_the_connection_is_closed(serve):
    server = serve(ConnectionLimits())
    limit = ConnectionLimits().max_body_bytes
    assert limit == 64 * 1024  # the limit docs/web-config.md states
    with connect(server) as client:
        # The head alone: the refusal comes from Content-Length, before a byte of the body is read.
        client.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % (limit + 1))
        answer = closed_by_server(client)  # returns only once the server has closed the connection
    assert answer.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"\r\nConnection: close\r\n" in answer
    assert answer.endswith(b"\r\n\r\nthe body is larger than 65536 bytes\n")
    assert wait_until(lambda: server.open_connections == 0)


def test_a_request_body_at_the_limit_is_read_and_answered(serve):
    server = serve(ConnectionLimits())
    limit = ConnectionLimits().max_body_bytes
    with connect(server) as client:
        client.sendall(b"POST /-/reload HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n\r\n"
                       % limit + b"b" * limit)
        answer = closed_by_server(client)
    # Read whole and routed: the lifecycle API is off, so /-/reload answers as Prometheus' does.
    assert answer.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert answer.endswith(b"\r\n\r\nLifecycle API is not enabled.\n")


def test_pipelined_requests_on_one_connection_are_all_answered(serve):
    server = serve(ConnectionLimits())
    with connect(server) as client:
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 2 + b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                       b"Connection: close\r\n\r\n")
        assert closed_by_server(client).count(b"HTTP/1.1 200 OK\r\n") == 3


# --- a flood of connections ----------------------------------------------------------------------------


def test_a_flood_of_idle_connections_adds_no_thread_and_does_not_lock_out_a_scrape(serve):
    server = serve(ConnectionLimits(max_connections=16))
    threads_before = threading.active_count()
    flood = [connect(server) for _ in range(200)]
    try:
        assert wait_until(lambda: server.dropped_at_limit >= 200 - 16)
        assert server.open_connections <= 16
        assert threading.active_count() == threads_before  # one gate and fixed workers, whatever comes in
        # Prometheus scrapes from another address than the flood's: the flood gives up its own connections.
        scrape = http.client.HTTPConnection(*server.server_address[:2], timeout=WAIT, source_address=("127.0.0.2", 0))
        scrape.request("GET", "/metrics")
        response = scrape.getresponse()
        assert response.status == 200 and b"lync_owa_test_value{" in response.read()
        scrape.close()
        assert server.open_connections <= 16
    finally:
        for sock in flood:
            sock.close()


def test_eager_scrapers_past_the_limit_are_answered_or_refused_and_the_gate_keeps_going(serve, caplog):
    """Many clients sending whole requests as fast as they can, past the connection limit: making room
    reads waiting connections, which must not confuse the events of the same turn."""
    server = serve(ConnectionLimits(max_connections=8, workers=2))
    stop = threading.Event()
    answered = [0]

    def scrape_loop() -> None:
        while not stop.is_set():
            try:
                client = http.client.HTTPConnection(*server.server_address[:2], timeout=WAIT)
                client.request("GET", "/metrics")
                if client.getresponse().read():
                    answered[0] += 1
                client.close()
            except OSError:
                pass  # refused at the limit: the point of it

    with caplog.at_level(logging.WARNING, logger="exporter"):
        scrapers = [threading.Thread(target=scrape_loop) for _ in range(40)]
        for thread in scrapers:
            thread.start()
        time.sleep(3.0)
        stop.set()
        for thread in scrapers:
            thread.join(WAIT)
        scrape = http.client.HTTPConnection(*server.server_address[:2], timeout=WAIT, source_address=("127.0.0.2", 0))
        scrape.request("GET", "/metrics")
        assert scrape.getresponse().status == 200  # the gate still runs
        scrape.close()
    assert answered[0] > 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert wait_until(lambda: server.open_connections == 0)


# --- a client that leaves in the middle of an answer ---------------------------------------------------


@pytest.fixture
def debug_lines():
    """The exporter's log records at debug level, formatted in logfmt as the exporter writes them."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logsetup.LogfmtFormatter())
    handler.setLevel(logging.DEBUG)
    logger = logging.getLogger("exporter")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield lambda: stream.getvalue().splitlines()
    logger.removeHandler(handler)
    logger.setLevel(previous)


def test_a_client_that_disconnects_mid_response_costs_one_debug_line_and_no_traceback(serve, debug_lines, capfd):
    # About 12.7 MB of exposition (label values stay under the 128-character cap): more than the kernel
    # buffers between the two ends on loopback, so the server is still writing when the client resets.
    server = serve(ConnectionLimits(), store=store_with(80_000, label_bytes=100))
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(WAIT)
    client.connect(server.server_address[:2])
    client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")  # the answer has started
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # with linger 0: a reset, as when a scraper times out and gives up
    assert wait_until(lambda: any("client disconnected" in line for line in debug_lines()))
    assert wait_until(lambda: server.open_connections == 0)
    lines = [line for line in debug_lines() if "client disconnected" in line]
    assert len(lines) == 1, lines
    fields = dict(part.split("=", 1) for part in lines[0].split(" ") if "=" in part)
    assert (fields["level"], fields["logger"], fields["msg"], fields["client"], fields["phase"]) == (
        "debug", "exporter.http_gate", '"client', "127.0.0.1", "response")
    assert fields["reason"] in ("ConnectionResetError", "BrokenPipeError")
    assert "Traceback" not in capfd.readouterr().err


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc")
def test_a_client_that_stops_reading_is_dropped_after_the_write_timeout_and_gives_back_its_worker(
        serve, debug_lines):
    """A scraper that sends its request and then never reads a 12.7 MB answer: the one worker's write
    gives up after write_timeout (10 s by default, 1 s here), the connection is closed, and the worker
    answers the next client; threads and descriptors are back where they were."""
    server = serve(ConnectionLimits(workers=1, write_timeout=1.0), store=store_with(80_000, label_bytes=100))
    threads_before, descriptors_before = threading.active_count(), open_descriptors()
    stalled = socket.socket()
    stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel buffers little for it
    stalled.settimeout(WAIT)
    stalled.connect(server.server_address[:2])
    asked = time.monotonic()
    stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert wait_until(lambda: server.open_connections == 1)
    assert wait_until(lambda: server.open_connections == 0)
    assert time.monotonic() - asked >= 1.0  # dropped by the write timeout, not by anything sooner
    # One debug line in logfmt, as for every client lost mid-answer, saying why.
    lost = [line.split(" ", 1)[1] for line in debug_lines() if "client disconnected" in line]  # without ts=
    assert lost == ['level=debug logger=exporter.http_gate msg="client disconnected" client=127.0.0.1 '
                    'phase=response reason=ClientStoppedReading'], debug_lines()
    assert not [line for line in debug_lines() if "timed out" in line], debug_lines()
    # The only worker is free again: without the timeout it would still be blocked writing.
    scrape = http.client.HTTPConnection(*server.server_address[:2], timeout=WAIT)
    scrape.request("GET", "/healthz")
    assert scrape.getresponse().read() == b"ok\n"
    scrape.close()
    received = closed_by_server(stalled)  # what the kernel had buffered, then the end: the server closed it
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")
    assert len(received) < 12_000_000  # far less than the answer: it was cut short
    stalled.close()
    assert threading.active_count() == threads_before
    assert wait_until(lambda: open_descriptors() == descriptors_before)


# --- content coding -------------------------------------------------------------------------------------


@pytest.mark.parametrize("accept, gzipped", [
    ("gzip", True), ("GZIP", True), ("x-gzip", True), ("gzip;q=0", False), ("gzip;q=0.5, identity", False),
    ("identity;q=0, *", True), ("deflate, *;q=0", False), (None, False),
])
def test_metrics_are_gzipped_only_when_the_client_accepts_it(serve, accept, gzipped):
    server = serve(ConnectionLimits())
    client = http.client.HTTPConnection(*server.server_address[:2], timeout=WAIT)
    client.request("GET", "/metrics", headers={"Accept-Encoding": accept} if accept else {"Accept-Encoding": ""})
    response = client.getresponse()
    body = response.read()
    client.close()
    assert response.getheader("Content-Encoding") == ("gzip" if gzipped else None)
    assert response.getheader("Vary") == "Accept-Encoding"
    text = gzip.decompress(body) if gzipped else body
    assert b'lync_owa_test_value{replica="rrrrrrrr2",target="host"} 2.0\n' in text
