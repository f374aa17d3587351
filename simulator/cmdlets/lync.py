"""Lync Server / Skype for Business cmdlets (module Lync / SkypeForBusiness on /wsman).

Without ``-LocalStore`` they read the Central Management Store (the scenario's ``lync`` section);
with it, the server's own replica (the CMS view plus the host's ``local_store`` changes), which is
how an Edge that replication has not reached differs from a front end.
"""

from __future__ import annotations

import fnmatch
import zlib
from collections.abc import Iterable
from typing import Any

from psrpcore.types import PSDateTime, PSDict

from simulator import psobjects
from simulator.cmdlets import certificates
from simulator.cmdlets.base import STRING, STRINGS, SWITCH, Invocation, Param, cmdlet
from simulator.scenario_model import LyncTopology

_XDS = "Microsoft.Rtc.Management.Xds"
_EDGE = "Microsoft.Rtc.Management.WritableConfig.Settings.Edge"
_SETTINGS_PARAMS = (
    Param("Identity", STRING, position=0),
    Param("Filter", STRING),
    Param("LocalStore", SWITCH),
)


def _topology(inv: Invocation) -> LyncTopology:
    topology = inv.view.scenario.model.lync
    assert topology is not None  # guaranteed for hosts with a lync_* role (scenario validation)
    return topology


def _select(inv: Invocation, items: Iterable[tuple[str, Any]], prefix: str = "") -> list[tuple[str, Any]]:
    """-Identity (exact, case-insensitive; ``prefix`` may be omitted) and -Filter (wildcard) on the Identity."""
    identity, pattern = inv.get("Identity"), inv.get("Filter")
    if identity is not None and prefix and not identity.lower().startswith(prefix.lower()):
        identity = prefix + identity
    chosen = []
    for key, item in items:
        if identity is not None and key.lower() != identity.lower():
            continue
        if pattern is not None and not fnmatch.fnmatchcase(key.lower(), pattern.lower()):
            continue
        chosen.append((key, item))
    return chosen


@cmdlet(
    "Get-CsManagementStoreReplicationStatus",
    f"{_XDS}.GetReplicationStatusCmdlet",
    "lync",
    params=(Param("ReplicaFqdn", STRING), Param("CentralManagementStoreStatus", SWITCH)),
)
def get_replication_status(inv: Invocation) -> None:
    view, cms = inv.view, _topology(inv).cms
    if inv.get("CentralManagementStoreStatus"):
        heartbeats = PSDict({fqdn: view.local_dt(cms.last_heartbeat) for fqdn in cms.file_transfer_agents})
        heartbeats.PSObject.type_names = [
            "System.Collections.Generic.Dictionary`2[[System.String, mscorlib, Version=4.0.0.0, Culture=neutral, "
            "PublicKeyToken=b77a5c561934e089],[System.DateTime, mscorlib, Version=4.0.0.0, Culture=neutral, "
            "PublicKeyToken=b77a5c561934e089]]",
            "System.Object",
        ]
        inv.out.write(psobjects.ps_object(
            [f"{_XDS}.CentralManagementStoreStatusResult", "System.Object"],
            adapted={
                "ActiveMasterFqdn": cms.active_master,
                "ActiveFileTransferAgents": psobjects.string_list(cms.file_transfer_agents),
                "ActiveReplicatorAgents": psobjects.string_list(cms.replicator_agents),
                "ProposedMasterFqdn": None,
                "ProposedFileTransferAgents": psobjects.string_list([]),
                "ProposedReplicatorAgents": psobjects.string_list([]),
                "DeletedReplicas": psobjects.string_list([]),
                "LastHeartbeats": heartbeats,
            },
            to_string=f"{_XDS}.CentralManagementStoreStatusResult",
        ))
        return
    wanted = inv.get("ReplicaFqdn")
    for fqdn, replica in cms.replicas.items():
        if wanted is not None and fqdn.lower() != wanted.lower():
            continue
        inv.out.write(psobjects.ps_object(
            [f"{_XDS}.ReplicaState", "System.Object"],
            adapted={
                "UpToDate": replica.up_to_date,
                "ReplicaFqdn": fqdn,
                "LastStatusReport": view.local_dt(replica.last_status_report),
                "LastUpdateCreation": view.local_dt(replica.last_update_creation),
                "ProductVersion": replica.product_version,
            },
            to_string=f"{_XDS}.ReplicaState",
        ))


@cmdlet("Get-CsHostingProvider", f"{_EDGE}.GetHostingProviderCmdlet", "lync", params=_SETTINGS_PARAMS)
def get_hosting_provider(inv: Invocation) -> None:
    if inv.get("LocalStore"):
        providers = inv.view.scenario.local_store(inv.view.name)[0]
    else:
        providers = _topology(inv).hosting_providers
    for name, p in _select(inv, providers.items()):
        inv.out.write(psobjects.ps_object(
            [f"{_EDGE}.DisplayHostingProvider", "System.Object"],
            adapted={
                "Identity": name,
                "Name": name,
                "ProxyFqdn": p.proxy_fqdn,
                "VerificationLevel": psobjects.enum_member(psobjects.VerificationLevel, p.verification_level),
                "Enabled": p.enabled,
                "EnabledSharedAddressSpace": p.enabled_shared_address_space,
                "HostsOCSUsers": p.hosts_ocs_users,
                "IsLocal": p.is_local,
                "AutodiscoverUrl": p.autodiscover_url,
                "SipClientPort": psobjects.uint64(p.sip_client_port),
            },
            to_string=name,
        ))


@cmdlet("Get-CsAccessEdgeConfiguration", f"{_EDGE}.GetAccessEdgeConfigurationCmdlet", "lync",
        params=_SETTINGS_PARAMS)
def get_access_edge_configuration(inv: Invocation) -> None:
    """The Global settings, shaped by the routing method as Microsoft documents it: the output type is
    DisplayAccessEdgeSettingsDnsSrvRouting or DisplayAccessEdgeSettingsDefaultRoute (reference for
    Get-CsAccessEdgeConfiguration); DNS SRV routing shows BeClearingHouse and EnablePartnerDiscovery, a
    default route shows VerificationLevel and IsPublicProvider instead (reference for
    Set-CsAccessEdgeConfiguration). The DNS SRV object's properties are those of Microsoft's example output
    ("Manage Access Edge Configuration for your organization"); the default route's DefaultRouteFqdn is
    named after the cmdlet's parameter (no example output of that shape is published)."""
    if inv.get("LocalStore"):
        config = inv.view.scenario.local_store(inv.view.name)[1]
    else:
        config = _topology(inv).access_edge
    dns_srv = config.routing_method == "UseDnsSrvRouting"
    for _, c in _select(inv, [("Global", config)]):
        adapted: dict[str, Any] = {
            "Identity": "Global",
            "AllowAnonymousUsers": c.allow_anonymous_users,
            "AllowFederatedUsers": c.allow_federated_users,
            "AllowOutsideUsers": c.allow_outside_users,
        }
        if dns_srv:
            adapted.update(BeClearingHouse=False, EnablePartnerDiscovery=c.enable_partner_discovery)
        else:
            adapted.update(
                DefaultRouteFqdn=c.default_route_fqdn,
                IsPublicProvider=False,
                VerificationLevel=psobjects.enum_member(psobjects.VerificationLevel, "UseSourceVerification"),
            )
        adapted.update({
            "EnableArchivingDisclaimer": False,
            "EnableUserReplicator": True,
            "KeepCrlsUpToDateForPeers": True,
            "MarkSourceVerifiableOnOutgoingMessages": True,
            "OutgoingTlsCountForFederatedPartners": 4,
            "RoutingMethod": psobjects.enum_member(psobjects.RoutingMethod, c.routing_method),
        })
        kind = "DnsSrvRouting" if dns_srv else "DefaultRoute"
        inv.out.write(psobjects.ps_object(
            [f"{_EDGE}.DisplayAccessEdgeSettings{kind}", "System.Object"], adapted=adapted, to_string="Global"))


@cmdlet(
    "Get-CsCertificate",
    "Microsoft.Rtc.Management.Deployment.GetCertificateCmdlet",
    "lync",
    params=(Param("Type", STRINGS), Param("Identity", STRING, position=0), Param("Report", STRING)),
)
def get_cs_certificate(inv: Invocation) -> None:
    """The certificates assigned to this server's uses. Thumbprint, subject, issuer, serial and
    validity are the generated certificate's (simulator/cmdlets/certificates.py), so they agree with
    Cert:\\LocalMachine\\My; a use whose certificate is not installed is not listed."""
    view = inv.view
    uses = {u.lower() for u in inv.get("Type") or []}
    for entry in certificates.of_host(view, kind="lync"):
        cert, gen = entry.model, entry.generated
        if not entry.installed or (uses and cert.use.lower() not in uses):
            continue
        inv.out.write(psobjects.ps_object(
            ["Microsoft.Rtc.Management.Deployment.Core.Certificate", "System.Object"],
            adapted={
                "Issuer": gen.issuer,
                "NotAfter": PSDateTime(gen.not_after.astimezone(view.tz)),
                "NotBefore": PSDateTime(gen.not_before.astimezone(view.tz)),
                "SerialNumber": gen.serial_hex,
                "Subject": gen.subject,
                "AlternativeNames": psobjects.string_list(cert.alternative_names),
                "Thumbprint": gen.thumbprint,
                "EffectiveDate": view.local_dt(cert.effective_date),
                "PreviousThumbprint": certificates.resolve(cert.previous_thumbprint, view),
                "UpdateTime": view.local_dt(cert.update_time),
                "Use": cert.use,
                "SourceScope": cert.source_scope,
            },
            to_string=gen.thumbprint,
        ))


@cmdlet(
    "Get-CsOAuthConfiguration",
    "Microsoft.Rtc.Management.WritableConfig.Settings.OAuth.GetOAuthConfigurationCmdlet",
    "lync",
    params=_SETTINGS_PARAMS,
)
def get_oauth_configuration(inv: Invocation) -> None:
    oauth = _topology(inv).oauth
    for _, o in _select(inv, [("Global", oauth)]):
        inv.out.write(psobjects.ps_object(
            ["Microsoft.Rtc.Management.WritableConfig.Settings.OAuth.OAuthSettings", "System.Object"],
            adapted={
                "Identity": "Global",
                "PartnerApplications": psobjects.string_list(o.partner_applications),
                "Realm": o.realm,
                "ServiceName": o.service_name,
                "ClientAuthorizationOAuthServerIdentity": o.client_authorization_oauth_server_identity,
                "ExchangeAutodiscoverUrl": o.exchange_autodiscover_url,
                "ExchangeAutodiscoverAllowedDomains": o.exchange_autodiscover_allowed_domains,
            },
            to_string="Global",
        ))


@cmdlet("Get-CsTrustedApplicationPool", f"{_XDS}.GetTrustedApplicationPoolCmdlet", "lync", params=_SETTINGS_PARAMS)
def get_trusted_application_pool(inv: Invocation) -> None:
    defined = _topology(inv).trusted_application_pools
    pools = [(f"TrustedApplicationPool:{fqdn}", (fqdn, p)) for fqdn, p in defined.items()]
    for key, (fqdn, p) in _select(inv, pools, prefix="TrustedApplicationPool:"):
        inv.out.write(psobjects.ps_object(
            [f"{_XDS}.DisplayTrustedApplicationPool", "System.Object"],
            adapted={
                "Identity": key,
                "PoolFqdn": fqdn,
                "Registrar": p.registrar,
                "Site": p.site,
                "RequiresReplication": p.requires_replication,
                "ThrottleAsServer": p.throttle_as_server,
                "TreatAsAuthenticated": p.treat_as_authenticated,
                "OutboundOnly": False,
                "Computers": psobjects.string_list(p.computers),
                "ServiceId": f"1-ExternalServer-{zlib.crc32(fqdn.encode()) % 90 + 10}",
            },
            to_string=key,
        ))


@cmdlet(
    "Get-CsTrustedApplication",
    f"{_XDS}.GetTrustedApplicationCmdlet",
    "lync",
    params=_SETTINGS_PARAMS + (Param("ApplicationId", STRING),),
)
def get_trusted_application(inv: Invocation) -> None:
    app_id = (inv.get("ApplicationId") or "").lower()
    for key, app in _select(inv, _topology(inv).trusted_applications.items()):
        if app_id and app.application_id.lower() not in (app_id, f"urn:application:{app_id}"):
            continue
        inv.out.write(psobjects.ps_object(
            [f"{_XDS}.DisplayTrustedApplication", "System.Object"],
            adapted={
                "Identity": key,
                "ApplicationId": app.application_id,
                "TrustedApplicationPoolFqdn": app.trusted_application_pool_fqdn,
                "Port": app.port,
                "Protocol": app.protocol,
                "LegacyApplicationName": app.application_id.rsplit(":", 1)[-1],
            },
            to_string=key,
        ))


@cmdlet("Get-CsSite", f"{_XDS}.GetSiteCmdlet", "lync", params=_SETTINGS_PARAMS)
def get_site(inv: Invocation) -> None:
    topology = _topology(inv)
    for key, site in _select(inv, topology.sites.items()):
        inv.out.write(psobjects.ps_object(
            [f"{_XDS}.DisplaySite", "System.Object"],
            adapted={
                "Identity": key,
                "SiteId": site.site_id,
                "DisplayName": site.display_name,
                "Description": site.description,
                "Kind": site.kind,
                "Pools": psobjects.string_list([topology.pool_fqdn]),
            },
            to_string=key,
        ))
