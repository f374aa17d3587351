"""The byte layout of an .evtx file: file header, 64 KiB chunks, record headers; never the records' XML.

Layout as libevtx documents it ("Windows XML Event Log (EVTX) format") and the real files in the
project's evtx sample folder show: a 4 KiB file header, then 64 KiB chunks, each a 512-byte header
(record number range, free-space offset, CRC32s) followed by records, each a 24-byte header (magic,
size, record number, FILETIME), its BinXML and a trailing copy of its size.
"""

from __future__ import annotations

import binascii
import functools
import os
import struct
from dataclasses import dataclass
from typing import Iterator, NamedTuple

FILE_MAGIC = b"ElfFile\x00"
CHUNK_MAGIC = b"ElfChnk\x00"
RECORD_MAGIC = b"\x2a\x2a\x00\x00"
FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200
RECORD_HEADER_SIZE = 0x18
MIN_RECORD_SIZE = 0x1C  # header (0x18) + the trailing size copy
# Read at once (FileReader): the file header and the first 4 KiB of the first chunk, the records of a
# small export (a forwarded event, a few cmdlet log entries). Larger: each read copies more than a
# tiny export needs; smaller: one more read for most of them (docs/performance.md, event logs).
START_BYTES = FILE_HEADER_SIZE + 0x1000


class ChunkInfo(NamedTuple):  # a tuple: one is made per chunk, the cheapest object to make
    slot: int
    first: int
    last: int
    free: int  # the end-of-data mark: bytes past it are slack
    trusted: bool  # header CRC valid and first <= last: its range may be used to skip the chunk
    last_offset: int = 0  # where the header says the last record starts (0x2C)
    records_crc: int = 0  # the CRC32 of the bytes from the end of the header to the mark (0x34)


@dataclass
class WalkCounts:
    """What a walk over a chunk's records met (the scanner adds these to its statistics)."""

    seen: int = 0  # sound record headers returned
    damaged: int = 0  # damaged headers counted (see walk_records for when)
    slack: int = 0  # record-shaped bytes past the end-of-data mark that do not continue the numbering


def chunk_offset(slot: int) -> int:
    return FILE_HEADER_SIZE + slot * CHUNK_SIZE


class FileReader:
    """An open .evtx file, read by offset into memory (never mmap: a file truncated under an mmap
    kills the process with SIGBUS), one positioned read per call (``os.pread``; seek and read where
    the OS has no pread).

    System calls are most of what a scan of a small export costs, so the file's first
    ``START_BYTES`` (the file header and the start of the first chunk, where a small export's
    records end) are read once, with the first read that falls in them, and a chunk can be read
    only up to its end-of-data mark (``read``, one more read where the records go on past
    ``START_BYTES``), without the slack that fills most of it.
    """

    __slots__ = ("fd", "size", "mtime_ns", "slots", "_start")

    def __init__(self, path: str):
        self.fd = os.open(path, _OPEN_FLAGS)
        try:
            st = os.fstat(self.fd)
        except OSError:
            os.close(self.fd)
            raise
        self.size = size = st.st_size
        self.mtime_ns = st.st_mtime_ns
        # Every slot the file reaches, a truncated last one too.
        self.slots = (size - FILE_HEADER_SIZE + CHUNK_SIZE - 1) // CHUNK_SIZE if size > FILE_HEADER_SIZE else 0
        self._start: bytes | None = None

    def close(self) -> None:
        os.close(self.fd)

    def chunk_header(self, slot: int) -> bytes:
        """The 512-byte header of the chunk in ``slot``, zero-padded past the end of the file."""
        return self.read(FILE_HEADER_SIZE + slot * CHUNK_SIZE, CHUNK_HEADER_SIZE).ljust(CHUNK_HEADER_SIZE, b"\0")

    def chunk(self, slot: int) -> bytes:
        """The 64 KiB chunk in ``slot``, zero-padded past the end of the file."""
        return self._read(FILE_HEADER_SIZE + slot * CHUNK_SIZE, CHUNK_SIZE).ljust(CHUNK_SIZE, b"\0")

    def read(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the file)."""
        if offset + length <= START_BYTES:
            start = self._start
            if start is None:
                start = self._start = self._read(0, START_BYTES)
            return start[offset:offset + length]
        return self._read(offset, length)

    def _read(self, offset: int, length: int) -> bytes:
        if length <= 0:
            return b""
        data = _pread(self.fd, length, offset)
        while data and len(data) < length:  # a read may return less than asked before the end of the file
            more = _pread(self.fd, length - len(data), offset + len(data))
            if not more:
                break
            data += more
        return data


def _seek_read(fd: int, length: int, offset: int) -> bytes:
    os.lseek(fd, offset, os.SEEK_SET)
    return os.read(fd, length)


_pread = getattr(os, "pread", _seek_read)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)  # Windows: no newline translation


# A chunk header's fields, in one unpack: first and last record number (0x18, 0x20), the last
# record's offset (0x2C), the end-of-data mark (0x30), the records' CRC32 (0x34), the header's (0x7C).
_CHUNK_FIELDS = struct.Struct("<24xQQ4xIII68xI")
_U32, _U64 = struct.Struct("<I").unpack_from, struct.Struct("<Q").unpack_from
_new_chunk_info = functools.partial(tuple.__new__, ChunkInfo)  # ChunkInfo._make without its length check


def chunk_info(slot: int, head: bytes) -> ChunkInfo:
    """A chunk header (the first 512 bytes of a slot whose signature is CHUNK_MAGIC)."""
    first, last, last_offset, free, records_crc, header_crc = _CHUNK_FIELDS.unpack_from(head)
    crc = binascii.crc32(head[0x80:CHUNK_HEADER_SIZE], binascii.crc32(head[:0x78]))  # the CRC field left out
    return _new_chunk_info((slot, first, last, free, crc == header_crc and first <= last, last_offset, records_crc))


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
                number = _U64(buf, offset + 8)[0]
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


def believed_last(buf: bytes, info: ChunkInfo) -> tuple[int, int] | None:
    """(offset, size) of the chunk's last record when its header can be believed, else None.

    Believed when the header's CRC holds, the last record it names is where it says, numbered as it
    says and ends at the end-of-data mark, and no record continuing the numbering sits at the mark
    (a live log's header lags behind its records). Then the chunk's real records surely end at the
    mark (nothing past it is searched); else the walk decides where they end.
    """
    last = last_record(buf, info)
    return None if last is None or _continues_at_mark(buf, info) else last


def intact_records(buf: bytes, info: ChunkInfo, last: tuple[int, int] | None) -> tuple[int, int, int, bool] | None:
    """(record count, offset and size of the last record, whether a stale record lies at the mark) of
    a chunk whose header can be believed (``last``, from ``believed_last``) and whose records' CRC32
    (header offset 0x34, over the bytes up to the end-of-data mark) holds, without walking its
    records; None when it cannot be believed (then walk them)."""
    if last is None or not records_crc_ok(buf, info):
        return None
    stale = info.free + MIN_RECORD_SIZE <= CHUNK_SIZE and record_size(buf, info.free) > 0
    return info.last - info.first + 1, last[0], last[1], stale


def records_crc_ok(buf: bytes, info: ChunkInfo) -> bool:
    """Whether the records' CRC32 (chunk header offset 0x34, as ``chunk_info`` read it, over the bytes
    from the end of the header up to the end-of-data mark) holds."""
    return binascii.crc32(buf[CHUNK_HEADER_SIZE:info.free]) == info.records_crc


def last_record(buf: bytes, info: ChunkInfo) -> tuple[int, int] | None:
    """(offset, size) of the last record the header names, when the header is trusted, that record is
    sound, numbered as the header says and ends at the end-of-data mark."""
    offset, free = info.last_offset, info.free
    size = free - offset  # what record_size(buf, offset) must give, checked in one expression (a hot path)
    if (not info.trusted or offset < CHUNK_HEADER_SIZE or size < MIN_RECORD_SIZE or free > min(CHUNK_SIZE, len(buf))
            or buf[offset:offset + 4] != RECORD_MAGIC or _U32(buf, offset + 4)[0] != size
            or _U32(buf, free - 4)[0] != size or _U64(buf, offset + 8)[0] != info.last):
        return None
    return offset, size


def _continues_at_mark(buf: bytes, info: ChunkInfo) -> bool:
    free = info.free
    return (free + MIN_RECORD_SIZE <= CHUNK_SIZE and record_size(buf, free) > 0
            and _U64(buf, free + 8)[0] == info.last + 1)


def record_size(buf: bytes, offset: int) -> int:
    """The size of a sound record header at ``offset`` (signature, size in bounds, size copy), else 0.

    ``buf`` is a chunk, or the start of one (``FileReader.read`` up to the end-of-data mark): a record
    running past it is not sound here, and the caller reads the whole chunk.
    """
    if buf[offset:offset + 4] != RECORD_MAGIC:
        return 0
    size = _U32(buf, offset + 4)[0]
    if size < MIN_RECORD_SIZE or offset + size > len(buf):  # buf is at most one chunk
        return 0
    return size if _U32(buf, offset + size - 4)[0] == size else 0


def _resync(buf: bytes, start: int, limit: int) -> int:
    while True:
        offset = buf.find(RECORD_MAGIC, start, limit)
        if offset < 0 or record_size(buf, offset):
            return offset
        start = offset + 1
