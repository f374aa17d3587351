"""collectors.sources.evtx.binxml and .event: decoding records written with and without templates."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta, timezone

import pytest

from collectors.sources.evtx import scan_file
from collectors.sources.evtx.binxml import (
    MAX_DEPTH,
    BinXmlError,
    ChunkDecoder,
    Value,
    array_items,
    filetime_text,
    value_text,
)
from collectors.sources.evtx.event import parse_time_ticks
from tests.evtx_writer import (
    OWA_FAILURE_MESSAGES,
    OWA_PROVIDER,
    EventSpec,
    EvtxWriter,
    owa_event,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
T0_TICKS = 133537536000000000  # 2024-03-01T08:00Z: 154,557 days and 8 hours after 1601-01-01, in 100 ns


def test_forwarded_events_written_without_templates_are_found(tmp_path):
    """ForwardedEvents as Windows Event Collector writes it: every value is text in the record."""
    writer = EvtxWriter(channel="ForwardedEvents", computer="EX01.contoso.com")
    for i in range(200):
        when = T0 + timedelta(seconds=i)
        if i == 50:
            writer.add(owa_event(when, style="templateless"))
        elif i == 120:
            writer.add(owa_event(when, "thumbprint_empty", style="templateless"))
        else:
            writer.add(EventSpec("MSExchange Common", 4999, when, (f"report {i}",), style="templateless"))
    path = tmp_path / "ForwardedEvents.evtx"
    writer.write(path)
    result = scan_file(path)
    assert result.stats.records_unreadable == 0 and result.stats.records_rendered == 2
    assert [(e.record_number, e.event_id, e.level, e.provider, e.computer, e.time) for e in result.events] == [
        (51, 112, 4, OWA_PROVIDER, "EX01.contoso.com", T0 + timedelta(seconds=50)),
        (121, 113, 2, OWA_PROVIDER, "EX01.contoso.com", T0 + timedelta(seconds=120)),
    ]
    assert result.events[1].data == (OWA_FAILURE_MESSAGES["thumbprint_empty"], "MSExchangeOWAAppPool")


@pytest.mark.parametrize("style", ["classic", "manifest", "substituted", "templateless"])
def test_time_created_keeps_the_100_ns_tick(tmp_path, style):
    writer = EvtxWriter()
    for tick in range(10):
        writer.add(EventSpec(OWA_PROVIDER, 112, T0 + timedelta(microseconds=1), ("x",), style=style,
                             sub_microsecond=tick))
    path = tmp_path / "t.evtx"
    writer.write(path)
    result = scan_file(path)
    events = result.events
    assert result.stats.records_fallback == 0  # templated styles: rendered by python-evtx, still exact
    assert [e.filetime for e in events] == [T0_TICKS + 10 + tick for tick in range(10)]
    assert {e.time for e in events} == {T0 + timedelta(microseconds=1)}  # the datetime truncates, never rounds
    assert filetime_text(events[7].filetime) == "2024-03-01T08:00:00.0000017Z"


def test_time_text_is_read_to_the_tick():
    assert parse_time_ticks("2024-03-01T08:00:00.0000017Z") == T0_TICKS + 17
    assert parse_time_ticks("2024-03-01T08:00:00.000001700Z") == T0_TICKS + 17  # 9 digits, as Rust prints
    assert parse_time_ticks("2024-03-01T09:00:00.5+01:00") == T0_TICKS + 5_000_000
    assert parse_time_ticks("yesterday") is None and parse_time_ticks("2024-02-30T00:00:00Z") is None


def test_values_as_text():
    assert value_text(Value(0x13, bytes([1, 1, 0, 0, 0, 0, 0, 5]) + struct.pack("<I", 18))) == "S-1-5-18"
    guid = bytes.fromhex("8a95cd1107c5f34eb3f25fd9dfbd2c78")
    assert value_text(Value(0x0F, guid)) == "{11cd958a-c507-4ef3-b3f2-5fd9dfbd2c78}"
    assert value_text(Value(0x15, struct.pack("<Q", 0x8000000000000000))) == "0x8000000000000000"
    assert value_text(Value(0x06, struct.pack("<H", 112))) == "112"
    assert value_text(Value(0x07, struct.pack("<i", -5))) == "-5"
    assert value_text(Value(0x0D, struct.pack("<I", 1))) == "true"
    assert value_text(Value(0x11, struct.pack("<Q", T0_TICKS + 17))) == "2024-03-01T08:00:00.0000017Z"
    assert value_text(Value(0x01, "Set-Mailbox\0".encode("utf-16-le"))) == "Set-Mailbox"
    assert value_text(Value(0x0E, b"\x01\xab")) == "01AB"
    assert array_items(Value(0x81, "a\0bc\0".encode("utf-16-le"))) == ["a", "bc"]
    assert array_items(Value(0x88, struct.pack("<3I", 1, 2, 3))) == ["1", "2", "3"]


# --- hostile BinXML, hand-built ------------------------------------------------------------------------

def _chunk_with(record_body: bytes, at: int = 0x200) -> tuple[bytes, int, int]:
    """A chunk buffer holding one record whose BinXML is ``record_body``: (buffer, offset, size)."""
    size = (0x18 + len(record_body) + 4 + 7) & ~7
    record = (b"\x2a\x2a\x00\x00" + struct.pack("<IQQ", size, 1, T0_TICKS) + record_body).ljust(size - 4, b"\0")
    buf = bytearray(0x10000)
    buf[at:at + size] = record + struct.pack("<I", size)
    return bytes(buf), at, size


def _inline_name(at: int, name: str) -> bytes:
    """A name reference at chunk offset ``at`` with its definition right after it."""
    return struct.pack("<IIHH", at + 4, 0, 0, len(name)) + name.encode("utf-16-le") + b"\0\0"


def _open(at: int, name: str, in_template: bool) -> bytes:
    head = b"\x01" + (b"\xff\xff" if in_template else b"") + struct.pack("<I", 0)
    return head + _inline_name(at + len(head), name)


def test_template_less_element_has_no_dependency_identifier():
    body_at = 0x200 + 0x18
    body = bytearray(b"\x0f\x01\x01\x00")
    body += _open(body_at + len(body), "Event", in_template=False) + b"\x02"
    body += b"\x05\x01" + struct.pack("<H", 2) + "hi".encode("utf-16-le") + b"\x04\x00"
    buf, offset, size = _chunk_with(bytes(body))
    root = ChunkDecoder(buf).record(offset, size)
    assert (root.name, root.text()) == ("Event", "hi")


def test_nesting_deeper_than_the_bound_is_refused():
    body_at = 0x200 + 0x18
    body = bytearray(b"\x0f\x01\x01\x00")
    for _ in range(MAX_DEPTH + 5):
        body += _open(body_at + len(body), "E", in_template=False) + b"\x02"
    body += b"\x04" * (MAX_DEPTH + 5) + b"\x00"
    buf, offset, size = _chunk_with(bytes(body))
    with pytest.raises(BinXmlError, match="nested too deep"):
        ChunkDecoder(buf).record(offset, size)


def test_a_template_that_contains_itself_is_not_followed_forever():
    """Damage can make a template's body instantiate the template itself: decoded as empty, no recursion."""
    template_at = 0x1000
    body = bytearray(b"\x0f\x01\x01\x00")
    body += _open(template_at + 24 + len(body), "Loop", in_template=True) + b"\x02"
    body += b"\x0c\x01" + b"\0" * 4 + struct.pack("<I", template_at) + struct.pack("<I", 0)  # itself, no values
    body += b"\x04\x00"
    definition = struct.pack("<I", 0) + b"\x11" * 16 + struct.pack("<I", len(body)) + bytes(body)
    record = b"\x0f\x01\x01\x00\x0c\x01" + b"\0" * 4 + struct.pack("<I", template_at) + struct.pack("<I", 0)
    buf, offset, size = _chunk_with(record)
    buf = buf[:template_at] + definition + buf[template_at + len(definition):]
    root = ChunkDecoder(buf).record(offset, size)
    assert root.name == "Loop" and root.elements() == []


def test_a_value_past_its_record_is_refused():
    record = b"\x0f\x01\x01\x00\x0c\x01" + b"\0" * 4 + struct.pack("<I", 0x1000) + struct.pack("<I", 1)
    record += struct.pack("<HBB", 0xFFF0, 0x01, 0)  # a 65,520-byte value in a 64-byte record
    buf, offset, size = _chunk_with(record)
    with pytest.raises(BinXmlError, match="runs past its record"):
        ChunkDecoder(buf).record(offset, size)
