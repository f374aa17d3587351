"""Check E3, the certificate's names: the IM certificate carries the OWA trusted application pool's FQDN.

Lync knows the OWA server as the trusted application pool created for it, and 001 (Microsoft's
"Integrating Lync Server 2013 and Outlook Web App 2013") says of that pool's FQDN: "this must be the
same name that appears in the Subject Name and Subject Alternative Name (SAN) fields of the
certificate". The pools come from a front end's job (:mod:`collectors.sources.trusted_pools`); the
certificate is the one ``IMCertificateThumbprint`` names, its names read from its DER.
"""

from __future__ import annotations

from typing import Iterable

from collectors.helpers.names import fqdn, ip_address
from collectors.sources.trusted_pools import TrustedPool, pools_of_server

CHECK_NAMES_TRUSTED_POOL = "im_certificate_names_trusted_pool"
CHECK_NAMES_SERVER = "im_certificate_names_server"


def certificate_names(subject_cn: str, dns_names: Iterable[str]) -> set[str]:
    """The names a certificate is for: its subject CN and its DNS SANs, as compared."""
    return {name for name in (fqdn(subject_cn), *(fqdn(n) for n in dns_names)) if name}


def names_trusted_pools(subject_cn: str, dns_names: Iterable[str], pools: Iterable[TrustedPool],
                        server: str) -> bool | None:
    """Whether the certificate names every OWA trusted pool that stands for ``server``; None when none
    does (no pool lists this server: a SipName UM server, or the trusted application is missing,
    which check L2 reports)."""
    mine = pools_of_server(pools, server)
    if not mine:
        return None
    names = certificate_names(subject_cn, dns_names)
    return all(pool.fqdn in names for pool in mine)


def names_server(subject_cn: str, dns_names: Iterable[str], server: str) -> bool | None:
    """Whether the certificate carries the Exchange server's own FQDN in its subject CN or a DNS SAN (001:
    "making sure that the server FQDN is used for the subject name and that this FQDN appears in the
    certificate alternate name field"); None when ``server`` is no FQDN (an IP address or a short name)."""
    name = fqdn(server)
    if not name or "." not in name or ip_address(name) is not None:
        return None
    return name in certificate_names(subject_cn, dns_names)
