"""OWA's IM endpoint on the wire, through the real path: a front end's lync_topology job reads the
OutlookWebApp trusted application's port (Get-CsTrustedApplication over the real pypsrp client), a front
end's tls_probe job reads the root its chain on 5061 ends at, and each Exchange target's tls_probe job
probes <host>:<port> (a loopback listener of the simulator) and judges what answers there."""

from __future__ import annotations

import socket

import pytest

from collectors.config_checks import CONFIG_CHECK_OK
from collectors.contract import FactsBoard
from collectors.sources.remoting import SessionPool
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS, TrustedPool
from collectors.tls_probe.collector import TlsProbeCollector
from collectors.tls_probe.owa_im_endpoint import LYNC_CHAIN_ROOTS
from collectors.topology.lync_topology import LyncTopologyCollector
from tests.integration.collector_harness import Job

PORT = "owa_trusted_application_port_accepts_tls"
ROOT = "im_certificate_chains_to_lync_root"
SUCCESS = "lync_owa_tls_probe_success"
VERIFIED = "lync_owa_tls_certificate_verified"
SIMULATED_ROOT = "o=lync-owa-exporter simulator,cn=simulated root ca"  # as the simulator orders it

pytestmark = pytest.mark.usefixtures("password_env")


@pytest.fixture(scope="module")
def sessions():
    pool = SessionPool()
    yield pool
    pool.close_all(timeout=5)


def run(job: Job) -> Job:
    status = job.run()
    assert status.up, status.last_error
    return job


def checks(job: Job) -> dict[str, float]:
    return {labels[0]: value for labels, value in job.values(CONFIG_CHECK_OK.name).items()}


def topology(sim, tmp_path, sessions, board: FactsBoard) -> Job:
    return run(Job(sim, tmp_path, LyncTopologyCollector(lambda host, timeout: True), "fe01",
                   {"resolve_autodiscover": "never"}, sessions=sessions, facts=board))


def probe(sim, tmp_path, board: FactsBoard, target: str, **settings) -> Job:
    """A tls_probe job with its default endpoints, connecting to the simulator's listeners."""
    info = sim.hosts()[f"{target}.contoso.com"]
    settings = {"connect_addresses": dict(info.tls_services), "ca_file": info.tls_ca_file, **settings}
    return run(Job(sim, tmp_path, TlsProbeCollector(), target, settings, facts=board))


def test_healthy_port_and_chain(sim, tmp_path, sessions):
    board = FactsBoard()
    # Before a front end has read the trusted applications, an Exchange target probes only 443.
    alone = probe(sim, tmp_path, board, "ex01")
    assert alone.values(SUCCESS) == {("ex01.contoso.com:443",): 1}
    assert checks(alone) == {}

    topology(sim, tmp_path, sessions, board)
    assert board.fresh(OWA_TRUSTED_POOLS).value == (
        TrustedPool("owa.contoso.com", ("ex01.contoso.com", "ex02.contoso.com"), (5199,)),)
    # The port is found and probed, but the chain is not judged before a front end's probe said its root.
    ex01 = probe(sim, tmp_path, board, "ex01")
    assert ex01.values(SUCCESS) == {("ex01.contoso.com:443",): 1, ("ex01.contoso.com:5199",): 1}
    assert ex01.values(VERIFIED)[("ex01.contoso.com:5199",)] == 1
    assert checks(ex01) == {PORT: 1}

    probe(sim, tmp_path, board, "fe01")
    assert board.fresh(LYNC_CHAIN_ROOTS).value == frozenset({SIMULATED_ROOT})
    for target in ("ex01", "ex02"):  # Exchange 2013 (web.config) and 2019 (setting override)
        assert checks(probe(sim, tmp_path, board, target)) == {PORT: 1, ROOT: 1}
    # A front end judges nothing of OWA's IM endpoint.
    assert checks(probe(sim, tmp_path, board, "fe02")) == {}


def test_port_where_owa_does_not_listen(sim, tmp_path, sessions):
    sim.set_scenario("owa-im-port-not-listening")
    board = FactsBoard()
    topology(sim, tmp_path, sessions, board)
    probe(sim, tmp_path, board, "fe01")
    ex01 = probe(sim, tmp_path, board, "ex01")
    assert ex01.values(SUCCESS) == {("ex01.contoso.com:443",): 1, ("ex01.contoso.com:5199",): 0}
    assert checks(ex01) == {PORT: 0}  # nothing answered: no chain to judge
    assert checks(probe(sim, tmp_path, board, "ex02")) == {PORT: 1, ROOT: 1}


def test_the_port_follows_the_trusted_application(sim, tmp_path, sessions):
    # Probing can be turned off: then no IM endpoint is probed and nothing is judged.
    board = FactsBoard()
    topology(sim, tmp_path, sessions, board)
    off = probe(sim, tmp_path, board, "ex01", probe_trusted_application_ports=False)
    assert set(off.values(SUCCESS)) == {("ex01.contoso.com:443",)} and checks(off) == {}
    # A pool naming another port makes the probe connect there: a listener there is the only thing that counts.
    board.post(OWA_TRUSTED_POOLS, (TrustedPool("owa.contoso.com", ("ex01.contoso.com",), (5199, 5198)),), 60)
    closed = socket.socket()  # bound, not listening: connections are refused
    closed.bind(("127.0.0.1", 0))
    try:
        mapping = {**sim.hosts()["ex01.contoso.com"].tls_services,
                   "ex01.contoso.com:5198": f"127.0.0.1:{closed.getsockname()[1]}"}
        two = probe(sim, tmp_path, board, "ex01", connect_addresses=mapping)
    finally:
        closed.close()
    assert two.values(SUCCESS)[("ex01.contoso.com:5199",)] == 1
    assert two.values(SUCCESS)[("ex01.contoso.com:5198",)] == 0
    assert two.values("lync_owa_tls_probe_failures_total")[("ex01.contoso.com:5198", "refused")] == 1
    assert checks(two)[PORT] == 0


def test_self_signed_im_certificate_chains_to_no_lync_root(sim, tmp_path, sessions):
    sim.set_scenario("im-cert-untrusted-root")
    board = FactsBoard()
    topology(sim, tmp_path, sessions, board)
    probe(sim, tmp_path, board, "fe01")
    ex01 = probe(sim, tmp_path, board, "ex01")
    assert ex01.values(SUCCESS)[("ex01.contoso.com:5199",)] == 1
    assert ex01.values(VERIFIED)[("ex01.contoso.com:5199",)] == 0  # self-signed: not trusted by the exporter either
    assert checks(ex01) == {PORT: 1, ROOT: 0}
    # Listing the certificate itself as a root the front ends trust (imported there) is the way out.
    listed = probe(sim, tmp_path, board, "ex01", lync_trusted_roots=["CN=ex01.contoso.com"])
    assert checks(listed) == {PORT: 1, ROOT: 1}
    assert checks(probe(sim, tmp_path, board, "ex02")) == {PORT: 1, ROOT: 1}
