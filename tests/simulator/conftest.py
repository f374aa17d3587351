"""Fixtures for the simulator's own tests: a running estate and pools of the real pypsrp client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pypsrp.powershell import RunspacePool

from simulator.server import Simulator
from tests.simulator.helpers import EDGE01, EX01, EX02, FE01, PASSWORD, USER, pool_for


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    simulator = Simulator(scenario="healthy", username=USER, password=PASSWORD)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "sim" in request.fixturenames:
        simulator = request.getfixturevalue("sim")
        simulator.clear_faults()
        simulator.set_scenario("healthy")


@pytest.fixture(scope="module")
def fe01_pool(sim: Simulator) -> Iterator[RunspacePool]:
    with pool_for(sim, FE01) as pool:
        yield pool


@pytest.fixture(scope="module")
def edge_pool(sim: Simulator) -> Iterator[RunspacePool]:
    with pool_for(sim, EDGE01) as pool:
        yield pool


@pytest.fixture(scope="module")
def ex01_pool(sim: Simulator) -> Iterator[RunspacePool]:
    with pool_for(sim, EX01) as pool:
        yield pool


@pytest.fixture(scope="module")
def ex01_exchange(sim: Simulator) -> Iterator[RunspacePool]:
    with pool_for(sim, EX01, exchange=True) as pool:
        yield pool


@pytest.fixture(scope="module")
def ex02_exchange(sim: Simulator) -> Iterator[RunspacePool]:
    with pool_for(sim, EX02, exchange=True) as pool:
        yield pool
