"""Time expressions of scenario files, resolved against "now" at answer time.

A scenario describes an estate that is always "live": a replica reported "-20s" ago stays 20 seconds
old however long the simulator runs. So times are kept as expressions and only turned into datetimes
when a cmdlet answers.

Accepted forms: ``"now"``, relative offsets such as ``"-45s"``, ``"-2h"``, ``"+90d"``, ``"-1d2h30m"``
(units s, m, h, d, w), absolute ISO 8601 (``"2024-05-01T10:00:00+02:00"``; without an offset the
estate's time zone applies), or null.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

_RELATIVE = re.compile(r"^(?P<sign>[+-])(?P<body>(?:\d+(?:\.\d+)?[smhdw])+)$")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_OFFSET = re.compile(r"^(?P<sign>[+-])(?P<h>\d{2}):(?P<m>\d{2})$")


@dataclasses.dataclass(frozen=True)
class TimeSpec:
    """Either an offset from now or an absolute instant (aware)."""

    offset: dt.timedelta | None = None
    absolute: dt.datetime | None = None
    text: str = ""

    def resolve(self, now: dt.datetime) -> dt.datetime:
        if self.absolute is not None:
            return self.absolute
        return now + (self.offset or dt.timedelta(0))

    def __str__(self) -> str:
        return self.text


def parse_duration(text: str) -> dt.timedelta:
    """``"90s"``, ``"2h30m"`` (no sign) to a timedelta; ValueError names the bad text."""
    match = _RELATIVE.match("+" + text.strip())
    if not match:
        raise ValueError(f"invalid duration {text!r} (expected e.g. '90s', '2h30m', '3d')")
    return _sum_parts(match.group("body"))


def _sum_parts(body: str) -> dt.timedelta:
    seconds = sum(float(n) * _UNIT_SECONDS[u] for n, u in _PART.findall(body))
    return dt.timedelta(seconds=seconds)


def parse_offset(text: str) -> dt.timezone:
    """``"+01:00"`` to a fixed time zone (an estate's servers share one)."""
    match = _OFFSET.match(text.strip())
    if not match:
        raise ValueError(f"invalid UTC offset {text!r} (expected e.g. '+01:00' or '-05:00')")
    minutes = int(match.group("h")) * 60 + int(match.group("m"))
    return dt.timezone(dt.timedelta(minutes=-minutes if match.group("sign") == "-" else minutes))


def parse_time(value: object, tz: dt.tzinfo = dt.timezone.utc) -> TimeSpec | None:
    """One scenario time value to a TimeSpec (None stays None). ValueError explains bad input."""
    if value is None:
        return None
    if isinstance(value, TimeSpec):
        return value
    if isinstance(value, dt.datetime):  # YAML turns unquoted ISO timestamps into datetimes
        aware = value if value.tzinfo else value.replace(tzinfo=tz)
        return TimeSpec(absolute=aware, text=aware.isoformat())
    if not isinstance(value, str):
        raise ValueError(f"invalid time {value!r}: expected 'now', '-45s', '+90d', an ISO timestamp or null")
    text = value.strip()
    if text.lower() == "now":
        return TimeSpec(offset=dt.timedelta(0), text=text)
    match = _RELATIVE.match(text)
    if match:
        delta = _sum_parts(match.group("body"))
        return TimeSpec(offset=-delta if match.group("sign") == "-" else delta, text=text)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"invalid time {value!r}: expected 'now', '-45s', '-2h', '+90d', '-1d2h', an ISO timestamp or null"
        ) from None
    aware = parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    return TimeSpec(absolute=aware, text=text)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)
