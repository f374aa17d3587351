"""diagnose's rights report: per target and endpoint, what ran, what failed a job (with the right to
grant for that kind of endpoint), and what a collector did without."""

from __future__ import annotations

from collectors.contract import CollectError, ErrorKind
from exporter.config import load_config
from exporter.diagnose_access import AccessLog, Call, advice, endpoint_reports
from tests.conftest import write_config

USER = r"CONTOSO\svc-lyncowa"


def test_advice_names_the_right_of_each_endpoint_kind():
    denied = CollectError(ErrorKind.AUTH, "fe01:443/OcsPowershell", "authentication failed (HTTP 401)")
    assert advice("lync", "Get-CsTrustedApplication", denied, USER) == (
        rf"access denied for {USER}: add it to CsViewOnlyAdministrator (Add-ADGroupMember -Identity "
        rf"CsViewOnlyAdministrator -Members {USER}) (and check its password or keytab: authentication failed (HTTP 401))")
    refused = CollectError(ErrorKind.COMMAND, "ex01/PowerShell Get-OwaVirtualDirectory", "terminating error X: denied")
    assert advice("exchange", "Get-OwaVirtualDirectory", refused, USER) == (
        f"Get-OwaVirtualDirectory denied or failed for {USER} (terminating error X: denied): add it to an Exchange "
        f'role group (Add-RoleGroupMember "View-Only Organization Management" -Member {USER})')
    assert "LyncOwaExporter JEA role" in advice("windows", "Get-WinEvent", refused, USER)
    unreachable = CollectError(ErrorKind.UNREACHABLE, "ex01:5986/wsman", "cannot connect: refused")
    assert advice("windows", "Get-WinEvent", unreachable, USER).startswith(
        "cannot connect (cannot connect: refused): Test-WSMan -ComputerName <host> -UseSSL")


def test_reports_group_calls_per_target_and_endpoint_and_split_problems_from_what_was_done_without(tmp_path,
                                                                                                  monkeypatch):
    monkeypatch.setenv("PW", "x")
    config = load_config(write_config(tmp_path, {
        "credentials": {"svc": {"username": USER, "password_env": "PW"}},
        "targets": [
            {"name": "ex01", "host": "ex01.contoso.com", "roles": ["exchange_mailbox"], "credential": "svc"},
            {"name": "fe01", "host": "fe01.contoso.com", "roles": ["lync_frontend"], "credential": "svc"},
        ],
    }), {})
    missing = CollectError(ErrorKind.COMMAND, "ex01", "CommandNotFoundException")
    denied = CollectError(ErrorKind.AUTH, "fe01", "HTTP 401")
    log = AccessLog()
    for call in (Call("lync_topology", "fe01", "lync", "Microsoft.PowerShell", "Get-CsTrustedApplication", denied),
                 Call("exchange_topology", "ex01", "exchange", "Microsoft.Exchange", "Get-UMDialPlan", missing),
                 Call("exchange_topology", "ex01", "exchange", "Microsoft.Exchange", "Get-OwaVirtualDirectory", None),
                 Call("owa_events", "ex01", "windows", "LyncOwaExporter", "Get-WinEvent", None),
                 Call("owa_events", "ex01", "windows", "LyncOwaExporter", "Get-WinEvent", None)):
        log.add(call)
    reports = endpoint_reports(log, config.targets, failed_jobs={("lync_topology", "fe01")})
    assert [(r.target, r.label, r.ok, r.worked) for r in reports] == [
        ("ex01", "Exchange PowerShell", True, ("Get-OwaVirtualDirectory",)),
        ("ex01", "WinRM (LyncOwaExporter)", True, ("Get-WinEvent",)),
        ("fe01", "OcsPowershell", False, ()),
    ]
    assert reports[0].notes == (
        f"Get-UMDialPlan failed (CommandNotFoundException); the check did without it. If this server's version has "
        f'Get-UMDialPlan, {USER} lacks the right to it: add it to an Exchange role group (Add-RoleGroupMember '
        f'"View-Only Organization Management" -Member {USER})',)
    assert reports[2].problems[0].startswith(f"access denied for {USER}: add it to CsViewOnlyAdministrator")
