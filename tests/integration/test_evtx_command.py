"""``lync-owa-exporter evtx``, run as a real process: its output, its exit codes, and its --json output
compared record by record with the Rust ``evtx`` parser on every file of ../shared/evtx/.

The Rust parser (PyPI ``evtx``, in the test extra) is the reference: per provider, the same
EventRecordID, EventID, TimeCreated, Computer and Level. Where the two differ, it is listed below
with the reason, and the test checks that the difference is exactly that.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT
from tests.evtx_writer import EvtxWriter, background_event, owa_event

evtx_rs = pytest.importorskip("evtx", reason="the Rust evtx parser (pip install -e '.[test]') is the reference")

# Records the Rust parser renders and this reader does not: their trailing size copy is 0, the rest
# of the record was never written (the log wrapped while writing it). Rust renders the fragment that
# is left; this reader counts the record as damaged and resynchronises on the next one.
ONLY_RUST = {"wrapped-with-bad-chunk-magic.evtx": {("Microsoft-Windows-AppXDeployment", 47640),
                                                   ("Microsoft-Windows-AppXDeployment", 45933)}}
# Records this reader recovers past a damaged record, where the Rust parser gives up on the rest of
# the chunk (an invalid token, a zero data size, a record cut short).
ONLY_OURS = {"overrun-record.evtx": 21, "wrapped-with-bad-chunk-magic.evtx": 31, "zero-data-size-record.evtx": 114}


def run_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "exporter.cli", "evtx", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=900)  # python-evtx renders 10,000 records


@pytest.fixture(scope="module")
def reports(real_dir) -> dict[str, dict]:
    """The command's --json report of every shared file, from one run."""
    files = sorted(real_dir.glob("*.evtx"))
    done = run_command("--json", *map(str, files))
    assert done.returncode == 0, done.stderr
    return {Path(r["file"]).name: r for r in json.loads(done.stdout)["files"]}


def rust_records(path: Path) -> list[str]:
    """Every record the Rust parser renders to XML (it raises on a damaged one and carries on)."""
    out, records = [], evtx_rs.PyEvtxParser(str(path)).records()
    while True:
        try:
            out.append(next(records)["data"])
        except StopIteration:
            return out
        except RuntimeError:
            continue


def _field(pattern: str, xml: str) -> str | None:
    m = re.search(pattern, xml)
    return m.group(1) if m else None


def rust_view(xml: str):
    """(provider, (record id, event id, time, computer, level)); the time as Rust prints it.
    (None, None) for the leftovers of a damaged record that Rust renders with no provider."""
    provider = _field(r'<Provider Name="([^"]*)"', xml)
    if provider is None:
        return None, None
    return provider, (
        int(_field(r"<EventRecordID>(\d+)<", xml)), int(_field(r"<EventID[^>]*>(\d+)<", xml)),
        _field(r'SystemTime="([^"]*)"', xml), _field(r"<Computer>([^<]*)<", xml),
        int(_field(r"<Level>(\d+)<", xml) or 0))


def same_precision(ours: str, rust: str) -> str:
    """Our exact time (7 decimals) at the precision Rust printed: FILETIME values to the microsecond
    (truncated), times written as text with all their digits (9, the last two 0)."""
    head, frac = ours[:-1].split(".")
    rust_frac = rust[:-1].split(".")[1]
    return f"{head}.{frac[:6]}Z" if len(rust_frac) == 6 else f"{head}.{frac.ljust(len(rust_frac), '0')}Z"


@pytest.mark.parametrize("name", ["application-2216-records.evtx", "application-no-crc32.evtx",
                                  "exchange-cmdletlogs.evtx", "exchange-management-forwarded.evtx",
                                  "malformed-ascii-strings.evtx", "overrun-record.evtx",
                                  "security-bad-string-cache.evtx", "slack-duplicate-record.evtx",
                                  "slack-high-record-number.evtx", "sysmon-dirty-header.evtx",
                                  "system-dirty-header.evtx", "templateless-records.evtx",
                                  "wrapped-with-bad-chunk-magic.evtx", "zero-data-size-record.evtx"])
def test_json_output_matches_the_rust_parser_provider_by_provider(real_dir, reports, name):
    theirs: dict[str, Counter] = defaultdict(Counter)
    for xml in rust_records(real_dir / name):
        provider, view = rust_view(xml)
        if provider is not None:  # Rust also renders a damaged record's leftovers with no provider
            theirs[provider][view] += 1
    times = {(p, v[0]): v[2] for p, views in theirs.items() for v in views}
    ours: dict[str, Counter] = defaultdict(Counter)
    for e in reports[name]["events"]:
        rust_time = times.get((e["provider"], e["record_id"]))
        when = same_precision(e["time"], rust_time) if rust_time else e["time"]
        ours[e["provider"]][(e["record_id"], e["event_id"], when, e["computer"], e["level"])] += 1

    assert set(theirs) <= set(ours)  # a provider only this reader sees comes from records past damage
    only_rust, only_ours = set(), 0
    for provider in ours:
        only_rust |= {(provider, view[0]) for view in theirs[provider] - ours[provider]}
        only_ours += sum((ours[provider] - theirs[provider]).values())
    assert only_rust == ONLY_RUST.get(name, set())
    assert only_ours == ONLY_OURS.get(name, 0)
    assert reports[name]["error"] is None


def test_json_report_says_what_was_skipped(reports):
    assert {name: (r["skipped_chunks"], r["skipped_records"]) for name, r in reports.items()
            if r["skipped_chunks"] or r["skipped_records"]} == {
        "sysmon-dirty-header.evtx": (7, 0), "wrapped-with-bad-chunk-magic.evtx": (0, 3),
        "zero-data-size-record.evtx": (0, 1), "overrun-record.evtx": (0, 1)}
    assert reports["slack-high-record-number.evtx"]["stale_slack_chunks"] == 1
    assert reports["slack-high-record-number.evtx"]["records"] == 8


T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def owa_export(tmp_path_factory) -> Path:
    """An exported Application log: 300 events, Event 112 at 40, an expired certificate at 200."""
    import random

    rnd = random.Random(5)
    writer = EvtxWriter(xml_record_id_offset=7000)
    for i in range(300):
        when = T0 + timedelta(seconds=7 * i, microseconds=123456)
        writer.add(owa_event(when) if i == 40 else owa_event(when, "certificate_expired") if i == 200
                   else background_event(rnd, when))
    path = tmp_path_factory.mktemp("evtx") / "Application.evtx"
    writer.write(path)
    return path


def test_text_output_answers_is_there_an_event_112(owa_export):
    done = run_command("--provider", "msexchange owa", str(owa_export))
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout.splitlines() == [
        f"{owa_export}: 2 events of 300 records",
        "  record 7041  event 112  Information  2024-03-01T08:04:40.1234560Z  MSExchange OWA  EX01.contoso.com"
        "  IM initialised (Event 112)",
        "  record 7201  event 113  Error  2024-03-01T08:23:20.1234560Z  MSExchange OWA  EX01.contoso.com"
        "  IM failure: certificate_expired",
        "  skipped: 0 damaged chunks, 0 unreadable records",
    ]


def test_event_id_filter_and_json_fields(owa_export):
    done = run_command("--provider", "MSExchange OWA", "--id", "113", "--json", str(owa_export))
    assert done.returncode == 0
    [report] = json.loads(done.stdout)["files"]
    assert report["records"] == 300 and report["error"] is None
    [event] = report["events"]
    assert {k: event[k] for k in ("record_id", "record_number", "event_id", "level", "im", "im_failure_reason")} == {
        "record_id": 7201, "record_number": 201, "event_id": 113, "level": 2, "im": "im_failure",
        "im_failure_reason": "certificate_expired"}
    assert event["data"][0].endswith("has expired.")


def test_an_unreadable_file_exits_2_and_the_others_are_still_read(owa_export, tmp_path):
    junk = tmp_path / "junk.evtx"
    junk.write_bytes(b"not an event log" * 100)
    missing = tmp_path / "absent.evtx"
    done = run_command("--provider", "MSExchange OWA", "--id", "112", str(junk), str(owa_export), str(missing))
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"evtx: {junk}: junk.evtx is not an evtx file (no file or chunk signature)",
        f"evtx: {missing}: cannot open {missing}: No such file or directory",
    ]
    assert "record 7041  event 112" in done.stdout
