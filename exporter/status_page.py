"""The status page, ``/``: does IM in OWA work, per server; if not, why, since when, and the fix.

Rendered on the server from the exporter's own snapshots (exporter.verdict), without JavaScript: the
rows, then each broken server's findings with their fix, then the collectors' health. The markup is
plain and line by line so the page reads in ``curl`` and in text browsers, and colour is never the
only signal (every row says OK / BROKEN / UNKNOWN / MAINTENANCE in words). Every text from a server
or the configuration is escaped.
"""

from __future__ import annotations

import datetime as dt
import html
import threading
import time
import weakref

from exporter import __version__
from exporter.state import JobStatus, SnapshotStore
from exporter.verdict.judge import (
    Finding,
    FirstSeen,
    Row,
    Status,
    judge,
    organisation_unchecked,
)
from exporter.verdict.readings import Readings

# One memory of "first seen broken" per exporter (its snapshot store), kept while the exporter lives.
_first_seen: weakref.WeakKeyDictionary[SnapshotStore, FirstSeen] = weakref.WeakKeyDictionary()
_first_seen_lock = threading.Lock()


def first_seen_of(store: SnapshotStore) -> FirstSeen:
    with _first_seen_lock:
        return _first_seen.setdefault(store, FirstSeen())


class VerdictWatcher:
    """Judges after every snapshot change, so "broken since" is when a run first showed the cause, not
    when someone first opened the page. Without it (not started), the page's own loads keep the memory."""

    def __init__(self, store: SnapshotStore, idle_seconds: float = 30.0) -> None:
        self.store = store
        self.first_seen = first_seen_of(store)
        self.idle_seconds = idle_seconds  # judged at least this often: causes that go with time (the 112 grace)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="verdict-watcher", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.store.wake()  # not after its idle wait: a stop must be quick
        if self._thread is not None:
            self._thread.join(timeout)

    def _watch(self) -> None:
        generation = -1
        while not self._stop.is_set():
            generation = self.store.wait_for_change(generation, self.idle_seconds, stop=self._stop)
            if not self._stop.is_set():
                judge(Readings.from_store(self.store), time.time(), self.first_seen)

STYLE = (
    "body{font-family:sans-serif;margin:1em 2em;color:#111}"
    "table{border-collapse:collapse;margin-bottom:1em}"
    "td,th{padding:3px 10px;text-align:left;border-bottom:1px solid #ccc;vertical-align:top}"
    ".OK{background:#d4edda}.BROKEN{background:#f8d7da}.UNKNOWN{background:#e2e3e5}.MAINTENANCE{background:#fff3cd}"
    ".answer{font-size:1.3em;padding:6px 10px;display:inline-block}"
    ".finding{border-left:6px solid #c82333;padding:2px 12px;margin:0 0 1em 0}"
    "code{background:#f4f4f4;padding:0 3px;white-space:pre-wrap}"
    ".health td{font-size:0.9em}"
)


def render(store: SnapshotStore, telemetry_path: str = "/metrics", now: float | None = None) -> str:
    now = time.time() if now is None else now
    readings = Readings.from_store(store)
    first_seen = first_seen_of(store)
    rows = judge(readings, now, first_seen)
    answer, answer_class = _answer(rows)
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(answer)} - lync-owa-exporter</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>Is IM and presence in Outlook Web App working?</h1>",
        f"<p class='answer {answer_class}'><strong>{html.escape(answer)}</strong></p>",
        f"<p>lync-owa-exporter {html.escape(__version__)} at {_when(now)} · "
        f"<a href='{html.escape(telemetry_path, quote=True)}'>Metrics</a> · <a href='/healthz'>Health</a></p>",
        "<h2>Per OWA server</h2>",
        *_verdict_table(rows),
        *_details(rows, now),
        *_organisation_note(readings),
        "<h2>Collector health</h2>",
        *_health_table(store.jobs()),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _answer(rows: list[Row]) -> tuple[str, str]:
    broken = [row for row in rows if row.status is Status.BROKEN]
    unknown = [row for row in rows if row.status is Status.UNKNOWN]
    if not rows:
        return "No OWA server is configured or checked yet", Status.UNKNOWN.value
    if broken:
        return f"No: IM in OWA is BROKEN for {_names(broken)}", Status.BROKEN.value
    if unknown:
        return f"Not known for {_names(unknown)}: not checked", Status.UNKNOWN.value
    resting = [row for row in rows if row.status is Status.MAINTENANCE]
    if resting:
        return (f"Yes: OK on {len(rows) - len(resting)} of {len(rows)}; in maintenance: {_names(resting)}",
                Status.MAINTENANCE.value)
    return f"Yes: OK on all {len(rows)}", Status.OK.value


def _names(rows: list[Row]) -> str:
    return ", ".join(row.title for row in rows)


def _verdict_table(rows: list[Row]) -> list[str]:
    lines = ["<table class='verdict'>", "<tr><th>server</th><th>IM in OWA</th><th>why</th></tr>"]
    for row in rows:
        lines.append(
            f"<tr class='{row.status.value}'><td>{html.escape(row.title)}</td>"
            f"<td><strong>{row.status.value}</strong></td><td>{html.escape(_why(row))}</td></tr>"
        )
    lines.append("</table>")
    return lines


def _why(row: Row) -> str:
    if row.status is Status.MAINTENANCE:
        return "in maintenance: " + (", ".join(row.maintenance) or "lync_owa_server_in_maintenance 1")
    if row.status is Status.UNKNOWN:
        return f"not checked: {row.why_unknown}"
    if row.findings:
        return ", ".join(finding.reason.name for finding in row.findings)
    return f"not checked: {', '.join(row.unchecked)}" if row.unchecked else ""


def _details(rows: list[Row], now: float) -> list[str]:
    with_findings = [row for row in rows if row.findings]
    if not with_findings:
        return []
    lines = ["<h2>What is broken, and the fix</h2>"]
    for row in with_findings:
        for finding in row.findings:
            lines += _finding(row, finding, now)
    return lines


def _finding(row: Row, finding: Finding, now: float) -> list[str]:
    reason = finding.reason
    detail = f"; failing: {finding.detail}" if finding.detail else ""
    note = " (in maintenance: not paged)" if row.status is Status.MAINTENANCE else ""
    return [
        f"<div class='finding'><h3>{html.escape(row.title)}: {html.escape(reason.name)}{note}</h3>",
        f"<p>Check: {html.escape(reason.check)} (collector {html.escape(reason.collector)}){html.escape(detail)}</p>",
        f"<p>Broken since: {_when(finding.since)} ({_ago(now - finding.since)}; first seen by this exporter)</p>",
        f"<p>Fix: {_with_code(finding.fix)}</p></div>",
    ]


def _with_code(text: str) -> str:
    """Escape a fix text and show its `commands` as code."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:  # an unpaired backtick: show the text as it is
        return html.escape(text, quote=False)
    escaped = [html.escape(piece, quote=False) for piece in pieces]
    return "".join(f"<code>{piece}</code>" if i % 2 else piece for i, piece in enumerate(escaped))


def _organisation_note(readings: Readings) -> list[str]:
    unchecked = organisation_unchecked(readings)
    if not unchecked:
        return []
    items = "".join(f"<li>{html.escape(item)}</li>" for item in unchecked)
    return ["<p>Not checked for the whole organisation while these fail (a cause there may go unseen):</p>",
            f"<ul>{items}</ul>"]


def _health_table(jobs: list[JobStatus]) -> list[str]:
    lines = ["<table class='health'>",
             "<tr><th>collector</th><th>target</th><th>status</th><th>last success</th><th>last duration</th>"
             "<th>last error</th></tr>"]
    for job in jobs:
        last = _when(job.last_success_timestamp) if job.last_success_timestamp else "never"
        status = "up" if job.up else ("pending" if job.runs == 0 else f"failing ({job.last_error_kind})")
        cells = (job.collector, job.target, status, last, f"{job.duration_seconds:.3f}s", job.last_error)
        lines.append("<tr>" + "".join(f"<td>{html.escape(str(cell))}</td>" for cell in cells) + "</tr>")
    lines.append("</table>")
    return lines


def _when(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    if seconds < 120:
        return f"for {seconds} s"
    if seconds < 2 * 3600:
        return f"for {seconds // 60} min"
    return f"for {seconds // 3600} h {seconds % 3600 // 60} min"
