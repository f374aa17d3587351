"""From a decoded record (``binxml.Element``) to a ``ProviderEvent``: the System fields and the data."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from collectors.sources.evtx.binxml import (
    EPOCH_1601,
    T_ARRAY,
    T_FILETIME,
    T_SYSTIME,
    Element,
    Value,
    array_items,
    parts_text,
    systemtime_ticks,
)

MAX_DATA_ITEMS = 32
MAX_DATA_CHARS = 2048


class Unreadable(Exception):
    pass


@dataclass(frozen=True)
class ProviderEvent:
    record_id: int  # the XML EventRecordID (an exported file renumbers headers, not this)
    event_id: int
    time: datetime  # aware, UTC, to the microsecond (``filetime`` holds the exact tick)
    level: int
    provider: str
    computer: str
    data: tuple[str, ...]  # EventData/Data strings, at most MAX_DATA_ITEMS of MAX_DATA_CHARS
    record_number: int = 0  # the record header number (what cursors count)
    filetime: int = 0  # TimeCreated in 100 ns ticks since 1601-01-01 UTC, exact; 0 when not known

    @property
    def ticks(self) -> int:
        """TimeCreated to the 100 ns tick (from ``time`` when the exact value is not known)."""
        return self.filetime or ticks_of(self.time)


def ticks_of(when: datetime) -> int:
    delta = when.astimezone(timezone.utc) - EPOCH_1601
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def time_of(ticks: int) -> datetime:
    return EPOCH_1601 + timedelta(microseconds=ticks // 10)


def provider_name(root: Element) -> str:
    """The Provider Name of a decoded record ('' when there is none)."""
    system = root.child("System")
    provider = system.child("Provider") if system is not None else None
    return parts_text(provider.attr("Name")).strip() if provider is not None else ""


def event_from_root(root: Element, number: int, header_ticks: int) -> ProviderEvent:
    """The event of a decoded record; ``header_ticks`` (the record header's time) when it has no TimeCreated."""
    if root.name != "Event":
        raise Unreadable(f"root element {root.name[:40]!r}, not Event")
    system = root.child("System")
    if system is None:
        raise Unreadable("no System element")
    time_el = system.child("TimeCreated")
    ticks = _ticks(time_el.attr("SystemTime")) if time_el is not None else None
    ticks = header_ticks if ticks is None else ticks
    try:
        when = time_of(ticks)
    except OverflowError:
        raise Unreadable("time out of range") from None
    return ProviderEvent(
        record_id=_int(_text(system, "EventRecordID"), number),
        event_id=_int(_text(system, "EventID"), None),
        time=when,
        level=_int(_text(system, "Level"), 0),
        provider=provider_name(root),
        computer=_text(system, "Computer")[:MAX_DATA_CHARS],
        data=event_data(root),
        record_number=number,
        filetime=ticks,
    )


def _text(parent: Element, name: str) -> str:
    el = parent.child(name)
    return el.text().strip() if el is not None else ""


def _int(text: str, default: int | None) -> int:
    try:
        return int(text, 0) if text.lower().startswith("0x") else int(text)
    except ValueError:
        if default is None:
            raise Unreadable(f"not a number: {text[:40]!r}") from None
        return default


_ISO_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?\s*(Z|[+-]\d{2}:?\d{2})?$")


def _ticks(parts: list) -> int | None:
    """TimeCreated/@SystemTime exactly: a FILETIME or SYSTEMTIME value, or text with up to 7 decimals."""
    if len(parts) == 1 and isinstance(parts[0], Value) and parts[0].vtype in (T_FILETIME, T_SYSTIME):
        raw = parts[0].raw
        if parts[0].vtype == T_FILETIME:
            return struct.unpack_from("<Q", raw)[0]
        try:
            return systemtime_ticks(raw)
        except ValueError:
            return None
    return parse_time_ticks(parts_text(parts))


def parse_time_ticks(text: str) -> int | None:
    """``2024-03-01T08:00:00.1234567Z`` (or with an offset) as 100 ns ticks since 1601, else None."""
    m = _ISO_TIME.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        when = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), tzinfo=timezone.utc)
    except ValueError:
        return None
    if tz and tz != "Z":
        digits = tz[1:].replace(":", "")
        when -= (1 if tz[0] == "+" else -1) * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return ticks_of(when) + int((frac or "0")[:7].ljust(7, "0"))


def event_data(root: Element) -> tuple[str, ...]:
    """EventData/Data texts (a string array gives one item per string), else UserData's leaf texts."""
    items: list[str] = []
    data = root.child("EventData")
    if data is not None:
        for el in data.elements():
            if el.name != "Data":
                continue
            parts = el.parts()
            if len(parts) == 1 and isinstance(parts[0], Value) and parts[0].vtype & T_ARRAY:
                items.extend(array_items(parts[0]))
            else:
                items.append(parts_text(parts))
            if len(items) >= MAX_DATA_ITEMS:
                break
    else:
        user = root.child("UserData")
        if user is not None:
            _leaves(user, items, 0)
    return tuple(s[:MAX_DATA_CHARS] for s in items[:MAX_DATA_ITEMS])


def _leaves(el: Element, out: list[str], depth: int) -> None:
    for child in el.elements():
        if len(out) >= MAX_DATA_ITEMS or depth > 8:
            return
        if child.elements():
            _leaves(child, out, depth + 1)
        else:
            out.append(child.text())


