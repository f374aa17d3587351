"""Generate the Grafana dashboards in this folder: `python -m dashboards.generate`.

The committed JSON is what this code produces (tests/unit/test_dashboards.py fails otherwise), so
change the code, run it, and commit both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dashboards.grafana import Panel, Query, Row, dashboard, sel, value_text

HERE = Path(__file__).resolve().parent
RUNBOOKS = "https://github.com/lync-owa-exporter/lync-owa-exporter/blob/main/docs/runbooks/"

UP_MAPPING = value_text({"1": ("OK", "green"), "0": ("FAILING", "red")})
YES_NO = value_text({"1": ("yes", "green"), "0": ("NO", "red")})


def exporter_dashboard() -> dict[str, Any]:
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
              [Query(f"max(time() - (lync_owa_collector_last_success_timestamp_seconds{sel()} > 0))", "age",
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
              [Query(f"time() - (lync_owa_collector_last_success_timestamp_seconds{sel()} > 0)",
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
                     links=[{"title": "Runbooks", "url": RUNBOOKS, "type": "link", "targetBlank": True}])


def im_dashboard() -> dict[str, Any]:
    items: list[Panel | Row] = [
        Row("Lync Central Management Store"),
        Panel("CMS replicas up to date", "Per replica, 0 when any front end reports it not up to date "
              "(Get-CsManagementStoreReplicationStatus). Changes normally reach every replica within a minute.",
              [Query(f"min by (replica) (lync_owa_cms_replica_up_to_date{sel()})", "{{replica}}")],
              "bool_yes_no", kind="state-timeline", width=12, mappings=YES_NO,
              thresholds=[(None, "red"), (1, "green")], options={"showValue": "never", "mergeValues": True}),
        Panel("CMS replica status report age", "Seconds since each replica last reported its replication "
              "status; healthy replicas report every minute or two.",
              [Query(f"time() - max by (replica) (lync_owa_cms_replica_last_status_report_timestamp_seconds{sel()})",
                     "{{replica}}")],
              "s", width=12, thresholds=[(None, "green"), (1800, "red")]),
    ]
    return dashboard("lync-owa-im", "IM in OWA", "Does instant messaging and presence in Outlook Web App work, per "
                     "mailbox server, and if not, why?", ["lync-owa", "exchange", "skype-for-business"], items,
                     links=[{"title": "Runbooks", "url": RUNBOOKS, "type": "link", "targetBlank": True}])


DASHBOARDS = {"lync-owa-im.json": im_dashboard, "lync-owa-exporter.json": exporter_dashboard}


def render(build: Any) -> str:
    return json.dumps(build(), indent=2, sort_keys=False) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        (HERE / name).write_text(render(build))
        print(f"wrote dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
