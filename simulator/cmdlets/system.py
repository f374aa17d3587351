"""Get-WebAppPoolState (IIS's WebAdministration module) and Get-CimInstance (Win32_Process)."""

from __future__ import annotations

import datetime as dt
import fnmatch
from typing import Any

from simulator import errors, psobjects
from simulator.cmdlets.base import (
    ANY,
    STRING,
    STRINGS,
    SWITCH,
    Invocation,
    Param,
    cmdlet,
    exclusive,
)
from simulator.cmdlets.queries import QueryError, wql_filter, wql_select
from simulator.estate import HostView

_CIM_PREFIX = "Microsoft.Management.Infrastructure.CimInstance"
_PROCESS_TYPES = [
    f"{_CIM_PREFIX}#root/cimv2/Win32_Process",
    f"{_CIM_PREFIX}#root/cimv2/CIM_Process",
    f"{_CIM_PREFIX}#root/cimv2/CIM_LogicalElement",
    f"{_CIM_PREFIX}#root/cimv2/CIM_ManagedSystemElement",
    f"{_CIM_PREFIX}#Win32_Process",
    f"{_CIM_PREFIX}#CIM_Process",
    f"{_CIM_PREFIX}#CIM_LogicalElement",
    f"{_CIM_PREFIX}#CIM_ManagedSystemElement",
    _CIM_PREFIX,
    "System.Object",
]
_UPTIME = dt.timedelta(days=12)  # the system processes started at boot
# Processes every Windows server runs, so a Name filter has something to filter out.
_BASE_PROCESSES = [
    ("System Idle Process", 0, None), ("System", 4, None), ("smss.exe", 312, r"\SystemRoot\System32\smss.exe"),
    ("csrss.exe", 420, None), ("wininit.exe", 512, "wininit.exe"),
    ("services.exe", 640, r"C:\Windows\system32\services.exe"), ("lsass.exe", 652, r"C:\Windows\system32\lsass.exe"),
    ("svchost.exe", 812, r"C:\Windows\system32\svchost.exe -k DcomLaunch"),
    ("svchost.exe", 1876, r"C:\Windows\system32\svchost.exe -k iissvcs"),
    ("WmiPrvSE.exe", 3312, r"C:\Windows\system32\wbem\wmiprvse.exe"),
]


def _has_iis(view: HostView) -> bool:
    """WebAdministration comes with IIS: Exchange servers and Lync front ends, not an Edge."""
    roles = view.host.roles
    return any(r.startswith("exchange_") for r in roles) or "lync_frontend" in roles


@cmdlet(
    "Get-WebAppPoolState",
    "Microsoft.IIs.PowerShell.Provider.GetAppPoolStateCommand",
    "windows",
    params=(Param("Name", STRINGS, position=0), Param("PSPath", STRINGS)),
    available=_has_iis,
)
def get_web_app_pool_state(inv: Invocation) -> None:
    pools = inv.view.host.windows.app_pools
    names = inv.get("Name") or ["*"]
    for pattern in names:
        matched = [n for n in pools if fnmatch.fnmatchcase(n.lower(), pattern.lower())]
        if not matched and not any(ch in pattern for ch in "*?"):
            inv.out.error(errors.path_not_found(f"IIS:\\AppPools\\{pattern}", inv.cmdlet.name,
                                                inv.cmdlet.dotnet_class))
        for name in matched:
            inv.out.write(psobjects.ps_object(
                ["System.Management.Automation.PSCustomObject", "System.Object"],
                extended={
                    "ItemXPath": f"/system.applicationHost/applicationPools/add[@name='{name}']",
                    "Value": pools[name].state,
                },
            ))


def _processes(view: HostView) -> list[dict[str, Any]]:
    booted = view.now - _UPTIME
    rows = [
        {"Name": name, "ProcessId": pid, "CommandLine": cmd, "ExecutablePath": cmd.split(" ")[0] if cmd else None,
         "CreationDate": booted, "ParentProcessId": 4 if pid > 4 else 0, "WorkingSetSize": 8_000_000}
        for name, pid, cmd in _BASE_PROCESSES
    ]
    for proc in view.host.windows.processes.values():
        rows.append({
            "Name": proc.name, "ProcessId": proc.process_id, "CommandLine": proc.command_line,
            "ExecutablePath": proc.executable_path, "CreationDate": view.at(proc.started),
            "ParentProcessId": proc.parent_process_id, "WorkingSetSize": proc.working_set_size,
        })
    return rows


def _process_object(view: HostView, row: dict[str, Any]) -> Any:
    return psobjects.ps_object(
        _PROCESS_TYPES,
        adapted={
            "Caption": row["Name"],
            "Description": row["Name"],
            "Name": row["Name"],
            "ProcessId": psobjects.uint32(row["ProcessId"]),
            "ParentProcessId": psobjects.uint32(row["ParentProcessId"]),
            "CommandLine": row["CommandLine"],
            "ExecutablePath": row["ExecutablePath"],
            "CreationDate": view.local_dt(row["CreationDate"]),
            "Handle": str(row["ProcessId"]),
            "WorkingSetSize": psobjects.uint64(row["WorkingSetSize"]),
            "CSName": view.short_name,
            "PSComputerName": None,
        },
        to_string=f"Win32_Process (Handle = \"{row['ProcessId']}\")",
    )


@cmdlet(
    "Get-CimInstance",
    "Microsoft.Management.Infrastructure.CimCmdlets.GetCimInstanceCommand",
    "windows",
    params=(
        Param("ClassName", STRING, position=0, aliases=("Class",)),
        Param("Filter", STRING),
        Param("Query", STRING),
        Param("Namespace", STRING),
        Param("Property", STRINGS, aliases=("SelectProperties",)),
        Param("KeyOnly", SWITCH),
        Param("ComputerName", STRINGS, aliases=("CN", "ServerName")),
        Param("CimSession", ANY),
        Param("OperationTimeoutSec", STRING, aliases=("OT",)),
    ),
)
def get_cim_instance(inv: Invocation) -> None:
    exclusive(inv, ("ClassName", "Filter"), ("Query",))
    class_name, where = inv.get("ClassName"), inv.get("Filter")
    if inv.has("Query"):
        try:
            class_name, where = wql_select(inv.get("Query"))
        except QueryError:
            inv.out.error(errors.invalid_argument("Invalid query ", "HRESULT 0x80041017," + inv.cmdlet.dotnet_class,
                                                  inv.cmdlet.name))
            return
    if not class_name:
        raise inv.cmdlet.binding_error(
            "MissingMandatoryParameter",
            "Cannot process command because of one or more missing mandatory parameters: ClassName.", "ClassName")
    namespace = (inv.get("Namespace") or "root/cimv2").replace("\\", "/").lower()
    if class_name.lower() != "win32_process" or namespace != "root/cimv2":
        inv.out.error(errors.cim_invalid_class(class_name))
        return
    rows = _processes(inv.view)
    if where:
        try:
            predicate = wql_filter(where, set(rows[0]))
        except QueryError:
            inv.out.error(errors.invalid_argument("Invalid query ", "HRESULT 0x80041017," + inv.cmdlet.dotnet_class,
                                                  inv.cmdlet.name))
            return
        rows = [r for r in rows if predicate(r)]
    for row in rows:
        inv.out.write(_process_object(inv.view, row))
