"""The Lync / Skype for Business servers' product versions, as a front end reads them, for the Exchange
checks that compare versions.

``Get-CsManagementStoreReplicationStatus`` answers one object per server holding a replica of the
Central Management Store, with its ``ProductVersion`` ("6.0.9319.534"). A front-end job reads them
(check L1); an Exchange job judges whether its own Exchange version is supported with them. They pass
through the runtime's facts board: neither job opens a session to the other's target.

The product is the version's major number. Microsoft's documentation names builds of each:
"Lync Server 2013 July 2015 Cumulative Update 5.0.8308.920" and "Skype for Business Server 2015,
March 2016 Cumulative Update 6.0.9319.235" (the minimum supported versions in Microsoft's "Plan Phone
System with on-premises PSTN connectivity in Skype for Business Server"). Only these two are named
here: a major number this table does not know is reported as unknown, never guessed.
"""

from __future__ import annotations

import re

from collectors.contract import Fact
from collectors.helpers.text import clean_text

# (replica FQDN, ProductVersion) for every replica, in name order, as a cms_replication job last read them.
LYNC_SERVER_VERSIONS: Fact[tuple[tuple[str, str], ...]] = Fact("lync_server_versions")

LYNC_SERVER_2013 = "Lync Server 2013"
PRODUCTS = {5: LYNC_SERVER_2013, 6: "Skype for Business Server 2015"}
_VERSION = re.compile(r"^\s*(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?")


def lync_product(version: object) -> str:
    """The product a ProductVersion belongs to, "" when it is not one this table knows."""
    match = _VERSION.match(clean_text(version))
    return PRODUCTS.get(int(match.group(1)), "") if match else ""


def as_fact(replicas: list[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    """Each replica once (the first version seen), in name order; replicas without a version left out."""
    found: dict[str, str] = {}
    for name, version in replicas:
        if name and clean_text(version) and name not in found:
            found[name] = clean_text(version)[:32]
    return tuple(sorted(found.items()))
