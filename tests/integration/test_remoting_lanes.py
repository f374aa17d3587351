"""Round trips and concurrency of the remoting source, with the real pypsrp client against the simulator.

A cmdlet costs Command + Receive (no terminate Signal), a pool over Basic runs up to MAX_LANES
pipelines at once with one connection each, and answers are the same whether calls run one after
another or at once.
"""

from __future__ import annotations

import re
import threading

import pytest

from collectors.contract import Deadline, Field, Shape
from collectors.sources.concurrent_calls import run_together
from collectors.sources.remoting import EndpointSpec, RemoteSession
from collectors.sources.wsman_client import MAX_LANES, lanes_for
from tests.conftest import SIM_PASSWORD, SIM_USERNAME
from tests.tcp_connections import connections_to

FE01 = "fe01.contoso.com"
REPLICAS = Shape("Get-CsManagementStoreReplicationStatus", (Field("ReplicaFqdn", "str"), Field("UpToDate", "bool")))
CMS_STATUS = Shape("Get-CsManagementStoreReplicationStatus", (Field("ActiveMasterFqdn", "str", required=False),))
SERVICES = Shape("Get-Service", (Field("Name", "str"), Field("Status", "any")))


def timeless(answer: list[dict]) -> list[dict]:
    """An answer without its times, which the simulator's clock moves between two calls."""
    return [{k: v for k, v in obj.items() if not re.search(r"Time|Report|Creation|Heartbeat|Date$|Updated", k)}
            for obj in answer]


def lync_session(sim) -> RemoteSession:
    info = sim.hosts()[FE01]
    return RemoteSession(EndpointSpec(url=info.lync_url, configuration="Microsoft.PowerShell", username=SIM_USERNAME,
                                      password=SIM_PASSWORD, auth="basic", encryption="never"))


def port_of(sim) -> int:
    return sim.hosts()[FE01].port


def test_a_cmdlet_costs_command_and_receive_and_the_host_forgets_it(sim):
    session = lync_session(sim)
    before = sim.stats()[FE01]
    try:
        for _ in range(3):
            assert session.run("Get-CsManagementStoreReplicationStatus", None, REPLICAS, Deadline(20)).objects
    finally:
        session.close()
    after = sim.stats()[FE01]
    # Create + Receive to open the pool, then Command + Receive per cmdlet, then Delete at close.
    assert after["requests"] - before["requests"] == 2 + 3 * 2 + 1
    assert after["commands"] - before["commands"] == 3
    assert after["signals"] == before["signals"]  # no terminate Signal after a finished pipeline
    assert after["pipelines_open"] == 0


def test_calls_at_once_on_one_pool_answer_as_calls_one_after_another(sim):
    sequential = lync_session(sim)
    try:
        expected = [sequential.run("Get-CsManagementStoreReplicationStatus", None, REPLICAS, Deadline(20)).objects,
                    sequential.run("Get-CsManagementStoreReplicationStatus", {"CentralManagementStoreStatus": None},
                                   CMS_STATUS, Deadline(20)).objects]
    finally:
        sequential.close()
    sim.set_fault(FE01, "latency", latency_ms=300)  # every call overlaps the others
    session = lync_session(sim)
    shells = sim.stats()[FE01]["shells_created"]
    try:
        calls = [lambda: session.run("Get-CsManagementStoreReplicationStatus", None, REPLICAS, Deadline(30)).objects,
                 lambda: session.run("Get-CsManagementStoreReplicationStatus", {"CentralManagementStoreStatus": None},
                                     CMS_STATUS, Deadline(30)).objects] * 4
        seen: list[int] = []
        done = threading.Event()

        def count_connections() -> None:
            while not done.wait(0.02):
                seen.append(connections_to(port_of(sim), established_only=True))

        counter = threading.Thread(target=count_connections, daemon=True)
        counter.start()
        try:
            answers = run_together(*calls)
        finally:
            done.set()
            counter.join()
        assert [timeless(a) for a in answers] == [timeless(e) for e in expected] * 4
        assert timeless(expected[0]) and timeless(expected[1])[0]
        assert session.lanes == MAX_LANES == 4
        assert session.pools_opened == 1 and sim.stats()[FE01]["shells_created"] == shells + 1
        # Eight calls at once held four connections, the lanes, and no more; idle, the session keeps one.
        assert max(seen) == MAX_LANES, seen
        assert connections_to(port_of(sim), established_only=True) == 1
    finally:
        session.close()
    assert sim.stats()[FE01]["pipelines_open"] == 0


def test_a_failing_call_among_calls_at_once_fails_alone(sim):
    session = lync_session(sim)
    try:
        with pytest.raises(Exception) as failure:
            run_together(lambda: session.run("Get-CsManagementStoreReplicationStatus", None, REPLICAS,
                                             Deadline(20)).objects,
                         lambda: session.run("Get-NoSuchThing", None, REPLICAS, Deadline(20)).objects)
        assert "CommandNotFoundException" in str(failure.value)
        # The pool survives a command error: the next calls use it.
        assert session.run("Get-CsManagementStoreReplicationStatus", None, REPLICAS, Deadline(20)).objects
        assert session.pools_opened == 1
    finally:
        session.close()


def test_connection_bound_authentication_keeps_one_pipeline_at_a_time():
    assert lanes_for("basic", "never") == lanes_for("basic", "auto") == lanes_for("certificate", "auto") == 4
    assert lanes_for("basic", "always") == 1
    for auth in ("negotiate", "kerberos", "ntlm", "credssp"):
        for encryption in ("auto", "always", "never"):
            assert lanes_for(auth, encryption) == 1


def test_the_session_never_consults_the_environment_for_a_proxy(sim, monkeypatch):
    # 192.0.2.1 is TEST-NET-1: were the proxy used, the loopback guard would refuse the connection.
    monkeypatch.setenv("HTTP_PROXY", "http://192.0.2.1:3128")
    monkeypatch.setenv("http_proxy", "http://192.0.2.1:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    session = lync_session(sim)
    try:
        assert session.run("Get-CsManagementStoreReplicationStatus", None, REPLICAS, Deadline(20)).objects
        assert session._wsman is not None and session._wsman.transport.session.trust_env is False
    finally:
        session.close()


def test_run_together_keeps_the_order_and_raises_the_first_failure_in_order():
    started = threading.Barrier(3, timeout=5)

    def value(v):
        def call():
            started.wait()  # all three run at once, or this times out
            return v
        return call

    assert run_together(value(1), value(2), value(3)) == [1, 2, 3]

    def fail(message):
        def call():
            raise ValueError(message)
        return call

    with pytest.raises(ValueError, match="second"):
        run_together(lambda: 1, fail("second"), fail("third"))
