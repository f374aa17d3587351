from __future__ import annotations

import pytest

from tests.conftest import SIM_PASSWORD, SIM_USERNAME, ClientAuth

# What the `sim` estate's hosts offer, as installed in production: Exchange's /PowerShell takes
# Kerberos only; the Windows endpoint WinRM's Negotiate and Kerberos, plus Basic for the Lync tests.
PRODUCTION_LIKE = {"windows": ["negotiate", "kerberos", "basic"], "exchange": ["kerberos"]}


def _running_simulator(tls: bool, **kwargs):
    from simulator.server import Simulator

    simulator = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=tls,
                          username=SIM_USERNAME, password=SIM_PASSWORD, **kwargs)
    simulator.start()
    return simulator


@pytest.fixture(scope="module")
def sim(kdc):
    """The simulated estate over plain HTTP on loopback; faults and scenario reset per test.

    Exchange targets authenticate as production does (Kerberos with message encryption, tickets from
    the test realm); the others with Basic.
    """
    simulator = _running_simulator(tls=False, auth=PRODUCTION_LIKE, keytab=kdc.service_keytab,
                                   ntlm_user_file=kdc.ntlm_user_file)
    simulator.client_auth = ClientAuth(exchange="kerberos", principal=kdc.user_principal)
    yield simulator
    simulator.stop()


@pytest.fixture(scope="module")
def basic_sim():
    """The healthy estate with every endpoint on Basic, the simulator's default (four lanes a pool)."""
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
        simulator.set_auth(None, None)
