"""Exchange cmdlets, served on /PowerShell (configuration Microsoft.Exchange, no-language mode).

Organisation-wide objects (policies, setting overrides, dial plans, the auth config) come from the
scenario's ``exchange_org``; server objects from each Exchange host. Cmdlets exist only on the
versions that have them: Get-SettingOverride and Get-ClientAccessService from 2016, Get-UMDialPlan
up to 2016 (Exchange 2019 removed Unified Messaging).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from simulator import certs, errors, psobjects
from simulator.cmdlets import certificates, exchange_objects, exchange_tables
from simulator.cmdlets.base import STRING, SWITCH, Invocation, Param, cmdlet
from simulator.estate import HostView
from simulator.scenario_model import ExchangeOrg, Host

_SYSCONF = "Microsoft.Exchange.Data.Directory.SystemConfiguration"
_TASKS = "Microsoft.Exchange.Management.SystemConfigurationTasks"
_AD_BASE = [
    "Microsoft.Exchange.Data.Directory.ADConfigurationObject",
    "Microsoft.Exchange.Data.Directory.ADObject",
    "Microsoft.Exchange.Data.Directory.ADRawEntry",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]
_PRESENTATION_BASE = [
    "Microsoft.Exchange.Data.Directory.ADPresentationObject",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]
_DC = Param("DomainController", STRING)


def _version(*versions: int):
    def available(view: HostView) -> bool:
        return view.host.exchange is not None and view.host.exchange.version in versions

    return available


def _org(inv: Invocation) -> ExchangeOrg:
    org = inv.view.scenario.model.exchange_org
    assert org is not None  # guaranteed for hosts with an exchange_* role (scenario validation)
    return org


def _servers(view: HostView) -> Iterator[tuple[str, Host]]:
    for name, host in view.scenario.model.hosts.items():
        if host.exchange is not None:
            yield name, host


def _short(fqdn: str) -> str:
    return fqdn.split(".", 1)[0].upper()


def _find_server(inv: Invocation, wanted: str) -> tuple[str, Host] | None:
    for name, host in _servers(inv.view):
        if wanted.lower() in (name.lower(), _short(name).lower()):
            return name, host
    inv.out.error(errors.exchange_not_found(wanted, inv.cmdlet.name, inv.cmdlet.dotnet_class,
                                            _org(inv).domain_controller))
    return None


@cmdlet(
    "Get-ExchangeCertificate",
    f"{_TASKS}.GetExchangeCertificate",
    "exchange",
    params=(Param("Thumbprint", STRING, position=0, aliases=("Identity",)), Param("Server", STRING), _DC),
)
def get_exchange_certificate(inv: Invocation) -> None:
    """The server's installed Exchange certificates, as the wire carries them: RawData (the DER) and
    a SerializationData note (exchange_objects.exchange_certificate). -Thumbprint/-Identity
    ("EX01\\THUMB" too) selects one by the DER's SHA-1."""
    view = inv.view
    found = _find_server(inv, inv.get("Server")) if inv.has("Server") else (view.name, view.host)
    if found is None:
        return
    server, _ = found
    wanted = (inv.get("Thumbprint") or "").split("\\")[-1].strip().lower()
    for cert in certificates.of_host(view, server, kind="exchange"):
        if not cert.installed or (wanted and cert.thumbprint.lower() != wanted):
            continue
        inv.out.write(exchange_objects.exchange_certificate(cert.generated.der,
                                                            certs.to_string(cert.generated, view.tz)))


@cmdlet("Get-AuthConfig", f"{_TASKS}.GetAuthConfig", "exchange", params=(_DC,))
def get_auth_config(inv: Invocation) -> None:
    """The organisation's AuthConfig (../shared/captures/exchange/E15, E16/GetAuthConfig.xml): unset
    thumbprints are empty strings, an unset NextCertificateEffectiveDate is Nil, as in the captures."""
    view = inv.view
    auth = _org(inv).auth_config
    version = view.host.exchange.version
    build = exchange_objects.ObjectBuilder(view)

    def thumbprint(text: str | None) -> str:
        return certificates.resolve(text, view) or ""

    own: dict[str, Any] = {
        "CurrentCertificateThumbprint": thumbprint(auth.current_certificate_thumbprint),
        "PreviousCertificateThumbprint": thumbprint(auth.previous_certificate_thumbprint),
        "NextCertificateThumbprint": thumbprint(auth.next_certificate_thumbprint),
        "NextCertificateEffectiveDate": view.local_dt(auth.next_certificate_effective_date),
        "ServiceName": auth.service_name,
        "Realm": auth.realm,
    }
    if exchange_tables.shape_version(version) >= 2016:
        own.update({"DeploymentId": "", "IssuerIdentifier": ""})
    name = "Auth Configuration"
    inv.out.write(build.ad_object(
        [f"{_SYSCONF}.AuthConfig", f"{_SYSCONF}.ADConfigurationObject", *exchange_tables.AD_BASE_TYPES],
        own,
        name=name,
        dn=f"CN={name},{build.org_dn}",
        identity_shown=name,
        identity_parent=build.organization,
        schema_class="ms-Exch-Auth-Auth-Config",
        object_classes=["top", "container", "msExchContainer", "msExchAuthAuthConfig"],
        exchange_version=(0, 20, "15.0.0.0"),
        version=version,
        name_first=True,
    ))


@cmdlet(
    "Get-OwaVirtualDirectory",
    f"{_TASKS}.GetOwaVirtualDirectory",
    "exchange",
    params=(
        Param("Identity", STRING, position=0),
        Param("Server", STRING),
        Param("ADPropertiesOnly", SWITCH),
        Param("ShowMailboxVirtualDirectories", SWITCH),
        _DC,
    ),
)
def get_owa_virtual_directory(inv: Invocation) -> None:
    """OWA virtual directories in the shape of the answering server's version
    (exchange_tables.OWA_VIRTUAL_DIRECTORY; ../shared/captures/exchange/E15, E16)."""
    if inv.has("Server"):
        found = _find_server(inv, inv.get("Server"))
        servers = [found] if found else []
    else:
        servers = list(_servers(inv.view))
    identity = (inv.get("Identity") or "").lower()
    show_backend = bool(inv.get("ShowMailboxVirtualDirectories")) or bool(identity)
    version = inv.view.host.exchange.version
    for server, host in servers:
        for name, vdir in host.exchange.owa_virtual_directories.items():
            full_identity = f"{_short(server)}\\{name}"
            if identity and identity not in (full_identity.lower(), name.lower()):
                continue
            if vdir.website.lower() == "exchange back end" and not show_backend:
                continue
            inv.out.write(_owa_virtual_directory(inv, server, host, name, vdir, version))


def _owa_virtual_directory(inv: Invocation, server: str, host: Host, name: str, vdir: Any, version: int) -> Any:
    build = exchange_objects.ObjectBuilder(inv.view)
    short = _short(server)
    server_dn = (f"CN={short},CN=Servers,CN=Exchange Administrative Group (FYDIBOHF23SPDLT),"
                 f"CN=Administrative Groups,{build.org_dn}")
    site_number = 2 if vdir.website.lower() == "exchange back end" else 1
    own = build.table(exchange_tables.OWA_VIRTUAL_DIRECTORY, version, {
        "ServerName": short,
        "InstantMessagingCertificateThumbprint":
            certificates.resolve(vdir.instant_messaging_certificate_thumbprint, inv.view, server) or "",
        "InstantMessagingServerName": vdir.instant_messaging_server_name or "",
        "InstantMessagingEnabled": vdir.instant_messaging_enabled,
        "InstantMessagingType": build.enum(
            f"{_SYSCONF}.InstantMessagingTypeOptions", vdir.instant_messaging_type,
            exchange_tables.INSTANT_MESSAGING_TYPES[vdir.instant_messaging_type]),
        "Name": name,
        "MetabasePath": f"IIS://{server}/W3SVC/{site_number}/ROOT/owa",
        "WebSite": vdir.website,
        "AdminDisplayVersion": build.server_version(host.exchange.build),
        "Server": build.ad_object_id(server_dn, short, "Servers"),
        "InternalUrl": exchange_objects.uri(vdir.internal_url),
        "ExternalUrl": exchange_objects.uri(vdir.external_url),
    })
    return build.ad_object(
        exchange_tables.OWA_VIRTUAL_DIRECTORY_TYPES,
        own,
        name=name,
        dn=f"CN={name},CN=HTTP,CN=Protocols,{server_dn}",
        identity_shown=f"{short}\\{name}",
        identity_parent="HTTP",
        schema_class="ms-Exch-OWA-Virtual-Directory",
        object_classes=["top", "msExchVirtualDirectory", "msExchOWAVirtualDirectory"],
        exchange_version=(0, 10, "14.0.100.0"),
        version=version,
        object_state="Changed",
    )


@cmdlet(
    "Get-OwaMailboxPolicy",
    f"{_TASKS}.GetOwaMailboxPolicy",
    "exchange",
    params=(Param("Identity", STRING, position=0), _DC),
)
def get_owa_mailbox_policy(inv: Invocation) -> None:
    identity = (inv.get("Identity") or "").lower()
    for name, policy in _org(inv).owa_mailbox_policies.items():
        if identity and identity != name.lower():
            continue
        inv.out.write(psobjects.ps_object(
            [f"{_SYSCONF}.OwaMailboxPolicy", f"{_SYSCONF}.MailboxPolicy"] + _AD_BASE,
            adapted={
                "Name": name,
                "Identity": name,
                "DistinguishedName": owa_policy_dn(inv, name),
                "IsDefault": policy.is_default,
                "InstantMessagingEnabled": policy.instant_messaging_enabled,
                "InstantMessagingType": psobjects.enum_member(
                    psobjects.InstantMessagingTypeOptions, policy.instant_messaging_type),
            },
            to_string=name,
        ))


def owa_policy_dn(inv: Invocation, name: str) -> str:
    """Where an OWA mailbox policy lives in AD (Microsoft's example: "CN=Default,CN=OWA Mailbox
    Policies,CN=Contoso Corporation,CN=Microsoft Exchange,CN=Services,CN=Configuration,DC=contoso,DC=com")."""
    return f"CN={name},CN=OWA Mailbox Policies,{exchange_objects.ObjectBuilder(inv.view).org_dn}"


def _client_access(inv: Invocation, type_name: str) -> None:
    identity = (inv.get("Identity") or "").lower()
    for server, host in _servers(inv.view):
        if "exchange_client_access" not in host.roles:
            continue
        if identity and identity not in (server.lower(), _short(server).lower()):
            continue
        inv.out.write(psobjects.ps_object(
            [type_name] + _PRESENTATION_BASE,
            adapted={
                "Name": _short(server),
                "Identity": _short(server),
                "Fqdn": server,
                "AutoDiscoverServiceInternalUri": psobjects.uri(host.exchange.autodiscover_internal_uri),
                "AutoDiscoverServiceCN": _short(server),
                "AutoDiscoverSiteScope": psobjects.multi_valued([]),
                "IsOutOfService": False,
            },
            to_string=_short(server),
        ))


@cmdlet(
    "Get-ClientAccessServer",
    f"{_TASKS}.GetClientAccessServer",
    "exchange",
    params=(Param("Identity", STRING, position=0), Param("IncludeAlternateServiceAccountCredentialStatus", SWITCH),
            Param("IncludeAlternateServiceAccountCredentialPassword", SWITCH), _DC),
)
def get_client_access_server(inv: Invocation) -> None:
    if inv.view.host.exchange.version >= 2016:
        inv.out.warning("The Get-ClientAccessServer cmdlet will be removed in a future version of Exchange. "
                        "Use the Get-ClientAccessService cmdlet instead.")
    _client_access(inv, "Microsoft.Exchange.Data.Directory.Management.ClientAccessServer")


@cmdlet(
    "Get-ClientAccessService",
    f"{_TASKS}.GetClientAccessService",
    "exchange",
    params=(Param("Identity", STRING, position=0), Param("IncludeAlternateServiceAccountCredentialStatus", SWITCH),
            Param("IncludeAlternateServiceAccountCredentialPassword", SWITCH), _DC),
    available=_version(2016, 2019),
)
def get_client_access_service(inv: Invocation) -> None:
    _client_access(inv, "Microsoft.Exchange.Data.Directory.Management.ClientAccessService")


@cmdlet(
    "Get-SettingOverride",
    f"{_TASKS}.GetSettingOverride",
    "exchange",
    params=(Param("Identity", STRING, position=0), _DC),
    available=_version(2016, 2019),
)
def get_setting_override(inv: Invocation) -> None:
    """Setting overrides (../shared/captures/exchange/E19/GetSettingOverride.xml): ComponentName,
    SectionName, Parameters (a MultiValuedProperty of "Key=Value"), Server Nil for an
    organisation-wide override, Status an enum (Accepted), XmlRaw the stored form. ``${cert:...}``
    in a parameter becomes the certificate's thumbprint."""
    identity = (inv.get("Identity") or "").lower()
    view = inv.view
    for name, override in _org(inv).setting_overrides.items():
        if identity and identity != name.lower():
            continue
        build = exchange_objects.ObjectBuilder(view)
        parameters = [certificates.resolve(p, view) or "" for p in override.parameters]
        modified_by = f"{build.domain}/Users/Administrator"
        xml_raw = (f"<S CN={quoteattr(override.component)} SN={quoteattr(override.section)} "
                   f"MB={quoteattr(modified_by)} R={quoteattr(override.reason)}><Ps>"
                   + "".join(f"<P>{escape(p)}</P>" for p in parameters) + "</Ps></S>")
        own = {
            "ComponentName": override.component,
            "SectionName": override.section,
            "AppId": "",
            "FlightName": None,
            "ModifiedBy": modified_by,
            "Reason": override.reason,
            # System.Version in Exchange (Nil in the capture: unset there).
            "MinVersion": exchange_objects.version_or_nil(override.min_version),
            "MaxVersion": exchange_objects.version_or_nil(override.max_version),
            "FixVersion": None,
            # Nil for an organisation-wide override (the capture); a server-scoped one carries its
            # servers as a MultiValuedProperty of names (not in any capture).
            "Server": build.strings(override.servers) if override.servers else None,
            "IsFlight": False,
            "Parameters": build.strings(parameters),
            "Status": build.enum(f"{_SYSCONF}.ConfigurationSettings.SettingOverrideStatus", "Accepted", 3),
            "XmlRaw": xml_raw,
        }
        inv.out.write(build.ad_object(
            [f"{_SYSCONF}.ConfigurationSettings.SettingOverride", f"{_SYSCONF}.ADConfigurationObject",
             *exchange_tables.AD_BASE_TYPES],
            own,
            name=name,
            dn=f"CN={name},CN=Setting Overrides,CN=Global Settings,{build.org_dn}",
            identity_shown=name,
            identity_parent="Setting Overrides",
            schema_class="ms-Exch-Config-Settings",
            object_classes=["top", "msExchConfigSettings"],
            exchange_version=(0, 1, "8.0.535.0"),
            version=view.host.exchange.version,
            changed_at=view.at(override.changed),
        ))


@cmdlet(
    "Get-UMDialPlan",
    f"{_TASKS}.GetUMDialPlan",
    "exchange",
    params=(Param("Identity", STRING, position=0), _DC),
    available=_version(2013, 2016),
)
def get_um_dial_plan(inv: Invocation) -> None:
    identity = (inv.get("Identity") or "").lower()
    for name, plan in _org(inv).um_dial_plans.items():
        if identity and identity != name.lower():
            continue
        inv.out.write(psobjects.ps_object(
            [f"{_SYSCONF}.UMDialPlan"] + _AD_BASE,
            adapted={
                "Name": name,
                "Identity": name,
                "URIType": psobjects.enum_member(psobjects.UMUriType, plan.uri_type),
                "NumberOfDigitsInExtension": plan.number_of_digits_in_extension,
                "UMServers": psobjects.multi_valued(plan.um_servers),
            },
            to_string=name,
        ))
