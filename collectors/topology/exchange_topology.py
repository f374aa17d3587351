"""What Exchange tells Lync, read on an Exchange client access server: checks L4 and L2 (Exchange side).

L4. Lync finds Exchange's autodiscover service for OAuth; each client access server publishes
``AutoDiscoverServiceInternalUri`` (its service connection point), which must be set. Exchange
2016/2019 read it with ``Get-ClientAccessService``; Exchange 2013 only has ``Get-ClientAccessServer``
(2016/2019 still have it, deprecated). The new cmdlet is asked first; when the endpoint does not know
it, the old one, and the choice is remembered for the next runs.

L2. Lync autodiscovers the Exchange servers that host a SipName UM dial plan. ``Get-UMDialPlan``
(organisation-wide; Exchange 2013/2016 only: 2019 removed Unified Messaging) lists the dial plans with
their ``URIType`` and ``UMServers``; the servers of the SipName plans are handed, inside this exporter
process, to the ``lync_topology`` jobs, which look for trusted application pools listing them.
A SipName plan whose ``UMServers`` is empty (Exchange 2013 and later associate servers through
``Set-UMService -DialPlans`` instead) contributes no server. An endpoint without ``Get-UMDialPlan``
hands nothing over, so another Exchange target (2013/2016) of the organisation must be watched too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CmdletAnswer,
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    ErrorKind,
    Field,
    Sample,
    Shape,
)
from collectors.helpers.names import fqdn
from collectors.helpers.text import clean_text
from collectors.topology.shared import (
    SIPNAME_UM_SERVERS,
    is_http_url,
    known_um_servers,
)

SERVICE_CMDLET = "Get-ClientAccessService"  # Exchange 2016 and later
SERVER_CMDLET = "Get-ClientAccessServer"  # Exchange 2013 (deprecated later)
DIAL_PLAN_CMDLET = "Get-UMDialPlan"  # Exchange 2013 and 2016
CHECK_INTERNAL_URI = "autodiscover_internal_uri_set"
SIPNAME = "sipname"

CLIENT_ACCESS_FIELDS = (
    Field("Name", "str", required=False, nullable=True),
    Field("Fqdn", "str", required=False, nullable=True),
    Field("AutoDiscoverServiceInternalUri", "str", required=False, nullable=True),
)
CLIENT_ACCESS = {cmdlet: Shape(cmdlet, CLIENT_ACCESS_FIELDS) for cmdlet in (SERVICE_CMDLET, SERVER_CMDLET)}
DIAL_PLAN = Shape(
    DIAL_PLAN_CMDLET,
    (
        Field("Name", "str", required=False, nullable=True),
        Field("URIType", "str", required=False, nullable=True),
        Field("UMServers", "list", required=False, nullable=True),
    ),
)


def is_command_not_found(error: CollectError) -> bool:
    """The endpoint does not know the cmdlet (another Exchange version, or a JEA role without it)."""
    return error.kind is ErrorKind.COMMAND and "CommandNotFoundException" in error.message


def this_server(objects: list[Mapping[str, Any]], host: str) -> Mapping[str, Any] | None:
    """The answer's object for ``host`` (by FQDN or short name); a single object is taken as it."""
    wanted = fqdn(host)
    for obj in objects:
        names = {fqdn(obj.get("Fqdn")), fqdn(obj.get("Name"))}
        if wanted in names or wanted.split(".", 1)[0] in names:
            return obj
    return objects[0] if len(objects) == 1 else None


def sipname_um_servers(plans: list[Mapping[str, Any]]) -> list[str]:
    """The UM servers (as Exchange names them: short names or FQDNs) of the SipName dial plans."""
    servers: list[str] = []
    for plan in plans:
        if clean_text(plan.get("URIType")).casefold() != SIPNAME:
            continue
        for server in plan.get("UMServers") or []:
            name = fqdn(server)
            if name and name not in servers:
                servers.append(name)
    return servers


@dataclass
class ExchangeTopologyState:
    client_access_cmdlet: str = SERVICE_CMDLET  # the one this endpoint knows (2013: the old one)
    no_um_dial_plan_cmdlet: bool = False  # Exchange 2019: no Unified Messaging; ask no more


Context = CollectContext[CollectorSettings, ExchangeTopologyState]


class ExchangeTopologyCollector(Collector[CollectorSettings, ExchangeTopologyState]):
    name = "exchange_topology"
    roles = frozenset({"exchange_client_access"})
    state_model = ExchangeTopologyState
    metrics = (CONFIG_CHECK_OK,)
    cmdlets = (("exchange", SERVICE_CMDLET), ("exchange", SERVER_CMDLET), ("exchange", DIAL_PLAN_CMDLET))
    cmdlet_parameters = {SERVICE_CMDLET: {"Identity": None}, SERVER_CMDLET: {"Identity": None}, DIAL_PLAN_CMDLET: {}}

    def collect(self, ctx: Context) -> list[Sample]:
        host = ctx.target.host
        answer = self._client_access(ctx, {"Identity": host})
        server = this_server(answer.objects, host)
        if server is None:
            where = f"{ctx.where('exchange')} {ctx.state.client_access_cmdlet}"
            raise CollectError(ErrorKind.SHAPE, where, f"no client access server {host} among {len(answer.objects)}")
        self._hand_over_um_servers(ctx)
        return [check_sample(CHECK_INTERNAL_URI, is_http_url(server.get("AutoDiscoverServiceInternalUri")))]

    @staticmethod
    def _client_access(ctx: Context, parameters: dict[str, str]) -> CmdletAnswer:
        cmdlet = ctx.state.client_access_cmdlet
        try:
            answer = ctx.run("exchange", cmdlet, parameters, CLIENT_ACCESS[cmdlet])
        except CollectError as exc:
            if cmdlet != SERVICE_CMDLET or not is_command_not_found(exc):
                raise
            cmdlet = SERVER_CMDLET
            answer = ctx.run("exchange", cmdlet, parameters, CLIENT_ACCESS[cmdlet])
        ctx.state.client_access_cmdlet = cmdlet
        return answer

    def _hand_over_um_servers(self, ctx: Context) -> None:
        if ctx.state.no_um_dial_plan_cmdlet:
            return
        try:
            plans = ctx.run("exchange", DIAL_PLAN_CMDLET, None, DIAL_PLAN).objects
        except CollectError as exc:
            if not is_command_not_found(exc):
                raise
            ctx.state.no_um_dial_plan_cmdlet = True
            ctx.log.info("%s does not exist on this endpoint: SipName UM servers are not read here", DIAL_PLAN_CMDLET)
            return
        ctx.post(SIPNAME_UM_SERVERS, known_um_servers(sipname_um_servers(plans)))
