"""Checks L2 and L4 as a Lync front end sees them: OWA's trusted application, OAuth's autodiscover URL.

L2. OWA talks to Lync as a trusted application: a trusted application pool for the OWA servers and a
trusted application ``OutlookWebApp`` on it (``Get-CsTrustedApplicationPool``,
``Get-CsTrustedApplication``). Exchange servers that run the UM call router and UM service and host a
SipName UM dial plan are autodiscovered by Lync instead (added to its Known Servers list); a trusted
application pool listing one of them as well gives the topology two entries for one computer and
breaks OWA integration. Which Exchange servers those are is Exchange's knowledge, not something a
front end can be asked: the ``exchange_topology`` collector reads ``Get-UMDialPlan`` on an Exchange
target and hands the servers of the SipName dial plans to this collector's jobs inside the exporter
process (:class:`UmServerReports`; no job opens a session to another target). The setting
``sipname_um_servers`` names them instead, for an exporter that does not watch Exchange. With neither,
the comparison is not made (the check is not exported).

The pools that host OutlookWebApp must have as Registrar the pool IMServerName names (001); this job
compares them with ``global.lync_pool_fqdn`` and hands them (FQDN, computers) to the ``im_certificate``
jobs, which look for the pool's FQDN in each OWA server's IM certificate
(:mod:`collectors.sources.trusted_pools`).

L4. ``Get-CsOAuthConfiguration`` ``ExchangeAutodiscoverUrl`` must point at
``.../autodiscover/autodiscover.svc`` (``autodiscover.xml`` is a documented trap), and its host name
must resolve. The name is resolved from the exporter, in a thread bounded by ``dns_timeout`` and the
job's deadline. That only says something about the estate when the exporter uses the estate's DNS:
with ``resolve_autodiscover: auto`` (the default) the check runs only when the exporter also resolves
the front end's own host name; ``always`` and ``never`` force it on or off.

Every front end reads the same Central Management Store, so every front end reports the same answers.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Literal, Mapping

from pydantic import Field as SettingField
from pydantic import field_validator

from collectors.config_checks import CONFIG_CHECK_OK, check_sample
from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    Duration,
    ErrorKind,
    Field,
    Sample,
    Shape,
)
from collectors.helpers.endpoints import LYNC
from collectors.helpers.names import fqdn, ip_address, is_host_name
from collectors.helpers.text import clean_text
from collectors.sources.trusted_pools import OWA_TRUSTED_POOLS
from collectors.topology.shared import SIPNAME_UM_SERVERS, is_http_url, split_url
from collectors.topology.trusted_pool import (
    as_fact,
    registrar_is_lync_pool,
    settings_as_001,
)

POOL_CMDLET = "Get-CsTrustedApplicationPool"
APPLICATION_CMDLET = "Get-CsTrustedApplication"
OAUTH_CMDLET = "Get-CsOAuthConfiguration"

CHECK_NOT_DUPLICATING_UM = "trusted_pool_not_duplicating_um"
CHECK_OWA_APPLICATION = "owa_trusted_application_present"
CHECK_AUTODISCOVER_SVC = "oauth_autodiscover_url_svc"
CHECK_AUTODISCOVER_RESOLVES = "autodiscover_host_resolves"
CHECK_REGISTRAR = "owa_trusted_pool_registrar_is_lync_pool"

OWA_APPLICATION_IDS = ("urn:application:outlookwebapp", "outlookwebapp")
AUTODISCOVER_SVC_PATH = "/autodiscover/autodiscover.svc"
# Time left for the snapshot store after the lookups, within the job's deadline.
DEADLINE_MARGIN_SECONDS = 0.5

POOL = Shape(
    POOL_CMDLET,
    (
        Field("Identity", "str", required=False, nullable=True),
        Field("PoolFqdn", "str", required=False, nullable=True),
        Field("Computers", "list", required=False, nullable=True),
        Field("Registrar", "str", required=False, nullable=True),
        Field("RequiresReplication", "bool", required=False, nullable=True),
        Field("ThrottleAsServer", "bool", required=False, nullable=True),
        Field("TreatAsAuthenticated", "bool", required=False, nullable=True),
    ),
)
APPLICATION = Shape(
    APPLICATION_CMDLET,
    (
        Field("Identity", "str", required=False, nullable=True),
        Field("ApplicationId", "str", required=False, nullable=True),
        Field("TrustedApplicationPoolFqdn", "str", required=False, nullable=True),
        # The port the external service (OWA) runs the application on (Microsoft's New-CsTrustedApplication).
        Field("Port", "int", required=False, nullable=True),
    ),
)
OAUTH = Shape(
    OAUTH_CMDLET,
    (
        Field("Identity", "str", required=False, nullable=True),
        Field("ExchangeAutodiscoverUrl", "str", required=False, nullable=True),
    ),
)

# (host name, seconds) -> True (resolves), False (does not), None (no answer in time).
Resolver = Callable[[str, float], "bool | None"]


class LyncTopologySettings(CollectorSettings):
    # FQDNs of the Exchange servers Lync autodiscovers (UM call router + UM service, SipName dial plan).
    # Unset: what an exchange_topology job of this exporter last read from Get-UMDialPlan.
    sipname_um_servers: tuple[str, ...] | None = None
    resolve_autodiscover: Literal["auto", "always", "never"] = "auto"
    dns_timeout: Duration = SettingField(default=5.0, gt=0)

    @field_validator("sipname_um_servers")
    @classmethod
    def _host_names(cls, servers: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if servers is None:
            return None
        names = tuple(fqdn(server) for server in servers)
        bad = [server for server, name in zip(servers, names) if not is_host_name(name)]
        if bad:
            raise ValueError(f"not host names: {bad}")
        return names


# --- pure parts ---------------------------------------------------------------------------------


def same_computer(a: str, b: str) -> bool:
    """FQDNs equal, or one side is a short name (no dot) equal to the other's first label."""
    if a == b:
        return True
    if "." in a and "." in b:
        return False
    return a.split(".", 1)[0] == b.split(".", 1)[0]


def pool_names(pool: Mapping[str, Any]) -> tuple[str, list[str]]:
    """A trusted application pool's FQDN and the computers it lists (a one-computer pool may list none)."""
    name = fqdn(pool.get("PoolFqdn") or pool.get("Identity"))
    computers = [fqdn(c) for c in (pool.get("Computers") or []) if fqdn(c)]
    return name, computers


def duplicated_um_servers(pools: Iterable[Mapping[str, Any]], um_servers: Iterable[str]) -> list[str]:
    """The pool entries (pool FQDN or computer) that name a server Lync already autodiscovers."""
    um = [fqdn(server) for server in um_servers]
    duplicates = []
    for pool in pools:
        name, computers = pool_names(pool)
        for entry in [name, *computers]:
            if entry and any(same_computer(entry, server) for server in um) and entry not in duplicates:
                duplicates.append(entry)
    return duplicates


def is_owa_application(app: Mapping[str, Any]) -> bool:
    return clean_text(app.get("ApplicationId")).casefold() in OWA_APPLICATION_IDS


def application_pool(app: Mapping[str, Any]) -> str:
    """The pool an application lives on: TrustedApplicationPoolFqdn, else the Identity's "<pool>/urn:..."."""
    pool = fqdn(app.get("TrustedApplicationPoolFqdn"))
    if pool:
        return pool
    identity = clean_text(app.get("Identity"))
    return fqdn(identity.split("/", 1)[0]) if "/" in identity else ""


def owa_pools(apps: Iterable[Mapping[str, Any]], pools: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The trusted application pools that host an OutlookWebApp application."""
    hosting = {application_pool(app) for app in apps if is_owa_application(app)}
    return [pool for pool in pools if pool_names(pool)[0] in hosting]


def owa_application_ports(apps: Iterable[Mapping[str, Any]]) -> dict[str, tuple[int, ...]]:
    """Pool FQDN -> the ports of the OutlookWebApp applications on it (the TLS probe connects there)."""
    ports: dict[str, set[int]] = {}
    for app in apps:
        port = app.get("Port")
        if is_owa_application(app) and isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536:
            ports.setdefault(application_pool(app), set()).add(port)
    return {pool: tuple(sorted(found)) for pool, found in ports.items()}


def owa_application_present(apps: Iterable[Mapping[str, Any]], pools: Iterable[Mapping[str, Any]]) -> bool:
    """An OutlookWebApp application on a pool that exists (an application naming no pool counts)."""
    known = {pool_names(pool)[0] for pool in pools}
    for app in apps:
        if is_owa_application(app):
            pool = application_pool(app)
            if not pool or pool in known:
                return True
    return False


def autodiscover_url_is_svc(url: Any) -> bool:
    """``https://autodiscover.contoso.com/autodiscover/autodiscover.svc`` (any case, a trailing / allowed)."""
    parts = split_url(url)
    if parts is None or not is_http_url(url):
        return False
    return parts.path.rstrip("/").casefold().endswith(AUTODISCOVER_SVC_PATH)


def global_autodiscover_url(configurations: list[Mapping[str, Any]]) -> Any:
    """ExchangeAutodiscoverUrl of the Global OAuth configuration (the only scope there is), else the first."""
    chosen = next((c for c in configurations if clean_text(c.get("Identity")).casefold() == "global"), None)
    if chosen is None and configurations:
        chosen = configurations[0]
    return chosen.get("ExchangeAutodiscoverUrl") if chosen is not None else None


def url_host(url: Any) -> str:
    parts = split_url(url)
    return (parts.hostname or "").rstrip(".") if parts is not None else ""


def resolve(host: str, timeout: float) -> bool | None:
    """getaddrinfo in a daemon thread, waited for at most ``timeout`` seconds.

    getaddrinfo cannot be interrupted: a lookup still running at the timeout is left to finish on
    its own (the resolver's own timeouts end it) and its answer is ignored.
    """
    if ip_address(host) is not None:
        return True
    if not is_host_name(host.casefold()):
        return False
    answer: dict[str, bool] = {}

    def lookup() -> None:
        try:
            answer["resolved"] = bool(socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP))
        except (OSError, UnicodeError):  # socket.gaierror is an OSError
            answer["resolved"] = False

    thread = threading.Thread(target=lookup, name=f"dns-lookup {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return answer.get("resolved")


# --- the collector ------------------------------------------------------------------------------


@dataclass
class LyncTopologyState:
    dns_skip_logged: bool = False  # said once that the exporter does not resolve the estate's names


Context = CollectContext[LyncTopologySettings, LyncTopologyState]


class LyncTopologyCollector(Collector[LyncTopologySettings, LyncTopologyState]):
    name = "lync_topology"
    roles = frozenset({"lync_frontend"})
    settings_model = LyncTopologySettings
    state_model = LyncTopologyState
    metrics = (CONFIG_CHECK_OK,)
    cmdlets = ((LYNC, POOL_CMDLET), (LYNC, APPLICATION_CMDLET), (LYNC, OAUTH_CMDLET))
    cmdlet_parameters = {POOL_CMDLET: {}, APPLICATION_CMDLET: {}, OAUTH_CMDLET: {}}
    posts_facts = {"lync_frontend": (OWA_TRUSTED_POOLS,)}
    reads_facts = {"lync_frontend": (SIPNAME_UM_SERVERS,)}

    @classmethod
    def facts_read(cls, roles: Iterable[str], settings: LyncTopologySettings) -> frozenset[str]:
        # Servers named in the settings are used instead of an Exchange job's.
        read = super().facts_read(roles, settings)
        return read if settings.sipname_um_servers is None else read - {SIPNAME_UM_SERVERS.name}

    def post_facts(self, ctx: Context) -> None:
        """The OWA trusted application pools alone (two calls: no OAuth, no DNS), for the im_certificate
        jobs of a shard that polls no front end."""
        pools = ctx.run(LYNC, POOL_CMDLET, None, POOL).objects
        apps = ctx.run(LYNC, APPLICATION_CMDLET, None, APPLICATION).objects
        ctx.post(OWA_TRUSTED_POOLS, as_fact((pool_names(pool) for pool in owa_pools(apps, pools)),
                                           owa_application_ports(apps)))

    def __init__(self, resolver: Resolver = resolve) -> None:
        # Injectable so tests can decide what resolves without a DNS server.
        self.resolver = resolver

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        pools = ctx.run(LYNC, POOL_CMDLET, None, POOL).objects
        apps = ctx.run(LYNC, APPLICATION_CMDLET, None, APPLICATION).objects
        url = global_autodiscover_url(ctx.run(LYNC, OAUTH_CMDLET, None, OAUTH).objects)

        samples = []
        um_servers = settings.sipname_um_servers
        if um_servers is None:
            posted = ctx.facts.fresh(SIPNAME_UM_SERVERS)
            um_servers = posted.value if posted is not None else None
        if um_servers is not None:
            duplicates = duplicated_um_servers(pools, um_servers)
            if duplicates:
                ctx.log.debug("trusted application pools list autodiscovered UM servers: %s", ", ".join(duplicates))
            samples.append(check_sample(CHECK_NOT_DUPLICATING_UM, not duplicates))
        covered_by_um = bool(um_servers)
        samples.append(check_sample(CHECK_OWA_APPLICATION, covered_by_um or owa_application_present(apps, pools)))
        samples += self._owa_pool_checks(ctx, apps, pools)
        samples.append(check_sample(CHECK_AUTODISCOVER_SVC, autodiscover_url_is_svc(url)))
        resolves = self._autodiscover_resolves(ctx, settings, url)
        if resolves is not None:
            samples.append(check_sample(CHECK_AUTODISCOVER_RESOLVES, resolves))
        return samples

    @staticmethod
    def _owa_pool_checks(ctx: Context, apps: list[Mapping[str, Any]], pools: list[Mapping[str, Any]]) -> list[Sample]:
        """Hand the OWA pools to the Exchange jobs (E3 compares the IM certificate with them) and judge
        their settings; nothing to judge while no pool hosts OutlookWebApp (L2's own check says so)."""
        owa = owa_pools(apps, pools)
        ctx.post(OWA_TRUSTED_POOLS, as_fact((pool_names(pool) for pool in owa), owa_application_ports(apps)))
        samples = []
        if owa and ctx.estate.lync_pool_fqdn:
            samples.append(check_sample(CHECK_REGISTRAR, registrar_is_lync_pool(owa, ctx.estate.lync_pool_fqdn)))
        samples += [check_sample(check, ok) for check, ok in settings_as_001(owa).items()]
        return samples

    def _autodiscover_resolves(self, ctx: Context, settings: LyncTopologySettings, url: Any) -> bool | None:
        """Whether the autodiscover host resolves; None when the check is not run."""
        mode = settings.resolve_autodiscover
        if mode == "never":
            return None
        if mode == "auto":
            own = ctx.target.host.rstrip(".")
            if ip_address(own) is not None or not self._lookup(ctx, settings, own):
                if not ctx.state.dns_skip_logged:
                    ctx.state.dns_skip_logged = True
                    ctx.log.info("the exporter does not resolve %s: not judging whether the autodiscover host "
                                 "resolves (set resolve_autodiscover: always to force it)", own)
                return None
        host = url_host(url)
        if not host:
            return False
        return bool(self._lookup(ctx, settings, host))

    def _lookup(self, ctx: Context, settings: LyncTopologySettings, host: str) -> bool | None:
        budget = min(settings.dns_timeout, ctx.deadline.remaining() - DEADLINE_MARGIN_SECONDS)
        if budget <= 0:
            raise CollectError(ErrorKind.TIMEOUT, f"DNS lookup of {host}", "no time left before the job's deadline")
        answer = self.resolver(host, budget)
        if answer is None:
            ctx.log.warning("DNS lookup of %s gave no answer within %.1fs", host, budget)
        return answer
