"""The Python verdict (exporter/verdict) gives the answer of the recording rules: per reason, with
hand-built samples in a real snapshot store; and its catalogue cannot drift from the rules file, the
alert's fixes and docs/checks.md."""

from __future__ import annotations

import re

import pytest
import yaml

from exporter.verdict.catalogue import REASONS, SETTINGS_FIX
from exporter.verdict.causes import METRICS_READ, RULES, Cause
from exporter.verdict.judge import FirstSeen, Status, organisation_unchecked
from tests.conftest import PROJECT_ROOT
from tests.verdict_estate import HOUR, NOW, SPECS, healthy

RULES_FILE = PROJECT_ROOT / "alerts" / "lync-owa.rules.yml"
VERDICT = "lync_owa:im_integration_broken"
EDGE_ROW = "Exchange Online (through edge01)"


def verdicts(rows: dict) -> dict[str, tuple[str, list[str]]]:
    return {title: (row.status.value, [f.reason.name for f in row.findings]) for title, row in rows.items()}


def test_the_healthy_estate_is_ok_everywhere():
    assert verdicts(healthy().rows()) == {"ex01": ("OK", []), "ex02": ("OK", []), EDGE_ROW: ("OK", [])}


# --- one Exchange server's own checks ---------------------------------------------------------------

@pytest.mark.parametrize(("metric", "collector", "labels", "reason"), [
    ("lync_owa_im_log_folder_present", "im_log_folder", {}, "im_log_folder_missing"),
    ("lync_owa_im_certificate_check_ok", "im_certificate", {"check": "settings_readable"}, "im_settings_unreadable"),
    ("lync_owa_im_certificate_check_ok", "im_certificate", {"check": "server_name_configured"}, "im_settings_missing"),
    ("lync_owa_im_certificate_check_ok", "im_certificate", {"check": "thumbprint_well_formed"},
     "im_thumbprint_malformed"),
    ("lync_owa_im_certificate_check_ok", "im_certificate", {"check": "thumbprint_matches_certificate"},
     "im_thumbprint_matches_no_certificate"),
    ("lync_owa_im_certificate_check_ok", "im_certificate", {"check": "certificate_valid_now"},
     "im_certificate_unusable"),
    ("lync_owa_im_certificate_check_ok", "im_certificate", {"check": "server_name_matches_pool"},
     "im_server_name_not_the_lync_pool"),
    ("lync_owa_config_check_ok", "im_certificate", {"check": "im_certificate_names_trusted_pool"},
     "im_certificate_lacks_trusted_pool_name"),
    ("lync_owa_config_check_ok", "im_certificate", {"check": "im_setting_override_in_effect"},
     "im_setting_override_not_in_effect"),
    ("lync_owa_config_check_ok", "im_certificate", {"check": "owa_app_pool_recycled_after_im_override"},
     "owa_app_pool_not_recycled_after_im_override"),
    ("lync_owa_config_check_ok", "tls_probe", {"check": "owa_trusted_application_port_accepts_tls"},
     "owa_trusted_application_port_not_answering"),
    ("lync_owa_config_check_ok", "tls_probe", {"check": "im_certificate_chains_to_lync_root"},
     "im_certificate_not_trusted_by_lync"),
    ("lync_owa_config_check_ok", "ucma_runtime", {"check": "ucma_dll_present"}, "ucma_runtime_missing"),
    ("lync_owa_app_pool_state", "owa_app_pool", {"state": "Started"}, "owa_app_pool_not_started"),
    ("lync_owa_config_check_ok", "owa_im_settings", {"check": "owa_vdir_im_type_ocs"},
     "owa_virtual_directory_im_disabled"),
])
def test_a_failing_check_of_one_server_breaks_that_server_only(metric, collector, labels, reason):
    rows = healthy().set(collector, "ex01", metric, 0, **labels).rows()
    assert verdicts(rows) == {"ex01": ("BROKEN", [reason]), "ex02": ("OK", []), EDGE_ROW: ("OK", [])}
    finding = rows["ex01"].findings[0]
    assert finding.reason.collector == collector
    assert finding.since == NOW


def test_both_im_settings_missing_are_one_cause_naming_both_checks():
    estate = healthy()
    for check in ("thumbprint_configured", "server_name_configured"):
        estate.set("im_certificate", "ex02", "lync_owa_im_certificate_check_ok", 0, check=check)
    row = estate.rows()["ex02"]
    assert [(f.reason.name, f.detail) for f in row.findings] == [
        ("im_settings_missing", "thumbprint_configured, server_name_configured")]


def test_the_fix_names_the_server():
    row = healthy().set("im_certificate", "ex02", "lync_owa_im_certificate_check_ok", 0,
                        check="thumbprint_matches_certificate").rows()["ex02"]
    assert "`Get-ExchangeCertificate -Server ex02`" in row.findings[0].fix
    assert "Appcmd.exe recycle apppool" in row.findings[0].fix


@pytest.mark.parametrize(("started_minutes_ago", "broken"), [(29, False), (31, True)])
def test_no_event_112_waits_out_the_30_minute_grace(started_minutes_ago, broken):
    start = NOW - started_minutes_ago * 60
    estate = healthy().set("owa_app_pool", "ex01", "lync_owa_app_pool_worker_start_timestamp_seconds", start)
    estate.set("owa_events", "ex01", "lync_owa_im_initialised_timestamp_seconds", start - HOUR)  # before the start
    assert verdicts(estate.rows())["ex01"] == (("BROKEN", ["no_event_112_since_pool_start"]) if broken else ("OK", []))


def test_a_log_without_any_event_112_breaks_only_while_the_event_reader_works():
    estate = healthy().set("owa_events", "ex01", "lync_owa_im_initialised_timestamp_seconds", None)
    assert verdicts(estate.rows())["ex01"] == ("BROKEN", ["no_event_112_since_pool_start"])
    row = estate.fail("owa_events", "ex01", "unreachable", "cannot connect").rows()["ex01"]
    assert (row.status, row.findings) == (Status.UNKNOWN, ())
    assert row.why_unknown == "no data from owa_events (unreachable: cannot connect)"
    assert row.unchecked == ("owa_events (unreachable: cannot connect)",)


def test_an_event_112_after_the_start_is_healthy_however_old_the_start():
    estate = healthy().set("owa_app_pool", "ex01", "lync_owa_app_pool_worker_start_timestamp_seconds",
                           NOW - 40 * 86400)
    assert verdicts(estate.rows())["ex01"] == ("OK", [])


def test_an_initialisation_failure_newer_than_event_112_breaks_with_its_kind():
    estate = healthy().set("owa_events", "ex01", "lync_owa_im_initialisation_last_failure_timestamp_seconds", NOW - 60,
                           reason="certificate_not_found")
    estate.set("owa_events", "ex01", "lync_owa_im_initialisation_last_failure_timestamp_seconds", NOW - 3 * HOUR, reason="other")
    row = estate.rows()["ex01"]
    assert [(f.reason.name, f.detail) for f in row.findings] == [
        ("im_initialisation_failing", "failure certificate_not_found")]
    # Without any Event 112 to compare with, the rule says nothing (the no-112 rule speaks instead).
    estate.set("owa_events", "ex01", "lync_owa_im_initialised_timestamp_seconds", None)
    assert verdicts(estate.rows())["ex01"] == ("BROKEN", ["no_event_112_since_pool_start"])


# --- organisation-wide causes: every OWA server at once ---------------------------------------------

@pytest.mark.parametrize(("collector", "target", "check", "reason"), [
    ("owa_im_settings", "ex02", "owa_mailbox_policy_im_enabled", "owa_mailbox_policy_im_disabled"),
    ("lync_topology", "fe02", "owa_trusted_application_present", "owa_trusted_application_missing"),
    ("lync_topology", "fe01", "trusted_pool_not_duplicating_um", "trusted_pool_duplicates_um_server"),
    ("lync_topology", "fe02", "owa_trusted_pool_registrar_is_lync_pool", "owa_trusted_pool_registrar_not_the_lync_pool"),
])
def test_an_organisation_wide_check_failing_anywhere_breaks_every_owa_server(collector, target, check, reason):
    rows = healthy().set(collector, target, "lync_owa_config_check_ok", 0, check=check).rows()
    assert verdicts(rows) == {"ex01": ("BROKEN", [reason]), "ex02": ("BROKEN", [reason]), EDGE_ROW: ("OK", [])}
    assert rows["ex01"].findings[0].detail == f"{check} on {target}"


def test_the_pool_is_unreachable_only_when_no_front_end_answers_on_5061():
    estate = healthy()
    for fe in ("fe01", "fe02"):
        estate.set("tls_probe", fe, "lync_owa_tls_probe_success", 0, endpoint=f"{fe}.contoso.com:5061")
        estate.set("tls_probe", fe, "lync_owa_tls_probe_success", 0, endpoint="pool01.contoso.com:5061")
    estate.set("tls_probe", "fe02", "lync_owa_tls_probe_success", 1, endpoint="pool01.contoso.com:5061")
    assert verdicts(estate.rows())["ex01"] == ("OK", [])
    # A 5061 probe from a target that is no front end (no lync_topology job) does not count.
    estate.set("tls_probe", "ex01", "lync_owa_tls_probe_success", 1, endpoint="pool01.contoso.com:5061")
    estate.set("tls_probe", "fe02", "lync_owa_tls_probe_success", 0, endpoint="pool01.contoso.com:5061")
    rows = estate.rows()
    assert verdicts(rows) == {"ex01": ("BROKEN", ["lync_pool_unreachable"]),
                              "ex02": ("BROKEN", ["lync_pool_unreachable"]), EDGE_ROW: ("OK", [])}
    assert "pool01.contoso.com:5061 from fe02" in rows["ex02"].findings[0].detail


def test_an_expired_default_certificate_of_one_front_end_breaks_every_owa_server():
    estate = healthy().set("lync_certificates", "fe02", "lync_owa_lync_certificate_not_after_timestamp_seconds",
                           NOW - 60, use="Default", thumbprint="AB" * 20, subject_cn="fe02.contoso.com")
    assert verdicts(estate.rows()) == {"ex01": ("BROKEN", ["lync_pool_certificate_expired"]),
                                       "ex02": ("BROKEN", ["lync_pool_certificate_expired"]), EDGE_ROW: ("OK", [])}
    # Another use expiring is not this cause.
    estate = healthy().set("lync_certificates", "fe02", "lync_owa_lync_certificate_not_after_timestamp_seconds",
                           NOW - 60, use="OAuthTokenIssuer", thumbprint="CD" * 20, subject_cn="fe02.contoso.com")
    assert verdicts(estate.rows())["ex01"] == ("OK", [])


# --- hybrid: the Edge's row for mailboxes in Exchange Online ---------------------------------------

@pytest.mark.parametrize(("metric", "labels", "reason", "detail"), [
    ("lync_owa_edge_hosting_provider_present", {}, "edge_hosting_provider_missing", ""),
    ("lync_owa_edge_hosting_provider_setting_ok", {"setting": "proxy_fqdn"}, "edge_hosting_provider_misconfigured",
     "proxy_fqdn"),
    ("lync_owa_edge_federation_enabled", {}, "edge_federation_disabled", ""),
    ("lync_owa_edge_federation_dns_srv_routing", {}, "edge_federation_default_route", ""),
])
def test_an_edge_check_breaks_the_exchange_online_row_where_hybrid_applies(metric, labels, reason, detail):
    estate = healthy().set("edge_hosting_provider", "edge01", metric, 0, **labels)
    rows = estate.rows()
    assert verdicts(rows) == {"ex01": ("OK", []), "ex02": ("OK", []), EDGE_ROW: ("BROKEN", [reason])}
    assert rows[EDGE_ROW].target == "edge01" and rows[EDGE_ROW].findings[0].detail == detail
    # Where hybrid does not apply there is no Exchange Online row, and nothing is broken.
    estate.set("edge_hosting_provider", "edge01", "lync_owa_hybrid_applicable", 0)
    assert verdicts(estate.rows()) == {"ex01": ("OK", []), "ex02": ("OK", [])}


# --- UNKNOWN and MAINTENANCE ------------------------------------------------------------------------

def test_a_server_whose_app_pool_job_fails_or_never_ran_is_unknown():
    rows = healthy().fail("owa_app_pool", "ex01", "auth", "access denied").never_run("owa_app_pool", "ex02").rows()
    assert (rows["ex01"].status, rows["ex01"].why_unknown) == (Status.UNKNOWN, "owa_app_pool (auth: access denied)")
    assert (rows["ex02"].status, rows["ex02"].why_unknown) == (Status.UNKNOWN, "owa_app_pool (not run yet)")


def test_a_server_without_data_of_one_of_its_checks_is_unknown():
    rows = healthy().never_run("im_certificate", "ex01").rows()
    assert (rows["ex01"].status, rows["ex01"].why_unknown) == (Status.UNKNOWN, "no data from im_certificate (not run yet)")
    # A run that fails while the last good data is still served changes nothing yet, but is named.
    rows = healthy().fail("im_certificate", "ex02", "timeout", "no answer", keep_data=True).rows()
    assert (rows["ex02"].status, rows["ex02"].unchecked) == (Status.OK, ("im_certificate (timeout: no answer)",))
    # The Lync side failing does not make a server unknown: it is named for the organisation.
    assert healthy().fail("lync_topology", "fe01").rows()["ex01"].status is Status.OK


def test_a_cause_still_breaks_a_server_whose_app_pool_job_fails():
    estate = healthy().fail("owa_app_pool", "ex01").set("im_log_folder", "ex01", "lync_owa_im_log_folder_present", 0)
    assert verdicts(estate.rows())["ex01"] == ("BROKEN", ["im_log_folder_missing"])


def test_a_server_in_maintenance_shows_maintenance_and_what_would_be_broken():
    estate = healthy().set("owa_app_pool", "ex01", "lync_owa_app_pool_state", 0, state="Started")
    estate.set("server_maintenance", "ex01", "lync_owa_server_in_maintenance", 1)
    estate.set("server_maintenance", "ex01", "lync_owa_server_maintenance_state", 1,
               kind="exchange_component", component="ServerWideOffline", state="Inactive")
    estate.set("server_maintenance", "ex01", "lync_owa_server_maintenance_state", 0,
               kind="exchange_component", component="OwaProxy", state="Active")
    row = estate.rows()["ex01"]
    assert (row.status, [f.reason.name for f in row.findings]) == (Status.MAINTENANCE, ["owa_app_pool_not_started"])
    assert row.maintenance == ("exchange_component ServerWideOffline Inactive",)


def test_a_client_access_server_named_by_a_cause_gets_a_row_of_its_own():
    estate = healthy().set("owa_im_settings", "cas01", "lync_owa_config_check_ok", 0, check="owa_vdir_im_enabled")
    assert verdicts(estate.rows())["cas01"] == ("BROKEN", ["owa_virtual_directory_im_disabled"])


def test_failing_lync_jobs_are_named_as_unchecked_for_the_organisation():
    readings = healthy().fail("lync_topology", "fe01", "command", "Get-CsTrustedApplication denied").readings()
    assert organisation_unchecked(readings) == ["fe01: lync_topology (command: Get-CsTrustedApplication denied)"]


def test_since_is_when_this_process_first_saw_the_cause():
    first_seen = FirstSeen()
    broken = Cause("im_log_folder_missing", "ex01")
    assert first_seen.update([broken], 100.0) == {broken: 100.0}
    assert first_seen.update([broken], 160.0) == {broken: 100.0}
    assert first_seen.update([], 220.0) == {}
    assert first_seen.update([broken], 280.0) == {broken: 280.0}  # back again: new
    wider = Cause("owa_trusted_application_missing", "ex01", "owa_trusted_application_present on fe01")
    assert first_seen.update([wider], 300.0) == {wider: 300.0}
    still = Cause("owa_trusted_application_missing", "ex01", "owa_trusted_application_present on fe01, ... on fe02")
    assert first_seen.update([still], 360.0) == {still: 300.0}  # the same series with more detail
    estate = healthy().set("im_log_folder", "ex01", "lync_owa_im_log_folder_present", 0)
    first_seen = FirstSeen()
    estate.rows(NOW, first_seen)
    assert estate.rows(NOW + 600, first_seen)["ex01"].findings[0].since == NOW


# --- the catalogue cannot drift from the rules, the alert or docs/checks.md ------------------------

def _rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES_FILE.read_text())["groups"] for rule in group["rules"]]


def _verdict_rules() -> list[dict]:
    return [rule for rule in _rules() if rule.get("record") == VERDICT]


def test_the_catalogue_has_exactly_the_reasons_of_the_recording_rules():
    assert set(REASONS) == {rule["labels"]["reason"] for rule in _verdict_rules()}
    names = [rule.__name__ for rule in RULES]
    assert sorted(names) == sorted(REASONS)  # each reason once


def test_each_reason_names_the_collector_its_rule_names():
    for rule in _verdict_rules():
        assert REASONS[rule["labels"]["reason"]].collector == rule["labels"]["collector"], rule["labels"]


def test_each_reason_names_the_check_of_the_docs_verdict_table():
    section = (PROJECT_ROOT / "docs" / "checks.md").read_text().split(
        "## The verdict: which failures break IM in OWA, and where", 1)[1]
    documented = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 4:
            documented.update({reason: cells[0] for reason in re.findall(r"`([a-z0-9_]+)`", cells[3])})
    assert {name: reason.check for name, reason in REASONS.items()} == documented


def _commands(text: str) -> list[str]:
    return [command.replace("{{ $labels.target }}", "{target}") for command in re.findall(r"`([^`]+)`", text)]


def test_each_fix_gives_the_commands_of_the_alert():
    alert = next(rule for rule in _rules() if rule.get("alert") == "LyncOwaIMIntegrationBroken")
    description = alert["annotations"]["description"]
    generic = re.search(r'\{\{- if not \(match "\^\(([^)]*)\)\$" \$labels\.reason\) \}\}(.*?)\{\{ end \}\}',
                        description, re.S)
    assert generic is not None
    excluded, generic_text = generic.group(1).split("|"), generic.group(2)
    assert _commands(generic_text) and all(command in SETTINGS_FIX for command in _commands(generic_text))
    for name, reason in REASONS.items():
        own = re.search(r'\{\{- if eq \$labels\.reason "' + name + r'" \}\}(.*?)\{\{ end \}\}', description, re.S)
        for command in _commands(own.group(1) if own else ""):
            assert command in reason.fix, f"{name}: the alert's `{command}` is not in the catalogue's fix"
        takes_generic = not any(re.fullmatch(pattern, name) for pattern in excluded)
        assert (SETTINGS_FIX in reason.fix) == takes_generic, name


def test_the_verdict_reads_only_metrics_the_collectors_declare():
    assert METRICS_READ <= set(SPECS)
    source = "\n".join(p.read_text() for p in (PROJECT_ROOT / "exporter" / "verdict").glob("*.py"))
    assert set(re.findall(r'"(lync_owa_[a-z0-9_]+)"', source)) <= set(SPECS)
