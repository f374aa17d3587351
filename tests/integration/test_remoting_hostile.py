"""A server that answers with gigabytes: the remoting layer reads at most MAX_RESPONSE_BYTES of one answer.

Through the real pypsrp client and the real JobRunner against the simulator's ``huge`` fault (a chunked
200 of hundreds of MiB, generated as it is written), and against a bare socket server for what the
simulator does not do (a declared Content-Length over the cap, a gzip bomb). Memory is judged by what
the server could actually send before the client hung up, never by timing.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from urllib.parse import urlsplit

import pytest

from collectors import registry
from collectors.cms_replication import CmsReplicationCollector
from collectors.contract import CollectError, Deadline, ErrorKind, Shape
from collectors.sources.remoting import EndpointSpec, RemoteSession, SessionPool
from collectors.sources.response_cap import MAX_RESPONSE_BYTES
from exporter.config import load_config
from exporter.scheduler import JobRunner
from exporter.state import SnapshotStore
from simulator.faults import FaultError
from tests.conftest import estate_config, write_config

FE01 = "fe01.contoso.com"
FE02 = "fe02.contoso.com"
HUGE_MB = 256  # far above the cap; small enough that a client without one would not take the machine down
# What may leave the server beyond the cap before the client's close is seen: the client's socket
# receive buffer (autotuned up to 32 MiB on Linux loopback), the server's send buffer and one piece.
SOCKET_BUFFERS_MARGIN = 40 * 1024 * 1024
CAP_TEXT = f"{MAX_RESPONSE_BYTES // (1024 * 1024)} MiB cap"


def make_runner(sim, tmp_path, target: str, sessions: SessionPool) -> tuple[JobRunner, SnapshotStore]:
    document = estate_config(sim, interval="120s", timeout="60s")
    config = load_config(write_config(tmp_path / target, document), registry.by_name())
    job = next(j for j in config.jobs(registry.by_name()) if j.target.name == target)
    store = SnapshotStore()
    return JobRunner(CmsReplicationCollector(), job, store, sessions), store


def status(store: SnapshotStore):
    (job,) = store.jobs()
    return job


def huge_fault_state(sim, host: str) -> dict:
    return next(f for f in sim.state()["hosts"][host]["faults"] if f["fault"] == "huge")


def wait_until_streams_end(sim, host: str) -> dict:
    """The simulator's writer ends when the client hangs up; poll generously for it."""
    deadline = time.monotonic() + 120
    state = huge_fault_state(sim, host)
    while state["streams_open"] and time.monotonic() < deadline:
        time.sleep(0.05)
        state = huge_fault_state(sim, host)
    assert state["streams_open"] == 0, state
    return state


def endpoint_host(sim, host: str) -> str:
    return urlsplit(sim.hosts()[host].windows_url).hostname


@pytest.fixture
def tmp_dirs(tmp_path):
    for name in ("fe01", "fe02"):
        (tmp_path / name).mkdir()
    return tmp_path


def test_huge_answer_on_an_open_pool_fails_with_kind_shape_and_the_next_run_succeeds(sim, tmp_dirs, password_env):
    sessions = SessionPool()
    runner, store = make_runner(sim, tmp_dirs, "fe01", sessions)
    runner()
    assert status(store).up, status(store).last_error
    # The CMS over /OcsPowershell (the run's first call, the one the huge answer meets), the event log
    # over WinRM: one session each.
    by_path = {s.spec.url.rsplit("/", 1)[-1]: s for s in sessions.sessions()}
    assert sorted(by_path) == ["OcsPowershell", "wsman"]
    session, windows = by_path["OcsPowershell"], by_path["wsman"]
    assert session.pools_opened == windows.pools_opened == 1

    sim.set_fault(FE01, "huge", size_mb=HUGE_MB)
    runner()
    job = status(store)
    assert not job.up and job.last_error_kind == "shape", job.last_error
    assert CAP_TEXT in job.last_error and endpoint_host(sim, FE01) in job.last_error
    ended = wait_until_streams_end(sim, FE01)
    # The run's reads meet the huge answer at once (the CMS's two on the Lync pool, the event log's on
    # WinRM): the client read past the cap on one of them, and no answer was read much past it.
    sent, streams = ended["bytes_sent"], ended["streams"]
    assert 1 <= streams <= 3
    assert MAX_RESPONSE_BYTES < sent <= streams * (MAX_RESPONSE_BYTES + SOCKET_BUFFERS_MARGIN)
    assert sent < streams * HUGE_MB * 1024 * 1024

    sim.clear_faults(FE01)
    runner()
    assert status(store).up, status(store).last_error
    # The pools that met the huge answer were dropped, new ones opened (the event log's too: its read
    # ran at the same time as the CMS's).
    assert session.pools_opened == 2
    assert windows.pools_opened == 2
    sessions.close_all(timeout=5)


def test_huge_answer_while_opening_the_pool(sim, tmp_dirs, password_env):
    sessions = SessionPool()
    runner, store = make_runner(sim, tmp_dirs, "fe01", sessions)
    sim.set_fault(FE01, "huge", size_mb=HUGE_MB)
    runner()
    assert status(store).last_error_kind == "shape", status(store).last_error
    ended = wait_until_streams_end(sim, FE01)  # both pools (Lync, WinRM) were opening at once
    assert ended["bytes_sent"] <= ended["streams"] * (MAX_RESPONSE_BYTES + SOCKET_BUFFERS_MARGIN)
    assert [s.pools_opened for s in sessions.sessions()] == [0] * len(sessions.sessions())
    sim.clear_faults(FE01)
    runner()
    assert status(store).up, status(store).last_error
    sessions.close_all(timeout=5)


def test_other_jobs_continue_while_one_host_answers_with_gigabytes(sim, tmp_dirs, password_env):
    sessions = SessionPool()
    huge_runner, huge_store = make_runner(sim, tmp_dirs, "fe01", sessions)
    other_runner, other_store = make_runner(sim, tmp_dirs, "fe02", sessions)
    sim.set_fault(FE01, "huge", size_mb=HUGE_MB)
    threads = [threading.Thread(target=huge_runner), threading.Thread(target=other_runner)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    assert status(huge_store).last_error_kind == "shape"
    assert status(other_store).up, status(other_store).last_error
    wait_until_streams_end(sim, FE01)
    sessions.close_all(timeout=5)


def test_the_huge_fault_is_validated_and_described(sim):
    with pytest.raises(FaultError, match="size_mb"):
        sim.set_fault(FE01, "huge", size_mb=0)
    with pytest.raises(FaultError, match="takes no option"):
        sim.set_fault(FE01, "huge", latency_ms=5)
    sim.set_fault(FE01, "huge")
    assert huge_fault_state(sim, FE01) == {"fault": "huge", "size_mb": 4096, "bytes_sent": 0, "streams_open": 0,
                                             "streams": 0}


# --- what the simulator does not do: a bare server with a crafted answer ----------------------------

class CraftedServer:
    """Answers every HTTP request on loopback with one crafted response head and body, then holds on."""

    def __init__(self, head: bytes, body: bytes = b"") -> None:
        self.head, self.body = head, body
        self.sent = 0
        self._stop = threading.Event()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    request = b""
                    while b"\r\n\r\n" not in request:
                        request += conn.recv(65536)
                    conn.sendall(self.head + self.body)
                    self.sent += len(self.head) + len(self.body)
                    self._stop.wait(30)  # never finish the body: a client waiting for it would time out
                except OSError:
                    continue

    def close(self) -> None:
        self._stop.set()
        self._sock.close()
        self._thread.join(5)


def _run_against(server: CraftedServer) -> CollectError:
    spec = EndpointSpec(url=f"http://127.0.0.1:{server.port}/wsman", configuration="Microsoft.PowerShell",
                        username="monitor", password="Pw-crafted-5b2e", auth="basic", encryption="never")
    session = RemoteSession(spec)
    try:
        with pytest.raises(CollectError) as err:
            session.run("Get-CsSite", None, Shape("Get-CsSite"), Deadline(60))
    finally:
        session.close()
    return err.value


def test_a_declared_length_over_the_cap_is_refused_before_reading():
    server = CraftedServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
                           b"Content-Length: 10737418240\r\n\r\n")
    try:
        error = _run_against(server)
    finally:
        server.close()
    # Kind shape, not timeout: the client never waited for the 10 GiB it was promised.
    assert error.kind is ErrorKind.SHAPE and CAP_TEXT in str(error) and "127.0.0.1" in str(error)


def test_a_gzip_bomb_is_counted_after_decoding():
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # gzip framing
    zeros = bytes(1024 * 1024)
    bomb = b"".join(packer.compress(zeros) for _ in range(MAX_RESPONSE_BYTES // len(zeros) + 8)) + packer.flush()
    assert len(bomb) < MAX_RESPONSE_BYTES // 100
    server = CraftedServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
                           b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n" % len(bomb), bomb)
    try:
        error = _run_against(server)
    finally:
        server.close()
    assert error.kind is ErrorKind.SHAPE and CAP_TEXT in str(error)


def test_an_answer_that_stops_halfway_is_a_timeout_not_an_unreachable_host():
    """The host accepted the connection and started answering: it is reachable, and slow. requests
    reports a read timeout inside the body as a ConnectionError ("Read timed out."); it was reported
    as kind=unreachable, "cannot connect", which sends the operator to the firewall."""
    server = CraftedServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
                           b"Content-Length: 4096\r\n\r\n", b"<s:Envelope")
    spec = EndpointSpec(url=f"http://127.0.0.1:{server.port}/wsman", configuration="Microsoft.PowerShell",
                        username="monitor", password="Pw-crafted-5b2e", auth="basic", encryption="never")
    session = RemoteSession(spec)
    started = time.monotonic()
    try:
        with pytest.raises(CollectError) as err:
            session.run("Get-CsSite", None, Shape("Get-CsSite"), Deadline(2))
    finally:
        session.close()
        server.close()
    assert err.value.kind is ErrorKind.TIMEOUT, str(err.value)
    assert "no answer before the deadline" in str(err.value) and "cannot connect" not in str(err.value)
    assert time.monotonic() - started < 2 + 1.5  # ended by its deadline
