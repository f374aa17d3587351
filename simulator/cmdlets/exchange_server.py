"""Get-ExchangeServer on /PowerShell: which roles and which version each Exchange server runs.

The answer is an ``ExchangeServer`` presentation object with the captures' type names, and, in the
captures' forms (../shared/captures/exchange/E15, E16/GetExchangeServer.xml), the properties the
checks read: ``Name`` (the short name), ``Fqdn``, ``ServerRole`` (a flags enum
``...SystemConfiguration.ServerRole``: Mailbox 2, ClientAccess 4; the E15 capture shows "Mailbox,
ClientAccess" 6, the E16 one "Mailbox" 2), ``AdminDisplayVersion`` (a ``ServerVersion``: "Version 15.0
(Build 1497.2)" with Major/Minor/Build/Revision), ``Edition``, the ``Is*Server`` booleans, ``Site``,
then ADObject's properties. The real object has about sixty properties (data paths, domain
controllers, trial period...); the rest are left out here, so the full shape is compared through
replay of the captures (tests/simulator/test_capture_shapes.py), not with this answer.

The ``Is*Server`` booleans of a 2013 server that holds one role only are the simulator's reading
(the role's own flag; IsUnifiedMessagingServer with the Mailbox role, which runs the UM service in
2013): no capture shows such a server.
"""

from __future__ import annotations

from typing import Any

from simulator import errors
from simulator.cmdlets import exchange_objects, exchange_tables
from simulator.cmdlets.base import STRING, Invocation, Param, cmdlet
from simulator.scenario_model import Host

_SYSCONF = "Microsoft.Exchange.Data.Directory.SystemConfiguration"
_TYPES = ["Microsoft.Exchange.Data.Directory.Management.ExchangeServer",
          "Microsoft.Exchange.Data.Directory.Management.ADPresentationObject",
          *exchange_tables.AD_BASE_TYPES]
# ServerRole's members as the captures number them (a flags enum).
_ROLE_FLAGS = {"Mailbox": 2, "ClientAccess": 4}


def server_roles(host: Host) -> list[str]:
    """The server's roles, in the order Exchange names them ("Mailbox, ClientAccess")."""
    exchange = host.exchange
    roles = exchange.server_role or (["Mailbox", "ClientAccess"] if exchange.version == 2013 else ["Mailbox"])
    return [role for role in _ROLE_FLAGS if role in roles]


def _exchange_server(inv: Invocation, name: str, host: Host) -> Any:
    build = exchange_objects.ObjectBuilder(inv.view)
    exchange = host.exchange
    short = name.split(".", 1)[0].upper()
    roles = server_roles(host)
    mailbox = "Mailbox" in roles
    # 2016 and later have one role for everything; 2019 dropped Unified Messaging.
    client_access = "ClientAccess" in roles or exchange.version >= 2016
    dn = (f"CN={short},CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
          f"CN=Administrative Groups,{build.org_dn}")
    site_name = exchange.site.rsplit("/", 1)[-1]
    own = {
        "Name": short,
        "Edition": build.enum("Microsoft.Exchange.Data.ServerEditionType", "StandardEvaluation", 2),
        "Fqdn": name,
        "IsHubTransportServer": mailbox,
        "IsClientAccessServer": client_access,
        "IsEdgeServer": False,
        "IsMailboxServer": mailbox,
        "IsUnifiedMessagingServer": mailbox and exchange.version < 2019,
        "IsFrontendTransportServer": client_access,
        "AdminDisplayVersion": build.server_version(exchange.build),
        "Site": build.ad_object_id(f"CN={site_name},CN=Sites,CN=Configuration,{build.domain_dn}",
                                   exchange.site, exchange.site.rsplit("/", 1)[0]),
        "ServerRole": build.enum(f"{_SYSCONF}.ServerRole", ", ".join(roles), sum(_ROLE_FLAGS[r] for r in roles)),
        "IsE15OrLater": True,
    }
    server = build.ad_object(
        _TYPES, own, name=short, dn=dn, identity_shown=short, identity_parent="Servers",
        schema_class="ms-Exch-Exchange-Server", object_classes=["top", "server", "msExchExchangeServer"],
        exchange_version=(0, 1, "8.0.535.0"), version=exchange.version,
    )
    # The presentation object has no AdminDisplayName (neither capture does).
    props = server.PSObject.adapted_properties
    props[:] = [prop for prop in props if prop.name != "AdminDisplayName"]
    return server


@cmdlet(
    "Get-ExchangeServer",
    "Microsoft.Exchange.Management.SystemConfigurationTasks.GetExchangeServer",
    "exchange",
    params=(Param("Identity", STRING, position=0), Param("Status", "switch"), Param("DomainController", STRING)),
)
def get_exchange_server(inv: Invocation) -> None:
    """Every Exchange server of the organisation, or the one ``-Identity`` names (short name or FQDN)."""
    wanted = (inv.get("Identity") or "").strip().lower()
    found = False
    for name, host in inv.view.scenario.model.hosts.items():
        if host.exchange is None:
            continue
        if wanted and wanted not in (name.lower(), name.split(".", 1)[0].lower()):
            continue
        found = True
        inv.out.write(_exchange_server(inv, name, host))
    if wanted and not found:
        org = inv.view.scenario.model.exchange_org
        inv.out.error(errors.exchange_not_found(inv.get("Identity"), inv.cmdlet.name, inv.cmdlet.dotnet_class,
                                                org.domain_controller if org else "dc01.contoso.com"))
