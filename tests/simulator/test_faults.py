"""Each fault as the real pypsrp client sees it."""

from __future__ import annotations

import threading
import time
import xml.etree.ElementTree as ET

import pytest
import requests
from pypsrp.exceptions import AuthenticationError, FragmentError, WSManFaultError

from simulator.control import ControlError
from simulator.faults import FaultError
from tests.simulator.helpers import EX01, FE01, FE02, error_ids, pool_for, run


def test_refuse_closes_the_port_and_clearing_rebinds_it(sim):
    port = sim.hosts()[FE01].port
    with pool_for(sim, FE01) as pool:
        sim.set_fault(FE01, "refuse")
        with pytest.raises(requests.exceptions.ConnectionError):
            run(pool, "Get-CsSite")  # the pooled keep-alive connection is gone too
        with pytest.raises(requests.exceptions.ConnectionError):
            with pool_for(sim, FE01):
                pass
        with pool_for(sim, FE02) as other:  # only that host is down
            assert run(other, "Get-CsSite").output
    sim.clear_faults(FE01)
    assert sim.hosts()[FE01].port == port
    with pool_for(sim, FE01) as pool:
        assert run(pool, "Get-CsSite").output


def test_http_401_and_wrong_password_are_authentication_errors(sim):
    with pytest.raises(AuthenticationError):
        with pool_for(sim, FE01, password="wrong"):
            pass
    sim.set_fault(FE01, "http_401")
    with pytest.raises(AuthenticationError):
        with pool_for(sim, FE01):
            pass


def test_http_500_carries_a_wsman_fault(sim):
    with pool_for(sim, FE01) as pool:
        sim.set_fault(FE01, "http_500")
        with pytest.raises(WSManFaultError) as err:
            run(pool, "Get-CsSite")
    assert err.value.code == 1726
    assert "WSMan provider host process" in str(err.value)


def test_hang_times_out_the_client_and_clearing_releases_it(sim):
    with pool_for(sim, FE01, read_timeout=1) as pool:
        sim.set_fault(FE01, "hang")
        started = time.monotonic()
        with pytest.raises(requests.exceptions.ReadTimeout):
            run(pool, "Get-CsSite")
        assert time.monotonic() - started < 5
    sim.clear_faults(FE01)
    with pool_for(sim, FE01) as pool:
        assert run(pool, "Get-CsSite").output


def test_malformed_psrp_fragment_is_a_client_parse_error(sim):
    sim.set_fault(FE01, "malformed")
    with pytest.raises(FragmentError):
        with pool_for(sim, FE01):
            pass


def test_malformed_soap_is_not_xml(sim):
    with pool_for(sim, FE01) as pool:
        sim.set_fault(FE01, "malformed_soap")
        with pytest.raises(ET.ParseError):
            run(pool, "Get-CsSite")


def test_non_terminating_error_completes_with_output(sim, fe01_pool):
    sim.set_fault(FE01, "non_terminating_error", cmdlet="Get-CsSite")
    ps = run(fe01_pool, "Get-CsSite")
    assert ps.had_errors is False and len(ps.output) == 1
    assert error_ids(ps) == ["SimulatedNonTerminatingError,Microsoft.Rtc.Management.Xds.GetSiteCmdlet"]
    assert not run(fe01_pool, "Get-CsOAuthConfiguration").streams.error  # another cmdlet is unaffected
    sim.set_fault(FE01, "non_terminating_error", output=False)
    ps = run(fe01_pool, "Get-CsOAuthConfiguration")
    assert ps.output == [] and ps.streams.error and not ps.had_errors


def test_terminating_error_fails_the_pipeline(sim, fe01_pool):
    sim.set_fault(FE01, "terminating_error", cmdlet="get-cssite")
    ps = run(fe01_pool, "Get-CsSite")
    assert ps.had_errors is True and ps.output == []
    assert "terminating" in str(ps.streams.error[0])
    assert run(fe01_pool, "Get-CsOAuthConfiguration").output


def test_latency_and_another_fault_together(sim, fe01_pool):
    sim.set_fault(FE01, "latency", latency_ms=150)
    sim.set_fault(FE01, "non_terminating_error")
    started = time.monotonic()
    ps = run(fe01_pool, "Get-CsSite")
    # Command and Receive are two requests, each delayed.
    assert time.monotonic() - started >= 0.3
    assert ps.output and ps.streams.error
    assert {f["fault"] for f in sim.state()["hosts"][FE01]["faults"]} == {"latency", "non_terminating_error"}


def test_open_latency_delays_only_shell_creation(sim):
    sim.set_fault(FE01, "latency", latency_ms=0, open_latency_ms=400)
    started = time.monotonic()
    with pool_for(sim, FE01) as pool:
        opened = time.monotonic()
        assert opened - started >= 0.4
        run(pool, "Get-CsSite")
        assert time.monotonic() - opened < 0.4


def test_faults_are_per_host(sim, ex01_pool):
    sim.set_fault(FE01, "terminating_error")
    assert run(ex01_pool, "Get-Item", Path="C:\\").output


@pytest.mark.parametrize("call, error", [
    (lambda s: s.set_fault("nope.contoso.com", "hang"), ControlError),
    (lambda s: s.set_fault(FE01, "explode"), FaultError),
    (lambda s: s.set_fault(FE01, "hang", latency_ms=5), FaultError),
    (lambda s: s.set_fault(FE01, "latency", latency_ms=-1), FaultError),
    (lambda s: s.clear_faults("nope.contoso.com"), ControlError),
])
def test_bad_fault_requests_are_rejected(sim, call, error):
    with pytest.raises(error):
        call(sim)


def test_hung_request_is_released_when_the_fault_is_cleared(sim):
    with pool_for(sim, EX01, read_timeout=10) as pool:
        sim.set_fault(EX01, "hang")
        result = {}

        def call():
            result["ps"] = run(pool, "Get-Item", Path="C:\\")

        worker = threading.Thread(target=call)
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive()
        sim.clear_faults(EX01)
        worker.join(5)
        assert not worker.is_alive() and result["ps"].output
