"""Every reason the verdict gives, with the check it comes from and the command that fixes it.

One catalogue for the status page and ``diagnose``. It mirrors the recording rules
``lync_owa:im_integration_broken`` and the fixes of ``LyncOwaIMIntegrationBroken``
(alerts/lync-owa.rules.yml) and the verdict table of docs/checks.md; tests/unit/test_verdict_python.py
fails when the reasons, their collectors, their checks or their commands drift apart.

``{target}`` in a fix stands for the server the row is about (the alert's ``{{ $labels.target }}``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

# Where a cause applies: the server it was read on, every OWA server at once, or the Edge's row for
# mailboxes in Exchange Online (hybrid only).
Scope = Literal["server", "organisation", "edge"]

# The fix of the IM settings (E1-E3), as the alert gives it to every reason that has no fix of its own.
SETTINGS_FIX = (
    "Fix the setting: Exchange 2013: the IMCertificateThumbprint and IMServerName keys in "
    "ClientAccess\\Owa\\web.config, then "
    '`C:\\Windows\\System32\\Inetsrv\\Appcmd.exe recycle apppool /apppool.name:"MSExchangeOWAAppPool"`; '
    '2016/2019: `New-SettingOverride -Name "IM Override" -Component OwaServer -Section IMSettings '
    '-Parameters @("IMServerName=<pool fqdn>","IMCertificateThumbprint=<thumbprint>") -Reason "IM integration"` '
    '(to change an existing one: `Set-SettingOverride -Identity "<name>" -Parameters` with both values), '
    "then on every OWA server `Get-ExchangeDiagnosticInfo -Server <server> -Process "
    "Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh` and "
    "`Restart-WebAppPool MSExchangeOWAAppPool`. Then sign in to OWA once: Event 112 must follow."
)


@dataclass(frozen=True)
class Reason:
    name: str
    check: str  # the check as docs/checks.md's verdict table names it
    collector: str  # whose data says so (the rule's `collector` label)
    scope: Scope
    fix: str

    def fix_for(self, target: str) -> str:
        return self.fix.replace("{target}", target)


_E3 = "E3 IM settings and certificate"
_H1 = "H1 Edge hosting provider"

_ALL_REASONS = (
    Reason("im_log_folder_missing", "E2 IM log folder", "im_log_folder", "server",
           "The Logging\\OWA\\InstantMessaging folder does not exist: the integration never initialised. "
           "Fix the IM settings, then recycle the pool. " + SETTINGS_FIX),
    Reason("no_event_112_since_pool_start", "E1 Event 112", "owa_events", "server",
           "MSExchangeOWAAppPool started more than 30 minutes ago and no Event 112 (IM endpoint manager "
           "initialised) has followed. Confirm: `Get-WinEvent -FilterHashtable @{LogName='Application'; "
           "ProviderName='MSExchange OWA'; Id=112} -MaxEvents 1`. " + SETTINGS_FIX),
    Reason("im_initialisation_failing", "E1 Event 112", "owa_events", "server",
           "OWA's newest IM initialisation failure is newer than its newest Event 112: IM is failing now. "
           + SETTINGS_FIX),
    Reason("im_settings_unreadable", _E3, "im_certificate", "server", SETTINGS_FIX),
    Reason("im_settings_missing", _E3, "im_certificate", "server", SETTINGS_FIX),
    Reason("im_thumbprint_malformed", _E3, "im_certificate", "server",
           "IMCertificateThumbprint is not 40 hex digits (often an invisible U+200E pasted from the certificate "
           "MMC): type it again. " + SETTINGS_FIX),
    Reason("im_thumbprint_matches_no_certificate", _E3, "im_certificate", "server",
           "IMCertificateThumbprint names no installed certificate (typically after a renewal): set it to the new "
           "thumbprint from `Get-ExchangeCertificate -Server {target}`. " + SETTINGS_FIX),
    Reason("im_certificate_unusable", _E3, "im_certificate", "server", SETTINGS_FIX),
    Reason("im_server_name_not_the_lync_pool", _E3, "im_certificate", "server", SETTINGS_FIX),
    Reason("im_certificate_lacks_trusted_pool_name", "E3 IM certificate names the OWA trusted pool", "im_certificate",
           "server",
           "The IM certificate of {target} does not carry the FQDN of its OWA trusted application pool in its subject "
           "or SANs. Fix: issue a certificate with that FQDN in subject and SAN, set IMCertificateThumbprint to it, "
           "then recycle MSExchangeOWAAppPool (2016/2019: refresh the setting override first)."),
    Reason("im_setting_override_not_in_effect", "E3 IM setting override in effect (2016/2019)", "im_certificate",
           "server",
           "{target} has not loaded the values its IM setting override sets (the override changed, the server was "
           "not refreshed). Fix: `Get-ExchangeDiagnosticInfo -Server <server name> -Process "
           "Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh`, then "
           "`Restart-WebAppPool MSExchangeOWAAppPool` on {target}."),
    Reason("owa_app_pool_not_recycled_after_im_override", "E3 OWA worker started after the IM setting override "
           "changed (2016/2019)", "im_certificate", "server",
           "OWA's worker on {target} started before its IM setting override last changed: it still runs on the old "
           "IMServerName and IMCertificateThumbprint. Fix: `Restart-WebAppPool MSExchangeOWAAppPool` on {target} "
           "(after `Get-ExchangeDiagnosticInfo -Server <server name> -Process "
           "Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh`, if not "
           "yet done)."),
    Reason("owa_trusted_application_port_not_answering", "L2 OWA trusted application's port answers TLS on the OWA "
           "server", "tls_probe", "server",
           "{target} completes no TLS handshake on the port of Lync's OutlookWebApp trusted application. Confirm: "
           "`Get-CsTrustedApplication -ApplicationId OutlookWebApp` and, on {target}, `Get-NetTCPConnection -State "
           "Listen`. Fix: open the port in the server's firewall, or `Set-CsTrustedApplication -Identity <owa pool "
           "fqdn>/urn:application:outlookwebapp -Port <the port OWA listens on>`, then `Enable-CsTopology`."),
    Reason("im_certificate_not_trusted_by_lync", "E3 IM certificate chains to a root the front ends trust",
           "tls_probe", "server",
           "The certificate {target} presents on the OWA trusted application's port chains to a root that no front "
           "end's chain ends at (self-signed, or another CA). Fix: issue the IM certificate from the CA the front "
           "ends trust, set IMCertificateThumbprint to it and recycle MSExchangeOWAAppPool; or import its root on "
           "the front ends and list it in the tls_probe setting lync_trusted_roots."),
    Reason("ucma_runtime_missing", "E4 UCMA runtime", "ucma_runtime", "server",
           "The UCMA 4.0 runtime is missing: install it (UcmaRuntimeSetup.exe); the registry value "
           "ImplementationDLLPath then names the DLL itself, by default "
           "C:\\Program Files\\Microsoft UCMA 4.0\\Runtime\\SSP\\Microsoft.Rtc.Internal.Ucweb.dll. " + SETTINGS_FIX),
    Reason("owa_app_pool_not_started", "E5 OWA application pool", "owa_app_pool", "server",
           "MSExchangeOWAAppPool is not started: OWA itself is down on this server. "
           "Fix: `Start-WebAppPool -Name MSExchangeOWAAppPool`, then check that Event 112 follows the first sign-in."),
    Reason("owa_virtual_directory_im_disabled", "E6 OWA virtual directory", "owa_im_settings", "server",
           "IM is off on this server's OWA virtual directory. Fix: `Get-OwaVirtualDirectory -Server {target} | "
           "Set-OwaVirtualDirectory -InstantMessagingEnabled $true -InstantMessagingType OCS`."),
    Reason("owa_mailbox_policy_im_disabled", "E6 OWA mailbox policy (default)", "owa_im_settings", "organisation",
           "The default OWA mailbox policy has IM off for every mailbox it governs. Fix: `Get-OwaMailboxPolicy | "
           "Where-Object IsDefault | Set-OwaMailboxPolicy -InstantMessagingEnabled $true -InstantMessagingType OCS`."),
    Reason("owa_trusted_application_missing", "L2 OWA trusted application", "lync_topology", "organisation",
           "Lync has no OutlookWebApp trusted application, so it refuses OWA. Fix on a front end: "
           "`New-CsTrustedApplication -ApplicationId OutlookWebApp -TrustedApplicationPoolFqdn "
           "<OWA server or pool FQDN> -Port 5199`, then `Enable-CsTopology`."),
    Reason("trusted_pool_duplicates_um_server", "L2 trusted pool duplicating a UM server", "lync_topology",
           "organisation",
           "A trusted application pool names a computer Lync already knows as an Exchange UM server (SipName dial "
           "plan): two topology entries for one computer. Fix: `Remove-CsTrustedApplicationPool -Identity "
           "<that FQDN>`, then `Enable-CsTopology`."),
    Reason("owa_trusted_pool_registrar_not_the_lync_pool",
           "L2 OWA trusted pool's Registrar is the pool IMServerName names", "lync_topology", "organisation",
           "The OWA trusted application pool is homed on another pool than the one IMServerName names. Fix on a "
           "front end: `Set-CsTrustedApplicationPool -Identity <OWA pool FQDN> -Registrar <the pool IMServerName "
           "names>`, then `Enable-CsTopology` (or set IMServerName to the Registrar's pool and recycle "
           "MSExchangeOWAAppPool)."),
    Reason("owa_server_not_known_to_lync", "L2 OWA server known to Lync (UM autodiscovery or a trusted pool)",
           "exchange_topology", "server",
           "Lync knows {target} neither through UM autodiscovery (a SipName dial plan, with the UM call router and "
           "UM service on that one computer) nor through a trusted application pool hosting OutlookWebApp. Fix on a "
           "front end: `New-CsTrustedApplicationComputer -Identity <server FQDN> -Pool <OWA trusted pool FQDN>` (or "
           "a pool and an OutlookWebApp application of its own), then `Enable-CsTopology`."),
    Reason("lync_pool_unreachable", "Lync pool reachable on 5061 (TLS probe of every front end)", "tls_probe",
           "organisation",
           "No front end of the pool answers TLS on 5061 from the exporter. Confirm: "
           "`Test-NetConnection <front end> -Port 5061` and `Get-CsWindowsService` on each front end."),
    Reason("lync_pool_certificate_expired", "Lync front end's Default certificate expired", "lync_certificates",
           "organisation",
           "A front end's Default certificate has expired. Fix: "
           "`Request-CsCertificate -New -Type Default,WebServicesInternal,WebServicesExternal`, then "
           "`Set-CsCertificate -Type Default,WebServicesInternal,WebServicesExternal -Thumbprint <new>`."),
    Reason("edge_hosting_provider_missing", _H1, "edge_hosting_provider", "edge",
           "The Edge's local store has no Exchange Online hosting provider. Fix on a front end (if the CMS lacks "
           'it too): `New-CsHostingProvider -Identity "Exchange Online" -Enabled $True -EnabledSharedAddressSpace '
           '$True -HostsOCSUsers $False -ProxyFqdn "exap.um.outlook.com" -IsLocal $False -VerificationLevel '
           "UseSourceVerification`, then wait for replication to the Edge."),
    Reason("edge_hosting_provider_misconfigured", _H1, "edge_hosting_provider", "edge",
           "The Edge's Exchange Online hosting provider has a wrong setting (named above). Fix on a front end: "
           '`Set-CsHostingProvider -Identity "Exchange Online" -Enabled $True -EnabledSharedAddressSpace $True '
           "-HostsOCSUsers $False -IsLocal $False -VerificationLevel UseSourceVerification`; a wrong proxy_fqdn "
           'cannot be set: `Remove-CsHostingProvider -Identity "Exchange Online"`, then `New-CsHostingProvider '
           '-Identity "Exchange Online" -Enabled $True -EnabledSharedAddressSpace $True -HostsOCSUsers $False '
           '-ProxyFqdn "exap.um.outlook.com" -IsLocal $False -VerificationLevel UseSourceVerification`. '
           "Then wait for replication to the Edge."),
    Reason("edge_federation_disabled", "H2 Edge federation", "edge_hosting_provider", "edge",
           "Federation is off on the Access Edge. Fix on a front end: "
           "`Set-CsAccessEdgeConfiguration -AllowFederatedUsers $True`, then wait for replication."),
    Reason("edge_federation_default_route", "H2 Edge federation routed by DNS SRV", "edge_hosting_provider", "edge",
           "The Access Edge routes federation through a default route, which excludes hosting providers such as "
           "Exchange Online. Fix on a front end: `Set-CsAccessEdgeConfiguration -UseDnsSrvRouting "
           "-EnablePartnerDiscovery $False` (or $True to discover partner domains by DNS), recreate the Exchange "
           'Online hosting provider if it was deleted (`New-CsHostingProvider -Identity "Exchange Online" ...`, see '
           "LyncOwaEdgeHostingProviderMissing), then wait for replication."),
)


def _by_name(reasons: tuple[Reason, ...]) -> dict[str, Reason]:
    """A reason listed twice would silently keep only its last text: refuse it at import."""
    by_name: dict[str, Reason] = {}
    for reason in reasons:
        if reason.name in by_name:
            raise ValueError(f"verdict reason {reason.name!r} is listed twice in exporter/verdict/catalogue.py")
        by_name[reason.name] = reason
    return by_name


REASONS: dict[str, Reason] = _by_name(_ALL_REASONS)

# The collectors whose data the verdict reads: while one of them fails, a row may look better than it is.
VERDICT_COLLECTORS = frozenset(r.collector for r in REASONS.values()) | {"server_maintenance"}
# Those that judge one server from its own data: without their data, that server's verdict is unknown.
SERVER_COLLECTORS = frozenset(r.collector for r in REASONS.values() if r.scope == "server")
