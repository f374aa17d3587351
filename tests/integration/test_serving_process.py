"""The endpoint served by a process of its own (exporter.serving, exporter.serving_child): the real
Exporter in this process, its serving process spawned, the real pypsrp client against the simulator
on loopback, scrapes over real sockets.

What it must keep: the exposition is what this process renders (byte for byte but the process
figures, which are read at the scrape), ``process_*`` are still the polling process's, the serving
process's own figures have a prefix, a reset in the middle of an answer costs one debug line and no
traceback, a serving process that dies is started again, and the whole stops quickly.
"""

from __future__ import annotations

import gzip
import logging
import os
import signal
import socket
import struct
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.process_collector import ProcessCollector

from collectors import registry
from collectors.contract import MetricSpec
from exporter.app import Exporter
from exporter.config import load_config
from tests.conftest import estate_config, write_config

FE01 = "fe01.contoso.com"
ONLY = {name: name == "cms_replication" for name in registry.by_name()}
WAIT = 30.0  # bounds waits; never reached when the exporter is right
SPEC = MetricSpec("lync_owa_test_value", "gauge", "A value.", ("replica",))
PROCESS_FAMILIES = {"process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
                    "process_cpu_seconds_total", "process_open_fds", "process_max_fds"}
SERVING_FAMILIES = {"lync_owa_serving_restarts_total", *(f"lync_owa_serving_{name}" for name in PROCESS_FAMILIES)}


@pytest.fixture
def exporter(basic_sim, tmp_path, password_env):
    # A long interval: after the first run nothing changes, so two renderings can be compared.
    path = write_config(tmp_path, estate_config(basic_sim, interval="300s", timeout="10s", hosts={FE01}))
    running = Exporter(load_config(path, registry.by_name()), "127.0.0.1:0", collector_switches=ONLY)
    running.start()
    yield running
    running.stop()


@pytest.fixture
def debug_exporter(caplog, request):
    """The exporter started with logging at debug: the serving process takes its level at start."""
    caplog.set_level(logging.DEBUG)
    return request.getfixturevalue("exporter")


def wait_until(check, timeout: float = WAIT) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return True
        time.sleep(0.05)
    return check()


def scrape(url: str, accept_gzip: bool = False) -> bytes:
    request = urllib.request.Request(url, headers={"Accept-Encoding": "gzip" if accept_gzip else "identity"})
    with urllib.request.urlopen(request, timeout=WAIT) as response:
        body = response.read()
        assert response.headers.get("Content-Encoding") == ("gzip" if accept_gzip else None)
    return gzip.decompress(body) if accept_gzip else body


def sections(text: bytes) -> dict[str, bytes]:
    """Family name (from its HELP line) -> its lines, in exposition order."""
    found: dict[str, list[bytes]] = {}
    name = ""
    for line in text.splitlines(keepends=True):
        if line.startswith(b"# HELP "):
            name = line.split(b" ", 3)[2].decode()
        found.setdefault(name, []).append(line)
    return {key: b"".join(lines) for key, lines in found.items()}


def value(text: bytes, name: str) -> float:
    (sample,) = [s for f in text_string_to_metric_families(text.decode()) for s in f.samples if s.name == name]
    return sample.value


def settled(exporter: Exporter) -> None:
    """Every job has run once and the serving process holds what this process rendered since."""
    assert wait_until(lambda: all(job.up for job in exporter.store.jobs())), [
        (job.key, job.last_error) for job in exporter.store.jobs()]
    time.sleep(0.5)  # the renderer's debounce (50 ms) and one publication


def test_the_exposition_served_is_the_one_rendered_here_and_process_figures_stay_honest(exporter):
    settled(exporter)
    here = exporter.cache.render()
    served = scrape(f"{exporter.url}/metrics")
    served_gzip = scrape(f"{exporter.url}/metrics", accept_gzip=True)

    mine, theirs, theirs_gzip = sections(here), sections(served), sections(served_gzip)
    assert PROCESS_FAMILIES <= set(mine)
    # The same families in the same order, then the serving process's own at the end.
    assert list(theirs) == list(mine) + sorted(SERVING_FAMILIES, key=list(theirs).index)
    assert set(theirs) - set(mine) == SERVING_FAMILIES
    for name in mine:
        if name not in PROCESS_FAMILIES:
            assert theirs[name] == mine[name], name  # byte for byte
            assert theirs_gzip[name] == mine[name], name
    assert b"lync_owa_cms_replica_up_to_date{" in served  # the estate's data, not only health

    # process_* are this (the polling) process's: the same start time as read here, and its descriptors.
    assert value(served, "process_start_time_seconds") == value(here, "process_start_time_seconds")
    assert value(served, "process_open_fds") == pytest.approx(len(os.listdir("/proc/self/fd")), abs=10)
    # The serving process's own figures, under their prefix, are another process's.
    serving_pid = exporter.server.pid
    assert serving_pid is not None and serving_pid != os.getpid()
    theirs_registry = CollectorRegistry(auto_describe=False)
    ProcessCollector(pid=lambda: serving_pid, registry=theirs_registry)
    read_here = generate_latest(theirs_registry)
    assert value(served, "lync_owa_serving_process_start_time_seconds") == value(read_here, "process_start_time_seconds")
    assert value(served, "lync_owa_serving_restarts_total") == 0


def test_a_scraper_that_resets_mid_response_costs_one_debug_line_and_no_traceback(debug_exporter, caplog, capfd):
    exporter = debug_exporter
    settled(exporter)
    # About 12.7 MB of exposition: more than the kernel buffers between the two ends on loopback, so the
    # serving process is still writing when the client resets.
    exporter.store.register("test", "host", 60)
    pad = "r" * 100
    exporter.store.record_success("test", "host", [SPEC.sample(i, replica=f"{pad}{i}") for i in range(80_000)], 0.01)
    assert wait_until(lambda: len(scrape(f"{exporter.url}/metrics")) > 12_000_000)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.settimeout(WAIT)
    client.connect(exporter.server.server_address[:2])
    client.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    assert client.recv(4096).startswith(b"HTTP/1.1 200 OK\r\n")  # the answer has started
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, as when a scraper times out and gives up
    assert wait_until(lambda: any(r.getMessage() == "client disconnected" for r in caplog.records))
    # The serving process's log record came over the pipe and was logged here, once, at debug.
    lines = [r for r in caplog.records if r.getMessage() == "client disconnected"]
    assert len(lines) == 1
    assert (lines[0].levelno, lines[0].name, lines[0].phase, lines[0].client) == (
        logging.DEBUG, "exporter.http_gate", "response", "127.0.0.1")
    assert lines[0].reason in ("ConnectionResetError", "BrokenPipeError")
    assert lines[0].process == exporter.server.pid  # logged there
    assert "Traceback" not in capfd.readouterr().err


def test_a_serving_process_that_dies_is_started_again_and_counted(exporter):
    settled(exporter)
    first = exporter.server.pid
    os.kill(first, signal.SIGKILL)
    # Scrapes wait in the kernel's queue of the socket this process keeps open, and are answered again.
    assert wait_until(lambda: exporter.server.pid != first and exporter.server.restarts == 1)
    served = scrape(f"{exporter.url}/metrics")
    assert value(served, "lync_owa_serving_restarts_total") == 1
    assert b"lync_owa_cms_replica_up_to_date{" in served


def test_the_serving_process_ends_when_the_exporter_stops(basic_sim, tmp_path, password_env):
    path = write_config(tmp_path, estate_config(basic_sim, interval="300s", timeout="10s", hosts={FE01}))
    running = Exporter(load_config(path, registry.by_name()), "127.0.0.1:0", collector_switches=ONLY)
    running.start()
    pid, url = running.server.pid, running.url
    held = [socket.create_connection(running.server.server_address[:2]) for _ in range(5)]  # idle scrapers
    started = time.monotonic()
    running.stop()
    took = time.monotonic() - started
    for sock in held:
        sock.close()
    assert not os.path.exists(f"/proc/{pid}")  # ended and reaped
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{url}/healthz", timeout=2)
    assert took < 10, took  # a bound on a wait, not a measurement: the stop's own deadlines are 2-3 s


def test_healthz_answers_200_from_the_first_request_the_serving_process_takes(basic_sim, tmp_path, password_env,
                                                                              monkeypatch):
    # Only the snapshot sent at launch reaches the serving process here: no publisher runs. Before the
    # scheduler was started ahead of the launch, that snapshot said "not healthy", and /healthz answered
    # 503 until the first publish, a window a container health check or a scraper could fall into.
    from exporter.serving import ServingProcess

    monkeypatch.setattr(ServingProcess, "_publish_loop", lambda self: None)
    path = write_config(tmp_path, estate_config(basic_sim, interval="300s", timeout="10s", hosts={FE01}))
    running = Exporter(load_config(path, registry.by_name()), "127.0.0.1:0", collector_switches=ONLY)
    running.start()
    try:
        with urllib.request.urlopen(f"{running.url}/healthz", timeout=5) as answer:
            assert (answer.status, answer.read()) == (200, b"ok\n")
    finally:
        running.stop()


def test_a_serving_process_that_cannot_start_fails_the_start_with_its_reason(basic_sim, tmp_path, password_env):
    from exporter.serving import ServingError
    from exporter.web_config import load_web_config
    from tests.tls_material import WEB_HASH, WEB_USER, write_web_config

    web = load_web_config(write_web_config(tmp_path, {"basic_auth_users": {WEB_USER: WEB_HASH}}))
    path = write_config(tmp_path, estate_config(basic_sim, interval="300s", timeout="10s", hosts={FE01}))
    running = Exporter(load_config(path, registry.by_name()), "127.0.0.1:0", collector_switches=ONLY, web_config=web)
    Path(web.path).unlink()  # gone between the check and the serving process's own reading of it
    with pytest.raises(ServingError, match="did not start: WebConfigError: .*cannot read the web configuration"):
        running.start()
    assert not running.scheduler.running  # the start stopped what it had started
