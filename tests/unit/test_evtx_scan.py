"""collectors.sources.evtx on generated .evtx files (tests/evtx_writer.py writes them as Windows does)."""

from __future__ import annotations

import itertools
import pickle
import re
import struct
import time
import zlib
from dataclasses import asdict
from datetime import datetime, timedelta, timezone

import pytest
from Evtx.Evtx import Evtx
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from collectors.sources.evtx import (
    CHUNK_HEADER_SIZE,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    MAX_DATA_CHARS,
    MAX_DATA_ITEMS,
    FileCursor,
    ScanResult,
    scan_file,
    scan_folder,
)
from collectors.sources.evtx import scan as evtx_scan
from tests.evtx_writer import (
    OWA_PROVIDER,
    EventSpec,
    EvtxWriter,
    application_log,
    corrupt_chunk,
    owa_event,
    owa_records,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
PROVIDER_RE = re.compile(r'<Provider Name="([^"]*)"')


def event_key(e):
    return (e.record_number, e.record_id, e.event_id, e.time, e.level, e.provider, e.computer, e.data)


def expected_keys(writer: EvtxWriter, records=None):
    rows = owa_records(writer) if records is None else records
    return [(r.number, r.xml_record_id, r.spec.event_id, r.spec.time, r.spec.level, r.spec.provider,
             writer.computer, r.spec.data) for r in rows]


def oracle(path) -> dict[str, list[int]]:
    """Provider -> record numbers, by rendering every record with python-evtx itself."""
    out: dict[str, list[int]] = {}
    with Evtx(str(path)) as log:
        for chunk in log.get_file_header().chunks(include_inactive=True):
            if not chunk.check_magic():
                continue
            for record in chunk.records():
                name = PROVIDER_RE.search(record.xml()).group(1)
                out.setdefault(name, []).append(record.record_num())
    return out


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    """1,500 records in 13 chunks, 25 OWA events; XML EventRecordIDs offset as in an exported file."""
    writer = application_log(1500, 25, seed=11, writer=EvtxWriter(xml_record_id_offset=5000))
    path = tmp_path_factory.mktemp("evtx") / "Application.evtx"
    writer.write(path)
    return writer, path


def test_finds_exactly_the_owa_events(log_file):
    writer, path = log_file
    result = scan_file(path)
    assert result.error is None and result.complete and result.reset is None
    assert [event_key(e) for e in result.events] == expected_keys(writer)
    assert {e.event_id for e in result.events} == {112, 113}
    assert all(e.record_id == e.record_number + 5000 for e in result.events)
    assert all(e.time.tzinfo is not None and e.time.utcoffset() == timedelta(0) for e in result.events)
    assert result.stats.records_seen == 1500 and result.stats.records_unreadable == 0
    assert result.stats.chunks_scanned == len(writer.slots) and result.stats.chunks_bad == 0
    assert result.cursor.last_record_number == 1500


def test_prefilter_renders_only_candidates(log_file):
    writer, path = log_file
    stats = scan_file(path).stats
    decoys = sum(1 for r in writer.records if r.spec.provider != OWA_PROVIDER and "OWA" in " ".join(r.spec.data))
    assert stats.records_rendered == len(owa_records(writer)) + decoys


def test_prefilter_drops_nothing_against_rendering_everything(log_file):
    writer, path = log_file
    quick, full = scan_file(path), scan_file(path, render_all=True)
    assert full.stats.records_rendered == 1500
    assert [event_key(e) for e in quick.events] == [event_key(e) for e in full.events]


def _any_case(form: bytes, flips: int) -> bytes:
    """``form`` with the case of its ASCII letters swapped where ``flips`` has a bit set."""
    return bytes(c ^ 0x20 if chr(c).isascii() and chr(c).isalpha() and flips >> (i % 60) & 1 else c
                 for i, c in enumerate(form))


@settings(max_examples=300, deadline=None)
@given(name=st.text(min_size=1, max_size=24), noise=st.binary(max_size=400), at=st.integers(0, 400),
       utf16=st.booleans(), flips=st.integers(0, 2**60))
def test_the_byte_test_keeps_the_name_in_any_case_and_encoding(name, noise, at, utf16, flips):
    """``Needle.may_be_in`` (one translate pass: lower-cased, NULs dropped, bytes the name lacks made
    one filler byte) finds the name wherever it is, UTF-16LE or 8-bit, in any ASCII case."""
    from collectors.sources.evtx.prefilter import Needle

    needle = Needle(name)
    form = name.encode("utf-16-le") if utf16 else name.encode("latin-1", "ignore")
    assume(form.strip(b"\0"))  # a name none of whose characters is 8-bit has no 8-bit form to plant
    data = noise[:at] + _any_case(form, flips) + noise[at:]
    assert needle.may_be_in(data)
    assert needle.may_be_in(data) or not needle.in_(data.lower())


@settings(max_examples=300, deadline=None)
@given(name=st.sampled_from(["MSExchange OWA", "ESENT", "Microsoft-Windows-Security-SPP", "Łódź Ñame"]),
       data=st.binary(max_size=600))
def test_the_byte_test_is_never_stricter_than_the_exact_one(name, data):
    """Whatever the bytes, a match of the exact test (``in_`` on the lower-cased bytes) passes the
    one-pass test too: it can only be wrong the safe way."""
    from collectors.sources.evtx.prefilter import Needle

    needle = Needle(name)
    assert needle.may_be_in(data) or not needle.in_(data.lower())


@pytest.mark.parametrize("seed", [3, 4])
def test_prefilter_agrees_with_python_evtx_for_every_provider(tmp_path, seed):
    """Classic, manifest and substituted-name shapes, inline and referenced templates."""
    writer = application_log(500, 12, seed=seed)
    path = tmp_path / "a.evtx"
    writer.write(path)
    truth = oracle(path)
    assert len(truth) >= 5
    for provider, numbers in truth.items():
        assert [e.record_number for e in scan_file(path, provider=provider).events] == numbers, provider


def test_provider_name_only_in_substitution_values_is_found(tmp_path):
    """One template serves several providers: the name is in each record, not in the template."""
    writer = EvtxWriter()
    for i in range(400):
        when = T0 + timedelta(seconds=i)
        spec = owa_event(when, style="substituted") if i % 50 == 7 else EventSpec(
            "MSExchange Common", 4999, when, (f"watson report {i}",), style="substituted", qualifiers=16388)
        writer.add(spec)
    path = tmp_path / "s.evtx"
    writer.write(path)
    result = scan_file(path)
    assert [event_key(e) for e in result.events] == expected_keys(writer)
    assert result.stats.records_rendered == len(owa_records(writer)) == 8


def test_classic_template_defined_once_per_chunk_is_followed(tmp_path):
    writer = EvtxWriter()
    for i in range(600):
        when = T0 + timedelta(seconds=i)
        writer.add(owa_event(when) if i % 40 == 3 else EventSpec(
            "MSExchange ADAccess", 2080, when, (f"topology {i}",), qualifiers=16388))
    path = tmp_path / "c.evtx"
    writer.write(path)
    result = scan_file(path)
    assert [event_key(e) for e in result.events] == expected_keys(writer)
    assert result.stats.records_rendered == 15  # only the OWA records, though most hold no name


def test_case_of_the_provider_name_does_not_matter(log_file):
    _, path = log_file
    assert len(scan_file(path, provider="msexchange owa").events) == 25


def test_incremental_scan_returns_only_the_appended_events(tmp_path):
    writer = application_log(1000, 10, seed=21)
    path = tmp_path / "Application.evtx"
    writer.write(path)
    first = scan_file(path)
    before = path.read_bytes()
    old = len(writer.records)
    application_log(100, 3, seed=22, writer=writer)
    writer.write(path, append=True)
    after = path.read_bytes()
    last_full = FILE_HEADER_SIZE + (len(before) - FILE_HEADER_SIZE) // CHUNK_SIZE * CHUNK_SIZE - CHUNK_SIZE
    assert after[FILE_HEADER_SIZE:last_full] == before[FILE_HEADER_SIZE:last_full]  # appended, not rewritten

    second = scan_file(path, cursor=first.cursor)
    assert second.reset is None
    assert [event_key(e) for e in second.events] == expected_keys(writer, owa_records(writer)[-3:])
    assert all(e.record_number > old for e in second.events)
    assert second.stats.chunks_skipped >= len(writer.slots) - 3
    assert second.stats.records_seen < 300
    assert second.cursor.last_record_number == 1100

    third = scan_file(path, cursor=second.cursor)
    assert third.events == [] and third.stats.chunks_scanned == 0


def test_cursor_is_plain_data(log_file):
    _, path = log_file
    cursor = scan_file(path).cursor
    assert pickle.loads(pickle.dumps(cursor)) == cursor
    assert FileCursor.from_dict(cursor.to_dict()) == cursor
    assert FileCursor.from_dict({"last_record_number": "x"}) == FileCursor()
    assert cursor.identity == (cursor.anchor_offset, cursor.anchor_length, cursor.anchor_crc)


def test_dirty_header_is_not_trusted(tmp_path):
    writer = application_log(1200, 15, seed=5)
    path = tmp_path / "dirty.evtx"
    writer.write(path, dirty=True, header_chunk_count=2)
    with Evtx(str(path)) as log:  # python-evtx's default walk believes the header
        assert sum(1 for _ in log.records()) < 300
    result = scan_file(path)
    assert result.stats.header_dirty
    assert result.stats.records_seen == 1200
    assert [event_key(e) for e in result.events] == expected_keys(writer)


def test_wrapped_log_is_read_whole_and_incrementally(tmp_path):
    writer = application_log(2000, 30, seed=6, writer=EvtxWriter(max_chunks=6))
    path = tmp_path / "wrapped.evtx"
    writer.write(path)
    firsts = [struct.unpack_from("<Q", path.read_bytes(), FILE_HEADER_SIZE + i * CHUNK_SIZE + 0x18)[0]
              for i in range(6)]
    assert firsts != sorted(firsts)  # the fixture really wrapped
    result = scan_file(path)
    assert [event_key(e) for e in result.events] == expected_keys(writer)
    assert result.stats.records_seen == len(writer.records) < 2000

    known = {r.number for r in owa_records(writer)}
    application_log(300, 6, seed=7, writer=writer)  # wraps again over the oldest chunks
    writer.write(path, append=True)
    more = scan_file(path, cursor=result.cursor)
    assert more.reset is None
    assert [event_key(e) for e in more.events] == expected_keys(
        writer, [r for r in owa_records(writer) if r.number not in known])


@pytest.mark.parametrize("mode", ["magic", "records", "zero"])
def test_corrupt_chunk_is_counted_not_fatal(log_file, tmp_path, mode):
    writer, clean = log_file
    path = tmp_path / "corrupt.evtx"
    path.write_bytes(corrupt_chunk(clean.read_bytes(), 2, mode))
    result = scan_file(path)
    assert result.error is None
    outside = [r for r in owa_records(writer) if r.chunk_slot != 2]
    found = {e.record_number for e in result.events}
    assert {r.number for r in outside} <= found
    assert found <= {r.number for r in owa_records(writer)}
    if mode == "magic":
        assert result.stats.chunks_bad == 1
    elif mode == "zero":
        assert result.stats.chunks_empty == 1
    else:
        assert result.stats.records_unreadable >= 1
        assert result.stats.records_seen < 1500


def test_replaced_file_resets_the_cursor(tmp_path):
    path = tmp_path / "Application.evtx"
    application_log(800, 8, seed=31).write(path)
    cursor = scan_file(path).cursor
    other = application_log(900, 9, seed=32)  # a new export: same name, other records
    other.write(path)
    result = scan_file(path, cursor=cursor)
    assert result.reset == "replaced"
    assert [event_key(e) for e in result.events] == expected_keys(other)


def test_truncated_file_resets_the_cursor(tmp_path):
    path = tmp_path / "Application.evtx"
    writer = application_log(1500, 20, seed=33)
    writer.write(path)
    cursor = scan_file(path).cursor
    path.write_bytes(path.read_bytes()[:FILE_HEADER_SIZE + 4 * CHUNK_SIZE])
    result = scan_file(path, cursor=cursor)
    assert result.reset == "truncated"
    assert [event_key(e) for e in result.events] == expected_keys(
        writer, [r for r in owa_records(writer) if r.chunk_slot < 4])


@pytest.mark.parametrize("content", [b"", b"not an event log at all" * 100, bytes(70000)])
def test_not_an_evtx_file_is_an_error_not_an_exception(tmp_path, content):
    path = tmp_path / "x.evtx"
    path.write_bytes(content)
    result = scan_file(path)
    assert isinstance(result, ScanResult) and result.events == []
    assert "not an evtx file" in result.error


def test_missing_file_is_an_error(tmp_path):
    result = scan_file(tmp_path / "absent.evtx")
    assert result.error.startswith("cannot open") and result.events == []


def test_time_budget_stops_the_scan_cleanly(log_file):
    _, path = log_file
    result = scan_file(path, max_seconds=0)
    assert not result.complete and "time budget" in result.error


def test_scan_cut_short_by_its_budget_resumes_where_it_stopped(log_file, monkeypatch):
    """Each budget check costs one tick of a fake clock: scans stop mid-file, even mid-chunk, and
    the next scan from the returned cursor carries on without losing or repeating an event."""
    writer, path = log_file
    ticks = itertools.count()
    monkeypatch.setattr(evtx_scan, "_now", lambda: next(ticks))
    events, cursor, runs = [], None, 0
    while True:
        runs += 1
        result = scan_file(path, cursor=cursor, max_seconds=3)
        events += result.events
        cursor = result.cursor
        if result.complete:
            break
        assert "time budget" in result.error and runs < 200
    assert runs > 5
    assert [event_key(e) for e in events] == expected_keys(writer)


def test_event_data_is_bounded(tmp_path):
    writer = EvtxWriter()
    writer.add(EventSpec(OWA_PROVIDER, 113, T0, tuple("x" * 3000 for _ in range(10)) + tuple("y" for _ in range(40)),
                         level=2))
    path = tmp_path / "big.evtx"
    writer.write(path)
    [event] = scan_file(path).events
    assert len(event.data) == MAX_DATA_ITEMS and max(map(len, event.data)) == MAX_DATA_CHARS


# --- hostile input ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def small_file(tmp_path_factory):
    writer = application_log(350, 10, seed=41)
    path = tmp_path_factory.mktemp("evtx") / "small.evtx"
    writer.write(path)
    return path.read_bytes(), scan_file(path).cursor


def _scan_bytes(tmp_path, data: bytes, cursor=None) -> tuple[ScanResult, float]:
    path = tmp_path / "m.evtx"
    path.write_bytes(data)
    started = time.monotonic()
    result = scan_file(path, cursor=cursor, max_seconds=3)
    return result, time.monotonic() - started


def _assert_sane(result: ScanResult, elapsed: float) -> None:
    assert isinstance(result, ScanResult)
    assert elapsed < 10  # the scan's own budget is 3 s; decoding work between checks is bounded
    assert all(e.provider.casefold() == OWA_PROVIDER.casefold() for e in result.events)


_mutation = st.one_of(
    st.tuples(st.just("flip"), st.lists(st.tuples(st.integers(0, 10**6), st.integers(1, 255)), min_size=1, max_size=64)),
    st.tuples(st.just("truncate"), st.integers(0, 10**6)),
    st.tuples(st.just("zero_header"), st.just(0)),
    st.tuples(st.just("zero_range"), st.tuples(st.integers(0, 10**6), st.integers(1, 5000))),
)


def _mutate(data: bytes, mutation) -> bytes:
    kind, arg = mutation
    out = bytearray(data)
    if kind == "flip":
        for pos, mask in arg:
            out[pos % len(out)] ^= mask
    elif kind == "truncate":
        del out[arg % len(out):]
    elif kind == "zero_header":
        out[:FILE_HEADER_SIZE] = bytes(FILE_HEADER_SIZE)
    else:
        start, length = arg
        start %= len(out)
        out[start:start + length] = bytes(len(out[start:start + length]))
    return bytes(out)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mutation=_mutation, with_cursor=st.booleans())
def test_mutated_files_never_raise_and_finish(small_file, tmp_path, mutation, with_cursor):
    data, cursor = small_file
    result, elapsed = _scan_bytes(tmp_path, _mutate(data, mutation), cursor if with_cursor else None)
    _assert_sane(result, elapsed)


def test_odd_length_string_array_does_not_hang_python_evtx(small_file, tmp_path):
    """python-evtx's WstringArrayTypeNode.string() loops forever on an odd length; the reader never
    calls it (values' text comes from their raw bytes), and both renderers refuse these records in
    bounded time: the longer value no longer fits its BinXML value."""
    data = bytearray(small_file[0])
    # the classic EventData value table: 3 values, (size, 0x81 string array), (4, 0x08 uint32), ...
    table = re.compile(rb"\x03\x00\x00\x00([\x02-\xfe][\x00-\x01])\x81\x00\x04\x00\x08\x00")
    patched = 0
    for m in table.finditer(bytes(data)):
        size = struct.unpack_from("<H", data, m.start(1))[0]
        struct.pack_into("<H", data, m.start(1), size + 1)  # one byte longer ...
        data[m.start() + 4 + 12 + size] = 0x41  # ... and that byte not zero: stock python-evtx spins
        patched += 1
    assert patched > 10
    result, elapsed = _scan_bytes(tmp_path, bytes(data))
    _assert_sane(result, elapsed)
    assert result.stats.records_unreadable == result.stats.records_rendered == result.stats.records_fallback == 10


def test_string_table_cycle_does_not_hang(small_file, tmp_path):
    """python-evtx follows the chunk's string table chains without a visited set; the decoder reads a
    name at the offset a record gives and never follows the chains."""
    data = bytearray(small_file[0])
    chunk = FILE_HEADER_SIZE
    for bucket in range(64):
        at = struct.unpack_from("<I", data, chunk + 0x80 + 4 * bucket)[0]
        if at:
            struct.pack_into("<I", data, chunk + at, at)  # the string's "next" points at itself
    result, elapsed = _scan_bytes(tmp_path, bytes(data))
    _assert_sane(result, elapsed)
    assert result.error is None


# --- a folder of files -----------------------------------------------------------------------------

def test_folder_scan_tracks_new_changed_and_removed_files(tmp_path):
    a, b = application_log(400, 4, seed=51), application_log(300, 3, seed=52)
    a.write(tmp_path / "a.evtx")
    b.write(tmp_path / "B.EVTX")
    (tmp_path / "notes.txt").write_text("not a log")
    first = scan_folder(tmp_path)
    assert first.error is None and not first.removed and not first.pending
    assert sorted(len(r.events) for r in first.results.values()) == [3, 4]
    assert set(first.cursors) == {str(tmp_path / "a.evtx"), str(tmp_path / "B.EVTX")}

    application_log(100, 2, seed=53, writer=a)
    a.write(tmp_path / "a.evtx", append=True)
    (tmp_path / "B.EVTX").unlink()
    application_log(200, 1, seed=54).write(tmp_path / "c.evtx")
    second = scan_folder(tmp_path, first.cursors)
    assert second.removed == [str(tmp_path / "B.EVTX")]
    assert len(second.results[str(tmp_path / "a.evtx")].events) == 2
    assert len(second.results[str(tmp_path / "c.evtx")].events) == 1
    assert set(second.cursors) == {str(tmp_path / "a.evtx"), str(tmp_path / "c.evtx")}


def test_folder_scan_of_a_missing_folder_is_an_error(tmp_path):
    result = scan_folder(tmp_path / "absent", {"x": FileCursor()})
    assert result.error.startswith("cannot list") and result.cursors == {"x": FileCursor()}


def test_folder_scan_budget_leaves_files_pending(tmp_path):
    application_log(50, 1, seed=55).write(tmp_path / "a.evtx")
    result = scan_folder(tmp_path, max_seconds=0)
    assert result.pending == [str(tmp_path / "a.evtx")] and not result.results


def test_cursor_survives_json(log_file):
    import json

    _, path = log_file
    cursor = scan_file(path).cursor
    assert FileCursor.from_dict(json.loads(json.dumps(asdict(cursor)))) == cursor


# --- a chunk header that lags behind its records (a live log), and stale records in slack -------------

def _lag_chunk_header(data: bytes, slot: int, last) -> bytes:
    """The chunk's header rewritten, with valid CRCs, as Windows last flushed it: ending at ``last``."""
    out = bytearray(data)
    start = FILE_HEADER_SIZE + slot * CHUNK_SIZE
    size = struct.unpack_from("<I", out, start + last.offset + 4)[0]
    free = last.offset + size
    struct.pack_into("<Q", out, start + 0x10, last.number)
    struct.pack_into("<Q", out, start + 0x20, last.number)
    struct.pack_into("<II", out, start + 0x2C, last.offset, free)
    struct.pack_into("<I", out, start + 0x34, zlib.crc32(bytes(out[start + 0x200:start + free])))
    header = bytes(out[start:start + 0x78]) + bytes(out[start + 0x80:start + 0x200])
    struct.pack_into("<I", out, start + 0x7C, zlib.crc32(header))
    return bytes(out)


def test_records_past_a_lagging_chunk_header_are_read(tmp_path):
    """The header is trusted (CRCs valid) but older than the records: the ones continuing the
    numbering past its end-of-data mark are real, and hold OWA events."""
    writer = EvtxWriter()
    for i in range(120):
        when = T0 + timedelta(seconds=i)
        writer.add(owa_event(when) if i in (30, 110) else EventSpec(
            "MSExchange ADAccess", 2080, when, (f"topology {i}",), qualifiers=16388))
    assert len(writer.slots) == 1
    path = tmp_path / "live.evtx"
    path.write_bytes(_lag_chunk_header(writer.to_bytes(), 0, writer.records[59]))
    result = scan_file(path)
    assert [e.record_number for e in result.events] == [31, 111]
    assert result.stats.records_seen == 120 and result.cursor.last_record_number == 120
    other = scan_file(path, provider="MSExchange ADAccess")  # no OWA name needed to walk past the mark
    assert len(other.events) == 118 and other.cursor.last_record_number == 120
    absent = scan_file(path, provider="Not In This Log")  # nothing to decode: the header alone is not enough
    assert absent.stats.records_seen == 120 and absent.cursor.last_record_number == 120


def test_stale_copies_in_slack_are_neither_events_nor_the_cursor(tmp_path):
    writer = application_log(300, 5, seed=3)
    last_owa = owa_records(writer)[-1]
    assert last_owa.chunk_slot == writer.records[-1].chunk_slot
    writer.leave_stale_copy(last_owa, 9023)  # higher than any real record
    writer.leave_stale_copy(last_owa, last_owa.number)  # a duplicate
    path = tmp_path / "slack.evtx"
    writer.write(path)
    for provider in (OWA_PROVIDER, None):
        result = scan_file(path, provider=provider)
        owa = [e.record_number for e in result.events if e.provider == OWA_PROVIDER]
        assert owa == [r.number for r in owa_records(writer)]  # once each, no 9023
        assert result.cursor.last_record_number == 300 and result.stats.records_seen == 300
        assert result.stats.chunks_stale_slack == 1 and result.stats.records_unreadable == 0


def _scan_everything(path):
    result = scan_file(path)
    return [event_key(e) for e in result.events], asdict(result.stats), result.cursor.to_dict(), result.error


def test_reads_without_pread_give_the_same_scan(log_file, tmp_path, monkeypatch):
    """Windows has no os.pread: the reader seeks and reads there, with the same result."""
    from collectors.sources.evtx import layout

    small = tmp_path / "small.evtx"
    application_log(20, 2, seed=3).write(small)
    _writer, path = log_file
    with_pread = [_scan_everything(p) for p in (path, small)]
    monkeypatch.setattr(layout, "_pread", layout._seek_read)
    assert [_scan_everything(p) for p in (path, small)] == with_pread
    assert with_pread[1][1]["records_seen"] == 20 and len(with_pread[1][0]) == 2


@pytest.mark.parametrize("count", [8, 12, 60])
def test_a_chunk_without_the_name_is_read_only_up_to_its_mark(tmp_path, monkeypatch, count):
    """A one-chunk export without MSExchange OWA events: the file header and the start of the chunk
    in one read (``START_BYTES``), and, where the records go on past it, one more read up to the
    end-of-data mark; never the 64 KiB chunk and its slack."""
    from collectors.sources.evtx import layout

    writer = EvtxWriter()
    for i in range(count):
        writer.add(EventSpec("MSExchange Common", 4999, T0 + timedelta(seconds=i), (f"report {i}",)))
    path = tmp_path / "export.evtx"
    writer.write(path)
    mark = layout.chunk_info(0, path.read_bytes()[FILE_HEADER_SIZE:FILE_HEADER_SIZE + CHUNK_HEADER_SIZE]).free
    reads: list[int] = []
    real = layout._pread

    def counting(fd, length, offset):
        data = real(fd, length, offset)
        reads.append(len(data))
        return data

    monkeypatch.setattr(layout, "_pread", counting)
    result = scan_file(path)
    assert result.error is None and result.events == [] and result.stats.records_seen == count
    assert result.cursor.last_record_number == count
    if FILE_HEADER_SIZE + mark + 4 <= layout.START_BYTES:  # the records and the 4 bytes at the mark
        assert reads == [layout.START_BYTES]
    else:
        assert reads == [layout.START_BYTES, mark + 4]
    reads.clear()
    assert [e.record_number for e in scan_file(path, provider="MSExchange Common").events] == list(range(1, count + 1))
    assert CHUNK_SIZE in reads  # a chunk with the name is read whole and walked
