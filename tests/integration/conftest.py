from __future__ import annotations

import pytest

from tests.conftest import SIM_PASSWORD, SIM_USERNAME


def _running_simulator(tls: bool):
    from simulator.server import Simulator

    simulator = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=tls,
                          username=SIM_USERNAME, password=SIM_PASSWORD)
    simulator.start()
    return simulator


@pytest.fixture(scope="module")
def sim():
    """The simulated estate over plain HTTP on loopback; faults and scenario reset per test."""
    simulator = _running_simulator(tls=False)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def tls_sim():
    """The same estate over HTTPS, its certificate signed by the simulator's own CA."""
    simulator = _running_simulator(tls=True)
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _reset_sim(request):
    yield
    if "sim" in request.fixturenames:
        simulator = request.getfixturevalue("sim")
        simulator.clear_faults()
        simulator.set_scenario("healthy")
