"""The typed model of a scenario: the state behind every simulated cmdlet.

Collections that overlays need to change one item of are mappings keyed by a stable name (hosts by
FQDN, certificates by a label, events by a label...), so an overlay can reach one item by its key.
Field names are snake_case; cmdlet handlers map them to the PowerShell property names.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from simulator.clock import TimeSpec, parse_offset, parse_time

ROLES = ("exchange_mailbox", "exchange_client_access", "lync_frontend", "lync_edge")
Role = Literal["exchange_mailbox", "exchange_client_access", "lync_frontend", "lync_edge"]


def _to_time(value: Any, info: ValidationInfo) -> TimeSpec | None:
    tz = (info.context or {}).get("tz", dt.timezone.utc)
    return parse_time(value, tz)


# A scenario time: "now", "-45s", "+90d", an ISO timestamp, or null; resolved at answer time.
Time = Annotated[TimeSpec | None, BeforeValidator(_to_time)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


# ---------------------------------------------------------------- Exchange

CertificateService = Literal["None", "IMAP", "POP", "UM", "IIS", "SMTP", "Federation", "UMCallRouter"]

# ${cert:LABEL} (a certificate of the same host) or ${cert:HOST/LABEL}: the generated certificate's
# thumbprint, in any string that names a certificate (web.config, setting overrides, Get-AuthConfig...).
CERT_REFERENCE = re.compile(r"\$\{cert:([^}]*)\}")


class _Certificate(_Model):
    """A certificate the simulator generates (simulator/certs.py): its DER, hence its thumbprint,
    follows from these fields; a scenario names it by its label and refers to it as ${cert:LABEL}."""

    @model_validator(mode="before")
    @classmethod
    def _no_thumbprint(cls, data: Any) -> Any:
        if isinstance(data, dict) and "thumbprint" in data:
            raise ValueError(
                "thumbprint: a certificate's thumbprint is the SHA-1 of its DER, which the simulator generates "
                "from subject, issuer, serial, validity, names and key size; name the certificate by its label "
                "and write ${cert:LABEL} (or ${cert:HOST/LABEL}) where its thumbprint is wanted")
        return data


class ExchangeCertificate(_Certificate):
    subject: str
    issuer: str | None = None  # None: self-signed when is_self_signed, else "CN=Simulated Issuing CA"
    friendly_name: str = ""
    serial_number: str | None = None  # hex; None: derived from the other fields
    not_before: Time
    not_after: Time
    has_private_key: bool = True  # Cert:\LocalMachine\My only: not on Exchange's wire
    is_self_signed: bool = False
    public_key_size: int = 2048
    domains: list[str] = Field(default_factory=list)  # the SANs (DNS names)
    # Which services the certificate is enabled for; not on Exchange's wire (../shared/captures README),
    # it decides which certificate the simulated OWA TLS service presents (IIS).
    services: list[CertificateService] = Field(default_factory=list)
    # False: a certificate that is no longer installed (e.g. the one before a renewal), which settings
    # may still name: it exists only as a ${cert:...} target.
    installed: bool = True


class WebConfigIM(_Model):
    """The two appSettings keys of Exchange 2013's OWA web.config; null drops a key (as CUs do)."""

    server_name: str | None = None
    certificate_thumbprint: str | None = None


class OwaVirtualDirectory(_Model):
    website: str = "Default Web Site"
    instant_messaging_enabled: bool = True
    instant_messaging_type: Literal["None", "Ocs"] = "None"
    instant_messaging_server_name: str | None = None
    instant_messaging_certificate_thumbprint: str | None = None
    internal_url: str | None = None
    external_url: str | None = None


class ComponentState(_Model):
    """One server component's state (Get-ServerComponentState) as an administrator or a system set it:
    ``Set-ServerComponentState -Component X -State Inactive -Requester Maintenance``."""

    state: Literal["Active", "Inactive", "Draining"] = "Active"
    requester: Literal["HealthApi", "Maintenance", "Sidelined", "Functional", "Deployment"] = "Maintenance"
    since: Time = None  # when it was set; None: the estate's start


class ExchangeServer(_Model):
    version: Literal[2013, 2016, 2019]
    build: str = "15.0.1497.2"
    install_path: str = r"C:\Program Files\Microsoft\Exchange Server\V15"
    # Exchange 2013 only: the IM keys in ...\ClientAccess\Owa\web.config (2016+ use a setting override).
    web_config_im: WebConfigIM | None = None
    certificates: dict[str, ExchangeCertificate] = Field(default_factory=dict)
    owa_virtual_directories: dict[str, OwaVirtualDirectory] = Field(default_factory=dict)
    autodiscover_internal_uri: str | None = None
    site: str = "contoso.com/Configuration/Sites/Default-First-Site-Name"
    # Component -> its state, over the defaults of a fresh install (simulator/cmdlets/maintenance.py).
    component_states: dict[str, ComponentState] = Field(default_factory=dict)
    # The port OWA's IM endpoint accepts TLS on (None: none): the OutlookWebApp trusted application's Port
    # must name it. Microsoft documents no setting for it on the Exchange side; the scenario states it.
    im_listen_port: int | None = Field(default=5199, ge=1, le=65535)
    # 2016/2019: the IM settings the server has loaded (Get-ExchangeDiagnosticInfo ... VariantConfiguration);
    # None: those its setting override sets now, i.e. the override was refreshed.
    loaded_im_settings: WebConfigIM | None = None
    # Get-ExchangeServer's ServerRole; None: what setup installs by default for the version (2013:
    # Mailbox and ClientAccess together; 2016/2019: Mailbox, the one role that holds both).
    server_role: list[Literal["Mailbox", "ClientAccess"]] | None = None


class AuthConfig(_Model):
    current_certificate_thumbprint: str | None = None
    previous_certificate_thumbprint: str | None = None
    next_certificate_thumbprint: str | None = None
    next_certificate_effective_date: Time = None
    service_name: str = "00000002-0000-0ff1-ce00-000000000000"
    realm: str = ""


class OwaMailboxPolicy(_Model):
    is_default: bool = False
    instant_messaging_enabled: bool = True
    instant_messaging_type: Literal["None", "Ocs"] = "None"
    # Mailboxes assigned this policy (Set-CASMailbox -OwaMailboxPolicy), as Get-CASMailbox -Filter finds them.
    mailboxes: int = Field(default=0, ge=0, le=1_000_000)


class SettingOverride(_Model):
    component: str = "OwaServer"
    section: str = "IMSettings"
    parameters: list[str] = Field(default_factory=list)
    servers: list[str] = Field(default_factory=list)  # empty: organisation-wide
    reason: str = ""
    min_version: str | None = None
    max_version: str | None = None
    # When it last changed (WhenChanged/WhenChangedUTC); None: 30 days before the estate's start.
    changed: Time = None


class UMDialPlan(_Model):
    uri_type: Literal["TelExtn", "E164", "SipName"] = "TelExtn"
    number_of_digits_in_extension: int = 4
    um_servers: list[str] = Field(default_factory=list)


class ExchangeOrg(_Model):
    organization: str = "Contoso"
    domain_controller: str = "dc01.contoso.com"
    auth_config: AuthConfig = Field(default_factory=AuthConfig)
    owa_mailbox_policies: dict[str, OwaMailboxPolicy] = Field(default_factory=dict)
    setting_overrides: dict[str, SettingOverride] = Field(default_factory=dict)
    um_dial_plans: dict[str, UMDialPlan] = Field(default_factory=dict)


# ---------------------------------------------------------------- Lync / Skype for Business

VerificationLevel = Literal["AlwaysVerifiable", "AlwaysUnverifiable", "UseSourceVerification"]


class HostingProvider(_Model):
    proxy_fqdn: str
    verification_level: VerificationLevel = "UseSourceVerification"
    enabled: bool = True
    enabled_shared_address_space: bool = False
    hosts_ocs_users: bool = False
    is_local: bool = False
    autodiscover_url: str | None = None
    sip_client_port: int = 443


class AccessEdgeConfiguration(_Model):
    allow_federated_users: bool = True
    allow_anonymous_users: bool = False
    allow_outside_users: bool = True
    enable_partner_discovery: bool = False
    routing_method: Literal["UseDnsSrvRouting", "UseDefaultRouting"] = "UseDnsSrvRouting"
    default_route_fqdn: str | None = None


class OAuthConfiguration(_Model):
    service_name: str = "00000004-0000-0ff1-ce00-000000000000"
    exchange_autodiscover_url: str | None = None
    exchange_autodiscover_allowed_domains: str = "*"
    client_authorization_oauth_server_identity: str | None = None
    realm: str | None = None
    partner_applications: list[str] = Field(default_factory=list)


class TrustedApplicationPool(_Model):
    registrar: str
    site: str
    requires_replication: bool = False
    throttle_as_server: bool = True
    treat_as_authenticated: bool = True
    computers: list[str] = Field(default_factory=list)


class TrustedApplication(_Model):
    application_id: str
    trusted_application_pool_fqdn: str
    port: int = 5199
    protocol: Literal["Mtls", "Tls", "Tcp"] = "Mtls"


class Site(_Model):
    site_id: int
    display_name: str
    description: str = ""
    kind: Literal["CentralSite", "BranchSite"] = "CentralSite"


class ReplicaStatus(_Model):
    up_to_date: bool = True
    last_status_report: Time = None
    last_update_creation: Time = None
    product_version: str = "6.0.9319.0"


class CentralManagementStore(_Model):
    active_master: str
    file_transfer_agents: list[str] = Field(default_factory=list)
    replicator_agents: list[str] = Field(default_factory=list)
    # Keyed by replica FQDN; answered by Get-CsManagementStoreReplicationStatus on front ends.
    replicas: dict[str, ReplicaStatus] = Field(default_factory=dict)
    last_heartbeat: Time = None


class LyncTopology(_Model):
    """What the Central Management Store holds (the view of a front end)."""

    pool_fqdn: str
    sip_domain: str
    sites: dict[str, Site] = Field(default_factory=dict)
    hosting_providers: dict[str, HostingProvider] = Field(default_factory=dict)
    access_edge: AccessEdgeConfiguration = Field(default_factory=AccessEdgeConfiguration)
    oauth: OAuthConfiguration = Field(default_factory=OAuthConfiguration)
    trusted_application_pools: dict[str, TrustedApplicationPool] = Field(default_factory=dict)
    trusted_applications: dict[str, TrustedApplication] = Field(default_factory=dict)
    cms: CentralManagementStore


class LyncCertificate(_Certificate):
    use: str
    subject: str
    issuer: str = "CN=Contoso Issuing CA, DC=contoso, DC=com"
    serial_number: str | None = None  # hex; None: derived from the other fields
    not_before: Time
    not_after: Time
    alternative_names: list[str] = Field(default_factory=list)
    effective_date: Time = None
    previous_thumbprint: str | None = None  # ${cert:LABEL} of an uninstalled certificate, or text
    update_time: Time = None
    source_scope: str = "Local"
    key_size: int = 2048
    installed: bool = True


class LyncWindowsService(_Model):
    """A Lync service as Get-CsWindowsService shows it: ``Stop-CsWindowsService -Graceful`` drains it
    (Paused), ``Invoke-CsComputerFailOver`` stops it."""

    status: Literal["Running", "Stopped", "StartPending", "StopPending", "ContinuePending", "PausePending",
                    "Paused"] = "Running"
    display_name: str | None = None  # None: the default service's


class LyncServer(_Model):
    product_version: str = "6.0.9319.0"
    certificates: dict[str, LyncCertificate] = Field(default_factory=dict)
    # This server's replica of the CMS, as changes to the CMS view: keys hosting_providers (name ->
    # partial provider, or null when the replica lacks it) and access_edge (partial). See scenario.py.
    local_store: dict[str, Any] = Field(default_factory=dict)
    # Service name -> its state, over the default services of the server's role (Get-CsWindowsService).
    windows_services: dict[str, LyncWindowsService] = Field(default_factory=dict)



# ---------------------------------------------------------------- Windows

RegistryValue = bool | int | str | list[str]


class EventRecord(_Model):
    log: str = "Application"
    provider: str
    id: int
    level: Literal[0, 1, 2, 3, 4, 5] = 4  # 1 critical, 2 error, 3 warning, 4 information
    time: Time
    message: str = ""
    task: int = 0
    keywords: int = 0x80000000000000
    process_id: int = 0


class AppPool(_Model):
    state: Literal["Starting", "Started", "Stopping", "Stopped", "Unknown"] = "Started"


class Process(_Model):
    name: str
    process_id: int
    started: Time
    command_line: str | None = None
    executable_path: str | None = None
    parent_process_id: int = 0
    working_set_size: int = 150_000_000


class FileEntry(_Model):
    size: int = 0
    # Bytes appended per minute since the simulator started: a log file that keeps being written.
    grow_bytes_per_minute: int = 0
    created: Time = None
    modified: Time = None
    content: str | None = None  # served by Get-Content; size follows it when set


class Directory(_Model):
    created: Time = None
    modified: Time = None
    files: dict[str, FileEntry] = Field(default_factory=dict)


class StoreCertificate(_Certificate):
    """An extra certificate in Cert:\\LocalMachine\\My (Exchange and Lync certificates appear anyway)."""

    subject: str
    issuer: str | None = None  # None: self-signed
    friendly_name: str = ""
    serial_number: str | None = None
    not_before: Time
    not_after: Time
    has_private_key: bool = True
    dns_names: list[str] = Field(default_factory=list)
    key_size: int = 2048


class WindowsState(_Model):
    os_version: str = "10.0.17763"
    app_pools: dict[str, AppPool] = Field(default_factory=dict)
    processes: dict[str, Process] = Field(default_factory=dict)
    events: dict[str, EventRecord] = Field(default_factory=dict)
    # Key path (e.g. 'HKLM:\\SYSTEM\\...') -> value name -> value (str REG_SZ, int REG_DWORD, list REG_MULTI_SZ).
    registry: dict[str, dict[str, RegistryValue]] = Field(default_factory=dict)
    directories: dict[str, Directory] = Field(default_factory=dict)
    certificates: dict[str, StoreCertificate] = Field(default_factory=dict)


# ---------------------------------------------------------------- the estate


AuthScheme = Literal["basic", "negotiate", "kerberos", "ntlm"]


class HostAuth(_Model):
    """What a host's endpoints offer in WWW-Authenticate (simulator/auth.py); unset: the simulator's
    choice (``Simulator(auth=...)``, Basic by default). E.g. ``exchange: [kerberos]`` is Exchange's
    /PowerShell as installed, ``windows: [negotiate, kerberos]`` WinRM's defaults."""

    windows: list[AuthScheme] | None = Field(default=None, min_length=1)
    exchange: list[AuthScheme] | None = Field(default=None, min_length=1)
    lync: list[AuthScheme] | None = Field(default=None, min_length=1)


class Host(_Model):
    roles: list[Role]
    auth: HostAuth = Field(default_factory=HostAuth)
    exchange: ExchangeServer | None = None
    lync: LyncServer | None = None
    windows: WindowsState = Field(default_factory=WindowsState)
    # Cmdlet name -> an Export-Clixml file (a path relative to the scenario file that names it): the
    # host answers that cmdlet with the file's objects, whatever the parameters (simulator/replay.py).
    replay: dict[str, str] = Field(default_factory=dict)

    @property
    def is_exchange(self) -> bool:
        return any(r.startswith("exchange_") for r in self.roles)

    @property
    def is_lync(self) -> bool:
        return any(r.startswith("lync_") for r in self.roles)


class JeaConfiguration(_Model):
    """A JEA endpoint: a configuration name on /wsman that exposes only these cmdlets."""

    visible_cmdlets: list[str]


class ScenarioModel(_Model):
    description: str = ""
    timezone: str = "+00:00"
    jea_configurations: dict[str, JeaConfiguration] = Field(default_factory=dict)
    exchange_org: ExchangeOrg | None = None
    lync: LyncTopology | None = None
    hosts: dict[str, Host]

    @field_validator("timezone")
    @classmethod
    def _valid_offset(cls, value: str) -> str:
        parse_offset(value)
        return value
