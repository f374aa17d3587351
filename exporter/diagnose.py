"""``lync-owa-exporter diagnose --config.file F [--json]``: is IM in OWA working, asked once, now.

What an administrator runs while setting up, and what support asks for. Every collector runs once
against every configured server, through the runtime's own path (JobRunner, SessionPool, FactsBoard,
as ``run`` does), then it prints the verdict the status page shows (per OWA server OK / BROKEN /
UNKNOWN / MAINTENANCE, with each failing check and the command that fixes it) and, per target and
endpoint, what the monitoring account could do and what was denied, with the right to grant.

Exit 0 when all is well, 1 when something is broken or could not be checked (a verdict that is not
OK, a failed collector run), 2 when the configuration is invalid.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, TextIO

from collectors.contract import Fact, FactsBoard, Posted, T

EXIT_OK = 0
EXIT_PROBLEM = 1
EXIT_BAD_CONFIG = 2
DEFAULT_CONFIG = "/etc/lync-owa-exporter/config.yaml"
SESSION_CLOSE_SECONDS = 10.0


def add_parser(sub, collectors: Mapping[str, Any]) -> argparse.ArgumentParser:
    from exporter.flags import add_collector_switches

    parser = sub.add_parser(
        "diagnose", help="run every collector once and print the verdict, the fixes and the account's rights: "
                         "exit 0 all well, 1 something broken, 2 bad configuration",
        description="Run every collector once against the configured servers; print per OWA server whether IM "
                    "works, each failing check with its fix, and what the monitoring account may do per endpoint.",
    )
    parser.add_argument("--config.file", dest="config_file", default=DEFAULT_CONFIG)
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")
    add_collector_switches(parser, collectors)
    return parser


class JobFacts(FactsBoard):
    """One job's view of the shared facts board that remembers whether the job asked for a fact nobody had
    posted yet: such a job runs once more after the others, as it would at its next interval in ``run``."""

    def __init__(self, shared: FactsBoard) -> None:  # no board of its own: everything goes to ``shared``
        self.shared = shared
        self.missed = False

    def post(self, fact: Fact[T], value: T, lifetime: float) -> None:
        self.shared.post(fact, value, lifetime)

    def fresh(self, fact: Fact[T]) -> Posted[T] | None:
        found = self.shared.fresh(fact)
        self.missed = self.missed or found is None
        return found

    def wait_for_fresh(self, fact: Fact[T], timeout: float) -> Posted[T] | None:
        found = self.shared.wait_for_fresh(fact, timeout)
        self.missed = self.missed or found is None
        return found


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    from collectors import registry
    from exporter.config import ConfigError, load_config

    out, err = out or sys.stdout, err or sys.stderr
    try:
        config = load_config(args.config_file, registry.by_name())
    except ConfigError as exc:
        print(str(exc), file=err)
        return EXIT_BAD_CONFIG
    report = diagnose(config, getattr(args, "collector_switches", None))
    if args.json:
        json.dump(report, out, ensure_ascii=False, indent=2)
        out.write("\n")
    else:
        print_text(report, out)
    return EXIT_OK if report["all_well"] else EXIT_PROBLEM


def diagnose(config, switches: Mapping[str, bool] | None = None) -> dict[str, Any]:
    """Run every planned job once (twice for a job that lacked another job's fact), then judge."""
    from collectors import registry
    from collectors.sources.remoting import SessionPool
    from exporter.diagnose_access import AccessLog, RecordingEndpoints, endpoint_reports
    from exporter.job_plan import planned_jobs
    from exporter.scheduler import JobRunner
    from exporter.state import SnapshotStore
    from exporter.verdict.judge import Status, judge, organisation_unchecked
    from exporter.verdict.readings import Readings

    collectors = {name: cls() for name, cls in registry.by_name().items()}
    store, sessions = SnapshotStore(config.global_.staleness_intervals), SessionPool()
    board, access = FactsBoard(), AccessLog()
    runners = []
    for spec in planned_jobs(config, collectors, switches):
        runner = JobRunner(collectors[spec.collector], spec, store, sessions, config.global_, JobFacts(board))
        runner.endpoints = RecordingEndpoints(spec.collector, spec.target, sessions, access)
        runners.append(runner)
    try:
        with ThreadPoolExecutor(max_workers=config.global_.max_concurrent_jobs) as pool:
            list(pool.map(lambda runner: runner(), runners))
            again = [runner for runner in runners if runner.facts.missed]
            list(pool.map(lambda runner: runner(), again))
    finally:
        for runner in runners:
            runner.close()
        sessions.close_all(timeout=SESSION_CLOSE_SECONDS)
    readings = Readings.from_store(store)
    rows = judge(readings, time.time())
    jobs = store.jobs()
    failed_jobs = [job for job in jobs if not job.up]
    endpoints = endpoint_reports(access, config.targets, {job.key for job in failed_jobs})
    all_well = (all(row.status in (Status.OK, Status.MAINTENANCE) for row in rows) and not failed_jobs
                and all(report.ok for report in endpoints))
    return {
        "all_well": all_well,
        "verdict": [row.as_dict() for row in rows],
        "organisation_unchecked": organisation_unchecked(readings),
        "endpoints": [report.as_dict() for report in endpoints],
        "jobs": [{"collector": job.collector, "target": job.target, "up": job.up, "duration_seconds":
                  round(job.duration_seconds, 3), "error_kind": job.last_error_kind, "error": job.last_error}
                 for job in jobs],
    }


def print_text(report: dict[str, Any], out: TextIO) -> None:
    print("IM and presence in Outlook Web App, per server:", file=out)
    if not report["verdict"]:
        print("  no OWA server is configured (no target with the exchange_mailbox role)", file=out)
    for row in report["verdict"]:
        print(f"  {row['title']}: {row['status']}", file=out)
        for text in row["maintenance"]:
            print(f"    in maintenance: {text}", file=out)
        if row["why_unknown"]:
            print(f"    not checked: {row['why_unknown']}", file=out)
        for finding in row["findings"]:
            detail = f"; failing: {finding['detail']}" if finding["detail"] else ""
            print(f"    {finding['reason']} (check {finding['check']}, collector {finding['collector']}{detail})",
                  file=out)
            print(f"      fix: {finding['fix']}", file=out)
        for text in row["unchecked"]:
            print(f"    not checked while it fails: {text}", file=out)
    for text in report["organisation_unchecked"]:
        print(f"  not checked for every server while it fails: {text}", file=out)
    print("\nConnections and rights of the monitoring account, per endpoint:", file=out)
    for endpoint in report["endpoints"]:
        label = f"{endpoint['target']}: {endpoint['label']}"
        if endpoint["ok"]:
            print(f"  {label}: works ({len(endpoint['worked'])} cmdlets ran: {', '.join(endpoint['worked'])})", file=out)
        for problem in endpoint["problems"]:
            print(f"  {label}: {problem}", file=out)
        for note in endpoint["notes"]:
            print(f"  {label}: {note}", file=out)
    failed = [job for job in report["jobs"] if not job["up"]]
    print(f"\nCollectors: {len(report['jobs']) - len(failed)} of {len(report['jobs'])} jobs succeeded", file=out)
    for job in failed:
        print(f"  {job['collector']} on {job['target']}: {job['error_kind']}: {job['error']}", file=out)
    print("\nAll is well." if report["all_well"] else "\nSomething is broken or could not be checked (exit 1).",
          file=out)
