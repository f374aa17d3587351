"""OWA's IM endpoint on the wire: the OWA trusted application's port, and whether Lync can trust what it presents.

Lync reaches OWA as a trusted application: ``New-CsTrustedApplication -ApplicationId OutlookWebApp
-TrustedApplicationPoolFqdn <pool> -Port 5199`` (001, Microsoft's "Integrating Lync Server 2013 and
Outlook Web App 2013"); the cmdlet "assigns a port to the external service that runs the application"
and its Port is "the port number on which the application will run" (Microsoft's
New-CsTrustedApplication and Set-CsTrustedApplication references). So every OWA server the pool stands
for must accept TLS on that port. The ports come from a front end's ``lync_topology`` job
(:data:`~collectors.sources.trusted_pools.OWA_TRUSTED_POOLS`); an Exchange target's probe connects to
``<its host>:<port>``.

What OWA presents there is its IM certificate, and 001 says "The certificate that you use for Outlook
Web App must be a certificate that is trusted by Lync Server". The exporter cannot read the front ends'
Trusted Root store (their Lync endpoint offers Lync cmdlets only); what it can see is the root a front
end's own chain on 5061 ends at, which that front end trusts. So the IM chain's root is compared with
the roots of the front ends' chains (posted by their probes as :data:`LYNC_CHAIN_ROOTS`) and with the
roots the operator lists as also trusted (``lync_trusted_roots``).
"""

from __future__ import annotations

from typing import Iterable

from cryptography import x509

from collectors.contract import Fact
from collectors.sources.trusted_pools import TrustedPool, pools_of_server
from collectors.tls_probe.targets import HostPort, parse_host_port

CHECK_PORT_ACCEPTS_TLS = "owa_trusted_application_port_accepts_tls"
CHECK_CHAINS_TO_LYNC_ROOT = "im_certificate_chains_to_lync_root"
LYNC_SIP_TLS_PORT = 5061

# The roots (normalised names, see root_name) of the chains the front ends present on 5061.
LYNC_CHAIN_ROOTS: Fact[frozenset[str]] = Fact("lync_chain_roots")


def owa_im_endpoints(pools: Iterable[TrustedPool], host: str) -> list[HostPort]:
    """``host:port`` for every OutlookWebApp port of the trusted pools that stand for ``host``."""
    ports = sorted({port for pool in pools_of_server(pools, host) for port in pool.ports})
    name = f"[{host}]" if ":" in host else host
    return [parse_host_port(f"{name}:{port}") for port in ports]


def normalise_name(text: str) -> str:
    """A distinguished name as compared: RFC 4514 text, no spaces around separators, case-folded
    ("CN=Contoso Root CA, DC=contoso, DC=com" and "cn=contoso root ca,dc=contoso,dc=com" are one name)."""
    parts = [part.strip() for part in text.split(",")]
    return ",".join("=".join(side.strip() for side in part.split("=", 1)) for part in parts if part).casefold()


def root_name(chain: tuple[x509.Certificate, ...]) -> str:
    """The root a presented chain ends at: the issuer of its last certificate (servers seldom send the
    root itself; a self-signed last certificate is its own issuer), normalised."""
    last = chain[-1]
    try:
        return normalise_name(last.issuer.rfc4514_string())
    except ValueError:  # a name cryptography cannot write out
        return ""


def chains_to_lync_root(chain: tuple[x509.Certificate, ...], lync_roots: Iterable[str]) -> bool:
    root = root_name(chain)
    return bool(root) and root in {normalise_name(name) for name in lync_roots}


def lync_roots_of(chains: Iterable[tuple[x509.Certificate, ...]]) -> frozenset[str]:
    return frozenset(name for name in (root_name(chain) for chain in chains if chain) if name)
