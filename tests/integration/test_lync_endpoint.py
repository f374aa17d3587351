"""Front ends' Lync cmdlets go through Lync's own remote PowerShell (/OcsPowershell), where its RBAC
roles apply; the Edge, which has none, keeps WinRM (docs/deployment.md)."""

from __future__ import annotations

import pytest
import requests
from pypsrp.powershell import PowerShell, RunspacePool
from pypsrp.wsman import WSMan

from collectors.cms_replication import CmsReplicationCollector
from collectors.edge_hosting_provider import EdgeHostingProviderCollector
from collectors.lync_certificates import LyncCertificatesCollector
from collectors.topology.lync_topology import LyncTopologyCollector
from exporter.config import Endpoint
from tests.conftest import SIM_PASSWORD, SIM_USERNAME
from tests.integration.collector_harness import Job

pytestmark = pytest.mark.usefixtures("password_env")


def auth_counts(sim, host: str) -> dict[str, int]:
    stats = sim.stats()[host]
    return {kind: sum(v for k, v in stats.items() if k.startswith(f"auth_{kind}_")) for kind in ("windows", "lync")}


def run_job(sim, tmp_path, collector, target: str) -> None:
    job = Job(sim, tmp_path, collector, target)
    try:
        status = job.run()
        assert status.up, status.last_error
    finally:
        job.close()


def test_front_end_lync_cmdlets_go_through_ocspowershell(sim, tmp_path):
    before = auth_counts(sim, "fe01.contoso.com")
    run_job(sim, tmp_path, LyncTopologyCollector(), "fe01")
    after = auth_counts(sim, "fe01.contoso.com")
    assert after["lync"] > before["lync"]
    assert after["windows"] == before["windows"]  # nothing of this collector needs WinRM on a front end


def test_front_end_certificates_over_ocspowershell_and_the_oauth_key_over_winrm(sim, tmp_path):
    """Get-CsCertificate through /OcsPowershell; the OAuth certificate's key size from the machine store,
    which only the Windows endpoint reaches (Get-Item Cert:\\LocalMachine\\My\\<thumbprint>)."""
    before = auth_counts(sim, "fe01.contoso.com")
    run_job(sim, tmp_path, LyncCertificatesCollector(), "fe01")
    after = auth_counts(sim, "fe01.contoso.com")
    assert after["lync"] > before["lync"] and after["windows"] > before["windows"]


def test_cms_replication_reads_the_cms_over_ocspowershell_and_the_event_log_over_winrm(sim, tmp_path):
    before = auth_counts(sim, "fe01.contoso.com")
    run_job(sim, tmp_path, CmsReplicationCollector(), "fe01")
    after = auth_counts(sim, "fe01.contoso.com")
    assert after["lync"] > before["lync"] and after["windows"] > before["windows"]


def test_the_edge_keeps_winrm(sim, tmp_path):
    before = auth_counts(sim, "edge01.contoso.com")
    run_job(sim, tmp_path, EdgeHostingProviderCollector(), "edge01")
    after = auth_counts(sim, "edge01.contoso.com")
    assert after["windows"] > before["windows"] and after["lync"] == before["lync"] == 0


def _wsman(sim, host: str, path: str) -> WSMan:
    return WSMan("127.0.0.1", port=sim.hosts()[host].port, username=SIM_USERNAME, password=SIM_PASSWORD,
                 ssl=False, path=path, auth="basic", encryption="never", operation_timeout=5, read_timeout=10)


def test_ocspowershell_offers_the_lync_cmdlets_only(sim):
    pool = RunspacePool(_wsman(sim, "fe01.contoso.com", "OcsPowershell"))
    pool.open()
    try:
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-CsTrustedApplication")
        output = ps.invoke()
        assert not ps.had_errors and output
        ps = PowerShell(pool)
        ps.add_cmdlet("Get-WinEvent").add_parameter("LogName", "Application")
        with pytest.raises(Exception) as raised:  # a terminating CommandNotFoundException
            ps.invoke()
            assert ps.had_errors
            raise AssertionError(str([e.fq_error for e in ps.streams.error]))
        assert "Get-WinEvent" in str(raised.value) or "CommandNotFound" in str(raised.value)
    finally:
        pool.close()


@pytest.mark.parametrize(("host", "served"), [("edge01.contoso.com", False), ("ex01.contoso.com", False),
                                              ("fe01.contoso.com", True)])
def test_only_front_ends_serve_ocspowershell(sim, host, served):
    answer = requests.post(f"http://127.0.0.1:{sim.hosts()[host].port}/OcsPowershell", data=b"",
                           auth=(SIM_USERNAME, SIM_PASSWORD), timeout=10)
    assert (answer.status_code != 404) == served
    assert (sim.hosts()[host].lync_url is not None) == served


def test_the_default_lync_endpoint():
    endpoint = Endpoint.of("lync", "fe01.contoso.com", None)
    assert (endpoint.url, endpoint.configuration) == ("https://fe01.contoso.com/OcsPowershell", "Microsoft.PowerShell")
