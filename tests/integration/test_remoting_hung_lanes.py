"""A host that hangs while calls run on a pool's lanes is read again as soon as it is healed.

The real pypsrp client against the simulator over loopback, four calls at once on one Exchange
endpoint pool over Basic (four lanes), each under a deadline that a harness enforces as the
scheduler does: a run still going half a second past its deadline is abandoned, its thread left behind.

Found by the fault soak with four lanes: a healed Exchange host stayed failing for two minutes. A
Receive that timed out was retried by pypsrp up to five times, sleeping 2, 6, 14, 30 and 62 s in
between, whatever the run's deadline; one such Receive, opening the pool, held the lock every lane
waits on for 122 s after the host was healed. Two arrangements: the host hangs while pipelines run
(their Receives hang), and while the pool opens (its Create was answered, its Receive hangs). The
host stays hung long enough for that retry ladder to be asleep when it is healed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from collectors.contract import CollectError, Deadline, Field, Shape
from collectors.sources.remoting import EndpointSpec, RemoteSession
from simulator.server import Simulator
from tests.conftest import SIM_PASSWORD, SIM_USERNAME
from tests.tcp_connections import connections_to

pytestmark = pytest.mark.slow

EX01 = "ex01.contoso.com"
CMDLETS = ("Get-ExchangeServer", "Get-OwaVirtualDirectory", "Get-OwaMailboxPolicy", "Get-ExchangeCertificate")
NAMES = {cmdlet: Shape(cmdlet, (Field("Name", "any", required=False),)) for cmdlet in CMDLETS}
DEADLINE = 4.0  # each run's, as a job's timeout
HANDOVER = 0.5  # the scheduler abandons a run this long past its deadline (exporter.scheduler)
LATENCY_MS = 1500  # keeps the calls' first requests in the simulator while the hang is set
HUNG_FOR = 26.0  # from the hang to the heal: the old retry ladder would be asleep then (see above)
RECOVERY_ROUNDS = 2  # the runs after the heal must succeed within this many intervals
INTERVAL = 2.0
# A run ends by its deadline; only the stop of a pipeline past it takes a moment more.
LANE_RELEASED_WITHIN = DEADLINE + 2.0


@dataclass
class Call:
    cmdlet: str
    thread: threading.Thread | None = None
    error: str | None = None
    ok: bool = False
    ended: float | None = None  # monotonic


def start_calls(session: RemoteSession) -> list[Call]:
    """One run per cmdlet, at once, each on a thread of its own as the scheduler runs jobs."""
    calls = [Call(cmdlet) for cmdlet in CMDLETS]

    def run(call: Call) -> None:
        try:
            session.run(call.cmdlet, None, NAMES[call.cmdlet], Deadline(DEADLINE))
            call.ok = True
        except CollectError as exc:
            call.error = str(exc)
        finally:
            call.ended = time.monotonic()

    for call in calls:
        call.thread = threading.Thread(target=run, args=(call,), daemon=True, name=call.cmdlet)
        call.thread.start()
    return calls


def abandon_at_deadline(calls: list[Call], started: float) -> None:
    for call in calls:
        assert call.thread is not None
        call.thread.join(max(started + DEADLINE + HANDOVER - time.monotonic(), 0))


def wait_for_requests(sim: Simulator, more_than: int, count: int) -> None:
    end = time.monotonic() + 10
    while sim.stats()[EX01]["requests"] < more_than + count:
        assert time.monotonic() < end, "the calls' requests never reached the simulator"
        time.sleep(0.01)


def hang_while_pipelines_run(sim: Simulator, session: RemoteSession) -> tuple[list[Call], float]:
    """The pool is open; the four Commands are answered and their Receives hang."""
    session.run(CMDLETS[0], None, NAMES[CMDLETS[0]], Deadline(DEADLINE))  # opens the pool
    sim.set_fault(EX01, "latency", latency_ms=LATENCY_MS)
    before = sim.stats()[EX01]["requests"]
    started = time.monotonic()
    calls = start_calls(session)
    wait_for_requests(sim, before, len(CMDLETS))  # the Commands, answered after the latency
    sim.set_fault(EX01, "hang")
    return calls, started


def hang_while_the_pool_opens(sim: Simulator, session: RemoteSession) -> tuple[list[Call], float]:
    """No pool yet; one run opens it (its Create is answered, its Receive hangs), three wait for it."""
    sim.set_fault(EX01, "latency", latency_ms=0, open_latency_ms=LATENCY_MS)
    before = sim.stats()[EX01]["requests"]
    started = time.monotonic()
    calls = start_calls(session)
    wait_for_requests(sim, before, 1)  # the Create
    sim.set_fault(EX01, "hang")
    return calls, started


@pytest.fixture(scope="module")
def estate():
    sim = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, username=SIM_USERNAME,
                    password=SIM_PASSWORD)
    sim.start()
    yield sim
    sim.stop()


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="counts sockets through /proc")
@pytest.mark.parametrize("arrange", [hang_while_pipelines_run, hang_while_the_pool_opens],
                         ids=["pipelines running", "pool opening"])
def test_a_healed_host_is_read_again_at_once_and_no_abandoned_run_holds_a_lane(estate, arrange):
    spec = EndpointSpec(url=estate.hosts()[EX01].exchange_url, configuration="Microsoft.Exchange",
                        username=SIM_USERNAME, password=SIM_PASSWORD, auth="basic", encryption="never")
    session = RemoteSession(spec)
    assert session.lanes == 4
    try:
        calls, started = arrange(estate, session)
        hung_at = time.monotonic()
        abandon_at_deadline(calls, started)
        assert not any(call.ok for call in calls), [call.cmdlet for call in calls if call.ok]
        opened_before = session.pools_opened

        time.sleep(max(hung_at + HUNG_FOR - time.monotonic(), 0))
        # Every lane and the opening lock were given back by the runs themselves, shortly after their
        # deadline, although the host was still hung.
        held_at_heal = [(call.cmdlet, round(time.monotonic() - started, 1)) for call in calls
                        if call.thread is not None and call.thread.is_alive()]
        late = [round(call.ended - started, 1) for call in calls
                if call.ended is not None and call.ended - started > LANE_RELEASED_WITHIN]
        estate.clear_faults(EX01)
        healed_at = time.monotonic()

        rounds: list[list[str]] = []
        for attempt in range(RECOVERY_ROUNDS):
            time.sleep(max(healed_at + attempt * INTERVAL - time.monotonic(), 0))
            round_started = time.monotonic()
            after = start_calls(session)
            abandon_at_deadline(after, round_started)
            rounds.append([call.error or ("ok" if call.ok else "abandoned") for call in after])
            if all(call.ok for call in after):
                break
        assert rounds[-1] == ["ok"] * len(CMDLETS), f"not read again after the heal: {rounds}"
        assert not held_at_heal, f"abandoned runs still held lanes at the heal (cmdlet, seconds after start): " \
                                 f"{held_at_heal}"
        assert not late, f"runs ended {late} s after they started (deadline {DEADLINE} s)"
        # The pool that failed was dropped and one new pool serves the runs after the heal.
        assert session.pools_opened == opened_before + 1
        assert connections_to(estate.hosts()[EX01].port, established_only=True) <= session.lanes
    finally:
        estate.clear_faults(EX01)
        session.close()
