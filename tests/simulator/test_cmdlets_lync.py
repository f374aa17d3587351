"""Lync cmdlets over the real pypsrp client: property names, .NET types and type names as pypsrp sees them."""

from __future__ import annotations

import datetime as dt
import re

from pypsrp.complex_objects import GenericComplexObject

from tests.simulator.helpers import EDGE01, der_certificates, error_ids, props, run

DOTNET_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}[+-]\d\d:\d\d$")
CERT_DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def parse_dt(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text[:26] + text[27:])  # Python takes 6 fractional digits


def test_replication_status_one_replica_state_per_replica(fe01_pool):
    ps = run(fe01_pool, "Get-CsManagementStoreReplicationStatus")
    assert not ps.had_errors and not ps.streams.error
    by_fqdn = {props(o)["ReplicaFqdn"]: o for o in ps.output}
    assert set(by_fqdn) == {"fe01.contoso.com", "fe02.contoso.com", "edge01.contoso.com"}
    now = dt.datetime.now(dt.timezone.utc)
    for obj in by_fqdn.values():
        assert isinstance(obj, GenericComplexObject)
        assert obj.types == ["Microsoft.Rtc.Management.Xds.ReplicaState", "System.Object"]
        p = obj.adapted_properties
        assert p["UpToDate"] is True
        assert DOTNET_DATETIME.match(p["LastStatusReport"]), p["LastStatusReport"]
        assert (now - parse_dt(p["LastStatusReport"])).total_seconds() < 60
        assert isinstance(p["LastUpdateCreation"], str)
        assert p["ProductVersion"].startswith("6.0.9319.")


def test_replication_status_replica_filter_and_cms_status(fe01_pool):
    ps = run(fe01_pool, "Get-CsManagementStoreReplicationStatus", ReplicaFqdn="EDGE01.contoso.com")
    assert [props(o)["ReplicaFqdn"] for o in ps.output] == [EDGE01]
    ps = run(fe01_pool, "Get-CsManagementStoreReplicationStatus", CentralManagementStoreStatus=None)
    (status,) = ps.output
    assert status.types[0] == "Microsoft.Rtc.Management.Xds.CentralManagementStoreStatusResult"
    p = props(status)
    assert p["ActiveMasterFqdn"] == "fe01.contoso.com"
    assert p["ActiveFileTransferAgents"] == ["fe01.contoso.com"]
    assert isinstance(p["LastHeartbeats"], dict)


def test_hosting_provider_cms_and_local_store(fe01_pool, edge_pool):
    cms = {props(o)["Identity"]: o for o in run(fe01_pool, "Get-CsHostingProvider").output}
    local = {props(o)["Identity"]: o for o in run(edge_pool, "Get-CsHostingProvider", LocalStore=None).output}
    assert set(cms) == set(local) == {"Exchange Online", "LyncOnline"}
    online = local["Exchange Online"]
    assert online.types[0] == "Microsoft.Rtc.Management.WritableConfig.Settings.Edge.DisplayHostingProvider"
    p = props(online)
    assert p["ProxyFqdn"] == "exap.um.outlook.com"
    flags = (p["Enabled"], p["EnabledSharedAddressSpace"], p["HostsOCSUsers"], p["IsLocal"])
    assert flags == (True, True, False, False)
    assert p["AutodiscoverUrl"] is None
    assert p["SipClientPort"] == 443
    level = p["VerificationLevel"]
    assert isinstance(level, GenericComplexObject)
    assert str(level) == "UseSourceVerification" and level.property_sets == [2]
    assert level.types[0] == "Microsoft.Rtc.Management.WritableConfig.Settings.Edge.VerificationLevel"
    one = run(fe01_pool, "Get-CsHostingProvider", Identity="exchange online").output
    assert [props(o)["Name"] for o in one] == ["Exchange Online"]


def test_access_edge_configuration(edge_pool):
    (config,) = run(edge_pool, "Get-CsAccessEdgeConfiguration").output
    p = props(config)
    assert p["Identity"] == "Global" and p["AllowFederatedUsers"] is True
    assert isinstance(p["AllowOutsideUsers"], bool) and isinstance(p["AllowAnonymousUsers"], bool)
    assert str(p["RoutingMethod"]) == "UseDnsSrvRouting"


def test_cs_certificate(fe01_pool):
    certs = run(fe01_pool, "Get-CsCertificate").output
    uses = {props(c)["Use"] for c in certs}
    assert {"Default", "WebServicesInternal", "OAuthTokenIssuer"} <= uses
    oauth = next(props(c) for c in certs if props(c)["Use"] == "OAuthTokenIssuer")
    assert re.fullmatch(r"[0-9A-F]{40}", oauth["Thumbprint"])
    # A certificate's dates have whole seconds: .NET writes no fraction for them.
    assert CERT_DATETIME.match(oauth["NotAfter"]) and CERT_DATETIME.match(oauth["NotBefore"])
    # The thumbprint is the SHA-1 of a certificate the server really holds.
    store = der_certificates(run(fe01_pool, "Get-ChildItem", Path="Cert:\\LocalMachine\\My").output)
    assert oauth["Thumbprint"] in store and store[oauth["Thumbprint"]].subject.rfc4514_string() == oauth["Subject"]
    default = next(props(c) for c in certs if props(c)["Use"] == "Default")
    web = next(props(c) for c in certs if props(c)["Use"] == "WebServicesInternal")
    assert default["Thumbprint"] == web["Thumbprint"]  # one certificate assigned to two uses
    assert isinstance(oauth["AlternativeNames"], list) and "contoso.com" in oauth["Subject"]
    assert oauth["PreviousThumbprint"] is None
    only = run(fe01_pool, "Get-CsCertificate", Type=["OAuthTokenIssuer"]).output
    assert [props(c)["Use"] for c in only] == ["OAuthTokenIssuer"]


def test_oauth_configuration(fe01_pool):
    (config,) = run(fe01_pool, "Get-CsOAuthConfiguration").output
    p = props(config)
    assert p["Identity"] == "Global"
    assert p["ExchangeAutodiscoverUrl"].endswith("/autodiscover/autodiscover.svc")
    assert isinstance(p["PartnerApplications"], list)


def test_trusted_application_pool_application_and_site(fe01_pool):
    (pool,) = run(fe01_pool, "Get-CsTrustedApplicationPool").output
    p = props(pool)
    assert p["Identity"] == "TrustedApplicationPool:owa.contoso.com" and p["PoolFqdn"] == "owa.contoso.com"
    assert p["Registrar"] == "Registrar:pool01.contoso.com" and p["RequiresReplication"] is False
    assert p["Computers"] == ["ex01.contoso.com", "ex02.contoso.com"]
    assert run(fe01_pool, "Get-CsTrustedApplicationPool", Identity="owa.contoso.com").output
    (app,) = run(fe01_pool, "Get-CsTrustedApplication").output
    a = props(app)
    assert a["Identity"] == "owa.contoso.com/urn:application:outlookwebapp"
    assert a["ApplicationId"] == "urn:application:outlookwebapp" and a["Port"] == 5199
    assert a["TrustedApplicationPoolFqdn"] == "owa.contoso.com"
    (site,) = run(fe01_pool, "Get-CsSite").output
    s = props(site)
    assert (s["Identity"], s["SiteId"], s["DisplayName"]) == ("Site:Redmond", 1, "Redmond")


def test_lync_cmdlets_unknown_on_exchange_hosts(ex01_pool):
    ps = run(ex01_pool, "Get-CsManagementStoreReplicationStatus")
    assert ps.had_errors and error_ids(ps) == ["CommandNotFoundException"]
