"""collectors.sources.evtx on damaged copies of the real .evtx files in ../shared/evtx/ (see its README.md).

Each real file is mutated a few ways, seeded by its name so every run sees the same bytes: bytes
flipped at random offsets (anywhere, in chunk headers, in record headers), truncation at several
points, a zeroed file header, zeroed chunk headers, and the provider's name planted at random places
(so damaged records become rendering candidates). Through ``scan_file`` and ``scan_folder`` with a
time budget: nothing escapes, every scan returns (complete, or stopped by its budget, or "not an evtx
file"), and no "MSExchange OWA" event appears: none of the originals holds one.

Scans that render many records run on a clock that ticks at every budget check, so the budget stops
them after a fixed amount of work however fast the machine is (no wall-clock assertion anywhere).
"""

from __future__ import annotations

import os
import random
import re
from typing import Iterator

import pytest

from collectors.sources.evtx import (
    CHUNK_HEADER_SIZE,
    CHUNK_SIZE,
    DEFAULT_PROVIDER,
    FILE_HEADER_SIZE,
    TIME_BUDGET_ERROR,
    FileCursor,
    ScanResult,
    scan_file,
    scan_folder,
)
from collectors.sources.evtx import scan as evtx_scan

# A provider each file does hold, so scanning for it decodes (damaged) records.
OWN_PROVIDER = {
    "application-2216-records.evtx": "Microsoft-Windows-LoadPerf",
    "application-no-crc32.evtx": "ESENT",
    "exchange-cmdletlogs.evtx": "MSExchange CmdletLogs",
    "exchange-management-forwarded.evtx": "MSExchange CmdletLogs",
    "malformed-ascii-strings.evtx": "Microsoft-Windows-DNSServer",
    "overrun-record.evtx": "Microsoft-Windows-TerminalServices-RemoteConnectionManager",
    "security-bad-string-cache.evtx": "Microsoft-Windows-Eventlog",
    "sysmon-dirty-header.evtx": "Microsoft-Windows-Sysmon",
    "system-dirty-header.evtx": "Service Control Manager",
    "wrapped-with-bad-chunk-magic.evtx": "Microsoft-Windows-AppXDeployment",
    "zero-data-size-record.evtx": "Microsoft-Windows-FilterManager",
}
NAMES = sorted(OWN_PROVIDER)
RENDER_BUDGET_TICKS = 12  # budget checks (chunks started + records rendered) a rendering scan may make
NOT_EVTX = "is not an evtx file"


@pytest.fixture
def ticking_clock(monkeypatch) -> None:
    """The budget's clock advances one second each time it is read."""
    now = [0.0]

    def tick() -> float:
        now[0] += 1.0
        return now[0]

    monkeypatch.setattr(evtx_scan, "_now", tick)


# --- mutations ------------------------------------------------------------------------------------

def _chunk_starts(data: bytes) -> list[int]:
    return [s for s in range(FILE_HEADER_SIZE, len(data) - 8, CHUNK_SIZE) if data[s:s + 8] == b"ElfChnk\x00"]


def _flip(data: bytes, rnd: random.Random, offsets: list[int]) -> bytes:
    out = bytearray(data)
    for offset in offsets:
        if 0 <= offset < len(out):
            out[offset] ^= rnd.randrange(1, 256)
    return bytes(out)


def mutations(name: str, data: bytes) -> Iterator[tuple[str, bytes]]:
    """A bounded, seeded set of damaged copies of one file."""
    rnd = random.Random(f"evtx-hostile:{name}")
    chunks = _chunk_starts(data)
    records = [m.start() for m in re.finditer(b"\\*\\*\x00\x00", data)]
    yield "flip-16", _flip(data, rnd, [rnd.randrange(len(data)) for _ in range(16)])
    yield "flip-512", _flip(data, rnd, [rnd.randrange(len(data)) for _ in range(512)])
    yield "flip-chunk-headers", _flip(data, rnd, [rnd.choice(chunks) + rnd.randrange(CHUNK_HEADER_SIZE)
                                                  for _ in range(24)])
    yield "flip-record-headers", _flip(data, rnd, [rnd.choice(records) + rnd.randrange(0x60) for _ in range(24)])
    for cut in (FILE_HEADER_SIZE - 1, FILE_HEADER_SIZE + 100, FILE_HEADER_SIZE + CHUNK_SIZE // 2,
                rnd.randrange(FILE_HEADER_SIZE, len(data)), len(data) - 1):
        yield f"truncate-{cut}", data[:cut]
    yield "zero-file-header", bytes(FILE_HEADER_SIZE) + data[FILE_HEADER_SIZE:]
    slot = rnd.choice(chunks)
    yield "zero-chunk-header", data[:slot] + bytes(CHUNK_HEADER_SIZE) + data[slot + CHUNK_HEADER_SIZE:]
    every = bytearray(data)
    for start in chunks:
        every[start:start + CHUNK_HEADER_SIZE] = bytes(CHUNK_HEADER_SIZE)
    yield "zero-every-chunk-header", bytes(every)
    planted = bytearray(data)
    needle = DEFAULT_PROVIDER.encode("utf-16-le")
    for _ in range(40):
        at = rnd.randrange(FILE_HEADER_SIZE, len(planted) - len(needle))
        planted[at:at + len(needle)] = needle
    yield "planted-provider-name", bytes(planted)


RENDERED_MUTATIONS = ("flip-16", "flip-512", "flip-chunk-headers", "flip-record-headers", "zero-file-header",
                      "zero-chunk-header")


# --- what every scan must satisfy -----------------------------------------------------------------

def assert_returned_sanely(result: ScanResult, what: str) -> None:
    """Complete, stopped by its budget, or the file is not an evtx file at all; never a surprise."""
    assert isinstance(result, ScanResult), what
    if result.complete:
        assert result.error is None or NOT_EVTX in result.error, (what, result.error)
    else:
        assert result.error is not None and result.error.startswith(TIME_BUDGET_ERROR), (what, result.error)
    assert isinstance(result.cursor, FileCursor)
    FileCursor.from_dict(result.cursor.to_dict())  # the cursor stays storable


def assert_no_owa_event(result: ScanResult, what: str) -> None:
    owa = [e for e in result.events if e.provider.casefold() == DEFAULT_PROVIDER.casefold()]
    assert owa == [], (what, [(e.record_number, e.event_id) for e in owa])


# --- tests ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_damaged_copies_never_raise_and_never_yield_an_owa_event(real_dir, tmp_path, name):
    original = (real_dir / name).read_bytes()
    first = scan_file(real_dir / name, max_seconds=60)
    for label, data in mutations(name, original):
        path = tmp_path / f"{label}.evtx"
        path.write_bytes(data)
        what = f"{name} {label}"
        result = scan_file(path, max_seconds=60)
        assert_returned_sanely(result, what)
        assert result.events == [], what  # not one MSExchange OWA event, 112 or other
        # The same damage met by an incremental scan: the file was replaced or rewritten in place.
        again = scan_file(path, cursor=first.cursor, max_seconds=60)
        assert_returned_sanely(again, f"{what} from a cursor")
        assert again.events == [], what


@pytest.mark.parametrize("name", NAMES)
def test_damaged_records_render_or_count_within_the_budget(real_dir, tmp_path, ticking_clock, name):
    """Scanning for a provider the file holds renders damaged records: counted, never raised."""
    provider = OWN_PROVIDER[name]
    for label, data in mutations(name, (real_dir / name).read_bytes()):
        if label not in RENDERED_MUTATIONS:
            continue
        path = tmp_path / f"{label}.evtx"
        path.write_bytes(data)
        what = f"{name} {label}"
        result = scan_file(path, provider=provider, max_seconds=RENDER_BUDGET_TICKS)
        assert_returned_sanely(result, what)
        assert result.stats.records_rendered <= RENDER_BUDGET_TICKS
        assert all(e.provider.casefold() == provider.casefold() for e in result.events), what
        assert_no_owa_event(result, what)


def test_a_planted_provider_name_renders_damaged_records_and_finds_nothing(real_dir, tmp_path):
    """The name planted at random places passes the prefilter; rendering then tells the truth."""
    rendered = 0
    for name in NAMES:
        data = dict(mutations(name, (real_dir / name).read_bytes()))["planted-provider-name"]
        path = tmp_path / name
        path.write_bytes(data)
        result = scan_file(path, max_seconds=60)
        assert_returned_sanely(result, name)
        assert_no_owa_event(result, name)
        rendered += result.stats.records_rendered
    assert rendered > 0  # the rendering path really ran


@pytest.mark.parametrize("size", [0, 1, 100, FILE_HEADER_SIZE, FILE_HEADER_SIZE + 1, FILE_HEADER_SIZE + CHUNK_SIZE])
def test_tiny_and_empty_files(tmp_path, real_dir, size):
    data = (real_dir / "exchange-cmdletlogs.evtx").read_bytes()[:size]
    for label, content in (("prefix", data), ("zeros", bytes(size)), ("noise", random.Random(size).randbytes(size))):
        path = tmp_path / f"{label}.evtx"
        path.write_bytes(content)
        result = scan_file(path, max_seconds=60)
        assert_returned_sanely(result, f"{label} {size}")
        assert result.events == []


def test_a_huge_sparse_file_is_stopped_by_the_budget(tmp_path, ticking_clock):
    """Listing every chunk header of a huge (sparse) file must not outlast the budget."""
    path = tmp_path / "huge.evtx"
    with open(path, "wb") as f:
        f.truncate(FILE_HEADER_SIZE + 4096 * CHUNK_SIZE)  # 256 MiB of holes
    result = scan_file(path, max_seconds=2)
    assert not result.complete and result.error.startswith(TIME_BUDGET_ERROR)
    assert result.stats.chunks_empty < 4096
    assert result.cursor == FileCursor()  # nothing is taken as read: the next scan starts over


@pytest.mark.parametrize("cursor", [
    FileCursor(last_record_number=-5, size=-1, mtime_ns=-1, anchor_offset=10**18, anchor_length=10, anchor_crc=1),
    FileCursor(last_record_number=2**64, size=2**62, anchor_offset=5, anchor_length=-3),
    FileCursor(anchor_offset=FILE_HEADER_SIZE, anchor_length=2**31, anchor_crc=0),
    FileCursor.from_dict({"last_record_number": "x", "size": None}),
    FileCursor.from_dict({"anchor_offset": "7", "bogus": 1, "anchor_length": 3.9}),
])
def test_hostile_cursors_are_survived(real_dir, cursor):
    result = scan_file(real_dir / "zero-data-size-record.evtx", cursor=cursor, max_seconds=60)
    assert_returned_sanely(result, repr(cursor))
    assert result.events == []


def test_scan_folder_of_damaged_copies(real_dir, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    for name in NAMES:
        for label, data in mutations(name, (real_dir / name).read_bytes()):
            if label in ("flip-512", "truncate-4095", "zero-file-header", "zero-every-chunk-header"):
                (folder / f"{name}-{label}.EVTX").write_bytes(data)
    (folder / "empty.evtx").write_bytes(b"")
    (folder / "not-a-log.evtx").write_bytes(b"<Events>not binary</Events>")
    (folder / "a-folder.evtx").mkdir()
    with open(folder / "sparse.evtx", "wb") as f:
        f.truncate(FILE_HEADER_SIZE + 2048 * CHUNK_SIZE)
    expected = {os.fspath(p) for p in folder.iterdir() if p.is_file()}

    out = scan_folder(folder, max_seconds=120)
    assert out.error is None
    assert set(out.results) | set(out.pending) == expected
    for path, result in out.results.items():
        assert_returned_sanely(result, path)
        assert result.events == [], path
    # Rescanning from the cursors it returned, also with no time left at all: still nothing raised.
    again = scan_folder(folder, cursors=out.cursors, max_seconds=120)
    assert all(r.events == [] for r in again.results.values())
    starved = scan_folder(folder, cursors=out.cursors, max_seconds=0)
    assert starved.results == {} and set(starved.pending) == expected
    assert starved.cursors == {k: v for k, v in out.cursors.items() if k in expected}
