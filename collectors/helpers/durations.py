"""Prometheus-style durations ("500ms", "30s", "1h30m", "1d").

Operators already write durations this way in prometheus.yml, so the exporter's configuration uses
the same grammar: integer amounts, units from largest to smallest, each unit at most once.
Values are plain float seconds inside the exporter.
"""

from __future__ import annotations

import datetime
import re

__all__ = ["parse_duration", "format_duration", "UNITS"]

# Unit -> milliseconds, largest first (the order a duration must be written in).
UNITS: dict[str, int] = {
    "y": 365 * 24 * 3600 * 1000,
    "w": 7 * 24 * 3600 * 1000,
    "d": 24 * 3600 * 1000,
    "h": 3600 * 1000,
    "m": 60 * 1000,
    "s": 1000,
    "ms": 1,
}

# Same grammar as prometheus/common model.ParseDuration.
_DURATION_RE = re.compile(
    r"(?:(?P<y>[0-9]+)y)?(?:(?P<w>[0-9]+)w)?(?:(?P<d>[0-9]+)d)?(?:(?P<h>[0-9]+)h)?"
    r"(?:(?P<m>[0-9]+)m)?(?:(?P<s>[0-9]+)s)?(?:(?P<ms>[0-9]+)ms)?"
)

# Schedulers turn seconds into datetime.timedelta; anything larger cannot be represented there.
_MAX_SECONDS = datetime.timedelta.max.total_seconds()

_FORMAT_HINT = "use an integer and a unit, largest unit first, e.g. 500ms, 30s, 5m, 1h30m, 1d (units: ms s m h d w y)"


def parse_duration(text: str, *, allow_zero: bool = False) -> float:
    """Parse a Prometheus duration into float seconds.

    Raises ValueError naming the offending text. Zero is rejected unless ``allow_zero`` (a zero
    interval or timeout is always a mistake; a zero jitter is a legitimate choice).
    """
    if not isinstance(text, str):
        raise ValueError(f"a duration must be a string such as '30s', got {type(text).__name__}")
    if not text:
        raise ValueError(f"empty duration: {_FORMAT_HINT}")
    if text.startswith("-"):
        raise ValueError(f"duration {text!r} is negative: durations must be positive")
    if _is_bare_number(text):
        raise ValueError(f"duration {text!r} has no unit: {_FORMAT_HINT}")
    match = _DURATION_RE.fullmatch(text)
    if match is None:
        if "." in text:
            raise ValueError(
                f"invalid duration {text!r}: amounts are whole numbers, use a smaller unit (1500ms, not 1.5s)"
            )
        raise ValueError(f"invalid duration {text!r}: {_FORMAT_HINT}")
    millis = sum(int(amount) * UNITS[group] for group, amount in match.groupdict().items() if amount)
    seconds = millis / 1000
    if seconds > _MAX_SECONDS:
        raise ValueError(f"duration {text!r} is too long")
    if seconds == 0 and not allow_zero:
        raise ValueError(f"duration {text!r} is zero: it must be positive")
    return seconds


def format_duration(seconds: float) -> str:
    """Format float seconds the way Prometheus prints durations ("1h30m", "500ms", "0s").

    Rounds to whole milliseconds, the grammar's resolution. Weeks are used only when exact, as
    Prometheus does, so 8 days prints as "8d" rather than "1w1d".
    """
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        raise ValueError(f"cannot format {seconds!r} as a duration")
    if seconds < 0:
        raise ValueError(f"cannot format a negative duration ({seconds!r} s)")
    millis = round(seconds * 1000)
    if millis == 0:
        return "0s"
    parts = []
    for unit, size in UNITS.items():
        if unit == "w" and millis % size != 0:
            continue
        amount, millis = divmod(millis, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _is_bare_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
