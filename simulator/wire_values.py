"""Values written on the wire exactly as PowerShell writes them, where psrpcore alone would not.

Shared by the simulator's own answers (``psobjects.py``, the cmdlets) and by the capture reader
(``clixml.py``), so an answer built from a scenario and one replayed from an Export-Clixml file carry
the same bytes: CLIXML string escaping, enum members that are never sent as ``<Ref>``, ToStrings
written even when empty, and DateTimes / TimeSpans with the digits and offset .NET writes. Each rule
names where in PowerShell's source (github.com/PowerShell/PowerShell, src/System.Management.Automation/
engine/serialization.cs) or in the captures it comes from.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from psrpcore.types import PSDateTime, PSDuration, PSEnumBase, PSInt, PSType
from psrpcore.types._enum import PSEnumMeta

_ESCAPE = re.compile(r"_[xX]([0-9A-Fa-f]{4})_")
_NEEDS_ESCAPE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff\U00010000-\U0010ffff]|_(?=[xX])")


def encode_string(text: str) -> str:
    """PowerShell's CLIXML string escaping (InternalSerializer.EncodeString: control characters,
    surrogates and a "_" before "x" as ``_xHHHH_``). psrpcore applies it to property strings but
    writes a ToString as it is, so ToStrings go through this first (a certificate's ToString has
    CR LF, which XML would otherwise fold into LF)."""
    if not _NEEDS_ESCAPE.search(text):
        return text
    units = text.encode("utf-16-le", "surrogatepass")
    out = []
    for index in range(0, len(units), 2):
        code = int.from_bytes(units[index:index + 2], "little")
        char = chr(code)
        following = units[index + 2:index + 4].decode("utf-16-le", "ignore") if index + 2 < len(units) else ""
        if code <= 0x1F or 0x7F <= code <= 0x9F or 0xD800 <= code <= 0xDFFF or (char == "_" and following in "xX"
                                                                                 and following):
            out.append(f"_x{code:04X}_")
        else:
            out.append(char)
    return "".join(out)


def decode_string(text: str | None) -> str:
    """CLIXML string escapes (``_x000D_``; surrogate pairs as two escapes) back to text."""
    if not text:
        return ""
    decoded = _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text)
    try:
        return decoded.encode("utf-16", "surrogatepass").decode("utf-16")
    except UnicodeDecodeError:  # a lone surrogate: keep it as PowerShell would send it back
        return decoded


class EnumFactory:
    """.NET enum values as psrpcore enum objects: ``<Obj><TN>[type, System.Enum, ...]</TN>
    <ToString>name</ToString><I32>n</I32></Obj>``, what the captures hold for every enum.

    psrpcore writes a second use of one enum member in a message as a ``<Ref>``, which PowerShell
    never does for enums (value types, boxed anew each time). One factory per answer object hands out
    a distinct member for each use of the same value; members are cached across objects.
    """

    _cache: dict[tuple, list[Any]] = {}

    def __init__(self) -> None:
        self._used: dict[tuple, int] = {}

    def __call__(self, type_name: str, name: str, value: int, base: type = PSInt) -> Any:
        key = (type_name, name, int(value), base)
        index = self._used.get(key, 0)
        self._used[key] = index + 1
        members = self._cache.setdefault(key, [])
        while len(members) <= index:
            members.append(_new_enum_member(type_name, name, int(value), base))
        return members[index]


def _new_enum_member(type_name: str, name: str, value: int, base: type) -> Any:
    namespace = PSEnumMeta.__prepare__("SimulatedEnum", (PSEnumBase,))
    namespace[name] = value
    cls = PSEnumMeta("SimulatedEnum", (PSEnumBase,), namespace, base_type=base)
    # rehydrate=False: the name must not enter psrpcore's registry, which a client in this process uses.
    cls = PSType([type_name], rehydrate=False)(cls)
    return cls[name]


class ShownText(str):
    """A ToString that is written even when empty: PowerShell writes ``<ToString></ToString>`` (an
    OrganizationId's, in every capture), psrpcore leaves out a ToString that is falsy."""

    def __bool__(self) -> bool:
        return True


def shown(text: str) -> str:
    """A ToString as psrpcore must be given it: escaped, and written even when empty."""
    return ShownText(text) if text == "" else encode_string(text)


class _ZeroOffset(dt.tzinfo):
    """An offset of +00:00 that is not UTC: .NET writes "Z" only for DateTimeKind.Utc."""

    def utcoffset(self, _: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def dst(self, _: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(0)

    def tzname(self, _: dt.datetime | None) -> str:
        return "+00:00"


class ExactDateTime(PSDateTime):
    """A DateTime that psrpcore writes with exactly the fraction digits it was read with (.NET trims
    trailing zeros: the captures show 0, 5 or 7 digits)."""

    _fraction: str = ""

    def strftime(self, fmt: str) -> str:
        if fmt == ".%f" and self._fraction and self.microsecond:
            return self._fraction
        return super().strftime(fmt)


_DT = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?$")


def datetime_value(text: str) -> PSDateTime:
    match = _DT.match(text.strip())
    if match is None:
        raise ValueError(f"not a DateTime: {text!r}")
    base, fraction, zone = match.groups()
    fraction = fraction or ""
    digits = (fraction[1:] + "0000000")[:7]
    micro, hundreds = int(digits[:6]), int(digits[6])
    tz: dt.tzinfo | None
    if zone is None:
        tz = None
    elif zone == "Z":
        tz = dt.timezone.utc
    elif zone in ("+00:00", "-00:00"):
        tz = _ZeroOffset()
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = dt.timezone(sign * dt.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    moment = dt.datetime.fromisoformat(base).replace(microsecond=micro, tzinfo=tz)
    if micro:
        value = ExactDateTime(moment, nanosecond=0)
        value._fraction = fraction
        return value
    return PSDateTime(moment, nanosecond=hundreds * 100)


def duration_value(text: str) -> PSDuration:
    match = re.fullmatch(r"(-)?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?", text.strip())
    if match is None:
        raise ValueError(f"not a TimeSpan: {text!r}")
    sign, days, hours, minutes, seconds = match.groups()
    delta = dt.timedelta(days=int(days or 0), hours=int(hours or 0), minutes=int(minutes or 0),
                         seconds=float(seconds or 0))
    return PSDuration(-delta if sign else delta)

