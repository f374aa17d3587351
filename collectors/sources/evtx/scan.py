"""Find one provider's events in an exported Windows event log (.evtx), incrementally, never trusting it.

``scan_file`` returns the events of one provider (default "MSExchange OWA"; None for every provider)
written after a cursor, the new cursor and counters; it never raises.

Why it is built this way (the real files behind each rule are described in the docs):
- The file header lies while a log is open (chunk count, next record number), so every 64 KiB slot
  after it is examined; a slot with a bad signature is counted and skipped, never fatal.
- A circular log that wrapped is not in record order, so chunks are sorted by their first record
  number and never abandoned at the first old one; a chunk whose last record is at or below the
  cursor is skipped whole (only its 512-byte header is read).
- Records are found by walking their headers, resynchronising past a damaged one; past a chunk's
  end-of-data mark only records that continue the numbering count (``layout.walk_records``), so
  stale records in slack space never become events and never move the cursor.
- Only records whose bytes can produce the provider's name are rendered (``prefilter``), by
  python-evtx or the decoder (``render``); a chunk
  without the name is not even walked when its header and checksums can be believed
  (``layout.intact_records``): the count and the cursor's anchor come from the header.
"""

from __future__ import annotations

import binascii
import functools
import os
import struct
import time
from dataclasses import asdict, dataclass, fields

from collectors.sources.evtx.event import ProviderEvent, event_from_root, provider_name
from collectors.sources.evtx.layout import (
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_SIZE,
    FILE_HEADER_SIZE,
    FILE_MAGIC,
    MIN_RECORD_SIZE,
    RECORD_MAGIC,
    ChunkInfo,
    FileReader,
    WalkCounts,
    believed_last,
    chunk_info,
    intact_records,
    last_record,
    walk_records,
)
from collectors.sources.evtx.prefilter import Needle, matching_template_refs
from collectors.sources.evtx.render import ChunkRenderer

DEFAULT_PROVIDER = "MSExchange OWA"
TIME_BUDGET_ERROR = "time budget exhausted"  # how ScanResult.error starts when max_seconds ran out
_now = time.monotonic  # the budget's clock; tests replace it
_COUNTED, _NO_NAME = "counted", "no name"  # what _Scan._counted_from_header found
_SLOTS_PER_BUDGET_CHECK = 1024  # listing chunk headers of a 64 GB sparse file takes seconds: check the budget


@dataclass
class FileCursor:
    """Where the last scan of one file stopped, and what identifies that file.

    The identity is the record that holds ``last_record_number``: its file offset, length and CRC32.
    Windows never rewrites a record, so if those bytes are still there the file only grew; if not
    (replaced by another export, rewritten, wrapped past it) the cursor is reset. Plain ints only:
    picklable, and ``asdict``/``from_dict`` round-trip through JSON.
    """

    last_record_number: int = 0
    size: int = 0
    mtime_ns: int = 0
    anchor_offset: int = -1
    anchor_length: int = 0
    anchor_crc: int = 0

    @property
    def identity(self) -> tuple[int, int, int]:
        return (self.anchor_offset, self.anchor_length, self.anchor_crc)

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "FileCursor":
        """Unknown keys are ignored, wrong types give a fresh cursor (a full scan), never an error."""
        try:
            return cls(**{f.name: int(data[f.name]) for f in fields(cls) if f.name in data})
        except (TypeError, ValueError):
            return cls()


@dataclass
class ScanStats:
    records_seen: int = 0  # real records in the chunks examined (walked, or counted from a believable header)
    records_rendered: int = 0  # records rendered (prefilter candidates), by python-evtx or the decoder
    records_fallback: int = 0  # templated records the first renderer could not read, read by the other
    records_unreadable: int = 0  # damaged record headers, and candidates that could not be decoded
    chunks_scanned: int = 0
    chunks_skipped: int = 0  # whole chunk at or below the cursor
    chunks_bad: int = 0  # a slot with a wrong signature (not zero-filled)
    chunks_empty: int = 0  # a zero-filled slot (never used)
    chunks_stale_slack: int = 0  # chunks whose slack held stale records (ignored, not damage)
    header_ok: bool = False  # the file header's signature
    header_dirty: bool = False  # the header says the log was not closed cleanly


@dataclass
class ScanResult:
    events: list[ProviderEvent]
    cursor: FileCursor
    stats: ScanStats
    error: str | None = None  # a file-level problem: unreadable, not an evtx file, time budget
    reset: str | None = None  # "truncated" or "replaced" when the given cursor was discarded
    complete: bool = True  # False when max_seconds stopped the scan early


def scan_file(path, provider: str | None = DEFAULT_PROVIDER, cursor: FileCursor | None = None,
              max_seconds: float | None = None, *, render_all: bool = False,
              use_python_evtx: bool = True, decoder_first: bool = False) -> ScanResult:
    """The events of ``provider`` (None: of every provider) in the .evtx file at ``path`` with a
    record number above the cursor.

    Never raises: a problem with the file is ``error``; damaged chunks and records are counted in
    ``stats``. ``render_all`` disables the prefilter (tests prove with it that the prefilter drops
    nothing); ``use_python_evtx=False`` renders every record with the decoder (tests and the
    benchmark compare the two renderers with it); ``decoder_first`` asks the decoder first and
    python-evtx only where it fails (the ``evtx`` command: ``render.ChunkRenderer``).
    """
    try:
        scan = _Scan(os.fspath(path), provider, cursor, max_seconds, render_all, use_python_evtx, decoder_first)
    except Exception as exc:
        return ScanResult([], FileCursor(), ScanStats(), f"bad arguments: {type(exc).__name__}: {exc}"[:300],
                          complete=False)
    try:
        return scan.run()
    except Exception as exc:  # last resort: the OS or a bug surprised us
        scan.complete = False
        return scan.result(error=f"{type(exc).__name__}: {exc}"[:300])


@functools.lru_cache(maxsize=16)
def _needle(provider: str) -> tuple[str, Needle]:
    """The provider as compared (case-folded) and as searched in bytes; built once per name."""
    return provider.strip().casefold(), Needle(provider.strip())


class _Scan:
    __slots__ = ("path", "provider", "needle", "given", "since", "deadline", "render_all", "use_python_evtx",
                 "decoder_first", "stats", "events", "cursor", "reset", "complete")

    def __init__(self, path: str, provider: str | None, cursor: FileCursor | None, max_seconds, render_all: bool,
                 use_python_evtx: bool, decoder_first: bool = False):
        self.path = path
        self.provider, self.needle = (None, None) if provider is None else _needle(provider)
        self.given = cursor
        self.since = cursor.last_record_number if cursor else 0
        self.deadline = None if max_seconds is None else _now() + max_seconds
        self.render_all = render_all or provider is None
        self.use_python_evtx = use_python_evtx
        self.decoder_first = decoder_first
        self.stats = ScanStats()
        self.events: list[ProviderEvent] = []
        self.cursor = FileCursor(**asdict(cursor)) if cursor else FileCursor()
        self.reset: str | None = None
        self.complete = True

    def result(self, error: str | None = None) -> ScanResult:
        if len(self.events) > 1:
            self.events.sort(key=lambda e: e.record_number)
        return ScanResult(self.events, self.cursor, self.stats, error, self.reset, self.complete)

    def out_of_time(self) -> bool:
        return self.deadline is not None and _now() > self.deadline

    def run(self) -> ScanResult:
        try:
            f = FileReader(self.path)
        except OSError as exc:
            return self.result(error=f"cannot open {self.path}: {exc.strerror or exc}")
        try:
            return self._read(f)
        finally:
            f.close()

    def _read(self, f: FileReader) -> ScanResult:
        if self.given is not None and not self._check_cursor(f):
            return self.result()
        header, stats = f.read(0, 0x80), self.stats  # the signature and the flags (0x78): all the scan uses
        stats.header_ok = ok = header[:8] == FILE_MAGIC
        stats.header_dirty = ok and len(header) >= 0x7C and header[0x78] & 1 == 1
        chunks = self._chunk_headers(f)
        if not self.complete:  # a huge (sparse) file: scanning part of its chunks could skip events later
            return self.result(error=f"{TIME_BUDGET_ERROR} while listing {len(chunks)} chunks")
        if not self.stats.header_ok and not chunks:
            name = os.path.basename(self.path)
            return self.result(error=f"{name} is not an evtx file (no file or chunk signature)")
        for info in chunks:
            if info.trusted and self.given is not None and info.last <= self.since:
                self.stats.chunks_skipped += 1
                continue
            if self.deadline is not None and self.out_of_time():  # only before real work: a resumed scan progresses
                self.complete = False
                return self.result(error=f"{TIME_BUDGET_ERROR} after {self.stats.chunks_scanned} chunks")
            self.stats.chunks_scanned += 1
            outcome = None if self.render_all else self._counted_from_header(f, info)
            if outcome is not _COUNTED:  # most chunks of a log, all of a small export: done here
                self._scan_chunk(f, info, outcome)
        if not self.complete:  # keep the old size and mtime: the next scan must not think it is done
            return self.result(error=f"{TIME_BUDGET_ERROR} inside a chunk")
        self.cursor.size, self.cursor.mtime_ns = f.size, f.mtime_ns
        return self.result()

    def _check_cursor(self, f: FileReader) -> bool:
        """False when nothing changed since the cursor (nothing to do); resets a stale cursor."""
        c = self.given
        if c is None:
            return True
        if f.size < c.size:
            return self._discard("truncated")
        if c.anchor_offset >= 0:
            # A record lies inside the file and inside one chunk; a cursor saying otherwise (damaged
            # state) is discarded, not followed: seeking to 10**18 fails on every later scan.
            fits = 0 < c.anchor_length <= CHUNK_SIZE and c.anchor_offset + c.anchor_length <= f.size
            anchor = f.read(c.anchor_offset, c.anchor_length) if fits else b""
            if not fits or len(anchor) != c.anchor_length or binascii.crc32(anchor) != c.anchor_crc:
                return self._discard("replaced")
        return not (f.size == c.size and f.mtime_ns == c.mtime_ns)

    def _discard(self, why: str) -> bool:
        self.reset, self.given, self.since, self.cursor = why, None, 0, FileCursor()
        return True

    def _chunk_headers(self, f: FileReader) -> list[ChunkInfo]:
        """Every 64 KiB slot after the file header (never the header's chunk count), in record order."""
        found = []
        for slot in range(f.slots):
            if slot % _SLOTS_PER_BUDGET_CHECK == _SLOTS_PER_BUDGET_CHECK - 1 and self.out_of_time():
                self.complete = False
                break
            head = f.chunk_header(slot)
            if head[:8] != CHUNK_MAGIC:
                if head[:8] == bytes(8):
                    self.stats.chunks_empty += 1
                else:
                    self.stats.chunks_bad += 1
                continue
            found.append(chunk_info(slot, head))
        if len(found) > 1:
            found.sort(key=lambda c: (c.first, c.slot))
        return found

    def _scan_chunk(self, f: FileReader, info: ChunkInfo, outcome: object) -> None:
        """Walk a chunk the header alone could not settle (``outcome``: what ``_counted_from_header``
        found, None when it was not asked)."""
        buf = f.chunk(info.slot)
        counts = WalkCounts()
        records = None
        hit, lowered, refs = self.render_all, b"", ()
        if outcome is None and not self.render_all:
            last = believed_last(buf, info)
            if last is not None:
                end = info.free
            else:  # the walk decides where the records end: search no slack
                records = list(walk_records(buf, info.free, counts, self.since))
                end = records[-1][0] + records[-1][1] if records else CHUNK_HEADER_SIZE
            if self.needle.may_be_in(buf[CHUNK_HEADER_SIZE:end]):  # slack is never decoded: never searched
                lowered = buf[:end].lower()
                hit = self.needle.in_(lowered)
                refs = matching_template_refs(buf, lowered, self.needle, info.free) if hit else ()
            if not hit and (intact := intact_records(buf, info, last)) is not None:
                self._count_intact(buf, info, intact)  # a stale record at the mark: counted here
                return
        if records is None:
            records = walk_records(buf, info.free, counts, self.since)
        renderer = None
        top = (self.cursor.last_record_number, -1, 0)  # the highest record: the cursor's anchor
        try:
            for offset, size, number in records:
                if number > top[0]:
                    top = (number, offset, size)
                if not hit or number <= self.since:
                    continue
                if not (self.render_all or self.needle.in_(lowered[offset:offset + size])
                        or any(ref in buf[offset:offset + size] for ref in refs)):
                    continue
                if renderer is None:
                    renderer = ChunkRenderer(buf, self.use_python_evtx, self.decoder_first)
                self._render(renderer, offset, size, number)
                if self.out_of_time():
                    self.complete = False
                    return
        finally:
            self.stats.records_seen += counts.seen
            self.stats.records_unreadable += counts.damaged
            self.stats.chunks_stale_slack += 1 if counts.slack else 0
            self.stats.records_fallback += renderer.fallbacks if renderer is not None else 0
            self._move_anchor(buf, info, *top)

    def _counted_from_header(self, f: FileReader, info: ChunkInfo) -> object:
        """Count a chunk without the provider's name from its header, reading it only up to its
        end-of-data mark: what most chunks of a log need, and most of a small export's cost.

        ``_COUNTED`` when done; ``_NO_NAME`` when the header is believed, the name is not in the
        records but their CRC32 fails (the whole chunk is walked, nothing rendered); None when the
        header cannot be believed, a record lies at the mark (a lagging header, or stale slack to
        count), or the name may be there: the whole chunk is read and decides.
        """
        free = info.free
        if not info.trusted or not CHUNK_HEADER_SIZE < free <= CHUNK_SIZE - MIN_RECORD_SIZE:
            return None
        head = f.read(FILE_HEADER_SIZE + info.slot * CHUNK_SIZE, free + 4)  # 4 bytes more: a record at the mark?
        records = head[CHUNK_HEADER_SIZE:free]  # searched and checksummed; the header holds no text
        if head[free:] == RECORD_MAGIC or self.needle.may_be_in(records):
            return None
        last = last_record(head, info)
        if last is None:
            return None
        records_crc = binascii.crc32(records)
        if records_crc != info.records_crc:  # damaged records: walk them, but the header is believed,
            return _NO_NAME  # so nothing past the mark is searched, as in the full path: no candidate
        self.stats.records_seen += info.last - info.first + 1
        if info.last > self.cursor.last_record_number:
            offset, size = last  # a chunk of one record: its CRC is the records' (the same bytes)
            self._move_anchor(head, info, info.last, offset, size, records_crc if offset == CHUNK_HEADER_SIZE else None)
        return _COUNTED

    def _count_intact(self, buf: bytes, info: ChunkInfo, intact: tuple[int, int, int, bool]) -> None:
        count, offset, size, stale = intact
        self.stats.records_seen += count
        self.stats.chunks_stale_slack += stale
        if info.last > self.cursor.last_record_number:
            self._move_anchor(buf, info, info.last, offset, size)

    def _move_anchor(self, buf: bytes, info: ChunkInfo, number: int, offset: int, size: int,
                     crc: int | None = None) -> None:
        if offset >= 0:
            c = self.cursor
            c.last_record_number, c.anchor_length = number, size
            c.anchor_offset = FILE_HEADER_SIZE + info.slot * CHUNK_SIZE + offset  # layout.chunk_offset, inlined
            c.anchor_crc = binascii.crc32(buf[offset:offset + size]) if crc is None else crc

    def _render(self, renderer: ChunkRenderer, offset: int, size: int, number: int) -> None:
        self.stats.records_rendered += 1
        try:
            root = renderer.record(offset, size)
            if self.provider is not None and provider_name(root).casefold() != self.provider:
                return
            event = event_from_root(root, number, struct.unpack_from("<Q", renderer.buf, offset + 0x10)[0])
        except Exception:  # damaged BinXML: struct, index, decoding or our own errors
            self.stats.records_unreadable += 1
            return
        self.events.append(event)


