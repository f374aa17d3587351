"""What ``Get-ExchangeServer`` says about one server: its roles and its version; pure functions.

The real answers (../shared/captures/exchange/E15, E16/GetExchangeServer.xml) carry ``ServerRole``, a
flags enum shown as "Mailbox, ClientAccess" (Exchange 2013 with both roles on one computer) or
"Mailbox" (Exchange 2016, whose one Mailbox role holds the client access services too: the same
capture has IsClientAccessServer and IsUnifiedMessagingServer True), and ``AdminDisplayVersion``, a
ServerVersion object ("Version 15.1 (Build 2375.7)" with Major, Minor, Build, Revision).
Exchange's product is its major.minor: 15.0 Exchange 2013, 15.1 Exchange 2016, 15.2 Exchange 2019
(Microsoft's "Exchange Server build numbers and release dates",
learn.microsoft.com/exchange/new-features/build-numbers-and-release-dates).

Who runs both Unified Messaging services on one computer, which 001 makes the condition for Lync's
autodiscovery replacing the trusted application pool ("If you have installed the Microsoft Exchange
Unified Messaging Call Router service and the Microsoft Exchange Unified Messaging service on the same
computer then there is no need to create a trusted application pool for Outlook Web App"):
- Exchange 2013: the call router runs where the Client Access role is ("This service exists on
  Exchange servers that have the Client Access server role installed", Microsoft's reference for
  Set-UMCallRouterSettings, learn.microsoft.com/powershell/module/exchange/set-umcallroutersettings),
  the UM service on Mailbox servers (Get-UMService: "the Microsoft Exchange Unified Messaging service
  on Exchange 2013 or Exchange 2016 Mailbox servers", learn.microsoft.com/powershell/module/exchange/get-umservice).
  Both on one computer only when it holds both roles; a split deployment needs the trusted pool.
- Exchange 2016: one Mailbox role runs both.
- Exchange 2019: "Unified Messaging has been removed from Exchange 2019" (Microsoft's "What's
  discontinued in Exchange Server 2019"), so no autodiscovery.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from collectors.helpers.names import fqdn
from collectors.helpers.text import clean_text

MAILBOX, CLIENT_ACCESS = "mailbox", "clientaccess"
# Exchange's major.minor -> the product, as the build-numbers page names them.
PRODUCTS = {(15, 0): "2013", (15, 1): "2016", (15, 2): "2019"}
_VERSION_TEXT = re.compile(r"(\d+)\.(\d+)\s*\(\s*build\s+(\d+)\.(\d+)\s*\)", re.IGNORECASE)


@dataclass(frozen=True)
class ExchangeServerInfo:
    name: str  # as compared: fqdn() of Fqdn, else of Name
    roles: frozenset[str]  # casefolded ServerRole members: "mailbox", "clientaccess", ...
    version: tuple[int, int, int, int] | None  # None: the answer named none we could read

    @property
    def product(self) -> str:
        """"2013", "2016", "2019", or "" for a version this table does not know."""
        return PRODUCTS.get(self.version[:2], "") if self.version else ""

    @property
    def build(self) -> str:
        return ".".join(str(part) for part in self.version) if self.version else ""


def server_roles(value: Any) -> frozenset[str]:
    """ServerRole as its members: "Mailbox, ClientAccess" -> {"mailbox", "clientaccess"}."""
    return frozenset(part.strip().casefold() for part in clean_text(value).split(",") if part.strip())


def server_version(value: Any) -> tuple[int, int, int, int] | None:
    """AdminDisplayVersion: the ServerVersion's Major/Minor/Build/Revision, else its text."""
    if isinstance(value, Mapping):
        parts = [value.get(key) for key in ("Major", "Minor", "Build", "Revision")]
        if all(isinstance(part, int) and not isinstance(part, bool) and part >= 0 for part in parts):
            return tuple(parts)  # type: ignore[return-value]
    match = _VERSION_TEXT.search(clean_text(value))
    return tuple(int(group) for group in match.groups()) if match else None  # type: ignore[return-value]


def read_server(obj: Mapping[str, Any]) -> ExchangeServerInfo:
    return ExchangeServerInfo(
        name=fqdn(obj.get("Fqdn")) or fqdn(obj.get("Name")),
        roles=server_roles(obj.get("ServerRole")),
        version=server_version(obj.get("AdminDisplayVersion")),
    )


def runs_both_um_services(server: ExchangeServerInfo) -> bool | None:
    """Whether the UM call router and the UM service run on this one computer (None: unknown version)."""
    product = server.product
    if product == "2013":
        return {MAILBOX, CLIENT_ACCESS} <= server.roles
    if product == "2016":
        return MAILBOX in server.roles
    if product == "2019":
        return False
    return None


def hosts_owa_im_endpoint(server: ExchangeServerInfo) -> bool:
    """OWA's IM endpoint runs on mailbox (back-end) servers (001: web.config "only on the backend servers
    where Outlook Web App has been installed"; 2016/2019's one role is Mailbox)."""
    return MAILBOX in server.roles
