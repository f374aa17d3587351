"""The demo's simulated estate runs in a process of its own (exporter.demo_simulator).

Real processes: the spawned simulator, the real pypsrp client against the hosts it says it serves, a
parent killed with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

from collectors.contract import Deadline, Field, Shape
from collectors.sources.remoting import EndpointSpec, RemoteSession
from exporter.demo_simulator import (
    SimulatorOptions,
    SimulatorProcess,
    SimulatorProcessError,
)
from tests.conftest import PROJECT_ROOT, SIM_PASSWORD, SIM_USERNAME

EX01 = "ex01.contoso.com"


def options(**overrides) -> SimulatorOptions:
    values = dict(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                  username=SIM_USERNAME, password=SIM_PASSWORD, log_level="warn")
    values.update(overrides)
    return SimulatorOptions(**values)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent) counts as ended.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def refused(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(2)
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_the_estate_answers_pypsrp_from_another_process_and_stops_when_told():
    sim = SimulatorProcess(options()).start()
    try:
        assert sim.pid is not None and sim.pid != os.getpid()
        hosts = sim.hosts()
        assert sorted(hosts) == ["edge01.contoso.com", "ex01.contoso.com", "ex02.contoso.com",
                                 "fe01.contoso.com", "fe02.contoso.com"]
        ex01 = hosts[EX01]
        assert ex01.roles == ["exchange_mailbox", "exchange_client_access"] and ex01.exchange_url.endswith("/PowerShell")
        assert sim.control_url.startswith("http://127.0.0.1:") and sim.ca_cert_path is None
        session = RemoteSession(EndpointSpec(url=ex01.exchange_url, configuration="Microsoft.Exchange",
                                             username=SIM_USERNAME, password=SIM_PASSWORD, auth="basic",
                                             encryption="never"))
        try:
            answer = session.run("Get-ExchangeServer", None, Shape("Get-ExchangeServer", (Field("Name", "str"),)),
                                 Deadline(20))
        finally:
            session.close()
        assert sorted(o["Name"] for o in answer.objects) == ["EX01", "EX02"]
    finally:
        pid = sim.pid
        sim.stop()
    assert not alive(pid)
    assert refused(ex01.port)
    sim.stop()  # twice is harmless


def test_with_tls_the_ca_file_exists_while_it_runs_and_goes_with_it():
    sim = SimulatorProcess(options(tls=True)).start()
    try:
        assert sim.hosts()[EX01].windows_url.startswith("https://")
        assert sim.ca_cert_path is not None and os.path.isfile(sim.ca_cert_path)
    finally:
        sim.stop()
    assert not os.path.exists(sim.ca_cert_path)


def test_an_unknown_scenario_is_named():
    with pytest.raises(SimulatorProcessError, match=r"^--scenario no-such-scenario: unknown scenario 'no-such-scenario'") as err:
        SimulatorProcess(options(scenario="no-such-scenario")).start()
    assert err.value.bad_scenario


def test_a_control_port_in_use_is_named():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(SimulatorProcessError, match=r"^cannot start the simulator: .*[Aa]ddress already in use") as err:
            SimulatorProcess(options(control_port=port)).start()
        assert not err.value.bad_scenario


def test_the_estate_ends_when_the_demo_is_killed():
    """SIGKILL leaves no chance to stop the child: it sees its pipe close and stops by itself."""
    parent = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        from exporter.demo_simulator import SimulatorOptions, SimulatorProcess
        sim = SimulatorProcess(SimulatorOptions("healthy", "127.0.0.1", 0, False, "u", "p", "warn")).start()
        print(sim.pid, sim.hosts()[{EX01!r}].port, flush=True)
        time.sleep(600)
    """)], cwd=PROJECT_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        child_pid, port = (int(word) for word in parent.stdout.readline().split())
        assert alive(child_pid) and not refused(port)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        end = time.monotonic() + 15
        while alive(child_pid) and time.monotonic() < end:
            time.sleep(0.1)
        assert not alive(child_pid), "the simulator outlived the demo that started it"
        assert refused(port)
    finally:
        parent.kill()
        parent.wait(10)
