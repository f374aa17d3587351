"""Which Exchange and Lync / Skype for Business Server versions Microsoft supports together for IM in
Outlook on the web; pure functions.

Microsoft's one statement on the pairs: "IM integration between Lync Server 2013 and Exchange 2016 or
later isn't supported" (Microsoft's "Configure instant messaging integration with Outlook on the web
in Exchange", the Exchange 2016/2019 article, learn.microsoft.com/exchange/clients/outlook-on-the-web/instant-messaging-integration).
Lync Server 2013 with Exchange 2013 is 001's own setup, and the same article configures Skype for
Business Server with Exchange 2016/2019. No Microsoft statement on the other pairs was found for this
project (a matrix of every Lync and Exchange version for OWA IM was looked for and not found), so only
that one pair is judged unsupported; any other pair, and a version this project cannot name, is not
reported as unsupported.
"""

from __future__ import annotations

from typing import Iterable

from collectors.sources.lync_versions import LYNC_SERVER_2013, lync_product

# Exchange 2016 is 15.1 (Microsoft's Exchange build numbers page); "2016 or later" is 15.1 and up.
EXCHANGE_2016 = (15, 1)


def unsupported_lync_servers(exchange_version: tuple[int, ...], lync_servers: Iterable[tuple[str, str]]) -> list[str]:
    """The Lync servers (FQDN, ProductVersion) that Microsoft does not support with this Exchange for
    IM in OWA, as "fqdn (Lync Server 2013)"."""
    if tuple(exchange_version[:2]) < EXCHANGE_2016:
        return []
    return [f"{name} ({LYNC_SERVER_2013})" for name, version in lync_servers
            if lync_product(version) == LYNC_SERVER_2013]
