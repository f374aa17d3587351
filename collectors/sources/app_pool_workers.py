"""The IIS worker processes (w3wp.exe) of one application pool, read over the Windows endpoint.

``Get-CimInstance -ClassName Win32_Process -Filter "Name='w3wp.exe'"``: Microsoft's Win32_Process class
(learn.microsoft.com/windows/win32/cimwin32prov/win32-process) carries ``CommandLine`` and
``CreationDate`` ("the time the process began executing", inherited from CIM_Process). Which pool a
worker serves is the ``-ap`` argument of its command line (``collectors.helpers.iis_workers``).
Shared by E5 (the worker's start anchors Event 112) and E3 (a worker older than the IM setting
override's last change still runs on the old values).
"""

from __future__ import annotations

from collectors.contract import CollectContext, Field, Shape
from collectors.helpers.cmdlet_policy import OneOf
from collectors.helpers.iis_workers import PoolWorkers, pool_workers

PROCESS_CMDLET = "Get-CimInstance"
# A constant filter: nothing from configuration or from a server ever becomes part of a query.
W3WP_FILTER = "Name='w3wp.exe'"
PROCESS_PARAMETERS = {"ClassName": OneOf(("Win32_Process",)), "Filter": OneOf((W3WP_FILTER,))}
PROCESS = Shape(
    PROCESS_CMDLET,
    (
        Field("CommandLine", "str", required=False, nullable=True),
        Field("CreationDate", "datetime", required=False, nullable=True),
    ),
)


def read_pool_workers(ctx: CollectContext, pool_name: str) -> PoolWorkers:
    """The workers of ``pool_name`` on the target: how many, and when the newest one started."""
    answer = ctx.run("windows", PROCESS_CMDLET, {"ClassName": "Win32_Process", "Filter": W3WP_FILTER}, PROCESS)
    unreadable = sum(1 for p in answer.objects if not p.get("CommandLine"))
    if unreadable:
        # Win32_Process hides other users' command lines from accounts without admin rights.
        ctx.log.debug("%d w3wp.exe processes without a command line; not attributed to a pool", unreadable)
    return pool_workers(answer.objects, pool_name)
