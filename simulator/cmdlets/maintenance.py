"""Whether a server is in service: Exchange's server component states and Lync's Windows services.

``Get-ServerComponentState -Identity <server>`` (/PowerShell) answers one
ServerComponentStatePresentationObject per component, in the shape of the real captures
(../shared/captures/exchange/E15, E16/GetServerComponentState.xml: ServerFqdn, Component, State a
``Microsoft.Exchange.Data.ServiceState`` enum, ServerWideOfflineIsOffline, RemoteStates and LocalStates
lists of RequesterDetails, Identity the server's ADObjectId, IsValid, ObjectState; a SerializationData
note). The components are those of the captures for the server's version, Active but for the two the
captures show Inactive on a healthy server (datacenter-only); a scenario's ``component_states``
changes them (``Set-ServerComponentState -Component ServerWideOffline -State Inactive -Requester
Maintenance``).

``Get-CsWindowsService [-Name] [-ExcludeActivityLevel]`` (Lync hosts, /wsman) answers one NTService
per Lync service of the server's role (no capture: the simulator's own shape, ``Name``, ``DisplayName``,
``Status`` a ServiceControllerStatus enum, ``ActivityLevel``); a scenario's ``windows_services``
changes their status (Paused: drained by ``Stop-CsWindowsService -Graceful``; Stopped).
"""

from __future__ import annotations

from typing import Any

from psrpcore.types import PSDateTime

from simulator import errors, psobjects
from simulator.cmdlets import exchange_objects, exchange_tables
from simulator.cmdlets.base import STRING, SWITCH, Invocation, Param, cmdlet
from simulator.scenario_model import ComponentState, Host

_MANAGEMENT = "Microsoft.Exchange.Data.Directory.Management"
_PRESENTATION = f"{_MANAGEMENT}.ServerComponentStatePresentationObject"
_REQUESTER_DETAILS = f"{_PRESENTATION}+RequesterDetails"
_DETAILS_LIST_TYPES = [
    f"System.Collections.Generic.List`1[[{_REQUESTER_DETAILS}, {exchange_tables.DIRECTORY_ASSEMBLY}]]",
    "System.Object",
]
_SERVICE_STATE = "Microsoft.Exchange.Data.ServiceState"
SERVICE_STATES = {"Inactive": 0, "Active": 1, "Draining": 2}

# The components of the captures, in their order: Exchange 2013 (E15), and 2016 (E16) which adds nine.
COMPONENTS_2013 = (
    "ServerWideOffline", "HubTransport", "FrontendTransport", "Monitoring", "RecoveryActionsEnabled",
    "AutoDiscoverProxy", "ActiveSyncProxy", "EcpProxy", "EwsProxy", "ImapProxy", "OabProxy", "OwaProxy",
    "PopProxy", "PushNotificationsProxy", "RpsProxy", "RwsProxy", "RpcProxy", "UMCallRouter", "XropProxy",
    "HttpProxyAvailabilityGroup", "ForwardSyncDaemon", "ProvisioningRps", "MapiProxy", "EdgeTransport",
    "HighAvailability", "SharedCache",
)
COMPONENTS_2016 = COMPONENTS_2013 + (
    "MailboxDeliveryProxy", "RoutingUpdates", "RestProxy", "DefaultProxy", "Lsass", "RoutingService", "E4EProxy",
    "CafeLAMv2", "LogExportProvider",
)
# Inactive on the captures' healthy servers: used in Microsoft's datacenter only.
INACTIVE_BY_DEFAULT = frozenset({"ForwardSyncDaemon", "ProvisioningRps"})


def component_states(host: Host) -> list[tuple[str, ComponentState | None]]:
    """Every component of the server with the scenario's state for it (None: the install default)."""
    version = exchange_tables.shape_version(host.exchange.version)
    names = list(COMPONENTS_2013 if version == 2013 else COMPONENTS_2016)
    configured = {name.lower(): (name, state) for name, state in host.exchange.component_states.items()}
    states = [(name, configured.pop(name.lower(), (name, None))[1]) for name in names]
    return states + list(configured.values())  # components the defaults do not know, last


def _find_exchange_server(inv: Invocation, wanted: str) -> tuple[str, Host] | None:
    for name, host in inv.view.scenario.model.hosts.items():
        if host.exchange is not None and wanted.lower() in (name.lower(), name.split(".", 1)[0].lower()):
            return name, host
    return None


@cmdlet(
    "Get-ServerComponentState",
    f"{_MANAGEMENT}.GetServerComponentState",
    "exchange",
    params=(Param("Identity", STRING, mandatory=True, position=0), Param("Component", STRING),
            Param("DomainController", STRING)),
)
def get_server_component_state(inv: Invocation) -> None:
    found = _find_exchange_server(inv, inv.get("Identity"))
    if found is None:
        org = inv.view.scenario.model.exchange_org
        inv.out.error(errors.exchange_not_found(inv.get("Identity"), inv.cmdlet.name, inv.cmdlet.dotnet_class,
                                                org.domain_controller if org else "dc01.contoso.com"))
        return
    server, host = found
    wanted = (inv.get("Component") or "").lower()
    states = component_states(host)
    offline = any(name == "ServerWideOffline" and state is not None and state.state == "Inactive"
                  for name, state in states)
    for name, state in states:
        if wanted and name.lower() != wanted:
            continue
        inv.out.write(_component_object(inv, server, name, state, offline))


def _component_object(inv: Invocation, server: str, component: str, state: ComponentState | None,
                      offline: bool) -> Any:
    build = exchange_objects.ObjectBuilder(inv.view)
    short = server.split(".", 1)[0].upper()
    shown = state.state if state is not None else ("Inactive" if component in INACTIVE_BY_DEFAULT else "Active")
    server_dn = (f"CN={short},CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
                 f"CN=Administrative Groups,{build.org_dn}")
    # Who set the state, as each list holds it: the Functional default of an install (none for the
    # datacenter-only components), or the scenario's requester.
    if state is None:
        details = [] if shown == "Inactive" else [("Functional", "Active", build.ad_time(400, utc=True))]
    else:
        moment = inv.view.utc_dt(state.since) or build.ad_time(0, utc=True)
        details = [(state.requester, state.state, moment)]
    return psobjects.ps_object(
        [_PRESENTATION, "Microsoft.Exchange.Data.ConfigurableObject", "System.Object"],
        adapted={
            "ServerFqdn": server,
            "Component": component,
            "State": build.enum(_SERVICE_STATE, shown, SERVICE_STATES[shown]),
            "ServerWideOfflineIsOffline": offline,
            "RemoteStates": build.typed_list(_DETAILS_LIST_TYPES, [_details(component, *d) for d in details]),
            "LocalStates": build.typed_list(_DETAILS_LIST_TYPES, [_details(component, *d) for d in details]),
            "Identity": build.ad_object_id(server_dn, short, "Servers"),
            "IsValid": True,
            "ObjectState": build.enum("Microsoft.Exchange.Data.ObjectState", "New", 0),
        },
        extended={"SerializationData": exchange_objects.serialization_data(_PRESENTATION,
                                                                            exchange_tables.DIRECTORY_ASSEMBLY)},
        to_string=_PRESENTATION,
    )


def _details(component: str, requester: str, state: str, moment: PSDateTime) -> Any:
    """One RequesterDetails: at the captures' depth its State is text, not the enum."""
    return psobjects.ps_object(
        [_REQUESTER_DETAILS, "System.Object"],
        adapted={"Requester": requester, "State": state, "Timestamp": moment, "Component": component},
        to_string=_REQUESTER_DETAILS,
    )


# ------------------------------------------------------------------------------- Lync services

_NT_SERVICE = "Microsoft.Rtc.Management.Deployment.Core.NTService"
_SERVICE_STATUS = "System.ServiceProcess.ServiceControllerStatus"
SERVICE_STATUSES = {"Stopped": 1, "StartPending": 2, "StopPending": 3, "Running": 4, "ContinuePending": 5,
                    "PausePending": 6, "Paused": 7}
# The Lync services of each role, by service name: display name and the activity it reports.
FRONT_END_SERVICES = {
    "REPLICA": "Lync Server Replica Replicator Agent",
    "RTCCLSAGT": "Lync Server Centralized Logging Service Agent",
    "RTCSRV": "Lync Server Front-End",
}
EDGE_SERVICES = {
    "REPLICA": "Lync Server Replica Replicator Agent",
    "RTCCLSAGT": "Lync Server Centralized Logging Service Agent",
    "RTCSRV": "Lync Server Access Edge",
}


@cmdlet(
    "Get-CsWindowsService",
    "Microsoft.Rtc.Management.Deployment.GetCsWindowsServiceCmdlet",
    "lync",
    params=(Param("Name", STRING, position=0), Param("ComputerName", STRING), Param("ExcludeActivityLevel", SWITCH),
            Param("Report", STRING)),
)
def get_cs_windows_service(inv: Invocation) -> None:
    host = inv.view.host
    defaults = FRONT_END_SERVICES if "lync_frontend" in host.roles else EDGE_SERVICES
    configured = host.lync.windows_services if host.lync is not None else {}
    wanted = (inv.get("Name") or "").lower()
    build = exchange_objects.ObjectBuilder(inv.view)
    for name in sorted(set(defaults) | set(configured)):
        if wanted and name.lower() != wanted:
            continue
        service = configured.get(name)
        status = service.status if service is not None else "Running"
        display = (service.display_name if service is not None else None) or defaults.get(name, name)
        adapted: dict[str, Any] = {
            "Name": name,
            "DisplayName": display,
            "Status": build.enum(_SERVICE_STATUS, status, SERVICE_STATUSES[status]),
            # The activity counters are text; -ExcludeActivityLevel leaves them out.
            "ActivityLevel": None if inv.get("ExcludeActivityLevel") else _activity(status),
        }
        inv.out.write(psobjects.ps_object([_NT_SERVICE, "System.Object"], adapted=adapted, to_string=name))


def _activity(status: str) -> str:
    return "" if status != "Running" else "Urgent Count Of Incoming Messages=0"
