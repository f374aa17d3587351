"""collectors.sources.evtx.render: python-evtx renders templated records, the decoder the rest."""

from __future__ import annotations

import logging
import random
import struct
from datetime import datetime, timedelta, timezone

import pytest

from collectors.sources.evtx import pyevtx, scan_file
from collectors.sources.evtx.render import ChunkRenderer
from tests.evtx_writer import (
    OWA_PROVIDER,
    EventSpec,
    EvtxWriter,
    background_event,
    owa_event,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=timezone.utc)
T0_TICKS = 133537536000000000  # 2024-03-01T08:00Z in 100 ns ticks since 1601


@pytest.fixture
def python_evtx_calls(monkeypatch) -> list[int]:
    """Chunk offsets of the records python-evtx was asked to render."""
    calls: list[int] = []
    real = pyevtx.render

    def spy(chunk, offset):
        calls.append(offset)
        return real(chunk, offset)

    monkeypatch.setattr(pyevtx, "render", spy)
    return calls


def _mixed_log(path) -> EvtxWriter:
    """Every shape the writer knows, string arrays and 100 ns ticks included; every 5th record template-less."""
    rnd = random.Random(9)
    writer = EvtxWriter(xml_record_id_offset=300)
    for i in range(120):
        when = T0 + timedelta(seconds=i, microseconds=7)
        if i % 5 == 4:
            writer.add(EventSpec("MSExchange Common", 4999, when, (f"report {i}", "x"), style="templateless",
                                 sub_microsecond=i % 10))
        elif i % 7 == 3:
            writer.add(owa_event(when, "certificate_expired", style=("classic", "manifest", "substituted")[i % 3]))
        else:
            writer.add(background_event(rnd, when))
    writer.write(path)
    return writer


def test_templated_records_go_to_python_evtx_and_template_less_ones_to_the_decoder(tmp_path, python_evtx_calls):
    path = tmp_path / "mixed.evtx"
    _mixed_log(path)
    result = scan_file(path, provider=None)
    assert len(result.events) == 120 and result.stats.records_unreadable == 0
    assert len(python_evtx_calls) == 96  # 120 less the 24 template-less records
    assert result.stats.records_fallback == 0


def test_both_renderers_give_the_same_events(tmp_path):
    path = tmp_path / "mixed.evtx"
    writer = _mixed_log(path)
    routed = scan_file(path, provider=None).events
    decoded = scan_file(path, provider=None, use_python_evtx=False).events
    assert routed == decoded  # every field: ids, level, provider, computer, data, exact ticks
    owa = [e for e in routed if e.provider == OWA_PROVIDER]
    assert [(e.record_id, e.event_id, e.level) for e in owa] == [
        (r.xml_record_id, 113, 2) for r in writer.records if r.spec.provider == OWA_PROVIDER]
    assert routed[4].filetime == T0_TICKS + 4 * 10_000_000 + 70 + 4  # template-less: text to the tick
    assert routed[0].filetime == T0_TICKS + 70  # templated, rendered by python-evtx: the FILETIME exactly


def test_forwarded_events_never_reach_python_evtx(tmp_path, python_evtx_calls):
    writer = EvtxWriter(channel="ForwardedEvents", computer="EX01.contoso.com")
    for i in range(30):
        writer.add(owa_event(T0 + timedelta(seconds=i), style="templateless"))
    path = tmp_path / "ForwardedEvents.evtx"
    writer.write(path)
    result = scan_file(path)
    assert len(result.events) == 30 and python_evtx_calls == []


def _chunk_with_self_containing_template() -> tuple[bytes, int, int]:
    """One templated record whose template instantiates itself (damage): python-evtx raises on it,
    the decoder reads the outer element and an empty inner one."""
    template_at, record_at = 0x1000, 0x200
    body = bytearray(b"\x0f\x01\x01\x00")
    name_at = template_at + 24 + len(body) + 7
    body += b"\x01\xff\xff" + struct.pack("<I", 0) + struct.pack("<IIHH", name_at + 4, 0, 0, 4)
    body += "Loop".encode("utf-16-le") + b"\0\0" + b"\x02"
    body += b"\x0c\x01" + b"\0" * 4 + struct.pack("<I", template_at) + struct.pack("<I", 0) + b"\x04\x00"
    definition = struct.pack("<I", 0) + b"\x11" * 16 + struct.pack("<I", len(body)) + bytes(body)
    record_body = b"\x0f\x01\x01\x00\x0c\x01" + b"\0" * 4 + struct.pack("<I", template_at) + struct.pack("<I", 0)
    size = (0x18 + len(record_body) + 4 + 7) & ~7
    record = (b"\x2a\x2a\x00\x00" + struct.pack("<IQQ", size, 1, T0_TICKS) + record_body).ljust(size - 4, b"\0")
    buf = bytearray(0x10000)
    buf[record_at:record_at + size] = record + struct.pack("<I", size)
    buf[template_at:template_at + len(definition)] = definition
    return bytes(buf), record_at, size


def test_a_record_python_evtx_raises_on_falls_back_to_the_decoder_and_is_counted(caplog):
    buf, offset, size = _chunk_with_self_containing_template()
    renderer = ChunkRenderer(buf)
    with caplog.at_level(logging.DEBUG, logger="collectors.sources.evtx.render"):
        root = renderer.record(offset, size)
    assert root.name == "Loop" and renderer.fallbacks == 1
    assert "python-evtx failed" in caplog.text and "decoding it instead" in caplog.text
    with pytest.raises(Exception):
        pyevtx.render(pyevtx.Chunk(buf), offset)  # what the fallback caught


def test_decoder_first_reads_templated_records_without_python_evtx_and_gives_the_same_events(
        tmp_path, python_evtx_calls):
    path = tmp_path / "mixed.evtx"
    _mixed_log(path)
    routed = scan_file(path, provider=None).events
    python_evtx_calls.clear()
    first = scan_file(path, provider=None, decoder_first=True)
    assert python_evtx_calls == [] and first.stats.records_fallback == 0
    assert first.events == routed  # every field, exact ticks included


def _chunk_nested(depth: int) -> tuple[bytes, int, int]:
    """One templated record whose template nests ``depth`` elements named Deep, one in the other."""
    template_at, record_at = 0x1000, 0x200
    body = bytearray(b"\x0f\x01\x01\x00")
    name_at = template_at + 24 + len(body) + 7  # where the first element's name offset ends
    body += b"\x01\xff\xff" + struct.pack("<I", 0) + struct.pack("<IIHH", name_at + 4, 0, 0, 4)
    body += "Deep".encode("utf-16-le") + b"\0\0" + b"\x02"
    for _ in range(depth - 1):  # the same name, by offset
        body += b"\x01\xff\xff" + struct.pack("<I", 0) + struct.pack("<I", name_at + 4) + b"\x02"
    body += b"\x04" * depth + b"\x00"
    definition = struct.pack("<I", 0) + b"\x11" * 16 + struct.pack("<I", len(body)) + bytes(body)
    record_body = b"\x0f\x01\x01\x00\x0c\x01" + b"\0" * 4 + struct.pack("<I", template_at) + struct.pack("<I", 0)
    size = (0x18 + len(record_body) + 4 + 7) & ~7
    record = (b"\x2a\x2a\x00\x00" + struct.pack("<IQQ", size, 1, T0_TICKS) + record_body).ljust(size - 4, b"\0")
    buf = bytearray(0x10000)
    buf[record_at:record_at + size] = record + struct.pack("<I", size)
    buf[template_at:template_at + len(definition)] = definition
    return bytes(buf), record_at, size


def _depth(root) -> int:
    depth = 1
    while root.elements():
        root, depth = root.elements()[0], depth + 1
    return depth


def test_decoder_first_falls_back_to_python_evtx_and_counts_it(caplog):
    from collectors.sources.evtx.binxml import MAX_DEPTH, BinXmlError, ChunkDecoder

    buf, offset, size = _chunk_nested(MAX_DEPTH + 8)  # deeper than the decoder reads, not python-evtx
    with pytest.raises(BinXmlError):
        ChunkDecoder(buf).record(offset, size)  # what the fallback catches
    renderer = ChunkRenderer(buf, decoder_first=True)
    with caplog.at_level(logging.DEBUG, logger="collectors.sources.evtx.render"):
        root = renderer.record(offset, size)
    assert root.name == "Deep" and _depth(root) == MAX_DEPTH + 8 and renderer.fallbacks == 1
    assert "the decoder failed" in caplog.text and "python-evtx tries it" in caplog.text
    shallow, offset, size = _chunk_nested(3)
    renderer = ChunkRenderer(shallow, decoder_first=True)
    assert _depth(renderer.record(offset, size)) == 3 and renderer.fallbacks == 0
