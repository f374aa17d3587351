"""collectors.sources.evtx on real Windows .evtx files (../shared/evtx/, described in its README.md).

The files are referenced where they lie, never copied into the repository. Where the folder is
absent (a user's clone) these tests skip and say why; under CI (the CI environment variable set)
they fail instead, so a broken checkout cannot pass silently. The record-by-record comparison with
the Rust ``evtx`` parser is in test_evtx_command.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import defaultdict
from datetime import datetime, timezone
from pathlib import Path

import pytest
from Evtx.Evtx import Evtx

from collectors.sources.evtx import FileCursor, scan_file
from collectors.sources.evtx.layout import (
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    WalkCounts,
    chunk_info,
    walk_records,
)

# README.md's table: records a tolerant parser recovers. This reader resynchronises past damaged
# records, so it may recover more from the damaged files; on the others it must match exactly.
DOCUMENTED = {
    "application-2216-records.evtx": 2216,
    "application-no-crc32.evtx": 17,
    "exchange-cmdletlogs.evtx": 4,
    "exchange-management-forwarded.evtx": 1,
    "system-dirty-header.evtx": 1881,
    "sysmon-dirty-header.evtx": 358,
    "wrapped-with-bad-chunk-magic.evtx": 270,
    "zero-data-size-record.evtx": 335,
    "overrun-record.evtx": 1774,
    "security-bad-string-cache.evtx": 2261,
    "malformed-ascii-strings.evtx": 5,
    "slack-duplicate-record.evtx": 295,  # what the Rust evtx 0.14 parser reads
    "slack-high-record-number.evtx": 8,
    "templateless-records.evtx": 455,
}
DAMAGED = {"wrapped-with-bad-chunk-magic.evtx", "zero-data-size-record.evtx", "overrun-record.evtx"}
# Chunks whose slack space (past the end-of-data mark) holds stale, valid-looking records.
STALE_SLACK_CHUNKS = {"overrun-record.evtx": 5, "slack-duplicate-record.evtx": 1, "slack-high-record-number.evtx": 1,
                      "templateless-records.evtx": 1}
# README: python-evtx's default records() trusts the stale header and sees only these many.
DIRTY_HEADER_DEFAULT_WALK = {"system-dirty-header.evtx": 326, "sysmon-dirty-header.evtx": 41}


def test_files_are_the_documented_ones(real_dir):
    sums = real_dir / "SHA256SUMS"
    if sums.exists():
        for line in sums.read_text().splitlines():
            digest, name = line.split(maxsplit=1)
            name = name.lstrip("*")
            assert hashlib.sha256((real_dir / name).read_bytes()).hexdigest() == digest, name
    assert {p.name for p in real_dir.glob("*.evtx")} == set(DOCUMENTED)


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_real_file_is_read_and_yields_no_false_owa_event(real_dir, name):
    result = scan_file(real_dir / name, max_seconds=30)
    assert result.error is None and result.complete
    assert result.events == []  # none of these files holds an MSExchange OWA event
    assert result.stats.chunks_stale_slack == STALE_SLACK_CHUNKS.get(name, 0)
    if name in DAMAGED:
        assert result.stats.records_seen > DOCUMENTED[name] and result.stats.records_unreadable >= 1
    else:
        assert result.stats.records_seen == DOCUMENTED[name]
        assert result.stats.records_unreadable == 0


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_every_record_is_decoded_and_the_prefilter_drops_none(real_dir, name):
    """Every provider's events: a scan for that provider (prefiltered, rendered by python-evtx where
    it can, as the collector reads) finds exactly the events of that provider in a scan decoding
    every record with the project's decoder alone; and no templated record needed the fallback."""
    everything = scan_file(real_dir / name, provider=None, use_python_evtx=False)
    assert everything.error is None
    if name not in DAMAGED:
        assert len(everything.events) == DOCUMENTED[name] and everything.stats.records_unreadable == 0
    by_provider: dict[str, list] = defaultdict(list)
    for event in everything.events:
        by_provider[event.provider].append(event)
    for provider, events in by_provider.items():
        found = scan_file(real_dir / name, provider=provider)
        # Field for field (the `evtx` command renders with the decoder first, the collector with
        # python-evtx: the command's comparison with the Rust parser holds for both), but for the
        # control characters XML cannot carry, which python-evtx's text drops and the decoder keeps
        # (one string each in malformed-ascii-strings.evtx and security-bad-string-cache.evtx).
        assert found.events == [_without_control_characters(e) for e in events], provider
        # python-evtx rendered them all: in security-bad-string-cache.evtx an Eventlog record names a
        # string missing from its chunk's string table, which stock python-evtx raises KeyError on.
        assert found.stats.records_fallback == 0, provider


_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _without_control_characters(event):
    return dataclasses.replace(event, data=tuple(_XML_INVALID.sub("", d) for d in event.data))


@pytest.mark.parametrize("name", sorted(DIRTY_HEADER_DEFAULT_WALK))
def test_dirty_header_files_yield_their_recoverable_records(real_dir, name):
    with Evtx(str(real_dir / name)) as log:
        assert sum(1 for _ in log.records()) == DIRTY_HEADER_DEFAULT_WALK[name]  # what the header admits
    result = scan_file(real_dir / name)
    assert result.stats.header_dirty
    assert result.stats.records_seen == DOCUMENTED[name]


def test_bad_chunk_signatures_are_counted(real_dir):
    assert scan_file(real_dir / "sysmon-dirty-header.evtx").stats.chunks_bad == 7


@pytest.mark.parametrize("name", sorted(DOCUMENTED))
def test_rescan_from_a_cursor_skips_whole_chunks(real_dir, name):
    first = scan_file(real_dir / name)
    unchanged = scan_file(real_dir / name, cursor=first.cursor)
    assert unchanged.events == [] and unchanged.stats.chunks_scanned == 0 and unchanged.reset is None
    touched = FileCursor(**{**first.cursor.to_dict(), "mtime_ns": 0})  # as if the file had been written
    again = scan_file(real_dir / name, cursor=touched)
    assert again.error is None and again.events == [] and again.reset is None
    assert again.stats.chunks_skipped + again.stats.chunks_scanned == first.stats.chunks_scanned
    if name == "application-no-crc32.evtx":
        assert again.stats.chunks_skipped == 0  # header CRC invalid: its range is not trusted, records are walked
    else:
        assert again.stats.chunks_skipped >= 1


def test_exported_exchange_file_keeps_the_xml_record_ids(real_dir):
    """A real Exchange export: header numbers 1..4, XML EventRecordIDs 7184..7187."""
    result = scan_file(real_dir / "exchange-cmdletlogs.evtx", provider="MSExchange CmdletLogs")
    assert [(e.record_number, e.record_id) for e in result.events] == [(1, 7184), (2, 7185), (3, 7186), (4, 7187)]
    first = result.events[0]
    assert first.provider == "MSExchange CmdletLogs" and first.computer == "exchange01.offsec.lan"
    assert first.data[0] == "Install-TransportAgent" and first.time.utcoffset() is not None


def test_forwarded_exchange_record_is_read(real_dir):
    """Forwarded by Windows Event Collector, written without a template: python-evtx 0.8.1 raises on it."""
    result = scan_file(real_dir / "exchange-management-forwarded.evtx", provider="MSExchange CmdletLogs")
    assert result.error is None and result.stats.records_unreadable == 0
    [event] = result.events
    assert (event.record_id, event.event_id, event.level, event.computer) == (3229, 1, 4, "WEC.ave.local")
    assert event.filetime == 132818143538337335  # 2021-11-19T16:52:33.8337335Z; the Rust parser: .833733500Z
    assert event.data[:3] == ("Set-Mailbox", '-Identity "Administrateur" -DeliverToMailboxAndForward "False" '
                              '-ForwardingSmtpAddress "smtp:test2@example.com"', "ave.local/Users/Administrateur")


def test_templateless_records_are_read(real_dir):
    # README: the Rust evtx parser reads all 455; a scan for their provider must find them.
    result = scan_file(real_dir / "templateless-records.evtx", provider="Microsoft-Windows-Windows Defender")
    assert len(result.events) == 455 and result.stats.records_unreadable == 0
    first = result.events[0]
    assert (first.record_id, first.event_id, first.computer) == (2189, 1151, "WIN10-client01.offsec.lan")
    assert first.time == datetime(2020, 6, 23, 9, 35, 56, 825510, tzinfo=timezone.utc)
    assert first.data[:2] == ("%%827", "4.18.2005.5")


def test_time_created_is_exact_to_the_tick(real_dir):
    """application-no-crc32.evtx, record 426: the FILETIME at file offset 0x1210 is
    9a db 5a ce 88 26 d7 01 = 132617083050187674 ticks = 2021-03-31T23:51:45.0187674Z; python-evtx
    goes through a float and says .018768."""
    [event] = [e for e in scan_file(real_dir / "application-no-crc32.evtx", provider="SecurityCenter").events
               if e.record_id == 426]
    assert event.filetime == 132617083050187674
    assert event.time == datetime(2021, 3, 31, 23, 51, 45, 18767, tzinfo=timezone.utc)  # truncated, never rounded


def _record_numbers(path: Path) -> list[int]:
    """Every record number the walk returns, chunk by chunk, in file order."""
    numbers: list[int] = []
    data = path.read_bytes()
    for start in range(FILE_HEADER_SIZE, len(data) - CHUNK_HEADER_SIZE, CHUNK_SIZE):
        buf = data[start:start + CHUNK_SIZE].ljust(CHUNK_SIZE, b"\0")
        if buf[:8] == CHUNK_MAGIC:
            info = chunk_info(0, buf[:CHUNK_HEADER_SIZE])
            numbers += [n for _o, _s, n in walk_records(buf, info.free, WalkCounts())]
    return numbers


def test_slack_space_never_moves_the_cursor(real_dir):
    # README: the real records are 1 to 8; stale bytes past the end-of-data mark look like records up to 9023.
    result = scan_file(real_dir / "slack-high-record-number.evtx")
    assert (result.stats.records_seen, result.cursor.last_record_number) == (8, 8)
    assert _record_numbers(real_dir / "slack-high-record-number.evtx") == list(range(1, 9))


def test_slack_space_never_returns_a_record_twice(real_dir):
    numbers = _record_numbers(real_dir / "slack-duplicate-record.evtx")
    assert len(numbers) == len(set(numbers)) == 295
    assert numbers.count(190) == 1
