"""Scenario files: loading, overlays, validation errors, scaling, and what each shipped scenario means."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from simulator.clock import parse_time
from simulator.scenario import ScenarioError, load_scenario, scenario_names
from tests.simulator.helpers import (
    EDGE01,
    EX01,
    EX02,
    FE01,
    IM_FOLDER,
    IM_KEY,
    WEB_CONFIG,
    der_certificates,
    error_ids,
    pool_for,
    props,
    run,
)

SHIPPED = {
    "healthy", "no-event-112", "im-log-missing", "thumbprint-drift", "thumbprint-malformed", "apppool-stopped",
    "cms-replica-stale", "edge-provider-missing", "edge-provider-drift", "cert-expiring", "unused-cert-expiring",
    "ucma-missing",
    "oauth-autodiscover-xml", "oauth-cert-mismatch", "owa-trusted-app-missing", "autodiscover-uri-missing",
    "trusted-pool-duplicates-um", "owa-im-disabled", "owa-policy-im-disabled",
    "exchange-maintenance", "frontend-drained",
    "trusted-pool-wrong-registrar", "im-cert-lacks-trusted-pool", "owa-backend-im-enabled",
    "trusted-pool-settings-drift",
    "oauth-cert-weak-key", "edge-default-routing",
    "owa-server-unknown-to-lync", "lync-2013-with-exchange-2019", "owa-policy-im-off-assigned",
    "owa-im-port-not-listening", "im-cert-untrusted-root", "im-cert-lacks-server-name", "im-override-not-refreshed",
    "override-not-recycled",
}


def parse_dotnet(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(re.sub(r"(\.\d{6})\d", r"\1", text).replace("Z", "+00:00"))


# ---------------------------------------------------------------- loading and validation


def test_shipped_scenarios_share_one_host_set():
    assert set(scenario_names()) == SHIPPED and scenario_names()[0] == "healthy"
    hosts = load_scenario("healthy").host_names()
    for name in SHIPPED:
        scenario = load_scenario(name)
        assert scenario.host_names() == hosts and scenario.model.description


@pytest.mark.parametrize("value, offset", [
    ("-45s", -45), ("+90d", 90 * 86400), ("-1d2h30m", -(86400 + 9000)), ("now", 0), ("-1.5h", -5400)])
def test_relative_times(value, offset):
    now = dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)
    assert parse_time(value).resolve(now) == now + dt.timedelta(seconds=offset)


def test_absolute_times_use_the_estate_offset_when_naive():
    tz = dt.timezone(dt.timedelta(hours=2))
    spec = parse_time("2024-05-01T10:00:00", tz)
    assert spec.resolve(dt.datetime.now(dt.timezone.utc)).utcoffset() == dt.timedelta(hours=2)
    assert parse_time(None) is None
    with pytest.raises(ValueError, match="invalid time"):
        parse_time("-2q")


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("body, message", [
    ("hosts:\n  ex01.contoso.com:\n    windows:\n      processes:\n        owa-w3wp:\n          started: -2q\n",
     r"bad\.yaml \(base healthy\.yaml\): hosts\.ex01\.contoso\.com\.windows\.processes\.owa-w3wp\.started: "
     r"invalid time '-2q'"),
    ("hosts:\n  fe01.contoso.com:\n    colour: red\n", r"hosts\.fe01\.contoso\.com\.colour: Extra inputs"),
    ("lync:\n  cms:\n    replicas:\n      nope.contoso.com: !delete\n", r"!delete of a key the base does not have"),
    ("timezone: CET\n", r"timezone: invalid UTC offset"),
    ("hosts:\n  fe01.contoso.com:\n    roles: [exchange_mailbox]\n",
     r"hosts\.fe01\.contoso\.com\.exchange: required for a host with an exchange_\* role"),
    ("hosts:\n  fe01.contoso.com:\n    roles: [lync_frontend]\n    roles: [lync_edge]\n", r"duplicate key 'roles'"),
])
def test_overlay_validation_errors_name_file_and_key(tmp_path, body, message):
    with pytest.raises(ScenarioError, match=message):
        load_scenario(write(tmp_path, "bad.yaml", "base: healthy\n" + body))


def test_other_load_errors(tmp_path):
    with pytest.raises(ScenarioError, match="unknown scenario 'nope'"):
        load_scenario("nope")
    with pytest.raises(ScenarioError, match="circular base"):
        write(tmp_path, "b.yaml", "base: a\nhosts: {}\n")
        load_scenario(write(tmp_path, "a.yaml", "base: b\nhosts: {}\n"))
    with pytest.raises(ScenarioError, match="must be a YAML mapping"):
        load_scenario(write(tmp_path, "list.yaml", "- a\n"))
    with pytest.raises(ScenarioError, match="invalid YAML"):
        load_scenario(write(tmp_path, "broken.yaml", "hosts: [\n"))


def test_scaled_estate_clones_hosts_and_replicas():
    scaled = load_scenario("healthy").scaled(12)
    names = scaled.host_names()
    assert len(names) == 12 and names[:5] == load_scenario("healthy").host_names()
    assert names[5:8] == ["ex01-006.contoso.com", "ex02-007.contoso.com", "fe01-008.contoso.com"]
    assert set(scaled.model.lync.cms.replicas) == {"fe01.contoso.com", "fe02.contoso.com", "edge01.contoso.com"}
    replicas = load_scenario("healthy").scaled(12, clone_replicas=True).model.lync.cms.replicas
    assert "fe01-008.contoso.com" in replicas and "edge01-010.contoso.com" in replicas
    assert scaled.scale == 12 and scaled.scaled(3).host_names() == names[:3]


# ---------------------------------------------------------------- what each scenario means, client side


def newest(events, predicate=lambda p: True):
    found = [parse_dotnet(props(e)["TimeCreated"]) for e in events if predicate(props(e))]
    return max(found) if found else None


def owa_worker_start(pool):
    procs = run(pool, "Get-CimInstance", ClassName="Win32_Process", Filter="Name='w3wp.exe'").output
    owa = [props(p) for p in procs if '-ap "MSExchangeOWAAppPool"' in props(p)["CommandLine"]]
    return parse_dotnet(owa[0]["CreationDate"]) if owa else None


def owa_events(pool):
    table = {"LogName": "Application", "ProviderName": "MSExchange OWA"}
    return run(pool, "Get-WinEvent", FilterHashtable=table).output


def web_config_thumbprint(pool):
    (text,) = run(pool, "Get-Content", Path=WEB_CONFIG, Raw=None).output
    return re.search(r'key="IMCertificateThumbprint" value="([^"]*)"', text).group(1)


def test_healthy_passes_the_checks(sim, ex01_pool, ex01_exchange, fe01_pool, edge_pool):
    start = owa_worker_start(ex01_pool)
    assert newest(owa_events(ex01_pool), lambda p: p["Id"] == 112) > start
    assert run(ex01_pool, "Get-Item", Path=IM_FOLDER).output
    installed = der_certificates(run(ex01_exchange, "Get-ExchangeCertificate").output)
    assert web_config_thumbprint(ex01_pool) in installed
    assert props(run(ex01_pool, "Get-ItemProperty", Path=IM_KEY).output[0])["ImplementationDLLPath"]
    assert props(run(ex01_pool, "Get-WebAppPoolState", Name="MSExchangeOWAAppPool").output[0])["Value"] == "Started"
    replicas = [props(r) for r in run(fe01_pool, "Get-CsManagementStoreReplicationStatus").output]
    assert all(r["UpToDate"] for r in replicas)
    local = {props(p)["Identity"]: props(p) for p in run(edge_pool, "Get-CsHostingProvider", LocalStore=None).output}
    cms = {props(p)["Identity"]: props(p) for p in run(fe01_pool, "Get-CsHostingProvider").output}
    assert local["Exchange Online"]["EnabledSharedAddressSpace"] is True
    assert {k: v for k, v in local["Exchange Online"].items() if k != "VerificationLevel"} == \
        {k: v for k, v in cms["Exchange Online"].items() if k != "VerificationLevel"}


def test_no_event_112(sim, ex01_pool):
    sim.set_scenario("no-event-112")
    start = owa_worker_start(ex01_pool)
    assert (dt.datetime.now(dt.timezone.utc) - start) > dt.timedelta(hours=1)
    assert newest(owa_events(ex01_pool), lambda p: p["Id"] == 112) < start


def test_im_log_missing(sim, ex01_pool):
    sim.set_scenario("im-log-missing")
    assert error_ids(run(ex01_pool, "Get-Item", Path=IM_FOLDER))[0].startswith("PathNotFound,")
    assert run(ex01_pool, "Get-Item", Path=IM_FOLDER.rsplit("\\", 1)[0]).output  # Logging\OWA is there


def test_thumbprint_drift(sim, ex01_pool, ex01_exchange):
    before = web_config_thumbprint(ex01_pool)
    sim.set_scenario("thumbprint-drift")
    installed = der_certificates(run(ex01_exchange, "Get-ExchangeCertificate").output)
    configured = web_config_thumbprint(ex01_pool)
    assert re.fullmatch(r"[0-9A-F]{40}", configured) and configured not in installed
    # web.config still names the certificate of the healthy estate (the same description, the
    # same DER); the renewed one is installed instead.
    assert configured == before
    renewed = [c for c in installed.values() if c.serial_number == 0x5D0C8E11A3B27F40]
    assert renewed and (dt.datetime.now(dt.timezone.utc) - renewed[0].not_valid_before_utc).days == 2


def test_thumbprint_malformed(sim, ex01_pool):
    healthy = web_config_thumbprint(ex01_pool)
    sim.set_scenario("thumbprint-malformed")
    configured = web_config_thumbprint(ex01_pool)
    assert configured == "\u200e" + healthy


def test_apppool_stopped(sim, ex01_pool):
    sim.set_scenario("apppool-stopped")
    assert props(run(ex01_pool, "Get-WebAppPoolState", Name="MSExchangeOWAAppPool").output[0])["Value"] == "Stopped"
    assert owa_worker_start(ex01_pool) is None


def test_cms_replica_stale(sim, fe01_pool):
    sim.set_scenario("cms-replica-stale")
    output = run(fe01_pool, "Get-CsManagementStoreReplicationStatus").output
    replicas = {props(r)["ReplicaFqdn"]: props(r) for r in output}
    edge = replicas[EDGE01]
    assert edge["UpToDate"] is False
    assert dt.datetime.now(dt.timezone.utc) - parse_dotnet(edge["LastStatusReport"]) > dt.timedelta(minutes=110)
    assert replicas[FE01]["UpToDate"] is True


def test_edge_provider_missing_and_drift(sim, fe01_pool, edge_pool):
    sim.set_scenario("edge-provider-missing")
    local = {props(p)["Identity"] for p in run(edge_pool, "Get-CsHostingProvider", LocalStore=None).output}
    assert "Exchange Online" not in local
    assert "Exchange Online" in {props(p)["Identity"] for p in run(fe01_pool, "Get-CsHostingProvider").output}
    sim.set_scenario("edge-provider-drift")
    local = run(edge_pool, "Get-CsHostingProvider", LocalStore=None, Identity="Exchange Online").output
    cms = run(fe01_pool, "Get-CsHostingProvider", Identity="Exchange Online").output
    assert props(local[0])["EnabledSharedAddressSpace"] is False and props(cms[0])["EnabledSharedAddressSpace"] is True


def test_unused_cert_expiring_touches_only_the_self_signed_certificate(sim, ex01_exchange):
    sim.set_scenario("healthy")
    healthy = {t: c.not_valid_after_utc for t, c in der_certificates(run(ex01_exchange, "Get-ExchangeCertificate",
                                                                         Server=EX02).output).items()}
    sim.set_scenario("unused-cert-expiring")
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=6)
    now = {t: c.not_valid_after_utc for t, c in der_certificates(run(ex01_exchange, "Get-ExchangeCertificate",
                                                                     Server=EX02).output).items()}
    changed = {t for t in now if now[t] != healthy.get(t)}
    assert len(changed) == 1 and now[changed.pop()] < soon  # one new certificate, expiring within days
    assert len(now) == len(healthy)


def test_cert_expiring(sim, ex01_exchange, fe01_pool):
    sim.set_scenario("cert-expiring")
    soon = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=6)
    certificates = der_certificates(run(ex01_exchange, "Get-ExchangeCertificate").output).values()
    im = next(c for c in certificates if c.serial_number == 0x7F4F4B9422F778B6)
    assert dt.datetime.now(dt.timezone.utc) < im.not_valid_after_utc < soon
    default = next(props(c) for c in run(fe01_pool, "Get-CsCertificate").output if props(c)["Use"] == "Default")
    assert parse_dotnet(default["NotAfter"]) < soon


def test_ucma_missing(sim, ex01_pool):
    sim.set_scenario("ucma-missing")
    assert run(ex01_pool, "Get-ItemProperty", Path=IM_KEY, Name="ImplementationDLLPath").streams.error
    start = owa_worker_start(ex01_pool)
    events = owa_events(ex01_pool)
    assert newest(events, lambda p: p["Id"] == 112) < start
    failures = [props(e) for e in events if props(e)["Level"] == 2]
    assert failures and all("IM provider not found" in f["Message"] for f in failures)
    assert all(parse_dotnet(f["TimeCreated"]) > start for f in failures)


def test_record_ids_only_grow_across_switches(sim, ex01_pool):
    def ids():
        return {props(e)["RecordId"] for e in owa_events(ex01_pool)}

    before = ids()
    sim.set_scenario("ucma-missing")
    after = ids()
    assert min(after - before) > max(before)  # events new to the log get higher ids
    sim.set_scenario("healthy")
    assert ids() == before


def test_jea_and_scenario_switch_keep_listeners(sim):
    ports = {name: info.port for name, info in sim.hosts().items()}
    sim.set_scenario("edge-provider-drift")
    assert {name: info.port for name, info in sim.hosts().items()} == ports
    with pool_for(sim, EX01) as pool:
        assert run(pool, "Get-Item", Path="C:\\").output
