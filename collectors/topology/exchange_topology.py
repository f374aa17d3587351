"""What Exchange tells Lync, read on an Exchange server: checks L4, L2 (Exchange side) and V1.

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
Only the servers Lync autodiscovers are handed over: each SipName server is judged by its own role and
version (``Get-ExchangeServer -Identity``; :mod:`collectors.topology.exchange_servers`), since 001's
condition is both UM services on one computer, which a 2013 split CAS/Mailbox server does not meet.

L2 per server. On every Exchange target (client access or mailbox) ``Get-ExchangeServer -Identity
<host>`` gives this server's roles and version (exported as ``lync_owa_exchange_server_info``). A
server with the Mailbox role runs OWA's IM endpoint and must be known to Lync
(``owa_server_known_to_lync``): autodiscovered as above, or in a trusted application pool hosting
OutlookWebApp that a front-end job handed over. One autodiscovered server covers no other.

V1. This server's version against the Lync servers' ProductVersions a front end's ``cms_replication``
job handed over (:mod:`collectors.topology.version_pairs`): ``exchange_lync_versions_supported``.
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
    MetricSpec,
    Sample,
    Shape,
    label_value,
)
from collectors.helpers.names import fqdn
from collectors.helpers.text import clean_text
from collectors.sources.lync_versions import LYNC_SERVER_VERSIONS
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS, pools_of_server
from collectors.topology.exchange_servers import (
    ExchangeServerInfo,
    hosts_owa_im_endpoint,
    read_server,
    runs_both_um_services,
)
from collectors.topology.shared import (
    SIPNAME_UM_SERVERS,
    is_http_url,
    known_um_servers,
    same_computer,
)
from collectors.topology.version_pairs import unsupported_lync_servers

SERVICE_CMDLET = "Get-ClientAccessService"  # Exchange 2016 and later
SERVER_CMDLET = "Get-ClientAccessServer"  # Exchange 2013 (deprecated later)
DIAL_PLAN_CMDLET = "Get-UMDialPlan"  # Exchange 2013 and 2016
EXCHANGE_SERVER_CMDLET = "Get-ExchangeServer"
NOT_FOUND_ID = "ManagementObjectNotFoundException"
CHECK_INTERNAL_URI = "autodiscover_internal_uri_set"
CHECK_KNOWN_TO_LYNC = "owa_server_known_to_lync"
CHECK_VERSIONS_SUPPORTED = "exchange_lync_versions_supported"
SIPNAME = "sipname"
CLIENT_ACCESS_ROLE, MAILBOX_ROLE = "exchange_client_access", "exchange_mailbox"
# A dial plan lists a handful of UM servers; one Get-ExchangeServer each, so bound them.
MAX_UM_SERVERS_READ = 20

CLIENT_ACCESS_FIELDS = (
    Field("Name", "str", required=False, nullable=True),
    Field("Fqdn", "str", required=False, nullable=True),
    Field("AutoDiscoverServiceInternalUri", "str", required=False, nullable=True),
)
CLIENT_ACCESS = {cmdlet: Shape(cmdlet, CLIENT_ACCESS_FIELDS) for cmdlet in (SERVICE_CMDLET, SERVER_CMDLET)}
EXCHANGE_SERVER = Shape(
    EXCHANGE_SERVER_CMDLET,
    (
        Field("Name", "str", required=False, nullable=True),
        Field("Fqdn", "str", required=False, nullable=True),
        Field("ServerRole", "str", required=False, nullable=True),
        Field("AdminDisplayVersion", "any", required=False, nullable=True),
    ),
)
SERVER_INFO = MetricSpec(
    "lync_owa_exchange_server_info",
    "gauge",
    "1 per Exchange server: its product (2013, 2016, 2019), build and roles, as Get-ExchangeServer gives them.",
    ("product", "build", "server_role"),
)
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
    unjudged_um_servers: tuple[str, ...] = ()  # SipName UM servers last warned about (roles unreadable)
    server_not_found_logged: bool = False  # said once that Get-ExchangeServer does not know the host


Context = CollectContext[CollectorSettings, ExchangeTopologyState]


class ExchangeTopologyCollector(Collector[CollectorSettings, ExchangeTopologyState]):
    name = "exchange_topology"
    roles = frozenset({CLIENT_ACCESS_ROLE, MAILBOX_ROLE})
    state_model = ExchangeTopologyState
    metrics = (CONFIG_CHECK_OK, SERVER_INFO)
    cmdlets = (("exchange", SERVICE_CMDLET), ("exchange", SERVER_CMDLET), ("exchange", DIAL_PLAN_CMDLET),
               ("exchange", EXCHANGE_SERVER_CMDLET))
    cmdlet_parameters = {SERVICE_CMDLET: {"Identity": None}, SERVER_CMDLET: {"Identity": None}, DIAL_PLAN_CMDLET: {},
                         EXCHANGE_SERVER_CMDLET: {"Identity": None}}
    posts_facts = {CLIENT_ACCESS_ROLE: (SIPNAME_UM_SERVERS,), MAILBOX_ROLE: (SIPNAME_UM_SERVERS,)}
    reads_facts = {role: (SIPNAME_UM_SERVERS, OWA_TRUSTED_POOLS, LYNC_SERVER_VERSIONS)
                   for role in (CLIENT_ACCESS_ROLE, MAILBOX_ROLE)}

    def post_facts(self, ctx: Context) -> None:
        """The SipName UM servers Lync autodiscovers alone (Get-UMDialPlan, then Get-ExchangeServer for
        each of their servers), for a shard that polls no Exchange server."""
        self._hand_over_um_servers(ctx, {})

    def collect(self, ctx: Context) -> list[Sample]:
        host = ctx.target.host
        samples: list[Sample] = []
        if CLIENT_ACCESS_ROLE in ctx.target.roles:
            samples.append(self._autodiscover_uri(ctx, host))
        me = self._this_exchange_server(ctx, host)
        autodiscovered = self._hand_over_um_servers(ctx, {me.name: me} if me else {})
        if me is None:
            return samples  # the L4 check stands on its own; the per-server checks need the server
        samples.append(SERVER_INFO.sample(1, product=me.product or "unknown", build=me.build or "unknown",
                                          server_role=label_value(",".join(sorted(me.roles))) or "unknown"))
        samples += self._known_to_lync(ctx, me, autodiscovered)
        samples += self._version_pair(ctx, me)
        return samples

    def _autodiscover_uri(self, ctx: Context, host: str) -> Sample:
        answer = self._client_access(ctx, {"Identity": host})
        server = this_server(answer.objects, host)
        if server is None:
            where = f"{ctx.where('exchange')} {ctx.state.client_access_cmdlet}"
            raise CollectError(ErrorKind.SHAPE, where, f"no client access server {host} among {len(answer.objects)}")
        return check_sample(CHECK_INTERNAL_URI, is_http_url(server.get("AutoDiscoverServiceInternalUri")))

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

    @staticmethod
    def _exchange_servers(ctx: Context, identity: str) -> list[ExchangeServerInfo]:
        answer = ctx.run("exchange", EXCHANGE_SERVER_CMDLET, {"Identity": identity}, EXCHANGE_SERVER,
                         accept_error_ids=(NOT_FOUND_ID,))
        return [read_server(obj) for obj in answer.objects]

    def _this_exchange_server(self, ctx: Context, host: str) -> ExchangeServerInfo | None:
        """This target's server; None (warned once) when Exchange does not know the name (an alias, an IP)."""
        servers = self._exchange_servers(ctx, host)
        wanted = fqdn(host)
        mine = [s for s in servers if s.name in (wanted, wanted.split(".", 1)[0])]
        if not mine and len(servers) == 1:
            mine = servers  # -Identity named one server: it is this one, whatever name it reports
        if len(mine) != 1:
            if not ctx.state.server_not_found_logged:
                ctx.log.warning("%s -Identity %s found %d servers: the checks of this server's roles and version "
                                "are not run (set the target's host to the server's FQDN)",
                                EXCHANGE_SERVER_CMDLET, host, len(servers))
            ctx.state.server_not_found_logged = True
            return None
        ctx.state.server_not_found_logged = False
        if mine[0].version is None:
            ctx.log.warning("%s answered no readable AdminDisplayVersion for %s", EXCHANGE_SERVER_CMDLET, host)
        return mine[0]

    def _hand_over_um_servers(self, ctx: Context, known: dict[str, ExchangeServerInfo]) -> tuple[str, ...] | None:
        """Post (and return) the SipName UM servers Lync autodiscovers: those that, by their own role and
        version, run both UM services (an endpoint without Get-UMDialPlan returns what another job posted)."""
        if ctx.state.no_um_dial_plan_cmdlet:
            return self._posted_um_servers(ctx)
        try:
            plans = ctx.run("exchange", DIAL_PLAN_CMDLET, None, DIAL_PLAN).objects
        except CollectError as exc:
            if not is_command_not_found(exc):
                raise
            ctx.state.no_um_dial_plan_cmdlet = True
            ctx.log.info("%s does not exist on this endpoint: SipName UM servers are not read here", DIAL_PLAN_CMDLET)
            return self._posted_um_servers(ctx)
        autodiscovered, unjudged = [], []
        for name in sipname_um_servers(plans)[:MAX_UM_SERVERS_READ]:
            server = next((s for n, s in known.items() if same_computer(n, name)), None)
            if server is None:
                found = self._exchange_servers(ctx, name)
                server = found[0] if len(found) == 1 else None
            both = runs_both_um_services(server) if server is not None else None
            if both:
                autodiscovered.append(server.name)
            elif both is None:
                unjudged.append(name)
        if tuple(unjudged) != ctx.state.unjudged_um_servers and unjudged:
            ctx.log.warning("SipName UM servers whose role or version %s does not tell: %s (not counted as "
                            "autodiscovered by Lync)", EXCHANGE_SERVER_CMDLET, ", ".join(unjudged))
        ctx.state.unjudged_um_servers = tuple(unjudged)
        value = known_um_servers(autodiscovered)
        ctx.post(SIPNAME_UM_SERVERS, value)
        return value

    @staticmethod
    def _posted_um_servers(ctx: Context) -> tuple[str, ...] | None:
        posted = ctx.facts.fresh(SIPNAME_UM_SERVERS)
        return posted.value if posted is not None else None

    @staticmethod
    def _known_to_lync(ctx: Context, me: ExchangeServerInfo, autodiscovered: tuple[str, ...] | None) -> list[Sample]:
        """L2 for this server: Lync knows it, by UM autodiscovery or a pool hosting OutlookWebApp that stands
        for it. Judged on a server that runs OWA's IM endpoint (the Mailbox role), once a front end has
        handed the pools over."""
        pools = ctx.facts.fresh(OWA_TRUSTED_POOLS)
        if pools is None or not hosts_owa_im_endpoint(me):
            return []
        if not pools.value and not autodiscovered:
            return []  # neither path exists at all: the front end's owa_trusted_application_present says so
        by_um = any(same_computer(me.name, server) for server in autodiscovered or ())
        by_pool = bool(pools_of_server(pools.value, me.name))
        if not (by_um or by_pool):
            ctx.log.debug("%s is neither autodiscovered through UM nor in a trusted pool hosting OutlookWebApp", me.name)
        return [check_sample(CHECK_KNOWN_TO_LYNC, by_um or by_pool)]

    @staticmethod
    def _version_pair(ctx: Context, me: ExchangeServerInfo) -> list[Sample]:
        """Whether Microsoft supports OWA IM between this server's Exchange and the Lync servers a front end
        read; judged when both versions are known."""
        lync = ctx.facts.fresh(LYNC_SERVER_VERSIONS)
        if lync is None or me.version is None:
            return []
        unsupported = unsupported_lync_servers(me.version, lync.value)
        if unsupported:
            ctx.log.debug("Exchange %s with %s: not supported for IM in OWA", me.build, ", ".join(unsupported))
        return [check_sample(CHECK_VERSIONS_SUPPORTED, not unsupported)]
