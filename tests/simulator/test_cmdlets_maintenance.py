"""Get-ServerComponentState and Get-CsWindowsService: a server in service, in maintenance, drained.

Through the real pypsrp client. The healthy answers list the components the real captures list, with
the captures' states (../shared/captures/exchange/E15, E16/GetServerComponentState.xml); the shipped
maintenance scenarios change exactly what they say, and the answer keeps the captured shape.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.simulator.helpers import (
    EDGE01,
    EX01,
    EX02,
    FE02,
    error_ids,
    pool_for,
    props,
    run,
)
from tests.simulator.shapes import Document
from tests.simulator.test_capture_shapes import (
    answer_shapes,
    assert_same_shape,
    capture_shapes,
)


@pytest.fixture(scope="module")
def exchange_pools(sim) -> Iterator[dict]:
    with pool_for(sim, EX01, exchange=True) as ex01, pool_for(sim, EX02, exchange=True) as ex02:
        yield {EX01: ex01, EX02: ex02}


@pytest.fixture(scope="module")
def fe02_pool(sim) -> Iterator:
    with pool_for(sim, FE02) as pool:
        yield pool


def captured_states(path) -> list[tuple[str, str]]:
    """(Component, State) of each object in a capture, read from the CLIXML itself."""
    document = Document.of_file(path)
    states = []
    for element in document.top_level():
        values = {p.get("N"): p for p in element.find("Props")}
        states.append((values["Component"].text, values["State"].find("ToString").text))
    return states


def component_states(pool, identity: str) -> list[tuple[str, str]]:
    ps = run(pool, "Get-ServerComponentState", Identity=identity)
    assert not ps.had_errors and not ps.streams.error
    return [(props(o)["Component"], str(props(o)["State"])) for o in ps.output]


@pytest.mark.parametrize(("host", "capture"), [(EX01, "E15"), (EX02, "E16")])  # 2013 and 2019
def test_a_healthy_server_has_the_captured_components_and_states(captures, exchange_pools, host, capture):
    expected = captured_states(captures / capture / "GetServerComponentState.xml")
    assert ("ForwardSyncDaemon", "Inactive") in expected  # datacenter-only: inactive on a healthy server
    assert component_states(exchange_pools[host], host) == expected


def test_exchange_maintenance_changes_only_ex01s_two_components(sim, captures, exchange_pools):
    sim.set_scenario("exchange-maintenance")
    healthy = dict(captured_states(captures / "E15" / "GetServerComponentState.xml"))
    states = dict(component_states(exchange_pools[EX01], "EX01"))
    changed = {name: state for name, state in states.items() if healthy[name] != state}
    assert changed == {"ServerWideOffline": "Inactive", "HubTransport": "Draining"}
    assert component_states(exchange_pools[EX02], EX02) == captured_states(
        captures / "E16" / "GetServerComponentState.xml")
    # Who asked, and that the server reads as offline, are on the objects too.
    ps = run(exchange_pools[EX01], "Get-ServerComponentState", Identity="EX01", Component="ServerWideOffline")
    (offline,) = ps.output
    assert props(offline)["ServerWideOfflineIsOffline"] is True
    assert props(offline)["ServerFqdn"] == EX01


def test_the_maintenance_answer_keeps_the_captured_shape(sim, captures, exchange_pools):
    sim.set_scenario("exchange-maintenance")
    assert_same_shape(capture_shapes(captures / "E15" / "GetServerComponentState.xml"),
                      answer_shapes(exchange_pools[EX01], "Get-ServerComponentState", Identity="EX01"),
                      "Get-ServerComponentState in maintenance")


def test_an_unknown_server_is_exchanges_not_found_error(exchange_pools):
    ps = run(exchange_pools[EX01], "Get-ServerComponentState", Identity="EX99")
    assert ps.output == []
    assert error_ids(ps) and error_ids(ps)[0].startswith("ManagementObjectNotFound")


def services(pool, **params) -> dict[str, str]:
    ps = run(pool, "Get-CsWindowsService", **params)
    assert not ps.had_errors and not ps.streams.error
    return {props(o)["Name"]: str(props(o)["Status"]) for o in ps.output}


def test_front_end_services_run_until_drained(sim, fe01_pool, fe02_pool):
    running = {"REPLICA": "Running", "RTCCLSAGT": "Running", "RTCSRV": "Running"}
    assert services(fe01_pool) == running
    sim.set_scenario("frontend-drained")
    assert services(fe01_pool, Name="RTCSRV") == {"RTCSRV": "Paused"}
    assert services(fe01_pool) == {**running, "RTCSRV": "Paused"}
    assert services(fe02_pool) == running


def test_exclude_activity_level_leaves_the_counters_out(fe01_pool):
    (with_activity,) = run(fe01_pool, "Get-CsWindowsService", Name="RTCSRV").output
    assert props(with_activity)["ActivityLevel"]
    ps = run(fe01_pool, "Get-CsWindowsService", Name="rtcsrv", ExcludeActivityLevel=True)
    (without,) = ps.output
    assert props(without)["ActivityLevel"] is None and str(props(without)["Status"]) == "Running"


def test_lync_services_are_not_on_exchange_servers(sim):
    with pool_for(sim, EX01) as pool:
        ps = run(pool, "Get-CsWindowsService")
    assert ps.had_errors and error_ids(ps)[0].startswith("CommandNotFoundException")
    with pool_for(sim, EDGE01) as pool:
        assert services(pool)["RTCSRV"] == "Running"
