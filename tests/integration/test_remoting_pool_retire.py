"""A call that fails on a pool does not pull the pool from under the calls other lanes run on it.

The real pypsrp client against the simulator over loopback, two calls at once on one Exchange
endpoint pool (Basic: four lanes). One runs out its short deadline in its Receive, and its pool is
dropped; the other is between its Command and its Receive at that moment. Dropping closed the pool's
transport at once: the other call's connection was closed when its Command's answer came back, so
its Receive needed a new connection, and a call that took the transport's connection pool just before
the close failed with urllib3's "Pool is closed" (kind=unreachable) on a healthy host, as the demo of
a busy CI machine showed. A dropped pool is now retired: new calls open a fresh one, calls already on
it finish there on their own connections, and the last one out closes it.
"""

from __future__ import annotations

import threading
import time

import pytest

from collectors.contract import CollectError, Deadline, Field, Shape
from collectors.sources.remoting import EndpointSpec, RemoteSession
from tests.conftest import SIM_PASSWORD, SIM_USERNAME
from tests.tcp_connections import connections_to

pytestmark = pytest.mark.slow

EX01 = "ex01.contoso.com"
NAME = Shape("Get-ExchangeServer", (Field("Name", "any", required=False),))
LATENCY_MS = 1000  # before every answer: a Command and its Receive take two seconds
SHORT = 1.2  # the failing call's deadline: it runs out in its Receive, at 1.2 s
BEHIND = 0.5  # the other call starts this much later: its Command is in flight from 0.5 to 1.5 s


def test_a_call_on_a_dropped_pool_finishes_there_and_the_last_one_out_closes_it(basic_sim):
    estate = basic_sim
    spec = EndpointSpec(url=estate.hosts()[EX01].exchange_url, configuration="Microsoft.Exchange",
                        username=SIM_USERNAME, password=SIM_PASSWORD, auth="basic", encryption="never")
    session = RemoteSession(spec)
    assert session.lanes == 4
    outcome: dict[str, str] = {}
    retired_while_other_ran: list[int] = []

    def call(name: str, seconds: float) -> None:
        try:
            answer = session.run("Get-ExchangeServer", None, NAME, Deadline(seconds))
            outcome[name] = f"ok {len(answer.objects)}"
        except CollectError as exc:
            outcome[name] = f"{exc.kind.value}: {exc}"

    try:
        session.run("Get-ExchangeServer", None, NAME, Deadline(10))  # opens the pool; one connection
        estate.set_fault(EX01, "latency", latency_ms=LATENCY_MS)
        before = estate.stats()[EX01]
        failing = threading.Thread(target=call, args=("failing", SHORT))
        failing.start()
        time.sleep(BEHIND)
        other = threading.Thread(target=call, args=("other", 10.0))
        other.start()
        failing.join(10)
        retired_while_other_ran.append(session.pools_retired_open)
        other.join(10)
        after = estate.stats()[EX01]

        assert outcome["failing"].startswith("timeout"), outcome
        assert outcome["other"] == "ok 2", outcome  # the simulated estate has two Exchange servers
        assert retired_while_other_ran == [1]  # dropped, not closed: the other call was still on it
        # Four requests: the failing call's Command and Receive on the pool's one connection, the other
        # call's Command and Receive on one connection it opened. Closing the transport under it made
        # its Receive open a second one (2 connections, where 1 is what a kept pool costs).
        assert after["requests"] - before["requests"] == 4
        assert after["connections"] - before["connections"] == 1, (before, after)
        # The last one out closed the retired pool; the next call opens one new pool.
        assert session.pools_retired_open == 0
        estate.clear_faults(EX01)
        assert len(session.run("Get-ExchangeServer", None, NAME, Deadline(10)).objects) == 2
        assert session.pools_opened == 2
        assert connections_to(estate.hosts()[EX01].port, established_only=True) <= session.lanes
    finally:
        estate.clear_faults(EX01)
        session.close()
