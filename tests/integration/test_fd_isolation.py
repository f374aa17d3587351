"""Incoming connections cannot take the file descriptors outbound work needs (exporter.fd_budget).

A real exporter HTTP server runs in a child process whose open-file limit is 256, the situation of
issue 18 (a small limit, hundreds of idle connections). The test floods it with 400 idle
connections, then the child opens 150 TLS connections to a server on loopback, as TLS probes and
remoting sessions do. Every one must succeed: the inbound side holds at most a quarter of the limit.
Before the cap, the idle connections took every descriptor and the probes failed with "Too many open
files".
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from tests.conftest import PROJECT_ROOT
from tests.tls_material import TestCA

resource = pytest.importorskip("resource")

LIMIT, FLOOD, OUTBOUND = 256, 400, 150

CHILD = r"""
import json, os, resource, socket, ssl, sys, time
resource.setrlimit(resource.RLIMIT_NOFILE, ({limit}, {limit}))
from exporter.http import ExporterHTTPServer
from exporter.metrics import ExpositionCache
from exporter.state import SnapshotStore

store = SnapshotStore()
server = ExporterHTTPServer(("127.0.0.1", 0), ExpositionCache(store, [], process_metrics=False), store,
                            healthy=lambda: True)
server.serve_in_thread()
print(json.dumps({{"port": server.server_address[1], "cap": server.max_connections}}), flush=True)
sys.stdin.readline()  # the flood is connected
deadline = time.monotonic() + 30
while server.dropped_at_limit < {flood} - server.max_connections and time.monotonic() < deadline:
    time.sleep(0.05)  # until the gate has seen the whole flood
inbound = server.open_connections
context = ssl.create_default_context(cafile={ca!r})
held, errors = [], []
for _ in range({outbound}):
    try:
        raw = socket.create_connection(("127.0.0.1", {tls_port}), timeout=20)
        held.append(context.wrap_socket(raw, server_hostname="localhost"))
    except OSError as exc:
        errors.append(f"{{type(exc).__name__}}: {{exc}}")
print(json.dumps({{"inbound": inbound, "dropped": server.dropped_at_limit, "ok": len(held), "errors": errors[:3],
                  "fds": len(os.listdir("/proc/self/fd"))}}), flush=True)
sys.stdin.readline()
"""


class TLSServer(threading.Thread):
    """Accepts TLS connections and keeps them open, as a Windows server keeps a session open."""

    def __init__(self, context: ssl.SSLContext) -> None:
        super().__init__(daemon=True)
        self.context = context
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self.listener.getsockname()[1]
        self.held: list[socket.socket] = []

    def run(self) -> None:
        while True:
            try:
                raw, _ = self.listener.accept()
            except OSError:
                return
            try:
                self.held.append(self.context.wrap_socket(raw, server_side=True))
            except (OSError, ssl.SSLError):
                raw.close()

    def close(self) -> None:
        self.listener.close()
        for sock in self.held:
            sock.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts descriptors in /proc")
def test_a_flood_of_idle_connections_leaves_outbound_tls_connections_their_descriptors(tmp_path):
    ca = TestCA(tmp_path)
    leaf = ca.issue("server", server=True)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(leaf.cert_path, leaf.key_path)
    peer = TLSServer(server_context)
    peer.start()
    script = CHILD.format(limit=LIMIT, flood=FLOOD, outbound=OUTBOUND, ca=str(ca.cert_path), tls_port=peer.port)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=PROJECT_ROOT, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    flood: list[socket.socket] = []
    try:
        started = json.loads(child.stdout.readline())
        assert started["cap"] == LIMIT // 4  # the inbound share of the limit
        for _ in range(FLOOD):
            flood.append(socket.create_connection(("127.0.0.1", started["port"]), timeout=20))
        child.stdin.write("flooded\n")
        child.stdin.flush()
        report = json.loads(child.stdout.readline())
        assert report["errors"] == []
        assert report["ok"] == OUTBOUND
        assert report["inbound"] <= LIMIT // 4
        assert report["dropped"] >= FLOOD - LIMIT // 4
        assert report["fds"] <= LIMIT
    finally:
        for sock in flood:
            sock.close()
        child.stdin.close()
        child.wait(30)
        peer.close()
