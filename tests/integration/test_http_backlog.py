"""The exporter's listen backlog (exporter.http): 1024, clamped by the kernel's somaxconn, on the
endpoint and on the socket `run` binds for its serving process; a burst of connections completes in
the kernel's queue before the server accepts any. Real sockets on loopback; the backlog is read from
outside with Linux's ``ss``.
"""

from __future__ import annotations

import errno
import os
import selectors
import shutil
import socket
import subprocess
import time

import pytest

from exporter.http import ExporterHTTPServer
from exporter.http_gate import ConnectionLimits
from exporter.metrics import ExpositionCache
from exporter.serving import ServingProcess
from tests.integration.test_http_limits import SPEC, WAIT, store_with


def listen_backlog(port: int) -> int:
    """The backlog of the socket listening on loopback ``port``, as the kernel reports it: for a
    listening socket, ss shows the backlog in its Send-Q column (inet_diag's idiag_wqueue)."""
    lines = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=WAIT,
                           check=True).stdout.splitlines()
    assert len(lines) == 1, lines
    state, _recv_q, send_q = lines[0].split()[:3]
    assert state == "LISTEN"
    return int(send_q)


def expected_backlog() -> int:
    with open("/proc/sys/net/core/somaxconn") as handle:  # the kernel clamps listen()'s argument to it
        return min(1024, int(handle.read()))


needs_ss = pytest.mark.skipif(shutil.which("ss") is None or not os.path.exists("/proc/sys/net/core/somaxconn"),
                              reason="reads the listen backlog with Linux's ss")


@needs_ss
def test_the_endpoint_listens_with_a_backlog_of_1024():
    server = ExporterHTTPServer(("127.0.0.1", 0), ExpositionCache(store_with(1), [SPEC], process_metrics=False),
                                store_with(1), healthy=lambda: True, limits=ConnectionLimits())
    try:
        assert listen_backlog(server.server_address[1]) == expected_backlog()
    finally:
        server.server_close()


@needs_ss
def test_the_serving_process_socket_that_run_binds_has_a_backlog_of_1024():
    """`run` binds in the polling process (exporter.serving) and hands the socket to the serving process."""
    serving = ServingProcess(("127.0.0.1", 0), ExpositionCache(store_with(1), [SPEC], process_metrics=False),
                             healthy=lambda: True, status_page=lambda: b"", generation=lambda: 0, web_config=None,
                             telemetry_path="/metrics", reload=None)
    try:
        assert listen_backlog(serving.server_address[1]) == expected_backlog()
    finally:
        serving.socket.close()


def test_a_burst_of_connections_completes_before_the_server_accepts_any():
    """200 connections at once, while nothing accepts (the server is built but not yet serving): each
    completes its handshake in the kernel's queue. With a backlog of 5, only 6 would, the rest waiting
    in SYN retries."""
    server = ExporterHTTPServer(("127.0.0.1", 0), ExpositionCache(store_with(1), [SPEC], process_metrics=False),
                                store_with(1), healthy=lambda: True)
    clients = [socket.socket() for _ in range(200)]
    try:
        for client in clients:
            client.setblocking(False)
            assert client.connect_ex(server.server_address[:2]) in (0, errno.EINPROGRESS)
        pending = set(clients)
        deadline = time.monotonic() + 5.0  # a dropped SYN is retried after 1 s: 5 s is ample for the queued ones
        with selectors.DefaultSelector() as selector:
            for client in clients:
                selector.register(client, selectors.EVENT_WRITE)
            while pending and time.monotonic() < deadline:
                for key, _ in selector.select(0.1):
                    assert key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
                    selector.unregister(key.fileobj)
                    pending.discard(key.fileobj)
        assert len(pending) == 0, f"{200 - len(pending)} of 200 connections completed without accept"
    finally:
        for client in clients:
            client.close()
        server.server_close()
