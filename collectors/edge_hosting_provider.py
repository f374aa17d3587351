"""Checks H1 and H2: the Exchange Online hosting provider on the Edge, federation, and drift from the CMS.

H1. ``Get-CsHostingProvider -LocalStore`` on an Edge reads the Edge's own replica of the Central
Management Store, which is what the Edge acts on. The Exchange Online provider (found by its
ProxyFqdn ``exap.um.outlook.com``, or ``exap.um.partner.outlook.cn`` for Office 365 operated by
21Vianet, or by the ``identity`` setting) must be there with Enabled, EnabledSharedAddressSpace,
HostsOCSUsers False, IsLocal False and VerificationLevel UseSourceVerification.
H2. ``Get-CsAccessEdgeConfiguration -LocalStore``: AllowFederatedUsers must be True, and federation must be
routed by DNS SRV records (RoutingMethod UseDnsSrvRouting): a default route (UseDefaultRouting) can only
be assigned once every hosting provider is deleted (Microsoft's reference for Set-CsAccessEdgeConfiguration,
-DefaultRouteFqdn), so it cannot coexist with the Exchange Online provider H1 requires.

Drift: where each copy is read. A real Edge is not a domain member and cannot reach the CMS (it only
holds the replica the front end's File Transfer Agent pushes to it), and a front end cannot read an
Edge's replica. So the CMS copy is read on a front end and the Edge's copy on the Edge, each by its
own job with its own target's endpoint and credentials. This collector runs on both roles:

- on a front end it reads the provider from the CMS (``Get-CsHostingProvider``, no -LocalStore) and
  hands that copy, inside this exporter process, to the Edge jobs;
- on an Edge it reads its local store and compares it, field by field, with the newest CMS copy.

No job opens a session to another target, so an Edge that refuses or hangs fails only its own job
and no credential travels between jobs. The comparison is exported by the Edge's own job (``target``
is the Edge), so every configured Edge is compared without a list of Edges to maintain. A CMS copy
is used for as long as the data of the job that read it would be served (``staleness_intervals``
times its interval); without one, the Edge reports ``cms_compared`` 0 and no comparison. On its
first run an Edge job may start before any front-end job has read the CMS, so it waits for a copy
(at most ``cms_copy_wait``, within its deadline). One exporter configuration watches one Lync
organisation (as ``global.lync_pool_fqdn`` already assumes): every front end reads the same CMS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from pydantic import Field as SettingField
from pydantic import field_validator

from collectors.contract import (
    CollectContext,
    CollectError,
    Collector,
    CollectorSettings,
    ErrorKind,
    Fact,
    Field,
    MetricSpec,
    NonNegativeDuration,
    Posted,
    Sample,
    Shape,
)
from collectors.helpers.endpoints import LYNC, WINDOWS
from collectors.helpers.names import fqdn
from collectors.helpers.text import clean_text

PROVIDER_CMDLET = "Get-CsHostingProvider"
ACCESS_EDGE_CMDLET = "Get-CsAccessEdgeConfiguration"
LOCAL_STORE = {"LocalStore": None}  # a switch parameter
EXCHANGE_ONLINE_PROXY_FQDNS = ("exap.um.outlook.com", "exap.um.partner.outlook.cn")
REQUIRED_VERIFICATION_LEVEL = "usesourceverification"
# Time kept back from the deadline when waiting for a CMS copy, to hand the result over.
DEADLINE_MARGIN_SECONDS = 1.0

HOSTING_PROVIDER = Shape(
    PROVIDER_CMDLET,
    (
        Field("Identity", "str", required=False, nullable=True),
        Field("Name", "str", required=False, nullable=True),
        Field("ProxyFqdn", "str", nullable=True),
        Field("VerificationLevel", "str", nullable=True),
        Field("Enabled", "bool", nullable=True),
        Field("EnabledSharedAddressSpace", "bool", nullable=True),
        Field("HostsOCSUsers", "bool", nullable=True),
        Field("IsLocal", "bool", nullable=True),
        Field("AutodiscoverUrl", "str", required=False, nullable=True),
        Field("SipClientPort", "int", required=False, nullable=True),
    ),
)
ACCESS_EDGE = Shape(
    ACCESS_EDGE_CMDLET,
    (
        Field("Identity", "str", required=False, nullable=True),
        Field("AllowFederatedUsers", "bool", nullable=True),
        # UseDnsSrvRouting or UseDefaultRouting (Microsoft's example output of Get-CsAccessEdgeConfiguration).
        Field("RoutingMethod", "str", required=False, nullable=True),
    ),
)
DNS_SRV_ROUTING = "usednssrvrouting"
DEFAULT_ROUTING = "usedefaultrouting"

# The settings H1 requires, by label value.
SETTINGS_CHECKED = (
    "enabled",
    "enabled_shared_address_space",
    "hosts_ocs_users",
    "is_local",
    "verification_level",
    "proxy_fqdn",
)
# The provider's fields compared between the Edge's copy and the CMS, by label value.
COMPARED_FIELDS = (
    "proxy_fqdn",
    "verification_level",
    "enabled",
    "enabled_shared_address_space",
    "hosts_ocs_users",
    "is_local",
    "autodiscover_url",
    "sip_client_port",
)
DRIFT_FIELDS = ("present",) + COMPARED_FIELDS

EDGE_PRESENT = MetricSpec(
    "lync_owa_edge_hosting_provider_present",
    "gauge",
    "1 when the Edge's local store (Get-CsHostingProvider -LocalStore) holds the Exchange Online hosting provider.",
)
SETTING_OK = MetricSpec(
    "lync_owa_edge_hosting_provider_setting_ok",
    "gauge",
    "1 when the Edge's copy of the Exchange Online hosting provider has the required value of the setting, else 0.",
    ("setting",),
)
FEDERATION_ENABLED = MetricSpec(
    "lync_owa_edge_federation_enabled",
    "gauge",
    "1 when the Edge's access edge configuration allows federated users (AllowFederatedUsers), else 0.",
)
FEDERATION_DNS_SRV_ROUTING = MetricSpec(
    "lync_owa_edge_federation_dns_srv_routing",
    "gauge",
    "1 when the Access Edge routes federation by DNS SRV records (RoutingMethod UseDnsSrvRouting), 0 with a "
    "default route (UseDefaultRouting); absent when the answer names no routing method.",
)
CMS_COMPARED = MetricSpec(
    "lync_owa_edge_hosting_provider_cms_compared",
    "gauge",
    "1 when a fresh CMS copy of the hosting provider, read by a front end's job, was compared with the Edge's copy.",
)
MATCHES_CMS = MetricSpec(
    "lync_owa_edge_hosting_provider_matches_cms",
    "gauge",
    "1 when the field of the Edge's copy of the Exchange Online hosting provider equals the CMS, else 0.",
    ("field",),
)
HYBRID_APPLICABLE = MetricSpec(
    "lync_owa_hybrid_applicable",
    "gauge",
    "1 when hybrid IM with Exchange Online applies, so the Edge's hosting provider and federation checks judge: "
    "declared (global hybrid: true), or with hybrid: auto when the CMS or the Edge's local store holds the "
    "Exchange Online hosting provider; else 0 (the checks are not applicable and never page).",
)
CMS_PRESENT = MetricSpec(
    "lync_owa_cms_hosting_provider_present",
    "gauge",
    "1 when the Central Management Store, read on this front end, holds the Exchange Online hosting provider.",
)

class EdgeHostingProviderSettings(CollectorSettings):
    # Select the provider by its Identity instead of by its ProxyFqdn.
    identity: str | None = SettingField(default=None, min_length=1)
    # ProxyFqdn values that mean Exchange Online (worldwide; Office 365 operated by 21Vianet).
    proxy_fqdns: tuple[str, ...] = SettingField(default=EXCHANGE_ONLINE_PROXY_FQDNS, min_length=1)
    # On an Edge job's first run: how long to wait for a front end's job to read the CMS.
    cms_copy_wait: NonNegativeDuration = 5.0

    @field_validator("proxy_fqdns")
    @classmethod
    def _normalised_fqdns(cls, fqdns: tuple[str, ...]) -> tuple[str, ...]:
        normalised = tuple(fqdn(f) for f in fqdns)
        if not all(normalised):
            raise ValueError("proxy_fqdns must not contain an empty name")
        return normalised


@dataclass(frozen=True)
class Provider:
    """One hosting provider as read, normalised for checks and comparison."""

    identity: str
    proxy_fqdn: str
    verification_level: str  # case-folded enum name
    enabled: bool | None
    enabled_shared_address_space: bool | None
    hosts_ocs_users: bool | None
    is_local: bool | None
    autodiscover_url: str  # "" when null
    sip_client_port: int | None

    @classmethod
    def from_answer(cls, obj: Mapping[str, Any]) -> "Provider":
        return cls(
            identity=clean_text(obj.get("Identity")) or clean_text(obj.get("Name")),
            proxy_fqdn=fqdn(obj.get("ProxyFqdn")),
            verification_level=clean_text(obj.get("VerificationLevel")).casefold(),
            enabled=obj.get("Enabled"),
            enabled_shared_address_space=obj.get("EnabledSharedAddressSpace"),
            hosts_ocs_users=obj.get("HostsOCSUsers"),
            is_local=obj.get("IsLocal"),
            autodiscover_url=clean_text(obj.get("AutodiscoverUrl")),
            sip_client_port=obj.get("SipClientPort"),
        )


def read_providers(objects: Iterable[Mapping[str, Any]]) -> list[Provider]:
    """Normalised providers, the first of each identity (identities are case-insensitive)."""
    providers: dict[str, Provider] = {}
    for obj in objects:
        provider = Provider.from_answer(obj)
        providers.setdefault(provider.identity.casefold(), provider)
    return list(providers.values())


def select_provider(providers: Iterable[Provider], identity: str | None, proxy_fqdns: Iterable[str]) -> Provider | None:
    """The Exchange Online provider: by Identity when configured, else by ProxyFqdn ("Exchange Online" first)."""
    providers = list(providers)
    if identity is not None:
        wanted = clean_text(identity).casefold()
        return next((p for p in providers if p.identity.casefold() == wanted), None)
    accepted = set(proxy_fqdns)
    candidates = sorted(
        (p for p in providers if p.proxy_fqdn in accepted),
        key=lambda p: (p.identity.casefold() != "exchange online", p.identity.casefold()),
    )
    return candidates[0] if candidates else None


def setting_checks(provider: Provider, proxy_fqdns: Iterable[str]) -> dict[str, bool]:
    """Each setting H1 requires -> whether the provider has it (a null value is not the required one)."""
    return {
        "enabled": provider.enabled is True,
        "enabled_shared_address_space": provider.enabled_shared_address_space is True,
        "hosts_ocs_users": provider.hosts_ocs_users is False,
        "is_local": provider.is_local is False,
        "verification_level": provider.verification_level == REQUIRED_VERIFICATION_LEVEL,
        "proxy_fqdn": provider.proxy_fqdn in set(proxy_fqdns),
    }


def routes_by_dns_srv(routing_method: Any) -> bool | None:
    """RoutingMethod -> True (DNS SRV), False (a default route), None (absent or a value not documented)."""
    name = clean_text(routing_method).casefold()
    return {DNS_SRV_ROUTING: True, DEFAULT_ROUTING: False}.get(name)


def compare_with_cms(local: Provider | None, cms: Provider | None) -> dict[str, bool]:
    """Field -> equal. When only one copy has the provider, only ``present`` can be compared."""
    if local is None or cms is None:
        return {"present": local is None and cms is None}
    return {"present": True, **{name: getattr(local, name) == getattr(cms, name) for name in COMPARED_FIELDS}}


# The provider the CMS holds (None: the CMS has none), as a front-end job of this exporter last read it,
# waiting to be compared by the Edge jobs.
CMS_PROVIDER: Fact[Provider | None] = Fact("cms_hosting_provider")


def hybrid_applies(declared: str | bool, on_edge: bool, in_cms: bool) -> bool:
    """Whether the organisation is hybrid with Exchange Online. Declared wins; with "auto", the Exchange
    Online hosting provider in the CMS or in the Edge's replica says so (an organisation that never
    configured it has neither; one that lost it from both must declare hybrid: true to be paged)."""
    if isinstance(declared, bool):
        return declared
    return on_edge or in_cms


@dataclass
class EdgeState:
    waited_for_cms_copy: bool = False  # only the first run waits for a front end's copy


Context = CollectContext[EdgeHostingProviderSettings, EdgeState]


class EdgeHostingProviderCollector(Collector[EdgeHostingProviderSettings, EdgeState]):
    name = "edge_hosting_provider"
    roles = frozenset({"lync_edge", "lync_frontend"})
    settings_model = EdgeHostingProviderSettings
    state_model = EdgeState
    metrics = (EDGE_PRESENT, SETTING_OK, FEDERATION_ENABLED, FEDERATION_DNS_SRV_ROUTING, CMS_COMPARED, MATCHES_CMS,
               CMS_PRESENT, HYBRID_APPLICABLE)
    # The CMS copy on a front end (/OcsPowershell), the local store on the Edge (WinRM).
    cmdlets = ((LYNC, PROVIDER_CMDLET), (WINDOWS, PROVIDER_CMDLET), (WINDOWS, ACCESS_EDGE_CMDLET))
    cmdlet_parameters = {PROVIDER_CMDLET: {"LocalStore": None}, ACCESS_EDGE_CMDLET: {"LocalStore": None}}
    posts_facts = {"lync_frontend": (CMS_PROVIDER,)}
    reads_facts = {"lync_edge": (CMS_PROVIDER,)}

    def post_facts(self, ctx: Context) -> None:
        """The CMS copy alone (one call), for the Edge jobs of a shard that polls no front end."""
        if "lync_frontend" in ctx.target.roles:
            self._read_cms(ctx, ctx.settings)

    def collect(self, ctx: Context) -> list[Sample]:
        settings = ctx.settings
        samples: list[Sample] = []
        if "lync_frontend" in ctx.target.roles:
            samples += self._read_cms(ctx, settings)
        if "lync_edge" in ctx.target.roles:
            samples += self._read_edge(ctx, settings)
        return samples

    def _read_cms(self, ctx: Context, settings: EdgeHostingProviderSettings) -> list[Sample]:
        answer = ctx.run(LYNC, PROVIDER_CMDLET, None, HOSTING_PROVIDER)
        provider = select_provider(read_providers(answer.objects), settings.identity, settings.proxy_fqdns)
        ctx.post(CMS_PROVIDER, provider)
        return [CMS_PRESENT.sample(1 if provider else 0)]

    def _read_edge(self, ctx: Context, settings: EdgeHostingProviderSettings) -> list[Sample]:
        local = read_providers(ctx.run(WINDOWS, PROVIDER_CMDLET, LOCAL_STORE, HOSTING_PROVIDER).objects)
        access_edge = self._access_edge(ctx)
        provider = select_provider(local, settings.identity, settings.proxy_fqdns)
        federated = access_edge["AllowFederatedUsers"] is True
        samples = [EDGE_PRESENT.sample(1 if provider else 0), FEDERATION_ENABLED.sample(1 if federated else 0)]
        dns_srv = routes_by_dns_srv(access_edge.get("RoutingMethod"))
        if dns_srv is None:
            ctx.log.debug("%s: no known RoutingMethod (%r): federation routing not judged",
                          ctx.target.name, access_edge.get("RoutingMethod"))
        else:
            samples.append(FEDERATION_DNS_SRV_ROUTING.sample(1 if dns_srv else 0))
        if provider is not None:
            checks = setting_checks(provider, settings.proxy_fqdns)
            samples += [SETTING_OK.sample(1 if checks[name] else 0, setting=name) for name in SETTINGS_CHECKED]
        cms = self._cms_copy(ctx, settings)
        samples.append(CMS_COMPARED.sample(1 if cms else 0))
        in_cms = cms is not None and cms.value is not None
        samples.append(HYBRID_APPLICABLE.sample(1 if hybrid_applies(ctx.estate.hybrid, provider is not None, in_cms) else 0))
        if cms is not None:
            # Compare the provider the CMS holds under the same identity, whatever its ProxyFqdn says now.
            if cms.value is not None:
                wanted = cms.value.identity.casefold()
                provider = next((p for p in local if p.identity.casefold() == wanted), None)
            drift = compare_with_cms(provider, cms.value)
            samples += [MATCHES_CMS.sample(1 if equal else 0, field=name) for name, equal in drift.items()]
        return samples

    def _access_edge(self, ctx: Context) -> Mapping[str, Any]:
        """The Global access edge configuration of the Edge's local store (the only scope there is)."""
        objects = ctx.run(WINDOWS, ACCESS_EDGE_CMDLET, LOCAL_STORE, ACCESS_EDGE).objects
        if not objects:
            where = f"{ctx.where(WINDOWS)} {ACCESS_EDGE_CMDLET}"
            raise CollectError(ErrorKind.SHAPE, where, "answered no access edge configuration (expected Global)")
        return next((o for o in objects if clean_text(o.get("Identity")).casefold() == "global"), objects[0])

    def _cms_copy(self, ctx: Context, settings: EdgeHostingProviderSettings) -> Posted[Provider | None] | None:
        copy = ctx.facts.fresh(CMS_PROVIDER)
        if copy is None and not ctx.state.waited_for_cms_copy:
            # Only the first run waits: later, a missing copy means no front-end job succeeds lately.
            budget = min(settings.cms_copy_wait, ctx.deadline.remaining() - DEADLINE_MARGIN_SECONDS)
            if budget > 0:
                copy = ctx.facts.wait_for_fresh(CMS_PROVIDER, budget)
        ctx.state.waited_for_cms_copy = True
        return copy
