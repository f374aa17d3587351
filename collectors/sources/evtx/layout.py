"""The byte layout of an .evtx file: file header, 64 KiB chunks, record headers; never the records' XML.

Layout as libevtx documents it ("Windows XML Event Log (EVTX) format") and the real files in the
project's evtx sample folder show: a 4 KiB file header, then 64 KiB chunks, each a 512-byte header
(record number range, free-space offset, CRC32s) followed by records, each a 24-byte header (magic,
size, record number, FILETIME), its BinXML and a trailing copy of its size.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Iterator

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200
RECORD_HEADER_SIZE = 0x18
MIN_RECORD_SIZE = 0x1C  # header (0x18) + the trailing size copy


@dataclass
class ChunkInfo:
    slot: int
    first: int
    last: int
    free: int  # the end-of-data mark: bytes past it are slack
    trusted: bool  # header CRC valid and first <= last: its range may be used to skip the chunk


@dataclass
class WalkCounts:
    """What a walk over a chunk's records met (the scanner adds these to its statistics)."""

    seen: int = 0  # sound record headers returned
    damaged: int = 0  # damaged headers counted (see walk_records for when)
    slack: int = 0  # record-shaped bytes past the end-of-data mark that do not continue the numbering


def chunk_offset(slot: int) -> int:
    return FILE_HEADER_SIZE + slot * CHUNK_SIZE


def read_at(f, offset: int, length: int) -> bytes:
    """Read into memory instead of mmap: a file truncated under an mmap kills the process (SIGBUS).

    ``f`` is unbuffered (each read is one system call, no 8 KiB read-ahead): a raw read may return
    less than asked before the end of the file, so it is repeated.
    """
    if length <= 0:
        return b""
    f.seek(offset)
    data = f.read(length)
    while data and len(data) < length:
        more = f.read(length - len(data))
        if not more:
            break
        data += more
    return data or b""


def chunk_info(slot: int, head: bytes) -> ChunkInfo:
    """A chunk header (the first 512 bytes of a slot whose signature is CHUNK_MAGIC)."""
    _, _, _, first, last, _, _, free = struct.unpack_from("<8sQQQQIII", head)
    crc_ok = binascii.crc32(head[:0x78] + head[0x80:CHUNK_HEADER_SIZE]) == struct.unpack_from("<I", head, 0x7C)[0]
    return ChunkInfo(slot, first, last, free, crc_ok and first <= last)


def walk_records(buf: bytes, free: int, counts: WalkCounts, since: int = 0) -> Iterator[tuple[int, int, int]]:
    """(offset, size, record number) of every real record of a chunk, in chunk order.

    Up to the chunk's end-of-data (free-space) mark every sound header is a record, and the walk
    resynchronises on the next record signature after a damaged one. Past the mark the bytes are
    slack: Windows does not clear them, so whole records from an earlier use of that space can
    remain there (older copies of records, or numbers from another life of the log). A header
    past the mark is accepted only where it continues the numbering (previous number plus one),
    which is what a record written after the header was last flushed looks like; the walk stops at
    the first one that does not. A damaged header is counted once, by the scan that first gets past
    it: not when the next sound record (or, at the chunk's end, the previous one) is at or below
    ``since``, the cursor an incremental scan starts from.
    """
    limit = free if CHUNK_HEADER_SIZE < free <= CHUNK_SIZE else CHUNK_SIZE
    offset = CHUNK_HEADER_SIZE
    damaged = 0  # damaged headers since the last sound record, not yet counted
    last: int | None = None
    try:
        while offset + MIN_RECORD_SIZE <= CHUNK_SIZE:
            size = record_size(buf, offset)
            if size:
                number = struct.unpack_from("<Q", buf, offset + 8)[0]
                if offset >= limit and (last is None or number != last + 1):
                    counts.slack += 1
                    return  # slack: a stale record, never a real one
                if damaged and number > since:
                    counts.damaged += damaged
                damaged, last = 0, number
                counts.seen += 1
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
            counts.damaged += damaged


def data_end(buf: bytes, info: ChunkInfo) -> int:
    """Where a chunk's real records surely end: its end-of-data mark when the header can be believed
    (its CRC holds, the last record it names ends at the mark) and no record continuing the
    numbering sits at the mark; else the chunk's end (the walk decides)."""
    last = _last_record(buf, info)
    if last is None or _continues_at_mark(buf, info):
        return CHUNK_SIZE
    return info.free


def intact_records(buf: bytes, info: ChunkInfo) -> tuple[int, int, int, bool] | None:
    """(record count, offset and size of the last record, whether a stale record lies at the mark) of
    a chunk whose header can be believed, without walking its records; None when it cannot (then
    walk them).

    Believed when the header's CRC holds, the records' CRC32 (header offset 0x34, over the bytes up to
    the end-of-data mark) holds, the last record the header names is where it says and ends at the
    mark, and no record continuing the numbering sits at the mark (a live log's header lags behind
    its records).
    """
    last = _last_record(buf, info)
    if last is None or binascii.crc32(buf[CHUNK_HEADER_SIZE:info.free]) != struct.unpack_from("<I", buf, 0x34)[0]:
        return None
    if _continues_at_mark(buf, info):
        return None
    stale = info.free + MIN_RECORD_SIZE <= CHUNK_SIZE and record_size(buf, info.free) > 0
    return info.last - info.first + 1, last[0], last[1], stale


def _last_record(buf: bytes, info: ChunkInfo) -> tuple[int, int] | None:
    """(offset, size) of the last record the header names, when the header is trusted, that record is
    sound, numbered as the header says and ends at the end-of-data mark."""
    if not info.trusted or not CHUNK_HEADER_SIZE < info.free <= CHUNK_SIZE:
        return None
    offset = struct.unpack_from("<I", buf, 0x2C)[0]
    if not CHUNK_HEADER_SIZE <= offset <= CHUNK_SIZE - MIN_RECORD_SIZE:
        return None
    size = record_size(buf, offset)
    if not size or offset + size != info.free or struct.unpack_from("<Q", buf, offset + 8)[0] != info.last:
        return None
    return offset, size


def _continues_at_mark(buf: bytes, info: ChunkInfo) -> bool:
    free = info.free
    return (free + MIN_RECORD_SIZE <= CHUNK_SIZE and record_size(buf, free) > 0
            and struct.unpack_from("<Q", buf, free + 8)[0] == info.last + 1)


def record_size(buf: bytes, offset: int) -> int:
    """The size of a sound record header at ``offset`` (signature, size in bounds, size copy), else 0."""
    if buf[offset:offset + 4] != RECORD_MAGIC:
        return 0
    size = struct.unpack_from("<I", buf, offset + 4)[0]
    if size < MIN_RECORD_SIZE or offset + size > CHUNK_SIZE:
        return 0
    return size if struct.unpack_from("<I", buf, offset + size - 4)[0] == size else 0


def _resync(buf: bytes, start: int, limit: int) -> int:
    while True:
        offset = buf.find(RECORD_MAGIC, start, limit)
        if offset < 0 or record_size(buf, offset):
            return offset
        start = offset + 1
