"""Exchange cmdlets, served on /PowerShell (configuration Microsoft.Exchange, no-language mode).

Organisation-wide objects (policies, setting overrides, dial plans, the auth config) come from the
scenario's ``exchange_org``; server objects from each Exchange host. Cmdlets exist only on the
versions that have them: Get-SettingOverride and Get-ClientAccessService from 2016, Get-UMDialPlan
up to 2016 (Exchange 2019 removed Unified Messaging).
"""

from __future__ import annotations

from collections.abc import Iterator

from simulator import errors, psobjects
from simulator.cmdlets.base import STRING, SWITCH, Invocation, Param, cmdlet
from simulator.estate import HostView
from simulator.scenario_model import ExchangeCertificate, ExchangeOrg, Host

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


def _admin_version(build: str) -> str:
    parts = build.split(".")
    return f"Version {parts[0]}.{parts[1]} (Build {'.'.join(parts[2:])})" if len(parts) >= 3 else build


def _cert_status(inv: Invocation, cert: ExchangeCertificate) -> str:
    if cert.status is not None:
        return cert.status
    start, end = inv.view.at(cert.not_before), inv.view.at(cert.not_after)
    now = inv.view.now
    return "Valid" if (start is None or start <= now) and (end is None or now <= end) else "DateInvalid"


@cmdlet(
    "Get-ExchangeCertificate",
    f"{_TASKS}.GetExchangeCertificate",
    "exchange",
    params=(Param("Thumbprint", STRING, position=0, aliases=("Identity",)), Param("Server", STRING), _DC),
)
def get_exchange_certificate(inv: Invocation) -> None:
    view = inv.view
    found = _find_server(inv, inv.get("Server")) if inv.has("Server") else (view.name, view.host)
    if found is None:
        return
    server, host = found
    wanted = (inv.get("Thumbprint") or "").split("\\")[-1].lower()
    for cert in host.exchange.certificates.values():
        if wanted and cert.thumbprint.lower() != wanted:
            continue
        inv.out.write(psobjects.ps_object(
            [f"{_TASKS}.ExchangeCertificate",
             "System.Security.Cryptography.X509Certificates.X509Certificate2",
             "System.Security.Cryptography.X509Certificates.X509Certificate", "System.Object"],
            adapted={
                "AccessRules": None,
                "CertificateDomains": psobjects.multi_valued(
                    cert.domains, "Microsoft.Exchange.Data.SmtpDomainWithSubdomains, Microsoft.Exchange.Data, "
                    "Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"),
                "HasPrivateKey": cert.has_private_key,
                "IsSelfSigned": cert.is_self_signed,
                "Issuer": cert.issuer or cert.subject,
                "NotAfter": view.local_dt(cert.not_after),
                "NotBefore": view.local_dt(cert.not_before),
                "PublicKeySize": cert.public_key_size,
                "RootCAType": psobjects.enum_member(psobjects.CertificateAuthorityType, cert.root_ca_type),
                "SerialNumber": cert.serial_number,
                "Services": psobjects.flags(psobjects.AllowedServices, cert.services),
                "Status": psobjects.enum_member(psobjects.CertificateStatus, _cert_status(inv, cert)),
                "Subject": cert.subject,
                "Thumbprint": cert.thumbprint,
                "FriendlyName": cert.friendly_name,
                "Identity": f"{_short(server)}\\{cert.thumbprint}",
                "Version": 3,
            },
            to_string=f"[Subject]\r\n  {cert.subject}\r\n\r\n[Thumbprint]\r\n  {cert.thumbprint}\r\n",
        ))


@cmdlet("Get-AuthConfig", f"{_TASKS}.GetAuthConfig", "exchange", params=(_DC,))
def get_auth_config(inv: Invocation) -> None:
    auth = _org(inv).auth_config
    inv.out.write(psobjects.ps_object(
        [f"{_SYSCONF}.AuthConfig", f"{_SYSCONF}.ADContainer"] + _AD_BASE,
        adapted={
            "CurrentCertificateThumbprint": auth.current_certificate_thumbprint,
            "PreviousCertificateThumbprint": auth.previous_certificate_thumbprint,
            "NextCertificateThumbprint": auth.next_certificate_thumbprint,
            "NextCertificateEffectiveDate": inv.view.local_dt(auth.next_certificate_effective_date),
            "ServiceName": auth.service_name,
            "Realm": auth.realm,
            "Name": "Auth Configuration",
            "Identity": "Auth Configuration",
        },
        to_string="Auth Configuration",
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
    if inv.has("Server"):
        found = _find_server(inv, inv.get("Server"))
        servers = [found] if found else []
    else:
        servers = list(_servers(inv.view))
    identity = (inv.get("Identity") or "").lower()
    show_backend = bool(inv.get("ShowMailboxVirtualDirectories")) or bool(identity)
    for server, host in servers:
        for name, vdir in host.exchange.owa_virtual_directories.items():
            full_identity = f"{_short(server)}\\{name}"
            if identity and identity not in (full_identity.lower(), name.lower()):
                continue
            if vdir.website.lower() == "exchange back end" and not show_backend:
                continue
            inv.out.write(psobjects.ps_object(
                [f"{_SYSCONF}.ADOwaVirtualDirectory", f"{_SYSCONF}.ExchangeWebAppVirtualDirectory",
                 f"{_SYSCONF}.ADExchangeServiceVirtualDirectory", f"{_SYSCONF}.ADVirtualDirectory"] + _AD_BASE,
                adapted={
                    "Name": name,
                    "Server": _short(server),
                    "Identity": full_identity,
                    "WebSite": vdir.website,
                    "InstantMessagingEnabled": vdir.instant_messaging_enabled,
                    "InstantMessagingType": psobjects.enum_member(
                        psobjects.InstantMessagingTypeOptions, vdir.instant_messaging_type),
                    "InstantMessagingServerName": vdir.instant_messaging_server_name,
                    "InstantMessagingCertificateThumbprint": vdir.instant_messaging_certificate_thumbprint,
                    "InternalUrl": psobjects.uri(vdir.internal_url),
                    "ExternalUrl": psobjects.uri(vdir.external_url),
                    "AdminDisplayVersion": _admin_version(host.exchange.build),
                },
                to_string=full_identity,
            ))


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
                "IsDefault": policy.is_default,
                "InstantMessagingEnabled": policy.instant_messaging_enabled,
                "InstantMessagingType": psobjects.enum_member(
                    psobjects.InstantMessagingTypeOptions, policy.instant_messaging_type),
            },
            to_string=name,
        ))


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
    identity = (inv.get("Identity") or "").lower()
    for name, override in _org(inv).setting_overrides.items():
        if identity and identity != name.lower():
            continue
        inv.out.write(psobjects.ps_object(
            [f"{_SYSCONF}.SettingOverride"] + _AD_BASE,
            adapted={
                "Name": name,
                "Identity": name,
                "Component": override.component,
                "Section": override.section,
                "Parameters": psobjects.multi_valued(override.parameters),
                "Server": psobjects.multi_valued(override.servers),
                "Reason": override.reason,
                "MinVersion": override.min_version,
                "MaxVersion": override.max_version,
            },
            to_string=name,
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
