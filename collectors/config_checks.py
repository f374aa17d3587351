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
    source: str  # the check in docs/checks.md: E4, E6, L2, L3, L4, H2
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
        "The OAuthTokenIssuer certificate's key has at least 2048 bits (run only when the answer reports a key size: "
        "Get-CsCertificate does not).",
        "Request a certificate with a key of at least 2048 bits, then "
        "Set-CsCertificate -Type OAuthTokenIssuer -Thumbprint <thumbprint> on one front end (the CMS replicates it).",
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
