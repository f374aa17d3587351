"""``lync-owa-exporter evtx FILE... [--provider NAME] [--id N] [--json]``: the events of exported logs.

Answers "is there an Event 112 in this export, and if OWA failed to start IM, why?" without a
Windows machine, with the reader the ``owa_events`` collector uses in files mode: the same walk,
prefilter and slack rule, and the same events. The records are rendered by the project's decoder
first (a 20 MB log in seconds, where python-evtx takes a minute), python-evtx only where the
decoder fails; the collector asks python-evtx first. The tests compare this output with the Rust
parser, and the collector's python-evtx rendering with the decoder's, field by field, on every
shared real file. Per file it prints
every matching event (record id, event id, level, TimeCreated to the 100 ns tick, provider,
computer, and for MSExchange OWA what the event means for IM), then what was skipped: chunks with a
damaged signature and records that could not be read. Exit 0, or 2 when a file could not be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TextIO

EXIT_OK = 0
EXIT_UNREADABLE = 2
LEVELS = {0: "Information", 1: "Critical", 2: "Error", 3: "Warning", 4: "Information", 5: "Verbose"}


def add_parser(sub) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        "evtx", help="print the events of exported event logs (.evtx): exit 0, or 2 when a file cannot be read",
        description="Print the events of exported Windows event logs (.evtx), as the owa_events collector reads them.",
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="an exported event log (wevtutil epl, Save As)")
    parser.add_argument("--provider", default=None, metavar="NAME",
                        help="only this provider's events (case-insensitive), e.g. 'MSExchange OWA' (much faster)")
    parser.add_argument("--id", dest="event_ids", type=int, action="append", default=None, metavar="N",
                        help="only events with this event ID (repeat for several)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text")
    return parser


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    try:
        return _run(args, out or sys.stdout, err or sys.stderr)
    except BrokenPipeError:  # `... | head`: the reader has gone, which is not an error of the files
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return EXIT_OK


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from collectors.sources.evtx import scan_file

    reports, status = [], EXIT_OK
    for path in args.files:
        result = scan_file(path, provider=args.provider, decoder_first=True)
        events = [e for e in result.events if args.event_ids is None or e.event_id in args.event_ids]
        report = file_report(path, result, events)
        reports.append(report)
        if result.error is not None:
            status = EXIT_UNREADABLE
            print(f"evtx: {path}: {result.error}", file=err)
        if not args.json:
            _print_text(report, out)
    if args.json:
        json.dump({"files": reports}, out, ensure_ascii=False)
        out.write("\n")
    return status


def file_report(path: str, result, events) -> dict:
    s = result.stats
    return {
        "file": path,
        "error": result.error,
        "records": s.records_seen,
        "skipped_chunks": s.chunks_bad,
        "skipped_records": s.records_unreadable,
        "stale_slack_chunks": s.chunks_stale_slack,
        "header_dirty": s.header_dirty,
        "events": [event_report(e) for e in events],
    }


def event_report(event) -> dict:
    from collectors.sources.evtx.binxml import filetime_text

    meaning = _im_meaning(event)
    return {
        "record_id": event.record_id,
        "event_id": event.event_id,
        "level": event.level,
        "time": filetime_text(event.ticks),
        "provider": event.provider,
        "computer": event.computer,
        "im": meaning.kind if meaning else None,
        "im_failure_reason": meaning.reason if meaning else None,
        "record_number": event.record_number,
        "data": list(event.data),
    }


def _im_meaning(event):
    """What an MSExchange OWA event means for IM (check E1), as the collector decides it; None otherwise."""
    from collectors.owa_events.tally import PROVIDER, meaning_of

    if event.provider.casefold() != PROVIDER.casefold():
        return None
    return meaning_of(event.event_id, event.level, " ".join(event.data))


def _print_text(report: dict, out: TextIO) -> None:
    print(f"{report['file']}: {len(report['events'])} events of {report['records']} records", file=out)
    if report["error"] is not None:
        print(f"  cannot be read: {report['error']}", file=out)
    for e in report["events"]:
        im = ""
        if e["im"] == "im_initialised":
            im = "  IM initialised (Event 112)"
        elif e["im"] == "im_failure":
            im = f"  IM failure: {e['im_failure_reason']}"
        print(f"  record {e['record_id']}  event {e['event_id']}  {LEVELS.get(e['level'], e['level'])}  {e['time']}"
              f"  {e['provider']}  {e['computer']}{im}", file=out)
    print(f"  skipped: {report['skipped_chunks']} damaged chunks, {report['skipped_records']} unreadable records"
          + (f"; ignored: stale records in the slack space of {report['stale_slack_chunks']} chunks"
             if report["stale_slack_chunks"] else ""), file=out)
