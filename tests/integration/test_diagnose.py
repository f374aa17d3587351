"""``lync-owa-exporter diagnose`` as an administrator runs it: a real process against the simulated
estate (configured as the demo configures it), judged by its exit code and what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from exporter.demo import DEMO_PASSWORD_ENV, DEMO_USERNAME, demo_config
from tests.conftest import PROJECT_ROOT, SIM_PASSWORD

# Bounds a run on this small shared machine; nothing measures time.
RUN_TIMEOUT_SECONDS = 240
EDGE_ROW = "Exchange Online (through edge01)"


@pytest.fixture(scope="module")
def estate():
    from simulator.server import Simulator

    simulator = Simulator(scenario="healthy", listen_host="127.0.0.1", control_port=0, tls=False,
                          username=DEMO_USERNAME, password=SIM_PASSWORD)
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.fixture
def simulated(estate):
    """The estate, back to healthy without faults after each test."""
    yield estate
    estate.clear_faults()
    estate.set_scenario("healthy")


@pytest.fixture
def config(simulated, tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(demo_config(simulated.hosts(), "30s", None), sort_keys=False))
    return path


def diagnose(config: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "exporter.cli", "diagnose", "--config.file", str(config), *extra],
        cwd=PROJECT_ROOT, env={**os.environ, DEMO_PASSWORD_ENV: SIM_PASSWORD},
        capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS,
    )


def test_a_healthy_estate_exits_0_with_every_server_ok_and_every_endpoint_working(config):
    result = diagnose(config)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for row in ("ex01: OK", "ex02: OK", f"{EDGE_ROW}: OK"):
        assert f"  {row}" in lines
    assert any(line.startswith("  fe01: OcsPowershell: works (") and "Get-CsTrustedApplication" in line for line in lines)
    assert any(line.startswith("  ex01: Exchange PowerShell: works (") for line in lines)
    assert any(line.startswith("  edge01: WinRM (Microsoft.PowerShell): works (") for line in lines)
    assert lines[-1] == "All is well."
    assert SIM_PASSWORD not in result.stdout + result.stderr


def test_a_broken_server_exits_1_with_its_reason_and_fix(simulated, config):
    simulated.set_scenario("thumbprint-drift")
    result = diagnose(config)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    at = lines.index("  ex01: BROKEN")
    assert lines[at + 1] == ("    im_thumbprint_matches_no_certificate (check E3 IM settings and certificate, "
                             "collector im_certificate; failing: thumbprint_matches_certificate)")
    assert lines[at + 2].startswith("      fix: IMCertificateThumbprint names no installed certificate")
    assert "`Get-ExchangeCertificate -Server ex01`" in lines[at + 2]
    assert "  ex02: OK" in lines and f"  {EDGE_ROW}: OK" in lines


def test_the_json_report_carries_the_same_verdict(simulated, config):
    simulated.set_scenario("thumbprint-drift")
    result = diagnose(config, "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["all_well"] is False
    rows = {row["title"]: row for row in report["verdict"]}
    assert {title: row["status"] for title, row in rows.items()} == {"ex01": "BROKEN", "ex02": "OK", EDGE_ROW: "OK"}
    [finding] = rows["ex01"]["findings"]
    assert (finding["reason"], finding["check"], finding["collector"], finding["detail"]) == (
        "im_thumbprint_matches_no_certificate", "E3 IM settings and certificate", "im_certificate",
        "thumbprint_matches_certificate")
    assert "`Get-ExchangeCertificate -Server ex01`" in finding["fix"]
    assert all(endpoint["ok"] for endpoint in report["endpoints"])


def test_denied_rights_are_named_per_endpoint_with_the_role_to_grant(simulated, config):
    simulated.set_fault("fe01.contoso.com", "http_401")
    simulated.set_fault("fe02.contoso.com", "terminating_error", cmdlet="Get-CsTrustedApplication")
    result = diagnose(config)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith(f"  fe01: OcsPowershell: access denied for {DEMO_USERNAME}: add it to "
                               "CsViewOnlyAdministrator (Add-ADGroupMember -Identity CsViewOnlyAdministrator "
                               f"-Members {DEMO_USERNAME})") for line in lines), result.stdout
    assert any(line.startswith(f"  fe02: OcsPowershell: Get-CsTrustedApplication denied or failed for {DEMO_USERNAME}")
               and line.endswith("add it to CsViewOnlyAdministrator (Add-ADGroupMember -Identity "
                                 f"CsViewOnlyAdministrator -Members {DEMO_USERNAME})") for line in lines), result.stdout
    assert "  ex01: Exchange PowerShell: works (" in "\n".join(lines)
    assert any(line.startswith("  lync_topology on fe02: command: ") for line in lines)


def test_an_invalid_configuration_exits_2_naming_the_problem(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("targets:\n  - name: ex01\n    roles: [exchange_mailbox]\n    nonsense: 1\n")
    result = diagnose(bad)
    assert result.returncode == 2, result.stdout + result.stderr
    assert str(bad) in result.stderr and result.stdout == ""
