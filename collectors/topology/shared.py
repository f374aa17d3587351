"""What both sides of the topology checks share: URLs, and the fact an Exchange job hands to the
front-end jobs (the SipName UM servers)."""

from __future__ import annotations

import urllib.parse
from typing import Any, Iterable

from collectors.contract import Fact
from collectors.helpers.names import fqdn
from collectors.helpers.text import clean_text

# The UM servers of the organisation's SipName dial plans (may be empty: none), as an exchange_topology
# job last read them from Get-UMDialPlan, for the lync_topology jobs of the same exporter.
SIPNAME_UM_SERVERS: Fact[tuple[str, ...]] = Fact("sipname_um_servers")


def known_um_servers(servers: Iterable[str]) -> tuple[str, ...]:
    """The servers as the fact holds them: each once, by FQDN as compared, in order."""
    return tuple(sorted({fqdn(s) for s in servers if fqdn(s)}))


def same_computer(a: str, b: str) -> bool:
    """Two names (as fqdn() gives them) for one computer: equal, or one is a short name equal to the
    other's first label (Exchange names servers by short name, Lync by FQDN)."""
    if a == b:
        return True
    if "." in a and "." in b:
        return False
    return a.split(".", 1)[0] == b.split(".", 1)[0]


def split_url(url: Any) -> urllib.parse.SplitResult | None:
    text = clean_text(url)
    if not text:
        return None
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def is_http_url(url: Any) -> bool:
    """An absolute http(s) URL with a host name."""
    parts = split_url(url)
    return parts is not None and parts.scheme.casefold() in ("http", "https") and bool(parts.hostname)
