"""Endpoints of the TLS probe: "host:port" as configured, the defaults by role, and where to connect."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from collectors.helpers.names import fqdn, ip_address, is_host

# Well-known ports: OWA (and the Edge's external web/access port) and SIP over TLS.
HTTPS_PORT = 443
SIP_TLS_PORT = 5061
_EXCHANGE_ROLES = frozenset({"exchange_mailbox", "exchange_client_access"})


@dataclass(frozen=True, order=True)
class HostPort:
    host: str  # lower case; an IPv6 address without brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ip(self) -> bool:
        return ip_address(self.host) is not None


def parse_host_port(text: str) -> HostPort:
    """ "host:port", "1.2.3.4:port" or "[v6]:port"; ValueError says what is wrong (the text is short)."""
    if not isinstance(text, str):
        raise ValueError("must be a string 'host:port'")
    value = text.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d{1,5})|([^:\[\]\s]+):(\d{1,5})", value)
    if not match:
        raise ValueError(f"{value[:80]!r} is not 'host:port' (IPv6 as '[addr]:port')")
    host = fqdn(match.group(1) or match.group(3), strict=True)
    port = int(match.group(2) or match.group(4))
    if not 1 <= port <= 65535:
        raise ValueError(f"{value[:80]!r}: port {port} is not between 1 and 65535")
    if match.group(1) is not None and not isinstance(ip_address(host), ipaddress.IPv6Address):
        raise ValueError(f"{value[:80]!r}: {host!r} in brackets is not an IPv6 address")
    if not is_host(host):
        raise ValueError(f"{value[:80]!r}: {host!r} is not a DNS name or an IP address")
    return HostPort(host, port)


def default_endpoints(host: str, roles: frozenset[str], pool_fqdn: str | None) -> list[HostPort]:
    """OWA on 443 of an Exchange server; a front end (and its pool) on 5061; an Edge on 443 and 5061."""
    wanted: list[tuple[str, int]] = []
    if roles & _EXCHANGE_ROLES:
        wanted.append((host, HTTPS_PORT))
    if "lync_frontend" in roles:
        wanted.append((host, SIP_TLS_PORT))
        if pool_fqdn:
            wanted.append((pool_fqdn, SIP_TLS_PORT))
    if "lync_edge" in roles:
        wanted += [(host, HTTPS_PORT), (host, SIP_TLS_PORT)]
    result: list[HostPort] = []
    for name, port in wanted:
        endpoint = parse_host_port(f"[{name}]:{port}" if ":" in name else f"{name}:{port}")
        if endpoint not in result:
            result.append(endpoint)
    return result


@dataclass(frozen=True)
class ProbeTarget:
    endpoint: HostPort  # what the metrics name
    connect: HostPort  # where the TCP connection goes
    server_name: str  # sent as SNI (unless an IP address) and checked against the certificate
