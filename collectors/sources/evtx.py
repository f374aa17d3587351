"""Find one provider's events in an exported Windows event log (.evtx), incrementally, never trusting it.

A pure library: no Prometheus, no scheduling. ``scan_file`` returns the events of one provider
(default "MSExchange OWA") written after a cursor, the new cursor and counters; it never raises.

Why it is built this way (see ../shared/evtx/README.md for the real files behind each rule):
- The file header lies while a log is open (chunk count, next record number), so every 64 KiB slot
  after it is examined; a slot with a bad signature is counted and skipped, never fatal.
- A circular log that wrapped is not in record order, so chunks are sorted by their first record
  number and never abandoned at the first old one; a chunk whose last record is at or below the
  cursor is skipped whole (only its 512-byte header is read).
- Records are found by walking their headers (magic, size, size copy), resynchronising past a
  damaged one instead of giving up on the rest of the chunk.
- Rendering a record to XML with python-evtx costs milliseconds, so a record is rendered only if its
  bytes can produce the provider's name: the name (UTF-16LE or 8-bit, any case) is in the record
  itself, or in a template definition of the chunk that the record references by offset. Windows
  keeps the literal ``<Provider Name=...>`` in one template definition per chunk, so a chunk without
  the name holds no candidate at all.
"""

from __future__ import annotations

import binascii
import os
import re
import struct
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import defusedxml.ElementTree as SafeET
from Evtx.Evtx import ChunkHeader, Record
from Evtx.Nodes import BXmlTypeNode, NameStringNode, TemplateNode, WstringArrayTypeNode
from Evtx.Views import render_root_node

DEFAULT_PROVIDER = "MSExchange OWA"
FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200
MIN_RECORD_SIZE = 0x1C  # header (0x18) + the trailing size copy
MAX_DATA_ITEMS = 32
MAX_DATA_CHARS = 2048
MAX_BXML_DEPTH = 3  # Windows nests one level (EventData); deeper is a damaged or hostile record
_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)
TIME_BUDGET_ERROR = "time budget exhausted"  # how ScanResult.error starts when max_seconds ran out
_now = time.monotonic  # the budget's clock; tests replace it
_SLOTS_PER_BUDGET_CHECK = 1024  # listing chunk headers of a 64 GB sparse file takes seconds: check the budget


@dataclass(frozen=True)
class ProviderEvent:
    record_id: int  # the XML EventRecordID (an exported file renumbers headers, not this)
    event_id: int
    time: datetime  # aware, UTC
    level: int
    provider: str
    computer: str
    data: tuple[str, ...]  # EventData/Data strings, at most MAX_DATA_ITEMS of MAX_DATA_CHARS
    record_number: int = 0  # the record header number (what cursors count)


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
    records_seen: int = 0  # record headers walked in the chunks examined
    records_rendered: int = 0  # records rendered to XML (prefilter candidates)
    records_unreadable: int = 0  # damaged record headers, and candidates that failed to render
    chunks_scanned: int = 0
    chunks_skipped: int = 0  # whole chunk at or below the cursor
    chunks_bad: int = 0  # a slot with a wrong signature (not zero-filled)
    chunks_empty: int = 0  # a zero-filled slot (never used)
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


class _Unreadable(Exception):
    pass


class _Chunk(ChunkHeader):
    """python-evtx's chunk with cycle-proof, bounded loading of the string and template tables.

    The stock loaders follow the tables' linked lists without a visited set: a damaged next pointer
    that loops back spins forever.
    """

    def _chains(self, table: int, buckets: int) -> Iterator[int]:
        seen: set[int] = set()
        for i in range(buckets):
            offset = self.unpack_dword(table + 4 * i)
            while CHUNK_HEADER_SIZE <= offset < CHUNK_SIZE - 8 and offset not in seen:
                seen.add(offset)
                yield offset
                offset = self.unpack_dword(offset)

    def _load_strings(self) -> None:
        if self._strings is None:
            self._strings = {}
        for offset in self._chains(0x80, 64):
            try:
                self._strings[offset] = NameStringNode(self._buf, self._offset + offset, self, self)
            except Exception:
                continue

    def _load_templates(self) -> None:
        if self._templates is None:
            self._templates = {}
        for offset in self._chains(0x180, 32):
            if offset < 10 or self.unpack_byte(offset - 10) != 0x0C or self.unpack_dword(offset - 4) != offset:
                continue
            try:
                self._templates[offset] = TemplateNode(self._buf, self._offset + offset, self, self)
            except Exception:
                continue


@dataclass
class _ChunkInfo:
    slot: int
    first: int
    last: int
    free: int
    trusted: bool  # header CRC valid and first <= last: its range may be used to skip the chunk


class _Needle:
    """The provider name as it can appear in bytes: UTF-16LE or 8-bit, compared lower-cased.

    bytes.lower() only folds ASCII letters; applied to both sides it keeps every true match (the
    rendered name is compared exactly, case-insensitively, afterwards).
    """

    def __init__(self, provider: str):
        self.forms = tuple({provider.encode("utf-16-le").lower(), provider.encode("latin-1", "ignore").lower()} - {b""})

    def in_(self, lowered: bytes) -> bool:
        return any(form in lowered for form in self.forms)


def scan_file(path, provider: str = DEFAULT_PROVIDER, cursor: FileCursor | None = None,
              max_seconds: float | None = None, *, render_all: bool = False) -> ScanResult:
    """The events of ``provider`` in the .evtx file at ``path`` with a record number above the cursor.

    Never raises: a problem with the file is ``error``; damaged chunks and records are counted in
    ``stats``. ``render_all`` disables the prefilter (tests prove with it that the prefilter drops
    nothing; it is hundreds of times slower).
    """
    try:
        scan = _Scan(Path(path), provider, cursor, max_seconds, render_all)
    except Exception as exc:
        return ScanResult([], FileCursor(), ScanStats(), f"bad arguments: {type(exc).__name__}: {exc}"[:300],
                          complete=False)
    try:
        return scan.run()
    except Exception as exc:  # last resort: python-evtx or the OS surprised us
        scan.complete = False
        return scan.result(error=f"{type(exc).__name__}: {exc}"[:300])


class _Scan:
    def __init__(self, path: Path, provider: str, cursor: FileCursor | None, max_seconds, render_all: bool):
        self.path = path
        self.provider = provider.strip().casefold()
        self.needle = _Needle(provider.strip())
        self.given = cursor
        self.since = cursor.last_record_number if cursor else 0
        self.deadline = None if max_seconds is None else _now() + max_seconds
        self.render_all = render_all
        self.stats = ScanStats()
        self.events: list[ProviderEvent] = []
        self.cursor = FileCursor(**asdict(cursor)) if cursor else FileCursor()
        self.reset: str | None = None
        self.complete = True

    def result(self, error: str | None = None) -> ScanResult:
        self.events.sort(key=lambda e: e.record_number)
        return ScanResult(self.events, self.cursor, self.stats, error, self.reset, self.complete)

    def out_of_time(self) -> bool:
        return self.deadline is not None and _now() > self.deadline

    def run(self) -> ScanResult:
        try:
            f = open(self.path, "rb")
        except OSError as exc:
            return self.result(error=f"cannot open {self.path}: {exc.strerror or exc}")
        with f:
            st = os.fstat(f.fileno())
            if not self._check_cursor(f, st):
                return self.result()
            header = _read_at(f, 0, FILE_HEADER_SIZE)
            self.stats.header_ok = header[:8] == FILE_MAGIC
            self.stats.header_dirty = self.stats.header_ok and len(header) >= 0x7C and header[0x78] & 1 == 1
            chunks = self._chunk_headers(f, st.st_size)
            if not self.complete:  # a huge (sparse) file: scanning part of its chunks could skip events later
                return self.result(error=f"{TIME_BUDGET_ERROR} while listing {len(chunks)} chunks")
            if not self.stats.header_ok and not chunks:
                return self.result(error=f"{self.path.name} is not an evtx file (no file or chunk signature)")
            for info in chunks:
                if info.trusted and self.given is not None and info.last <= self.since:
                    self.stats.chunks_skipped += 1
                    continue
                if self.out_of_time():  # checked only before real work, so a resumed scan progresses
                    self.complete = False
                    return self.result(error=f"{TIME_BUDGET_ERROR} after {self.stats.chunks_scanned} chunks")
                self._scan_chunk(_read_at(f, _chunk_offset(info.slot), CHUNK_SIZE).ljust(CHUNK_SIZE, b"\0"), info)
            if not self.complete:  # keep the old size and mtime: the next scan must not think it is done
                return self.result(error=f"{TIME_BUDGET_ERROR} inside a chunk")
            self.cursor.size, self.cursor.mtime_ns = st.st_size, st.st_mtime_ns
        return self.result()

    def _check_cursor(self, f, st) -> bool:
        """False when nothing changed since the cursor (nothing to do); resets a stale cursor."""
        c = self.given
        if c is None:
            return True
        if st.st_size < c.size:
            return self._discard("truncated")
        if c.anchor_offset >= 0:
            # A record lies inside the file and inside one chunk; a cursor saying otherwise (damaged
            # state) is discarded, not followed: seeking to 10**18 fails on every later scan.
            fits = 0 < c.anchor_length <= CHUNK_SIZE and c.anchor_offset + c.anchor_length <= st.st_size
            anchor = _read_at(f, c.anchor_offset, c.anchor_length) if fits else b""
            if not fits or len(anchor) != c.anchor_length or binascii.crc32(anchor) != c.anchor_crc:
                return self._discard("replaced")
        return not (st.st_size == c.size and st.st_mtime_ns == c.mtime_ns)

    def _discard(self, why: str) -> bool:
        self.reset, self.given, self.since, self.cursor = why, None, 0, FileCursor()
        return True

    def _chunk_headers(self, f, size: int) -> list[_ChunkInfo]:
        """Every 64 KiB slot after the file header (never the header's chunk count), in record order."""
        found = []
        slots = max(0, -(-(size - FILE_HEADER_SIZE) // CHUNK_SIZE))  # a truncated last slot counts
        for slot in range(slots):
            if slot % _SLOTS_PER_BUDGET_CHECK == _SLOTS_PER_BUDGET_CHECK - 1 and self.out_of_time():
                self.complete = False
                break
            head = _read_at(f, _chunk_offset(slot), CHUNK_HEADER_SIZE).ljust(CHUNK_HEADER_SIZE, b"\0")
            if head[:8] != CHUNK_MAGIC:
                if head[:8] == bytes(8):
                    self.stats.chunks_empty += 1
                else:
                    self.stats.chunks_bad += 1
                continue
            _, _, _, first, last, _, _, free = struct.unpack_from("<8sQQQQIII", head)
            crc_ok = binascii.crc32(head[:0x78] + head[0x80:]) == struct.unpack_from("<I", head, 0x7C)[0]
            found.append(_ChunkInfo(slot, first, last, free, crc_ok and first <= last))
        found.sort(key=lambda c: (c.first, c.slot))
        return found

    def _scan_chunk(self, buf: bytes, info: _ChunkInfo) -> None:
        self.stats.chunks_scanned += 1
        lowered = buf.lower()
        hit = self.render_all or self.needle.in_(lowered)
        refs = _matching_template_refs(buf, lowered, self.needle, info) if hit and not self.render_all else ()
        chunk = None
        top = (self.cursor.last_record_number, -1, 0)  # the highest record: the cursor's anchor
        try:
            for offset, size, number in _walk_records(buf, info.free, self.stats, self.since):
                if number > top[0]:
                    top = (number, offset, size)
                if not hit or number <= self.since:
                    continue
                if not (self.render_all or self.needle.in_(lowered[offset:offset + size])
                        or any(ref in buf[offset:offset + size] for ref in refs)):
                    continue
                if chunk is None:
                    chunk = _Chunk(buf, 0)
                self._render(chunk, offset, number)
                if self.out_of_time():
                    self.complete = False
                    return
        finally:
            self._move_anchor(buf, info, *top)

    def _move_anchor(self, buf: bytes, info: _ChunkInfo, number: int, offset: int, size: int) -> None:
        if offset >= 0:
            c = self.cursor
            c.last_record_number, c.anchor_offset, c.anchor_length = number, _chunk_offset(info.slot) + offset, size
            c.anchor_crc = binascii.crc32(buf[offset:offset + size])

    def _render(self, chunk: _Chunk, offset: int, number: int) -> None:
        self.stats.records_rendered += 1
        try:
            event = _render_event(chunk, offset, number, self.provider)
        except Exception:  # python-evtx on damaged BinXML: any exception type is possible
            self.stats.records_unreadable += 1
            return
        if event is not None:
            self.events.append(event)


def _chunk_offset(slot: int) -> int:
    return FILE_HEADER_SIZE + slot * CHUNK_SIZE


def _read_at(f, offset: int, length: int) -> bytes:
    """Read into memory instead of mmap: a file truncated under an mmap kills the process (SIGBUS)."""
    if length <= 0:
        return b""
    f.seek(offset)
    return f.read(length)


def _walk_records(buf: bytes, free: int, stats: ScanStats, since: int = 0) -> Iterator[tuple[int, int, int]]:
    """(offset, size, record number) of every record with a sound header.

    Walks up to the chunk's free-space offset, resynchronising on the next record signature after
    a damaged header; past that offset only while records follow back to back (a stale header).
    A damaged header is counted once, by the scan that first gets past it: not when the next sound
    record (or, at the chunk's end, the previous one) is at or below ``since``, the cursor an
    incremental scan starts from.
    """
    limit = free if CHUNK_HEADER_SIZE < free <= CHUNK_SIZE else CHUNK_SIZE
    offset = CHUNK_HEADER_SIZE
    damaged = 0  # damaged headers since the last sound record, not yet counted
    last: int | None = None
    try:
        while offset + MIN_RECORD_SIZE <= CHUNK_SIZE:
            size = _record_size(buf, offset)
            if size:
                number = struct.unpack_from("<Q", buf, offset + 8)[0]
                if damaged and number > since:
                    stats.records_unreadable += damaged
                damaged, last = 0, number
                stats.records_seen += 1
                yield offset, size, number
                offset += size
                continue
            if offset >= limit or buf[offset:offset + 4] == b"\0\0\0\0" and not any(buf[offset:limit]):
                return  # free space
            damaged += 1
            offset = _resync(buf, offset + 1, limit)
            if offset < 0:
                return
    finally:
        if damaged and (last > since if last is not None else since == 0):
            stats.records_unreadable += damaged


def _record_size(buf: bytes, offset: int) -> int:
    if buf[offset:offset + 4] != RECORD_MAGIC:
        return 0
    size = struct.unpack_from("<I", buf, offset + 4)[0]
    if size < MIN_RECORD_SIZE or offset + size > CHUNK_SIZE:
        return 0
    return size if struct.unpack_from("<I", buf, offset + size - 4)[0] == size else 0


def _resync(buf: bytes, start: int, limit: int) -> int:
    while True:
        offset = buf.find(RECORD_MAGIC, start, limit)
        if offset < 0 or _record_size(buf, offset):
            return offset
        start = offset + 1


def _matching_template_refs(buf: bytes, lowered: bytes, needle: _Needle, info: _ChunkInfo) -> tuple[bytes, ...]:
    """The offsets (as the 4 bytes a referencing record carries) of the chunk's template definitions
    whose body holds the provider name.

    Definitions are found three ways, so none is missed: Windows' inline layout (a 0x0C instance
    token whose offset points just past itself), the template table, and the top-level template
    offset of every record. A record using a definition always holds its offset, top-level or in a
    nested EventData value.
    """
    offsets: set[int] = set()
    for m in re.finditer(b"\x0c", buf):
        x = m.start()
        if x + 10 <= CHUNK_SIZE - 0x18 and struct.unpack_from("<I", buf, x + 6)[0] == x + 10:
            offsets.add(x + 10)
    for i in range(32):
        offsets.add(struct.unpack_from("<I", buf, 0x180 + 4 * i)[0])
    for offset, _size, _number in _walk_records(buf, info.free, ScanStats()):
        offsets.add(_top_level_template(buf, offset + 0x18))
    refs = []
    for t in offsets:
        if CHUNK_HEADER_SIZE <= t <= CHUNK_SIZE - 0x18:
            length = struct.unpack_from("<I", buf, t + 0x14)[0]
            if needle.in_(lowered[t + 0x18:min(CHUNK_SIZE, t + 0x18 + length)]):
                refs.append(struct.pack("<I", t))
    return tuple(refs)


def _top_level_template(buf: bytes, at: int) -> int:
    """The template offset of a record's fragment, as python-evtx locates it (0 if none)."""
    if at < CHUNK_SIZE and buf[at] & 0x0F == 0x0F:
        at += 4
    if at + 10 > CHUNK_SIZE or buf[at] & 0x0F != 0x0C:
        return 0
    return struct.unpack_from("<I", buf, at + 6)[0]


# --- rendering -------------------------------------------------------------------------------------

def _render_event(chunk: _Chunk, offset: int, number: int, provider_cf: str) -> ProviderEvent | None:
    record = Record(chunk._buf, offset, chunk)
    root = record.root()
    _check_substitutions(root, 0)
    xml = render_root_node(root)
    event = SafeET.fromstring(_xml_safe(xml))
    system = _child(event, "System")
    provider_el = _child(system, "Provider")
    name = (provider_el.get("Name") or "").strip()
    if name.casefold() != provider_cf:
        return None
    header_time = _filetime(struct.unpack_from("<Q", chunk._buf, offset + 0x10)[0])
    time_el = _child(system, "TimeCreated", required=False)
    when = _parse_time(time_el.get("SystemTime", "") if time_el is not None else "") or header_time
    if when is None:
        raise _Unreadable("no usable time")
    return ProviderEvent(
        record_id=_int(_text(system, "EventRecordID"), number),
        event_id=_int(_text(system, "EventID"), None),
        time=when,
        level=_int(_text(system, "Level"), 0),
        provider=name,
        computer=_text(system, "Computer")[:MAX_DATA_CHARS],
        data=_event_data(event),
        record_number=number,
    )


def _check_substitutions(root, depth: int) -> None:
    """Refuse what would hang python-evtx: an odd-length string array loops forever in its
    ``WstringArrayTypeNode.string()``; and nesting deeper than Windows ever writes."""
    if depth > MAX_BXML_DEPTH:
        raise _Unreadable("BinXML nested too deep")
    for sub in root.substitutions():
        if isinstance(sub, WstringArrayTypeNode) and len(sub.binary()) % 2:
            raise _Unreadable("odd-length string array")
        if isinstance(sub, BXmlTypeNode):
            _check_substitutions(sub.root(), depth + 1)


_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CHAR_REF = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")


def _xml_safe(xml: str) -> str:
    """python-evtx passes NULs through and writes char references to surrogates; expat refuses both."""
    def ref(m: re.Match) -> str:
        code = int(m.group(1)[1:], 16) if m.group(1)[0] in "xX" else int(m.group(1))
        ok = (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
              or 0x10000 <= code <= 0x10FFFF)
        return m.group(0) if ok else ""

    return _CHAR_REF.sub(ref, _BAD_XML_CHARS.sub("", xml))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(parent, name: str, required: bool = True):
    for el in parent:
        if _local(el.tag) == name:
            return el
    if required:
        raise _Unreadable(f"no {name} element")
    return None


def _text(parent, name: str) -> str:
    el = _child(parent, name, required=False)
    return (el.text or "").strip() if el is not None else ""


def _int(text: str, default: int | None) -> int:
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        if default is None:
            raise _Unreadable(f"not a number: {text[:40]!r}") from None
        return default


_STRING_ITEM = re.compile(r"<string>(.*?)</string>\n?", re.S)


def _event_data(event) -> tuple[str, ...]:
    """EventData/Data texts; python-evtx renders a classic event's string array as literal
    ``<string>..</string>`` items inside one Data element, which are split back here."""
    data = _child(event, "EventData", required=False)
    if data is None:
        data = _child(event, "UserData", required=False)
        items = [el.text or "" for el in data.iter() if len(el) == 0] if data is not None else []
    else:
        items = []
        for el in data:
            if _local(el.tag) != "Data":
                continue
            text = el.text or ""
            parts = _STRING_ITEM.findall(text)
            if parts and _STRING_ITEM.sub("", text) == "":
                items.extend(parts)
            else:
                items.append(text)
    return tuple(s[:MAX_DATA_CHARS] for s in items[:MAX_DATA_ITEMS])


_ISO_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$")


def _parse_time(text: str) -> datetime | None:
    """Both python-evtx's ``2024-03-01 08:00:00.123456+00:00`` and Windows' ``...T08:00:00.1234567Z``."""
    m = _ISO_TIME.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        when = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((frac or "0")[:6].ljust(6, "0")),
                        tzinfo=timezone.utc)
    except ValueError:
        return None
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        when -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return when


def _filetime(value: int) -> datetime | None:
    try:
        return _EPOCH_1601 + timedelta(microseconds=value // 10)
    except OverflowError:
        return None


# --- a folder of files -----------------------------------------------------------------------------

@dataclass
class FolderScan:
    results: dict[str, ScanResult] = field(default_factory=dict)  # files scanned this time, by path
    cursors: dict[str, FileCursor] = field(default_factory=dict)  # the cursors to keep for next time
    removed: list[str] = field(default_factory=list)  # files that had a cursor and are gone
    pending: list[str] = field(default_factory=list)  # not scanned: the time budget ran out first
    error: str | None = None  # the folder itself could not be listed


def scan_folder(folder, cursors: dict[str, FileCursor] | None = None, provider: str = DEFAULT_PROVIDER,
                max_seconds: float | None = None, suffix: str = ".evtx") -> FolderScan:
    """Scan every ``*.evtx`` in ``folder`` (not recursive, suffix case-insensitive) from its cursor.

    New files start from nothing, changed ones from their cursor (scan_file notices a replaced or
    truncated file), removed ones are dropped from the cursors and listed. Files are taken oldest
    modification first, so a time budget that runs out leaves the newest for the next run.
    """
    cursors = dict(cursors or {})
    out = FolderScan()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        entries = [e for e in os.scandir(folder) if e.name.lower().endswith(suffix.lower()) and e.is_file()]
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name))
    except OSError as exc:
        out.error = f"cannot list {folder}: {exc.strerror or exc}"
        out.cursors = cursors
        return out
    present = {os.fspath(e.path) for e in entries}
    out.removed = sorted(p for p in cursors if p not in present)
    for entry in entries:
        key = os.fspath(entry.path)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            out.pending.append(key)
            if key in cursors:
                out.cursors[key] = cursors[key]
            continue
        result = scan_file(key, provider, cursors.get(key), remaining)
        out.results[key] = result
        out.cursors[key] = result.cursor
    return out
