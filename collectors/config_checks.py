"""The fixed list of integration configuration checks behind ``lync_owa_config_check_ok{check}``.

One metric for many yes/no settings keeps dashboards and rules simple, and a closed list of check
names keeps its cardinality bounded. Every check names the integration check it comes from (see
docs/checks.md) and the command that fixes it; docs/metrics.md lists the same table, and a test
keeps the two in step. Several collectors emit this metric, each for its own checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from collectors.contract import MetricSpec, Sample

CONFIG_CHECK_OK = MetricSpec(
    "lync_owa_config_check_ok",
    "gauge",
    "1 when the named integration configuration check passes on this target, 0 when it fails "
    "(the list of checks and their fixes is in docs/metrics.md).",
    ("check",),
)


@dataclass(frozen=True)
class ConfigCheck:
    name: str
    source: str  # the check in docs/checks.md: E4, E6, L2, L3, L4, H2, V1
    passes_when: str
    remediation: str


_CHECKS = (
    # E4: UCMA 4.0 runtime
    ConfigCheck(
        "ucma_registry_value_present",
        "E4",
        "HKLM\\SYSTEM\\CurrentControlSet\\Services\\MSExchange OWA\\InstantMessaging has ImplementationDLLPath.",
        "Install the UCMA 4.0 runtime (UcmaRuntimeSetup.exe from the Exchange CU), then recycle MSExchangeOWAAppPool.",
    ),
    ConfigCheck(
        "ucma_dll_present",
        "E4",
        "Microsoft.Rtc.Internal.Ucweb.dll exists where ImplementationDLLPath points (the DLL's full path by default, or a folder holding it).",
        "Reinstall the UCMA 4.0 runtime, or set ImplementationDLLPath to the DLL's full path (default C:\\Program Files\\Microsoft UCMA 4.0\\Runtime\\SSP\\Microsoft.Rtc.Internal.Ucweb.dll), then recycle MSExchangeOWAAppPool.",
    ),
    # E3: the IM certificate's names (the IM settings themselves: lync_owa_im_certificate_check_ok)
    ConfigCheck(
        "im_certificate_names_trusted_pool",
        "E3",
        "The certificate IMCertificateThumbprint names carries, in its subject CN or a DNS SAN, the FQDN of every "
        "trusted application pool hosting OutlookWebApp that stands for this server (its own FQDN or a pool listing "
        "it; pools as a lync_topology job read them).",
        "Request the IM certificate from the internal CA with the trusted application pool's FQDN in subject and SAN "
        "(New-ExchangeCertificate -GenerateRequest -SubjectName CN=<pool fqdn> -DomainName <pool fqdn>,<server fqdn> "
        "-RequestFile <path>; Import-ExchangeCertificate), set IMCertificateThumbprint to it, then recycle "
        "MSExchangeOWAAppPool.",
    ),
    ConfigCheck(
        "im_certificate_names_server",
        "E3",
        "The certificate IMCertificateThumbprint names carries this Exchange server's own FQDN (the target's host) in "
        "its subject CN or a DNS SAN, as 001 advises for a certificate Lync and Exchange both trust (run when the "
        "target's host is an FQDN).",
        "Request the IM certificate from the internal CA with the server's FQDN in subject and SAN "
        "(New-ExchangeCertificate -GenerateRequest -SubjectName CN=<server fqdn> -DomainName <server fqdn>,<pool fqdn> "
        "-RequestFile <path>; Import-ExchangeCertificate), set IMCertificateThumbprint to it, then recycle "
        "MSExchangeOWAAppPool.",
    ),
    ConfigCheck(
        "im_setting_override_in_effect",
        "E3",
        "Exchange 2016/2019: the IMServerName and IMCertificateThumbprint the server has loaded (Get-ExchangeDiagnosticInfo "
        "-Process MSExchangeMailboxAssistants -Component VariantConfiguration -Argument \"Config,Component=OwaServer\") "
        "are the ones its IM setting override sets (run when the override sets both).",
        "Get-ExchangeDiagnosticInfo -Server <server name> -Process Microsoft.Exchange.Directory.TopologyService "
        "-Component VariantConfiguration -Argument Refresh, then Restart-WebAppPool MSExchangeOWAAppPool on that server.",
    ),
    ConfigCheck(
        "owa_app_pool_recycled_after_im_override",
        "E3",
        "Exchange 2016/2019: the newest w3wp.exe of MSExchangeOWAAppPool (Win32_Process CreationDate) started after the "
        "IM setting override in use last changed (Get-SettingOverride WhenChangedUTC), with 5 minutes for the clocks of "
        "the server and the domain controller (run when the override sets both values and a worker runs).",
        "Restart-WebAppPool MSExchangeOWAAppPool on that server (after Get-ExchangeDiagnosticInfo -Server <server name> "
        "-Process Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh, if not "
        "yet done).",
    ),
    ConfigCheck(
        "im_certificate_chains_to_lync_root",
        "E3",
        "The chain OWA presents on the OWA trusted application's port ends at the root of a chain a Lync front end "
        "presents on 5061 (the front ends trust their own root), or at a root listed in the tls_probe setting "
        "lync_trusted_roots (tls_probe; run when both chains were read).",
        "Issue the IM certificate from the CA the front ends trust (the internal CA of their Default certificate), set "
        "IMCertificateThumbprint to it and recycle MSExchangeOWAAppPool; or import its root into the front ends' "
        "Trusted Root Certification Authorities store and list it in lync_trusted_roots.",
    ),
    # E6: OWA virtual directories and mailbox policies
    ConfigCheck(
        "owa_vdir_im_enabled",
        "E6",
        "Every client-access (Default Web Site) OWA virtual directory has InstantMessagingEnabled True.",
        'Set-OwaVirtualDirectory -Identity "<server>\\owa (Default Web Site)" -InstantMessagingEnabled $true',
    ),
    ConfigCheck(
        "owa_vdir_im_type_ocs",
        "E6",
        "Every client-access (Default Web Site) OWA virtual directory has InstantMessagingType OCS.",
        'Set-OwaVirtualDirectory -Identity "<server>\\owa (Default Web Site)" -InstantMessagingType OCS',
    ),
    ConfigCheck(
        "owa_backend_vdir_im_not_enabled",
        "E6",
        "No back-end (Exchange Back End) OWA virtual directory of this server has InstantMessagingEnabled True with "
        "InstantMessagingType OCS (001 recommends against IM on back-end servers; IM still works).",
        'Set-OwaVirtualDirectory -Identity "<server>\\owa (Exchange Back End)" -InstantMessagingType None',
    ),
    ConfigCheck(
        "owa_mailbox_policy_im_enabled",
        "E6",
        "The default OWA mailbox policy has InstantMessagingEnabled True.",
        "Set-OwaMailboxPolicy -Identity <default policy> -InstantMessagingEnabled $true",
    ),
    ConfigCheck(
        "owa_mailbox_policy_im_type_ocs",
        "E6",
        "The default OWA mailbox policy has InstantMessagingType OCS.",
        "Set-OwaMailboxPolicy -Identity <default policy> -InstantMessagingType OCS",
    ),
    ConfigCheck(
        "owa_mailbox_policies_im_off_unassigned",
        "E6",
        "No mailbox is assigned a non-default OWA mailbox policy with IM off (InstantMessagingEnabled False or "
        "InstantMessagingType not OCS): those users get no IM in OWA. Counted with Get-CASMailbox -Filter "
        "\"OWAMailboxPolicy -eq '<policy DN>'\", bounded (count_policy_mailboxes, mailbox_count_limit, "
        "max_counted_policies, policies_counted_per_run, mailbox_count_interval); "
        "lync_owa_mailbox_policy_im_off_mailboxes gives the counts.",
        "Set-OwaMailboxPolicy -Identity <policy> -InstantMessagingEnabled $true -InstantMessagingType OCS, or "
        "Set-CASMailbox -Identity <mailbox> -OwaMailboxPolicy <a policy with IM on> for its mailboxes.",
    ),
    # L2: trusted application pool for OWA
    ConfigCheck(
        "trusted_pool_not_duplicating_um",
        "L2",
        "No trusted application pool lists a computer that Lync already autodiscovers through a SipName UM dial plan "
        "(UMServers of Get-UMDialPlan, read by exchange_topology, or the lync_topology setting sipname_um_servers).",
        "Remove-CsTrustedApplicationPool -Identity <duplicate pool>, then Enable-CsTopology.",
    ),
    ConfigCheck(
        "owa_trusted_application_present",
        "L2",
        "A trusted application OutlookWebApp exists on a trusted application pool (unless UM autodiscovery covers OWA: "
        "Lync autodiscovers Exchange servers through a SipName UM dial plan).",
        "New-CsTrustedApplicationPool -Identity <owa fqdn> -Registrar <pool fqdn> -Site <SiteID>; "
        "New-CsTrustedApplication -ApplicationId OutlookWebApp -TrustedApplicationPoolFqdn <owa fqdn> -Port 5199; "
        "Enable-CsTopology.",
    ),
    ConfigCheck(
        "owa_trusted_application_port_accepts_tls",
        "L2",
        "This Exchange server completes a TLS handshake, from the exporter, on the port of every OutlookWebApp trusted "
        "application whose pool stands for it (Get-CsTrustedApplication Port, read by lync_topology; probed by "
        "tls_probe as <server fqdn>:<port>).",
        "Set-CsTrustedApplication -Identity <owa pool fqdn>/urn:application:outlookwebapp -Port <the port OWA listens "
        "on>, then Enable-CsTopology; or open the port in the server's firewall (the IIS worker of "
        "MSExchangeOWAAppPool), then recycle MSExchangeOWAAppPool.",
    ),
    ConfigCheck(
        "owa_server_known_to_lync",
        "L2",
        "This mailbox server (where OWA's IM endpoint runs) is known to Lync: it runs both UM services (Exchange "
        "2013 with the Mailbox and Client Access roles on one computer, or 2016) and a SipName dial plan lists it, so "
        "Lync autodiscovers it, or a trusted application pool hosting OutlookWebApp stands for it (its FQDN or one "
        "of its computers; pools as a lync_topology job read them).",
        "New-CsTrustedApplicationComputer -Identity <server fqdn> -Pool <OWA trusted pool fqdn> (or "
        "New-CsTrustedApplicationPool -Identity <server fqdn> -Registrar <pool fqdn> -Site <SiteID> and "
        "New-CsTrustedApplication -ApplicationId OutlookWebApp -TrustedApplicationPoolFqdn <server fqdn> -Port 5199), "
        "then Enable-CsTopology.",
    ),
    ConfigCheck(
        "owa_trusted_pool_registrar_is_lync_pool",
        "L2",
        "Every trusted application pool hosting OutlookWebApp has as Registrar the Lync pool that IMServerName "
        "names (global lync_pool_fqdn; run when it is set).",
        "Set-CsTrustedApplicationPool -Identity <owa fqdn> -Registrar <pool fqdn>, then Enable-CsTopology "
        "(or set IMServerName to the Registrar's pool).",
    ),
    ConfigCheck(
        "owa_trusted_pool_requires_no_replication",
        "L2",
        "Every trusted application pool hosting OutlookWebApp has RequiresReplication False, as 001 creates it.",
        "Set-CsTrustedApplicationPool -Identity <owa fqdn> -RequiresReplication $False",
    ),
    ConfigCheck(
        "owa_trusted_pool_throttles_as_server",
        "L2",
        "Every trusted application pool hosting OutlookWebApp has ThrottleAsServer True (the default 001 keeps; False "
        "throttles OWA's connections as a client's).",
        "Set-CsTrustedApplicationPool -Identity <owa fqdn> -ThrottleAsServer $True",
    ),
    ConfigCheck(
        "owa_trusted_pool_treated_as_authenticated",
        "L2",
        "Every trusted application pool hosting OutlookWebApp has TreatAsAuthenticated True (the default 001 keeps; "
        "False requires OWA's requests to authenticate).",
        "Set-CsTrustedApplicationPool -Identity <owa fqdn> -TreatAsAuthenticated $True",
    ),
    # V1: a version pair Microsoft supports for IM in OWA
    ConfigCheck(
        "exchange_lync_versions_supported",
        "V1",
        "Microsoft supports IM in OWA between this Exchange server's version (Get-ExchangeServer "
        "AdminDisplayVersion) and every Lync server's (ProductVersion in Get-CsManagementStoreReplicationStatus): "
        "fails only on Lync Server 2013 (5.x) with Exchange 2016 or later, the one pair Microsoft names unsupported.",
        "Move the OWA integration to a Skype for Business Server pool (IMServerName, the OWA trusted application "
        "pool's Registrar), or upgrade the Lync Server 2013 pool.",
    ),
    # L3: the OAuthTokenIssuer certificate of the Lync front ends
    ConfigCheck(
        "lync_oauth_certificate_sip_domain",
        "L3",
        "The front end has an OAuthTokenIssuer certificate whose subject CN is the SIP domain or a name in it "
        "(Get-CsCertificate; the SIP domain from the lync_certificates setting sip_domain, else the pool FQDN's "
        "parent).",
        "Request a certificate (RSA, at least 2048 bits) with subject CN=<sip domain>, then "
        "Set-CsCertificate -Type OAuthTokenIssuer -Thumbprint <thumbprint> on one front end (the CMS replicates it).",
    ),
    ConfigCheck(
        "lync_oauth_certificate_key_size",
        "L3",
        "The OAuthTokenIssuer certificate's key has at least 2048 bits (read from the certificate's DER in the front "
        "end's Cert:\\LocalMachine\\My; not judged when that store does not hold it).",
        "Request a certificate with a key of at least 2048 bits, then Set-CsCertificate -Identity global "
        "-Type OAuthTokenIssuer -Thumbprint <thumbprint> once, on one front end (replication deploys it to every "
        "front end).",
    ),
    # L4: OAuth and autodiscover
    ConfigCheck(
        "oauth_autodiscover_url_svc",
        "L4",
        "Get-CsOAuthConfiguration ExchangeAutodiscoverUrl ends in /autodiscover/autodiscover.svc (not .xml).",
        'Set-CsOAuthConfiguration -ExchangeAutodiscoverUrl "https://autodiscover.<domain>/autodiscover/autodiscover.svc"',
    ),
    ConfigCheck(
        "autodiscover_internal_uri_set",
        "L4",
        "This server's AutoDiscoverServiceInternalUri (Get-ClientAccessService; Exchange 2013: Get-ClientAccessServer) "
        "is set to an http(s) URL.",
        'Set-ClientAccessService -Identity <server> -AutoDiscoverServiceInternalUri '
        '"https://autodiscover.<domain>/Autodiscover/Autodiscover.xml"',
    ),
    ConfigCheck(
        "autodiscover_host_resolves",
        "L4",
        "The host name of ExchangeAutodiscoverUrl resolves in DNS from the exporter (run when the exporter resolves "
        "the front end's own name, i.e. shares the estate's DNS, or with resolve_autodiscover: always).",
        "Create the autodiscover DNS record (A or CNAME) for the host in ExchangeAutodiscoverUrl.",
    ),
)

CHECKS: dict[str, ConfigCheck] = {check.name: check for check in _CHECKS}


def check_sample(name: str, ok: bool) -> Sample:
    """The sample for one check; an unknown name is a programming error, not a new series."""
    if name not in CHECKS:
        raise KeyError(f"config check {name!r} is not in the catalogue (collectors/config_checks.py)")
    return CONFIG_CHECK_OK.sample(1 if ok else 0, check=name)
