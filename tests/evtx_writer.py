"""Write valid Windows event log files (.evtx) for tests and benchmarks, the way Windows lays them out.

Layout (MS-EVEN6 BinXML, as libevtx documents it and as the real files in ../shared/evtx show):
- a 4 KiB file header (magic, oldest/current chunk, next record number, chunk count, flags, CRC32);
- 64 KiB chunks: a 512-byte header (record ranges, free-space offset, CRC32 of the records and of the
  header itself), a 64-bucket string table and a 32-bucket template table, then the records;
- each record is a BinXML fragment holding one template instance. The first record of a chunk that
  uses a template carries its definition inline (element names inline too, the first time a chunk
  sees them); later records only reference the definition by its chunk offset and add their
  substitution values. So the literal `<Provider Name="...">` of a classic event sits in one template
  definition per chunk, not in every record, which is what the scanner's prefilter relies on.

Event shapes, all as Windows writes them into the Application log:
- ``classic``: ReportEvent sources (MSExchange OWA, MSExchange ADAccess, ESENT). The System part is
  one template with the provider, channel and computer as literals; EventData is a nested BinXML
  value with its own template, ``<Data>`` holding the insertion strings as a string array.
- ``manifest``: manifest providers (Microsoft-Windows-Security-SPP): Provider Name and Guid literal,
  ``<Data Name="...">`` elements with one substitution each.
- ``substituted``: the provider name itself is a substitution value (as forwarded or re-rendered
  events can carry it): one template serves several providers, so the name is only in the record.
- ``templateless``: no template at all, every value written as text in the record, as Windows
  Event Collector writes forwarded events (ForwardedEvents) and some exports do; elements outside a
  template definition carry no dependency identifier.

Options: a dirty header (fewer chunks and an older next record number than the chunks hold), a
circular log that wraps (the oldest chunk is reused, so chunks stop being in record order),
appending to a file already written (earlier bytes unchanged, as Windows appends), corrupting a
chunk, XML EventRecordIDs that differ from the record header numbers (as exported files do), and
stale records in a chunk's slack space (past its end-of-data mark), as Windows leaves them when it
reuses a chunk without clearing it: whole, valid records whose numbers do not continue the chunk's.
"""

from __future__ import annotations

import random
import struct
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

FILE_HEADER_SIZE = 0x1000
CHUNK_SIZE = 0x10000
CHUNK_HEADER_SIZE = 0x200
EVENT_NS = "http://schemas.microsoft.com/win/2004/08/events/event"
_EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)

# Substitution value types (MS-EVEN6 2.2.18)
T_NULL, T_WSTRING, T_UINT8, T_UINT16, T_UINT32, T_UINT64 = 0x00, 0x01, 0x04, 0x06, 0x08, 0x0A
T_BINARY, T_GUID, T_FILETIME, T_SID, T_HEX64, T_BXML, T_WSTRING_ARRAY = 0x0E, 0x0F, 0x11, 0x13, 0x15, 0x21, 0x81

# The messages OWA writes when IM initialisation fails (check E1), and Event 112's success text.
OWA_IM_INITIALISED = "The IM endpoint manager was initialized successfully."
OWA_FAILURE_MESSAGES = {
    "ucma_missing": "No registry setting for IM Provider found. IM provider not found.",
    "server_name_empty": "Instant Messaging Server name is set to null or empty on web.config.",
    "thumbprint_empty": "Instant Messaging Certificate Thumbprint is null or empty on web.config.",
    "certificate_not_found": "IM Certificate with thumbprint EA5A3324A8C4F0A5D7C5E3B3A1F8D2C6B9E0F11D could not be found.",
    "certificate_expired": "IM Certificate with thumbprint EA5A3324A8C4F0A5D7C5E3B3A1F8D2C6B9E0F11D has expired.",
    "certificate_not_yet_valid": "IM Certificate with thumbprint EA5A3324A8C4F0A5D7C5E3B3A1F8D2C6B9E0F11D has not become valid yet.",
    "certificate_no_private_key": "IM Certificate with thumbprint EA5A3324A8C4F0A5D7C5E3B3A1F8D2C6B9E0F11D does not have a private key.",
}
OWA_PROVIDER = "MSExchange OWA"
OWA_FAILURE_EVENT_ID = 113  # fixture value only; the scanner never looks at IDs


@dataclass(frozen=True)
class EventSpec:
    """One event to write. ``data``: insertion strings (classic) or Data values (manifest)."""

    provider: str
    event_id: int
    time: datetime
    data: tuple[str, ...] = ()
    level: int = 4
    style: str = "classic"  # classic | manifest | substituted | templateless
    qualifiers: int | None = 0
    provider_guid: str = "{a2f94a9c-5b2b-4d7e-9b1f-1c2d3e4f5a6b}"
    data_names: tuple[str, ...] = ()  # manifest: the Data Name attributes (default param1..n)
    sub_microsecond: int = 0  # 0-9: TimeCreated's 100 ns tick below ``time``'s microsecond


@dataclass
class WrittenRecord:
    number: int  # record header number
    xml_record_id: int  # EventRecordID in the XML
    spec: EventSpec
    chunk_slot: int
    offset: int  # chunk-relative


def name_hash(text: str) -> int:
    """Windows' name hash: h = h * 65599 + UTF-16 code unit (32 bits); stored 16 bits, bucket h % 64."""
    h = 0
    for unit in struct.unpack(f"<{len(text)}H", text.encode("utf-16-le")):
        h = (h * 65599 + unit) & 0xFFFFFFFF
    return h


def filetime(when: datetime) -> int:
    delta = when.astimezone(timezone.utc) - _EPOCH_1601
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


class _Emitter:
    """BinXML for one record, written at a known chunk offset (inline names and templates need it).

    New strings and templates are only proposed here; the chunk commits them if the record fits.
    """

    def __init__(self, base: int, chunk: "_Chunk"):
        self.out = bytearray()
        self.base = base
        self.strings = dict(chunk.strings)
        self.templates = dict(chunk.templates)
        self.new_strings: list[tuple[int, int]] = []  # (offset, bucket)
        self.new_templates: list[tuple[int, int]] = []
        self.in_template = True  # False while writing a template-less record

    def here(self) -> int:
        return self.base + len(self.out)

    def u8(self, v: int) -> None:
        self.out.append(v)

    def u16(self, v: int) -> None:
        self.out += struct.pack("<H", v)

    def u32(self, v: int) -> None:
        self.out += struct.pack("<I", v)

    def patch32(self, at: int, v: int) -> None:
        struct.pack_into("<I", self.out, at, v)

    def name(self, text: str) -> None:
        """A name reference; defined inline right after the reference on first use in the chunk."""
        known = self.strings.get(text)
        if known is not None:
            self.u32(known)
            return
        offset = self.here() + 4
        self.u32(offset)
        h = name_hash(text)
        self.u32(0)  # next in bucket: set at commit
        self.u16(h & 0xFFFF)
        self.u16(len(text))
        self.out += text.encode("utf-16-le") + b"\x00\x00"
        self.strings[text] = offset
        self.new_strings.append((offset, h % 64))

    def element(self, tag: str, attrs=(), content=None) -> None:
        """attrs: [(name, writer)]; content: list of writers, or None for an empty element."""
        self.u8(0x41 if attrs else 0x01)
        if self.in_template:
            self.u16(0xFFFF)  # dependency: none (present only inside template definitions)
        size_at = len(self.out)
        self.u32(0)
        self.name(tag)
        if attrs:
            list_at = len(self.out)
            self.u32(0)
            for i, (attr, write_value) in enumerate(attrs):
                self.u8(0x46 if i < len(attrs) - 1 else 0x06)  # 0x40: more attributes follow
                self.name(attr)
                write_value(self)
            self.patch32(list_at, len(self.out) - list_at - 4)
        if content is None:
            self.u8(0x03)
        else:
            self.u8(0x02)
            for write in content:
                write(self)
            self.u8(0x04)
        self.patch32(size_at, len(self.out) - size_at - 4)

    def text(self, value: str) -> None:
        self.u8(0x05)
        self.u8(T_WSTRING)
        self.u16(len(value))
        self.out += value.encode("utf-16-le")

    def sub(self, index: int, vtype: int, optional: bool = True) -> None:
        self.u8(0x0E if optional else 0x0D)
        self.u16(index)
        self.u8(vtype)

    def fragment(self, key: tuple, template_body, values: list) -> None:
        """A fragment header, a template instance (with the definition if new) and its values.

        values: [(type, bytes or a callable writing a nested fragment)].
        """
        self.out += b"\x0f\x01\x01\x00"
        known = self.templates.get(key)
        guid = _template_guid(key)
        self.u8(0x0C)
        self.u8(0x01)
        self.out += guid[:4]
        if known is not None:
            self.u32(known)
        else:
            offset = self.here() + 4
            self.u32(offset)
            self.u32(0)  # next in bucket: set at commit
            self.out += guid
            length_at = len(self.out)
            self.u32(0)
            self.out += b"\x0f\x01\x01\x00"
            template_body(self)
            self.u8(0x00)  # end of stream
            self.patch32(length_at, len(self.out) - length_at - 4)
            self.templates[key] = offset
            self.new_templates.append((offset, guid[0] % 32))
        self.u32(len(values))
        table_at = len(self.out)
        self.out += b"\x00" * (4 * len(values))
        for i, (vtype, value) in enumerate(values):
            start = len(self.out)
            if callable(value):
                value(self)
            else:
                self.out += value
            struct.pack_into("<HBB", self.out, table_at + 4 * i, len(self.out) - start, vtype, 0)


def _template_guid(key: tuple) -> bytes:
    digest = zlib.crc32(repr(key).encode())
    rnd = random.Random(digest)
    return bytes(rnd.getrandbits(8) for _ in range(16))


def _system_body(provider_attrs, channel: str, computer: str):
    """The System element exactly as Windows' classic/manifest templates hold it."""

    def body(e: _Emitter) -> None:
        e.element(
            "System",
            content=[
                lambda e: e.element("Provider", attrs=provider_attrs),
                lambda e: e.element("EventID", attrs=[("Qualifiers", lambda e: e.sub(4, T_UINT16))],
                                    content=[lambda e: e.sub(3, T_UINT16)]),
                lambda e: e.element("Version", content=[lambda e: e.sub(11, T_UINT8)]),
                lambda e: e.element("Level", content=[lambda e: e.sub(0, T_UINT8)]),
                lambda e: e.element("Task", content=[lambda e: e.sub(2, T_UINT16)]),
                lambda e: e.element("Opcode", content=[lambda e: e.sub(1, T_UINT8)]),
                lambda e: e.element("Keywords", content=[lambda e: e.sub(5, T_HEX64)]),
                lambda e: e.element("TimeCreated", attrs=[("SystemTime", lambda e: e.sub(6, T_FILETIME))]),
                lambda e: e.element("EventRecordID", content=[lambda e: e.sub(10, T_UINT64)]),
                lambda e: e.element("Correlation", attrs=[("ActivityID", lambda e: e.sub(7, T_GUID)),
                                                          ("RelatedActivityID", lambda e: e.sub(18, T_GUID))]),
                lambda e: e.element("Execution", attrs=[("ProcessID", lambda e: e.sub(8, T_UINT32)),
                                                        ("ThreadID", lambda e: e.sub(9, T_UINT32))]),
                lambda e: e.element("Channel", content=[lambda e: e.text(channel)]),
                lambda e: e.element("Computer", content=[lambda e: e.text(computer)]),
                lambda e: e.element("Security", attrs=[("UserID", lambda e: e.sub(12, T_SID))]),
            ],
        )

    return body


def _event_template(system_body, tail):
    def body(e: _Emitter) -> None:
        e.element("Event", attrs=[("xmlns", lambda e: e.text(EVENT_NS))], content=[system_body, tail])

    return body


def _classic_data_body(e: _Emitter) -> None:
    e.element(
        "EventData",
        content=[
            lambda e: e.element("Data", content=[lambda e: e.sub(0, T_WSTRING_ARRAY)]),
            lambda e: e.element("Binary", content=[lambda e: e.sub(2, T_BINARY)]),
        ],
    )


def _wstr(text: str) -> bytes:
    return text.encode("utf-16-le") + b"\x00\x00"


def _system_values(spec: EventSpec, xml_record_id: int, keywords: int) -> list:
    """Substitutions 0..18 of the System template, in Windows' order."""
    null = (T_NULL, b"")
    q = (T_UINT16, struct.pack("<H", spec.qualifiers)) if spec.qualifiers is not None else null
    return [
        (T_UINT8, bytes([spec.level])),  # 0 Level
        (T_UINT8, b"\x00"),  # 1 Opcode
        (T_UINT16, struct.pack("<H", 0)),  # 2 Task
        (T_UINT16, struct.pack("<H", spec.event_id & 0xFFFF)),  # 3 EventID
        q,  # 4 Qualifiers
        (T_HEX64, struct.pack("<Q", keywords)),  # 5 Keywords
        (T_FILETIME, struct.pack("<Q", filetime(spec.time) + spec.sub_microsecond)),  # 6 TimeCreated
        null,  # 7 ActivityID
        (T_UINT32, struct.pack("<I", 0)),  # 8 ProcessID
        (T_UINT32, struct.pack("<I", 0)),  # 9 ThreadID
        (T_UINT64, struct.pack("<Q", xml_record_id)),  # 10 EventRecordID
        (T_UINT8, b"\x00"),  # 11 Version
        null, null, null, null, null, null,  # 12 UserID .. 17
        null,  # 18 RelatedActivityID
    ]


def _classic_data_value(strings: tuple[str, ...]):
    array = b"".join(_wstr(s) for s in strings)

    def write(e: _Emitter) -> None:
        e.fragment(("classic-data",), _classic_data_body,
                   [(T_WSTRING_ARRAY, array), (T_UINT32, b"\x00\x00\x00\x00"), (T_NULL, b"")])

    return write


def _emit_templateless(e: _Emitter, spec: EventSpec, xml_record_id: int, channel: str, computer: str) -> None:
    """The whole event as elements and text values, as forwarded events are written."""
    ticks = filetime(spec.time) + spec.sub_microsecond
    when = _EPOCH_1601 + timedelta(microseconds=ticks // 10)
    system_time = when.strftime("%Y-%m-%dT%H:%M:%S") + f".{when.microsecond:06d}{ticks % 10}Z"

    def text_element(tag: str, value: str, attrs=()):
        return lambda e: e.element(tag, attrs=attrs, content=[lambda e: e.text(value)])

    qualifiers = [("Qualifiers", lambda e: e.text(str(spec.qualifiers)))] if spec.qualifiers is not None else []
    system = [
        lambda e: e.element("Provider", attrs=[("Name", lambda e: e.text(spec.provider))]),
        text_element("EventID", str(spec.event_id), qualifiers),
        text_element("Level", str(spec.level)),
        lambda e: e.element("TimeCreated", attrs=[("SystemTime", lambda e: e.text(system_time))]),
        text_element("EventRecordID", str(xml_record_id)),
        text_element("Channel", channel),
        text_element("Computer", computer),
    ]
    data = [text_element("Data", s) for s in spec.data]
    e.in_template = False
    e.out += b"\x0f\x01\x01\x00"
    e.element("Event", attrs=[("xmlns", lambda e: e.text(EVENT_NS))], content=[
        lambda e: e.element("System", content=system),
        lambda e: e.element("EventData", content=data),
    ])
    e.u8(0x00)  # end of stream


def emit_event(e: _Emitter, spec: EventSpec, xml_record_id: int, channel: str, computer: str) -> None:
    if spec.style == "templateless":
        _emit_templateless(e, spec, xml_record_id, channel, computer)
        return
    if spec.style == "classic":
        key = ("classic", spec.provider, channel, computer)
        provider_attrs = [("Name", lambda e: e.text(spec.provider))]
        body = _event_template(_system_body(provider_attrs, channel, computer), lambda e: e.sub(19, T_BXML))
        values = _system_values(spec, xml_record_id, 0x0080000000000000)
        values.append((T_BXML, _classic_data_value(spec.data)))
    elif spec.style == "substituted":
        key = ("substituted", channel, computer)
        provider_attrs = [("Name", lambda e: e.sub(20, T_WSTRING, optional=False))]
        body = _event_template(_system_body(provider_attrs, channel, computer), lambda e: e.sub(19, T_BXML))
        values = _system_values(spec, xml_record_id, 0x0080000000000000)
        values.append((T_BXML, _classic_data_value(spec.data)))
        values.append((T_WSTRING, _wstr(spec.provider)))
    elif spec.style == "manifest":
        names = spec.data_names or tuple(f"param{i + 1}" for i in range(len(spec.data)))
        key = ("manifest", spec.provider, spec.event_id, names, channel, computer)
        provider_attrs = [("Name", lambda e: e.text(spec.provider)), ("Guid", lambda e: e.text(spec.provider_guid))]

        def data_elements(e: _Emitter) -> None:
            e.element("EventData", content=[
                (lambda n, i: lambda e: e.element("Data", attrs=[("Name", lambda e: e.text(n))],
                                                  content=[lambda e: e.sub(19 + i, T_WSTRING)]))(n, i)
                for i, n in enumerate(names)
            ])

        body = _event_template(_system_body(provider_attrs, channel, computer), data_elements)
        values = _system_values(spec, xml_record_id, 0x8000000000000000)
        values += [(T_WSTRING, _wstr(s)) for s in spec.data]
    else:
        raise ValueError(f"unknown style {spec.style!r}")
    e.fragment(key, body, values)


class _Chunk:
    def __init__(self) -> None:
        self.buf = bytearray(CHUNK_SIZE)
        self.pos = CHUNK_HEADER_SIZE
        self.strings: dict[str, int] = {}
        self.templates: dict[tuple, int] = {}
        self.string_heads = [0] * 64
        self.template_heads = [0] * 32
        self.records: list[WrittenRecord] = []
        self.last_record_offset = 0
        self.stale: list[tuple[int, bytes]] = []  # (offset, bytes) left past the end-of-data mark

    def leave_stale_copy(self, record: WrittenRecord, number: int) -> int:
        """A copy of one of this chunk's records, renumbered, left in the slack space after the
        last record (and after earlier stale copies); its offset. The free-space offset stays."""
        size = struct.unpack_from("<I", self.buf, record.offset + 4)[0]
        at = max([self.pos] + [o + len(b) for o, b in self.stale])
        if at + size > CHUNK_SIZE:
            raise ValueError("no slack space left in this chunk")
        copy = bytearray(self.buf[record.offset:record.offset + size])
        struct.pack_into("<Q", copy, 8, number)
        self.stale.append((at, bytes(copy)))
        return at

    def try_add(self, spec, number, xml_id, channel, computer, slot) -> WrittenRecord | None:
        e = _Emitter(self.pos + 0x18, self)
        emit_event(e, spec, xml_id, channel, computer)
        size = (0x18 + len(e.out) + 4 + 7) & ~7  # records are 8-byte aligned
        if self.pos + size > CHUNK_SIZE:
            return None
        header = b"\x2a\x2a\x00\x00" + struct.pack("<IQQ", size, number, filetime(spec.time) + spec.sub_microsecond)
        record = header + bytes(e.out) + b"\x00" * (size - 0x18 - len(e.out) - 4) + struct.pack("<I", size)
        self.buf[self.pos:self.pos + size] = record
        for offset, bucket in e.new_strings:  # newest first in each bucket, as Windows chains them
            struct.pack_into("<I", self.buf, offset, self.string_heads[bucket])
            self.string_heads[bucket] = offset
        for offset, bucket in e.new_templates:
            struct.pack_into("<I", self.buf, offset, self.template_heads[bucket])
            self.template_heads[bucket] = offset
        self.strings, self.templates = e.strings, e.templates
        written = WrittenRecord(number, xml_id, spec, slot, self.pos)
        self.records.append(written)
        self.last_record_offset = self.pos
        self.pos += size
        return written

    def finish(self) -> bytes:
        """The chunk with its header, tables and both CRC32s filled in."""
        buf = bytearray(self.buf)
        for at, stale in self.stale:  # what later records have not overwritten yet
            start = max(at, self.pos)
            if start < at + len(stale):
                buf[start:at + len(stale)] = stale[start - at:]
        first, last = self.records[0].number, self.records[-1].number
        struct.pack_into("<8sQQQQIIII", buf, 0, b"ElfChnk\x00", first, last, first, last,
                         0x80, self.last_record_offset, self.pos, zlib.crc32(buf[CHUNK_HEADER_SIZE:self.pos]))
        struct.pack_into("<64I", buf, 0x80, *self.string_heads)
        struct.pack_into("<32I", buf, 0x180, *self.template_heads)
        struct.pack_into("<I", buf, 0x7C, zlib.crc32(bytes(buf[:0x78]) + bytes(buf[0x80:0x200])))
        return bytes(buf)


@dataclass
class EvtxWriter:
    """Accumulates events into chunks; ``write`` produces (or appends to) a file.

    max_chunks: a circular log of that many chunks: when full, the oldest chunk is reused.
    xml_record_id_offset: EventRecordID = header record number + offset (exported files differ).
    """

    computer: str = "EX01.contoso.com"
    channel: str = "Application"
    first_record_number: int = 1
    xml_record_id_offset: int = 0
    max_chunks: int | None = None
    slots: list[_Chunk | None] = field(default_factory=list)
    order: list[int] = field(default_factory=list)  # slot indexes, oldest chunk first
    records: list[WrittenRecord] = field(default_factory=list)
    _written_until: list[bytes] = field(default_factory=list)

    @property
    def next_record_number(self) -> int:
        return self.records[-1].number + 1 if self.records else self.first_record_number

    def add(self, spec: EventSpec) -> WrittenRecord:
        number = self.next_record_number
        xml_id = number + self.xml_record_id_offset
        chunk = self.slots[self.order[-1]] if self.order else None
        written = chunk.try_add(spec, number, xml_id, self.channel, self.computer, self.order[-1]) if chunk else None
        if written is None:
            slot = self._new_slot()
            written = self.slots[slot].try_add(spec, number, xml_id, self.channel, self.computer, slot)
            if written is None:
                raise ValueError("event too large for one chunk")
        self.records.append(written)
        return written

    def add_all(self, specs) -> list[WrittenRecord]:
        return [self.add(s) for s in specs]

    def leave_stale_copy(self, record: WrittenRecord, number: int) -> int:
        """A copy of ``record`` numbered ``number`` in the slack space of its chunk (its chunk offset):
        what an earlier use of that space left. Records added to the chunk later overwrite it."""
        return self.slots[record.chunk_slot].leave_stale_copy(record, number)

    def _new_slot(self) -> int:
        if self.max_chunks is not None and len(self.slots) >= self.max_chunks:
            slot = self.order.pop(0)  # wrap: overwrite the oldest chunk, its records are gone
            gone = {id(r) for r in self.slots[slot].records}
            self.records = [r for r in self.records if id(r) not in gone]
        else:
            self.slots.append(None)
            slot = len(self.slots) - 1
        self.slots[slot] = _Chunk()
        self.order.append(slot)
        return slot

    def live_records(self) -> list[WrittenRecord]:
        return list(self.records)

    def file_header(self, *, dirty: bool = False, header_chunk_count: int | None = None) -> bytes:
        count = len(self.slots) if header_chunk_count is None else header_chunk_count
        next_number = self.next_record_number
        current = self.order[-1] if self.order else 0
        if header_chunk_count is not None and header_chunk_count < len(self.order):
            # a stale header: what the file looked like when it last flushed `count` chunks
            current = self.order[count - 1] if count else 0
            next_number = self.slots[current].records[-1].number + 1 if count else self.first_record_number
        head = bytearray(FILE_HEADER_SIZE)
        struct.pack_into("<8sQQQIHHHH", head, 0, b"ElfFile\x00", self.order[0] if self.order else 0, current,
                         next_number, 0x80, 1, 3, FILE_HEADER_SIZE, count)
        struct.pack_into("<I", head, 0x78, 0x1 if dirty else 0x0)
        struct.pack_into("<I", head, 0x7C, zlib.crc32(bytes(head[:0x78])))
        return bytes(head)

    def to_bytes(self, **header_options) -> bytes:
        return self.file_header(**header_options) + b"".join(c.finish() for c in self.slots)

    def write(self, path: Path, *, append: bool = False, **header_options) -> None:
        """Write the whole file, or with append=True rewrite in place only what changed since the
        last write (the header and the chunks that gained records), as Windows appends."""
        chunks = [c.finish() for c in self.slots]
        header = self.file_header(**header_options)
        if not append or not Path(path).exists():
            Path(path).write_bytes(header + b"".join(chunks))
        else:
            with open(path, "r+b") as f:
                f.write(header)
                for i, data in enumerate(chunks):
                    if i >= len(self._written_until) or self._written_until[i] != data:
                        f.seek(FILE_HEADER_SIZE + i * CHUNK_SIZE)
                        f.write(data)
        self._written_until = chunks


def corrupt_chunk(data: bytes, slot: int, mode: str = "records", seed: int = 0) -> bytes:
    """A damaged copy: ``magic`` breaks the chunk signature, ``records`` overwrites record bytes in
    the middle of the chunk with noise, ``zero`` zeroes the whole chunk."""
    out = bytearray(data)
    start = FILE_HEADER_SIZE + slot * CHUNK_SIZE
    if mode == "magic":
        out[start:start + 8] = b"ElfJunk\x00"
    elif mode == "records":
        rnd = random.Random(seed)
        lo = start + CHUNK_HEADER_SIZE + 0x2000
        out[lo:lo + 0x1800] = bytes(rnd.getrandbits(8) for _ in range(0x1800))
    elif mode == "zero":
        out[start:start + CHUNK_SIZE] = b"\x00" * CHUNK_SIZE
    else:
        raise ValueError(mode)
    return bytes(out)


# --- a realistic Application log -------------------------------------------------------------------

_WORDS = ("service", "database", "replication", "mailbox", "topology", "domain", "controller", "server",
          "completed", "request", "process", "cache", "store", "session", "license", "policy", "update")


def _sentence(rnd: random.Random, words: int) -> str:
    return " ".join(rnd.choice(_WORDS) for _ in range(words)).capitalize() + "."


def background_event(rnd: random.Random, when: datetime) -> EventSpec:
    """An ordinary Application-log event from some provider other than MSExchange OWA."""
    kind = rnd.random()
    if kind < 0.35:
        return EventSpec("MSExchange ADAccess", rnd.choice((2080, 2070, 2137)), when,
                         (f"Process w3wp.exe (PID={rnd.randint(100, 9999)})", _sentence(rnd, rnd.randint(8, 24))),
                         qualifiers=16388)
    if kind < 0.6:
        return EventSpec("Microsoft-Windows-Security-SPP", rnd.choice((16384, 1003, 1066)), when,
                         (_sentence(rnd, 4), f"{rnd.getrandbits(64):016X}", _sentence(rnd, rnd.randint(4, 16))),
                         style="manifest", qualifiers=None, provider_guid="{e23b33b0-c8c9-472c-a5f9-f2bdfea0f156}",
                         data_names=("Reason", "Token", "Detail"))
    if kind < 0.75:
        return EventSpec("ESENT", rnd.choice((326, 327, 105)), when,
                         ("Microsoft.Exchange.Store.Worker", str(rnd.randint(1000, 9999)), _sentence(rnd, rnd.randint(6, 20))),
                         qualifiers=0)
    if kind < 0.9995:
        return EventSpec("MSExchange Common", rnd.choice((4999, 106)), when,
                         (_sentence(rnd, rnd.randint(8, 24)),), level=rnd.choice((2, 3, 4)), qualifiers=16388,
                         style=rnd.choice(("classic", "substituted")))
    # rarely, another provider's text names OWA: a prefilter candidate that must not be reported
    return EventSpec("MSExchange ADAccess", 2915, when,
                     (f"MSExchange OWA app pool recycled by {_sentence(rnd, 4)}",), level=3, qualifiers=16388)


def owa_event(when: datetime, reason: str | None = None, style: str = "classic") -> EventSpec:
    """Event 112 (reason None) or an IM initialisation failure with the message of ``reason``."""
    if reason is None:
        return EventSpec(OWA_PROVIDER, 112, when, (OWA_IM_INITIALISED,), level=4, qualifiers=0, style=style)
    return EventSpec(OWA_PROVIDER, OWA_FAILURE_EVENT_ID, when, (OWA_FAILURE_MESSAGES[reason], "MSExchangeOWAAppPool"),
                     level=2, qualifiers=49152, style=style)


def application_log(records: int, owa_events: int, *, seed: int = 1, start: datetime | None = None,
                    writer: EvtxWriter | None = None, step: timedelta = timedelta(seconds=7)) -> EvtxWriter:
    """``records`` events with ``owa_events`` MSExchange OWA ones spread among them (112s, every
    failure reason in turn, one in three in the substituted shape)."""
    rnd = random.Random(seed)
    writer = writer or EvtxWriter()
    when = start or datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
    if writer.records:
        when = writer.records[-1].spec.time + step
    owa_at = set(rnd.sample(range(records), owa_events)) if owa_events else set()
    reasons = [None, *OWA_FAILURE_MESSAGES]
    n = 0
    for i in range(records):
        if i in owa_at:
            style = "substituted" if n % 3 == 2 else "classic"
            writer.add(owa_event(when, reasons[n % len(reasons)], style))
            n += 1
        else:
            writer.add(background_event(rnd, when))
        when += timedelta(seconds=rnd.randint(1, step.seconds * 2))
    return writer


def owa_records(writer: EvtxWriter) -> list[WrittenRecord]:
    return [r for r in writer.live_records() if r.spec.provider == OWA_PROVIDER]
