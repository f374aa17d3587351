"""The Simulator as a whole: ports, control API, HTTPS, stats, envelope packing, shutdown, CLI."""

from __future__ import annotations

import io
import json
import os
import threading
import time
import urllib.error
import urllib.request

import pytest
import requests
from pypsrp.powershell import PowerShell

from simulator.cli import parse_listen, run_simulator
from simulator.scenario import ScenarioError
from simulator.server import Simulator
from tests.simulator.helpers import (
    EDGE01,
    EX01,
    FE01,
    PASSWORD,
    USER,
    pool_for,
    props,
    run,
)


def control(sim, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(sim.control_url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_hosts_and_urls(sim):
    hosts = sim.hosts()
    assert list(hosts) == [EX01, "ex02.contoso.com", FE01, "fe02.contoso.com", EDGE01]
    ex01, fe01 = hosts[EX01], hosts[FE01]
    assert ex01.roles == ["exchange_mailbox", "exchange_client_access"]
    assert ex01.windows_url == f"http://127.0.0.1:{ex01.port}/wsman"
    assert ex01.exchange_url == f"http://127.0.0.1:{ex01.port}/PowerShell"
    assert fe01.exchange_url is None and fe01.port != ex01.port


def test_fixed_control_port_puts_hosts_after_it(free_port_block):
    with Simulator(username=USER, password=PASSWORD, control_port=free_port_block) as sim:
        assert sim.control_url == f"http://127.0.0.1:{free_port_block}"
        assert [h.port for h in sim.hosts().values()] == [free_port_block + 1 + i for i in range(5)]


@pytest.fixture
def free_port_block():
    import socket

    for base in range(47100, 48000, 10):
        sockets = []
        try:
            for port in range(base, base + 6):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                sockets.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in sockets:
                s.close()
    pytest.skip("no free block of ports")


def test_control_api(sim):
    status, state = control(sim, "GET", "/control/state")
    assert status == 200 and state["scenario"] == "healthy" and "no-event-112" in state["scenarios"]
    assert state["hosts"][FE01]["faults"] == [] and state["hosts"][EX01]["exchange_url"]
    status, answer = control(sim, "POST", "/control/faults", {"host": FE01, "fault": "latency", "latency_ms": 50})
    assert status == 200 and answer["faults"] == [{"fault": "latency", "latency_ms": 50}]
    status, _ = control(sim, "POST", "/control/scenario", {"name": "cms-replica-stale"})
    assert status == 200 and sim.scenario_name == "cms-replica-stale"
    status, _ = control(sim, "DELETE", f"/control/faults?host={FE01}")
    assert status == 200 and sim.state()["hosts"][FE01]["faults"] == []
    status, stats = control(sim, "GET", "/control/stats")
    assert status == 200 and set(stats[FE01]) == {"shells_created", "shells_open", "commands", "signals",
                                                   "pipelines_open", "requests", "connections", "requests_encrypted",
                                                   "auth_failures"}
    assert control(sim, "DELETE", "/control/faults")[0] == 200


@pytest.mark.parametrize("method, path, body, needle", [
    ("POST", "/control/faults", {"host": "nope", "fault": "hang"}, "unknown host"),
    ("POST", "/control/faults", {"host": FE01, "fault": "explode"}, "unknown fault"),
    ("POST", "/control/faults", {"host": FE01, "fault": "hang", "colour": "red"}, "colour"),
    ("POST", "/control/scenario", {"name": "nope"}, "unknown scenario"),
    ("POST", "/control/scenario", {}, "name"),
    ("DELETE", "/control/faults?host=nope", None, "unknown host"),
])
def test_control_api_bad_requests(sim, method, path, body, needle):
    status, answer = control(sim, method, path, body)
    assert status == 400 and needle in answer["error"]


def test_live_scenario_switch_keeps_pools(sim, fe01_pool):
    def edge_replica():
        ps = run(fe01_pool, "Get-CsManagementStoreReplicationStatus", ReplicaFqdn=EDGE01)
        return props(ps.output[0])

    assert edge_replica()["UpToDate"] is True
    sim.set_scenario("cms-replica-stale")
    assert edge_replica()["UpToDate"] is False
    sim.set_scenario("healthy")
    assert edge_replica()["UpToDate"] is True


def test_scenario_with_other_hosts_is_refused(sim):
    from simulator.scenario import load_scenario

    with pytest.raises(ScenarioError, match="different host set"):
        sim.set_scenario(load_scenario("healthy").scaled(7))


def test_pool_reuse_is_counted(sim):
    before = sim.stats()[FE01]
    with pool_for(sim, FE01) as pool:
        for _ in range(3):
            assert run(pool, "Get-CsSite").output
    after = sim.stats()[FE01]
    assert after["shells_created"] - before["shells_created"] == 1
    assert after["commands"] - before["commands"] == 3
    assert after["requests"] > before["requests"]


def test_large_output_is_packed_to_the_client_envelope(tmp_path):
    """600 events answered within a 16 KiB MaxEnvelopeSize: many fragments over many Receives."""
    events = "\n".join(
        f"        e{i}: {{provider: Bulk, id: {i % 7}, time: -{i}m, message: '{'x' * 200}'}}" for i in range(600))
    scenario = tmp_path / "bulk.yaml"
    scenario.write_text(f"base: healthy\nhosts:\n  fe01.contoso.com:\n    windows:\n      events:\n{events}\n")
    with Simulator(scenario=scenario, username=USER, password=PASSWORD) as sim:
        with pool_for(sim, FE01, max_envelope_size=16 * 1024) as pool:
            receives_before = sim.stats()[FE01]["requests"]
            ps = run(pool, "Get-WinEvent", FilterHashtable={"ProviderName": "Bulk"})
            assert len(ps.output) == 600 and not ps.streams.error
            assert sim.stats()[FE01]["requests"] - receives_before > 10


def test_create_pipeline_split_between_command_and_send(sim, fe01_pool):
    """A CreatePipeline larger than one envelope: the first fragment in Command, the rest in Send."""
    fragmenter = fe01_pool._fragmenter
    saved = fragmenter.max_size
    fragmenter.max_size = 1500  # force several fragments for this pipeline
    try:
        ps = PowerShell(fe01_pool)
        ps.add_cmdlet("Get-WinEvent").add_parameter("LogName", "Lync Server")
        ps.add_parameter("FilterXPath", "*[System[(EventID=1017) or " + " or ".join(
            f"(EventID={n})" for n in range(5000, 5400)) + "]]")
        out = ps.invoke()
    finally:
        fragmenter.max_size = saved
    assert [props(e)["Id"] for e in out] == [1017]


def test_https_with_the_generated_ca():
    with Simulator(username=USER, password=PASSWORD, tls=True) as sim:
        assert sim.hosts()[FE01].windows_url.startswith("https://127.0.0.1:")
        ca = sim.ca_cert_path
        assert ca and os.path.isfile(ca)
        with pool_for(sim, FE01) as pool:  # cert_validation=ca_cert_path
            assert run(pool, "Get-CsSite").output
        with pytest.raises(requests.exceptions.SSLError):
            requests.post(sim.hosts()[FE01].windows_url, timeout=5, verify=True)
    assert not os.path.exists(ca)  # removed at stop


def test_stop_ends_hung_handlers_and_leaks_no_threads():
    threads_before = threading.active_count()
    sim = Simulator(username=USER, password=PASSWORD).start()
    errors = []

    def call():
        try:
            with pool_for(sim, FE01, read_timeout=30) as pool:
                sim.set_fault(FE01, "hang")
                run(pool, "Get-CsSite")
        except Exception as err:  # the connection is closed under the client
            errors.append(err)

    worker = threading.Thread(target=call)
    worker.start()
    deadline = time.monotonic() + 5
    while not sim.state()["hosts"][FE01]["faults"] and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 3
    worker.join(5)
    assert not worker.is_alive() and errors
    assert sim.thread_count() == 0
    time.sleep(0.2)
    assert threading.active_count() <= threads_before


def test_two_hundred_hosts():
    from simulator.scenario import load_scenario

    started = time.monotonic()
    with Simulator(scenario=load_scenario("healthy").scaled(200), username=USER, password=PASSWORD) as sim:
        hosts = sim.hosts()
        assert len(hosts) == 200 and len({h.port for h in hosts.values()}) == 200
        with pool_for(sim, "fe01-198.contoso.com") as pool:
            replicas = run(pool, "Get-CsManagementStoreReplicationStatus").output
            assert len(replicas) == 3  # clones share the templates' topology
        sim.set_scenario("no-event-112")  # live switches keep the scale
        assert len(sim.hosts()) == 200
    assert time.monotonic() - started < 20


def test_cli_parse_listen():
    assert parse_listen("127.0.0.1:9985") == ("127.0.0.1", 9985)
    assert parse_listen(":0") == ("127.0.0.1", 0)
    with pytest.raises(ValueError):
        parse_listen("localhost")


def test_cli_runs_until_stopped():
    out = io.StringIO()
    stop = threading.Event()
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault(
        "rc", run_simulator("healthy", "127.0.0.1:0", False, USER, PASSWORD, out=out, stop_event=stop)))
    worker.start()
    deadline = time.monotonic() + 10
    while "ex01.contoso.com" not in out.getvalue() and time.monotonic() < deadline:
        time.sleep(0.05)
    stop.set()
    worker.join(10)
    assert result["rc"] == 0
    text = out.getvalue()
    assert "control API http://127.0.0.1:" in text and "/PowerShell" in text and PASSWORD not in text
    assert run_simulator("nope", "127.0.0.1:0", False, USER, PASSWORD, out=out) == 2


def test_a_start_that_fails_half_way_raises_and_releases_its_ports(monkeypatch):
    """With no usable temporary directory (a read-only container) start() must raise, not hang.

    The control server exists before the TLS services fail; stopping it must not wait for a
    serve loop that never ran.
    """
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", "/nonexistent/lync-owa-test")
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                    username=USER, password=PASSWORD)
    outcome: list[BaseException | None] = []

    def start() -> None:
        try:
            sim.start()
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome.append(exc)

    thread = threading.Thread(target=start, daemon=True)
    thread.start()
    thread.join(60)  # a hang detector, not a speed check
    assert not thread.is_alive(), "Simulator.start() hung after a failure half-way"
    assert isinstance(outcome[0], OSError), outcome
