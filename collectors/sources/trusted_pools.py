"""OWA's trusted application pools, as a front end reads them, for the Exchange checks that need them.

Lync knows an OWA server by the trusted application pool that hosts the ``OutlookWebApp`` trusted
application: the pool's FQDN is the OWA server's FQDN, or the load-balanced name of several OWA
servers that the pool lists as its computers (``New-CsTrustedApplicationPool -Identity
atl-owa-001.litwareinc.com``, Microsoft's "Integrating Lync Server 2013 and Outlook Web App 2013").
A front-end job reads the pools; an Exchange job compares its own server and IM certificate with
them. Neither opens a session to the other's target: the pools pass through the runtime's facts board.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from collectors.contract import Fact
from collectors.helpers.names import fqdn


@dataclass(frozen=True)
class TrustedPool:
    """A trusted application pool that hosts the OutlookWebApp application (names as compared: fqdn())."""

    fqdn: str
    computers: tuple[str, ...] = ()
    ports: tuple[int, ...] = ()  # of its OutlookWebApp trusted applications (Get-CsTrustedApplication Port)


# The pools hosting OutlookWebApp (empty: none), as a lync_topology job last read them.
OWA_TRUSTED_POOLS: Fact[tuple[TrustedPool, ...]] = Fact("owa_trusted_pools")


def _same_computer(a: str, b: str) -> bool:
    """FQDNs equal, or one side is a short name (no dot) equal to the other's first label."""
    if a == b:
        return True
    if "." in a and "." in b:
        return False
    return a.split(".", 1)[0] == b.split(".", 1)[0]


def pools_of_server(pools: Iterable[TrustedPool], server: str) -> list[TrustedPool]:
    """The pools that stand for ``server``: its own FQDN is the pool's, or the pool lists it as a computer."""
    name = fqdn(server)
    return [pool for pool in pools
            if name and any(_same_computer(name, entry) for entry in (pool.fqdn, *pool.computers))]
