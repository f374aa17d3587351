"""Which remoting endpoint answers a Lync / Skype for Business cmdlet on a target.

A front end's Lync cmdlets go through Lync's own remote PowerShell, ``https://<front end>/OcsPowershell``:
role-based access control (the read-only ``CsViewOnlyAdministrator`` role) applies only to such remote
sessions ("RBAC restrictions work only on administrators working remotely": Planning for role-based
access control in Lync Server 2013). In a plain WinRM session on the front end the same cmdlets need
RTCUniversal* group membership or local administrator rights. An Edge server has no OcsPowershell (no
IIS, usually outside the domain): its cmdlets read the local store through the Windows endpoint.
"""

from __future__ import annotations

from collections.abc import Collection

WINDOWS = "windows"
EXCHANGE = "exchange"
LYNC = "lync"


def lync_endpoint(roles: Collection[str]) -> str:
    """The endpoint kind for Lync cmdlets on a target with these roles."""
    return LYNC if "lync_frontend" in roles else WINDOWS
