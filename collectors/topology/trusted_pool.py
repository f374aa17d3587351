"""How the OWA trusted application pool is set up (check L2, beyond its existence); pure functions.

001 (Microsoft's "Integrating Lync Server 2013 and Outlook Web App 2013") creates it with
``New-CsTrustedApplicationPool -Identity atl-owa-001.litwareinc.com -Registrar atl-cs-001.litwareinc.com
-Site Redmond -RequiresReplication $False`` and says that "the value assigned to IMServerName is the
fully qualified domain name of the Lync Server pool where you created the trusted application pool":
the pool's Registrar. ``Get-CsTrustedApplicationPool`` returns the Registrar as a service ID
("Registrar:atl-cs-001.litwareinc.com"); :func:`~collectors.helpers.names.fqdn` drops the kind prefix.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from collectors.helpers.names import fqdn
from collectors.sources.trusted_pools import TrustedPool


def registrar_of(pool: Mapping[str, Any]) -> str:
    """The FQDN of the pool's Registrar ("" when the answer names none)."""
    return fqdn(pool.get("Registrar"))


def registrar_is_lync_pool(owa_pools: Iterable[Mapping[str, Any]], lync_pool: str) -> bool:
    """Every pool hosting OutlookWebApp has the Lync pool (the one IMServerName must name) as Registrar."""
    wanted = fqdn(lync_pool)
    return all(registrar_of(pool) == wanted for pool in owa_pools)


# The pool settings of 001's New-CsTrustedApplicationPool, as Get-CsTrustedApplicationPool shows them:
# (property, 001's value, the check). 001 passes -RequiresReplication $False and leaves ThrottleAsServer
# and TreatAsAuthenticated at their documented defaults, True.
POOL_SETTINGS = (
    ("RequiresReplication", False, "owa_trusted_pool_requires_no_replication"),
    ("ThrottleAsServer", True, "owa_trusted_pool_throttles_as_server"),
    ("TreatAsAuthenticated", True, "owa_trusted_pool_treated_as_authenticated"),
)


def settings_as_001(owa_pools: Iterable[Mapping[str, Any]]) -> dict[str, bool]:
    """Per check, whether every OWA pool has 001's value; a setting no pool shows (not a bool) is left out."""
    pools = list(owa_pools)
    found = {}
    for prop, wanted, check in POOL_SETTINGS:
        shown = [pool.get(prop) for pool in pools if isinstance(pool.get(prop), bool)]
        if shown:
            found[check] = all(value is wanted for value in shown)
    return found


def as_fact(owa_pools: Iterable[tuple[str, list[str]]],
            ports: Mapping[str, tuple[int, ...]] | None = None) -> tuple[TrustedPool, ...]:
    """(pool FQDN, computers) pairs, with the OutlookWebApp ports per pool, as the facts board holds them:
    each pool once, in name order."""
    ports = ports or {}
    found = {name: TrustedPool(name, tuple(sorted(set(computers))), tuple(ports.get(name, ())))
             for name, computers in owa_pools if name}
    return tuple(found[name] for name in sorted(found))
