"""Generate the Grafana dashboards in this folder: `python -m dashboards.generate`.

The committed JSON is what this code produces (tests/unit/test_dashboards.py fails otherwise), so
change the code, run it, and commit both. The dashboards link to the runbooks; the committed ones use
the path inside this repository, as the alert rules' `runbook_url` does. To point the link at your own
copy, generate them with `python -m dashboards.generate --runbook-base https://wiki.example.com/runbooks/`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from dashboards.grafana import Panel, Query, Row, dashboard, link, sel, value_text

HERE = Path(__file__).resolve().parent
# Where the runbooks are, as alerts/lync-owa.rules.yml names them (relative to the repository).
DEFAULT_RUNBOOK_BASE = "docs/runbooks/"


def runbooks_link(base: str) -> dict[str, Any]:
    return link("Runbooks", base, "One runbook per alert: what it means and how to fix it")

UP_MAPPING = value_text({"1": ("OK", "green"), "0": ("FAILING", "red")})
YES_NO = value_text({"1": ("yes", "green"), "0": ("NO", "red")})


def exporter_dashboard(runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Any]:
    job = "collector, target"
    items: list[Panel | Row] = [
        Panel("Jobs failing", "Collector x target jobs whose last run failed. 0 when every check is being collected.",
              [Query(f"count(lync_owa_collector_up{sel()} == 0) or vector(0)", "failing", instant=True)],
              "short", kind="stat", width=6, height=5, thresholds=[(None, "green"), (1, "red")]),
        Panel("Jobs", "Collector x target jobs the exporter schedules.",
              [Query(f"count(lync_owa_collector_up{sel()})", "jobs", instant=True)],
              "short", kind="stat", width=6, height=5),
        Panel("Oldest data", "Age of the oldest successful collection among all jobs: how stale the least "
              "fresh check is. A job's data is dropped three intervals after its last success.",
              [Query(f"max(time() - lync_owa_collector_last_success_timestamp_seconds{sel()})", "age",
                     instant=True)],
              "s", kind="stat", width=6, height=5, thresholds=[(None, "green"), (600, "orange"), (1800, "red")]),
        Panel("Exporter version", "The exporter's version and Python, from lync_owa_build_info.",
              [Query(f"lync_owa_build_info{sel()}", "{{instance}} {{version}} (Python {{python_version}})",
                     instant=True)],
              "none", kind="stat", width=6, height=5,
              options={"textMode": "name", "reduceOptions": {"calcs": ["lastNotNull"]}}),
        Row("Collector health"),
        Panel("Last run per job", "1 when the last run of a collector against a target succeeded. Red rows are "
              "blind checks; the errors panel below says why.",
              [Query(f"lync_owa_collector_up{sel()}", "{{collector}} / {{target}}")],
              "bool_yes_no", kind="state-timeline", width=24, height=10, mappings=UP_MAPPING,
              thresholds=[(None, "red"), (1, "green")], options={"showValue": "never", "mergeValues": True}),
        Panel("Run duration", "How long each job's last run took. Runs are abandoned at the collector's timeout "
              "and counted as timeouts.",
              [Query(f"lync_owa_collector_duration_seconds{sel()}", "{{collector}} / {{target}}")],
              "s", width=12),
        Panel("Errors by kind", "Failed runs per second by kind: auth (credentials refused), unreachable "
              "(network, TLS, HTTP), timeout, command (the cmdlet failed), shape (an answer the exporter cannot "
              "read).",
              [Query(f"sum by (kind) (rate(lync_owa_collector_errors_total{sel()}[$__rate_interval]))", "{{kind}}")],
              "ops", width=12),
        Panel("Data age per job", "Seconds since each job's last success; it should stay below the job's "
              "interval plus its timeout.",
              [Query(f"time() - lync_owa_collector_last_success_timestamp_seconds{sel()}",
                     "{{collector}} / {{target}}")],
              "s", width=12),
        Panel("Runs per second", "Collector runs per second, successful or not, per collector.",
              [Query(f"sum by (collector) (rate(lync_owa_collector_runs_total{sel()}[$__rate_interval]))",
                     "{{collector}}")],
              "ops", width=12),
        Panel("Failing jobs", "Jobs whose last run failed, with the errors counted in the last hour by kind.",
              [Query(f"sum by ({job}, kind) (increase(lync_owa_collector_errors_total{sel()}[1h]))", table=True,
                     instant=True)],
              "short", kind="table", width=24, height=8,
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}]),
        Row("Process"),
        Panel("Memory", "Resident memory of the exporter process.",
              [Query(f"process_resident_memory_bytes{sel()}", "{{instance}}")], "bytes", width=8),
        Panel("CPU", "CPU seconds used per second by the exporter process.",
              [Query(f"rate(process_cpu_seconds_total{sel()}[$__rate_interval])", "{{instance}}")],
              "percentunit", width=8),
        Panel("Open file descriptors", "Open file descriptors (sockets to Windows servers included).",
              [Query(f"process_open_fds{sel()}", "{{instance}}")], "short", width=8),
    ]
    return dashboard("lync-owa-exporter", "Lync OWA exporter", "Is the exporter collecting every check? Job health, "
                     "durations, errors by kind and data age of lync-owa-exporter.", ["lync-owa", "exporter"], items,
                     links=[runbooks_link(runbook_base)])


REASON_TEXT = {
    "im_log_folder_missing": "IM log folder missing",
    "no_event_112_since_pool_start": "no Event 112 since the pool started",
    "im_settings_unreadable": "IM settings unreadable",
    "im_settings_missing": "IM settings missing",
    "im_thumbprint_malformed": "IM thumbprint malformed",
    "im_thumbprint_matches_no_certificate": "IM thumbprint matches no certificate",
    "im_certificate_unusable": "IM certificate unusable",
    "im_server_name_not_the_lync_pool": "IMServerName is not the Lync pool",
    "im_initialisation_failing": "IM initialisation failing",
    "ucma_runtime_missing": "UCMA runtime missing",
}
STATE_TIMELINE = {"showValue": "never", "mergeValues": True}


def _status(title: str, description: str, queries: list[Query], width: int = 12, height: int = 8,
            mapping: list[dict[str, Any]] = YES_NO) -> Panel:
    """A 0/1 signal over time: green when 1, red when 0."""
    return Panel(title, description, queries, "bool_yes_no", kind="state-timeline", width=width, height=height,
                 mappings=mapping, thresholds=[(None, "red"), (1, "green")], options=STATE_TIMELINE)


def im_dashboard(runbook_base: str = DEFAULT_RUNBOOK_BASE) -> dict[str, Any]:
    days_left = {"unit": "s", "thresholds": [(None, "red"), (7 * 86400, "orange"), (28 * 86400, "green")]}
    items: list[Panel | Row] = [
        _status("IM in OWA per mailbox server", "1 (OK) when no check finds IM in OWA broken on the mailbox server: "
                "the IM log folder exists, Event 112 followed the last OWA pool start, the IM certificate settings "
                "match a usable certificate, no IM initialisation failure is newer than the last 112, and UCMA is "
                "installed (recording rule lync_owa:im_integration_healthy).",
                [Query(f"lync_owa:im_integration_healthy{sel()}", "{{target}}")], width=16,
                mapping=value_text({"1": ("OK", "green"), "0": ("BROKEN", "red")})),
        Panel("Why IM is broken", "Each broken mailbox server with the reason (lync_owa:im_integration_broken). Empty "
              "when IM works everywhere; the runbook of LyncOwaIMIntegrationBroken has one section per reason.",
              [Query(f"lync_owa:im_integration_broken{sel()}", table=True, instant=True)], "short", kind="table",
              width=8, transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "Value": True, "__name__": True, "job": True, "instance": True},
                  "renameByName": {"target": "server"}}}],
              mappings=value_text({k: (v, "red") for k, v in REASON_TEXT.items()})),
        Panel("Servers in maintenance", "MAINTENANCE while a server is out of service on purpose: Exchange's "
              "maintenance mode (Get-ServerComponentState: ServerWideOffline Inactive, HubTransport Draining, OwaProxy "
              "Inactive) or a drained or stopped Lync Front-End service (Get-CsWindowsService RTCSRV). Alertmanager "
              "mutes the server's pages meanwhile (runbook LyncOwaServerInMaintenance).",
              [Query(f"lync_owa_server_in_maintenance{sel()}", "{{target}}")],
              "short", kind="state-timeline", width=24, height=5,
              mappings=value_text({"1": ("MAINTENANCE", "blue"), "0": ("in service", "green")}),
              thresholds=[(None, "green"), (1, "blue")], options=STATE_TIMELINE),
        Row("Event 112 and IM initialisation failures (E1) and the OWA application pool (E5)"),
        Panel("Last Event 112 and last pool start", "When IM last initialised (Event 112 of MSExchange OWA) and when "
              "the OWA worker process last started. A start newer than the last 112 by more than 30 minutes is "
              "broken IM.",
              [Query(f"lync_owa_im_initialised_timestamp_seconds{sel()} * 1000", "{{target}} last Event 112"),
               Query(f"lync_owa_app_pool_worker_start_timestamp_seconds{sel()} * 1000",
                     "{{target}} worker started")],
              "dateTimeAsIso", kind="table", width=12,
              transformations=[{"id": "reduce", "options": {"reducers": ["lastNotNull"]}}]),
        Panel("IM initialisation failures", "IM initialisation failures per hour by reason, from MSExchange OWA's "
              "failure events (fixed set of reasons, see check E1).",
              [Query(f"sum by (target, reason) (increase(lync_owa_im_initialisation_failures_total{sel()}[1h]))",
                     "{{target}} {{reason}}")],
              "short", width=12, min=0),
        Panel("Event 112 seen", "Event 112 (IM endpoint manager initialised) per hour; one follows the first sign-in "
              "after every OWA pool start.",
              [Query("sum by (target) (increase(lync_owa_event_log_events_total" + sel('event="im_initialised"') + "[1h]))",
                     "{{target}}")],
              "short", width=12, min=0),
        _status("OWA application pool started", "1 while MSExchangeOWAAppPool is in the Started state "
                "(Get-WebAppPoolState).",
                [Query("lync_owa_app_pool_state" + sel('state="Started"'), "{{target}}")]),
        Row("IM log folder (E2)"),
        _status("IM log folder present", "1 when <install path>\\Logging\\OWA\\InstantMessaging exists; its absence "
                "means the integration never initialised.",
                [Query(f"lync_owa_im_log_folder_present{sel()}", "{{target}}")], width=8),
        Panel("IM log bytes written", "Bytes written to the IM log folder per second (a counter that survives "
              "rotation and clean-up). Flat for hours while users use OWA is suspicious.",
              [Query(f"rate(lync_owa_im_log_written_bytes_total{sel()}[$__rate_interval])", "{{target}}")],
              "Bps", width=8, min=0),
        Panel("IM log last write", "Age of the newest file write in the IM log folder.",
              [Query(f"time() - lync_owa_im_log_newest_write_timestamp_seconds{sel()}", "{{target}}")],
              "s", width=8, min=0),
        Row("IM certificate settings (E3), UCMA (E4), OWA settings (E6)"),
        _status("IM certificate checks", "Each check of the IM settings in order (settings readable, thumbprint "
                "configured, well formed, matching an installed certificate with its private key, valid now; "
                "IMServerName the Lync pool). Only the first failing check is shown as 0.",
                [Query(f"lync_owa_im_certificate_check_ok{sel()}", "{{target}} {{check}}")], width=12, height=10),
        _status("Configuration checks", "UCMA runtime, OWA virtual directories and mailbox policies, trusted "
                "application, OAuth and autodiscover (lync_owa_config_check_ok; fixes in docs/metrics.md).",
                [Query(f"lync_owa_config_check_ok{sel()}", "{{target}} {{check}}")], width=12, height=10),
        Row("Lync Central Management Store (L1)"),
        _status("CMS replicas up to date", "Per replica, 0 when any front end reports it not up to date "
                "(Get-CsManagementStoreReplicationStatus). Changes normally reach every replica within a minute.",
                [Query(f"min by (replica) (lync_owa_cms_replica_up_to_date{sel()})", "{{replica}}")]),
        Panel("CMS replica status report age", "Seconds since each replica last reported its replication "
              "status; healthy replicas report every minute or two.",
              [Query(f"time() - max by (replica) (lync_owa_cms_replica_last_status_report_timestamp_seconds{sel()})",
                     "{{replica}}")],
              "s", width=12, thresholds=[(None, "green"), (1800, "red")]),
        Row("Edge: Exchange Online hosting provider (H1) and federation (H2)"),
        _status("Hosting provider in the Edge's local store", "1 when Get-CsHostingProvider -LocalStore on the Edge "
                "holds the Exchange Online provider.",
                [Query(f"lync_owa_edge_hosting_provider_present{sel()}", "{{target}}")], width=8),
        _status("Hosting provider settings", "Each required setting of the Exchange Online provider on the Edge "
                "(enabled, shared address space, hosts OCS users false, is local false, verification level, "
                "proxy FQDN).",
                [Query(f"lync_owa_edge_hosting_provider_setting_ok{sel()}", "{{target}} {{setting}}")], width=8),
        _status("Edge copy matches the CMS", "Per field, 1 when the Edge's local copy of the provider equals the CMS "
                "copy read on a front end; 0 means a change has not replicated.",
                [Query(f"lync_owa_edge_hosting_provider_matches_cms{sel()}", "{{target}} {{field}}"),
                 Query(f"lync_owa_edge_federation_enabled{sel()}", "{{target}} federation enabled")], width=8),
        Row("Certificates"),
        Panel("Certificates by time left", "Every certificate the checks touch (Exchange, Exchange Auth, Lync, and "
              "the chains presented on the network), soonest first. Warning at 28 days, page at 7.",
              [Query(f"sort(lync_owa:certificate_expiry_seconds{sel()})", table=True, instant=True)],
              days_left["unit"], kind="table", width=24, height=10, thresholds=days_left["thresholds"],
              custom={"cellOptions": {"type": "color-background"}},
              transformations=[{"id": "organize", "options": {
                  "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True}}}]),
    ]
    return dashboard("lync-owa-im", "IM in OWA", "Does instant messaging and presence in Outlook Web App work, per "
                     "mailbox server, and if not, why?", ["lync-owa", "exchange", "skype-for-business"], items,
                     links=[runbooks_link(runbook_base)])


DASHBOARDS = {"lync-owa-im.json": im_dashboard, "lync-owa-exporter.json": exporter_dashboard}


def render(build: Any, runbook_base: str = DEFAULT_RUNBOOK_BASE) -> str:
    return json.dumps(build(runbook_base), indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.generate", description=__doc__.split("\n")[0])
    parser.add_argument("--runbook-base", default=DEFAULT_RUNBOOK_BASE,
                        help="URL the dashboards' Runbooks link points at (default: %(default)s)")
    args = parser.parse_args(argv)
    for name, build in DASHBOARDS.items():
        (HERE / name).write_text(render(build, args.runbook_base))
        print(f"wrote dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
