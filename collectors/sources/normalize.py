"""Turn what pypsrp hands over into plain Python values, once, at the edge.

pypsrp 0.9 gives cmdlet output as ``GenericComplexObject`` with .NET properties in
``adapted_properties`` and note properties in ``extended_properties``. DateTimes arrive as raw
ISO strings with seven fractional digits, enums as objects whose ``str()`` is the name, and
Exchange's ``MultiValuedProperty`` as an object whose ``str()`` is 'None' holding raw CLIXML.
Collectors never see any of that: they declare a :class:`~collectors.contract.Shape` and get dicts of
plain values. A value that does not fit its declared field raises :class:`~collectors.contract.ShapeError`.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Iterable, Mapping

from collectors.contract import Field, Shape, ShapeError
from collectors.sources.file_text import text_object
from collectors.sources.safe_xml import bounded_fromstring

# A property value is plain when it is one of these after normalisation.
PLAIN_SCALARS = (type(None), bool, int, float, str)

_DOTNET_DATETIME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[T ](?P<time>\d{2}:\d{2}:\d{2})"
    r"(?:\.(?P<frac>\d{1,9}))?(?P<tz>Z|[+-]\d{2}:\d{2})?$"
)

# Bound what a hostile or broken server can make us hold for one property.
MAX_STRING_CHARS = 64 * 1024
MAX_LIST_ITEMS = 10_000
MAX_DEPTH = 8
# CLIXML <Ref> makes pypsrp hand over one object at many places: without a total per answer
# object, a few KiB of shared references would expand into billions of values.
MAX_VALUES = 100_000
MAX_TOTAL_CHARS = 16 * 1024 * 1024


def parse_dotnet_datetime(text: str) -> dt.datetime:
    """Parse a serialised .NET DateTime into an aware UTC datetime.

    .NET writes up to seven fractional digits, which Python 3.10's fromisoformat rejects.
    A value without an offset (DateTimeKind.Unspecified) is taken as UTC: Windows services
    write UTC when they do not say otherwise, and guessing the exporter's zone is worse.
    """
    match = _DOTNET_DATETIME.match(text.strip())
    if not match:
        raise ShapeError(f"not a DateTime: {text[:60]!r}")
    frac = (match.group("frac") or "0")[:6].ljust(6, "0")
    try:  # the pattern admits month 13, hour 25, offset +99:00, and 9999-12-31 west of UTC overflows
        naive = dt.datetime.fromisoformat(f"{match.group('date')}T{match.group('time')}.{frac}")
        tz = match.group("tz")
        if tz in (None, "Z"):
            return naive.replace(tzinfo=dt.timezone.utc)
        sign = 1 if tz[0] == "+" else -1
        hours, minutes = int(tz[1:3]), int(tz[4:6])
        offset = dt.timedelta(hours=hours, minutes=minutes) * sign
        return naive.replace(tzinfo=dt.timezone(offset)).astimezone(dt.timezone.utc)
    except (ValueError, OverflowError):
        raise ShapeError(f"not a valid DateTime: {text[:60]!r}") from None


def _is_enum(obj: Any) -> bool:
    return "System.Enum" in (getattr(obj, "types", None) or [])


def _multi_valued_items(obj: Any, budget: "_Budget") -> list[str] | None:
    """Items of an Exchange MultiValuedProperty that pypsrp could not deserialise, else None."""
    for raw in getattr(obj, "property_sets", None) or []:
        # Only CLIXML lists qualify; a DTD, an entity or a bomb of elements in one is refused below.
        if isinstance(raw, str) and raw.lstrip().startswith("<") and "<LST" in raw[:4096]:
            budget.spend(len(raw))  # parsing is the cost, whatever it yields
            try:
                root = bounded_fromstring(raw)
            except Exception as exc:  # defusedxml raises several types for hostile input
                raise ShapeError(f"unreadable multi-valued property: {type(exc).__name__}") from None
            return [_readable(_item_text(child)[:MAX_STRING_CHARS]) for child in list(root)[:MAX_LIST_ITEMS]]
    return None


class DamagedText(str):
    """Text a server sent with a lone UTF-16 surrogate (CLIXML ``_xD800_``), shown with U+FFFD in its place.

    UTF-8 cannot encode a lone surrogate, so left in it would break a log line or the exposition
    later. Only this value is damaged: a property nobody declared reads as the cleaned text, and a
    declared field holding one fails with its name (:func:`convert`), not the whole answer.
    """


def _readable(text: str) -> str:
    """``text``, or a :class:`DamagedText` when it holds a lone surrogate."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return DamagedText("".join("\ufffd" if "\ud800" <= ch <= "\udfff" else ch for ch in text))
    return text


class PlainObject(dict):
    """A deserialised object's properties, plus its ToString (``text``; None when it sent none).

    Exchange sends many properties as objects where a reader wants text: an ``Identity`` or ``Server``
    is an ADObjectId, a version an ExchangeObjectVersion (captures in ../shared/captures). ``str()`` of
    such a value, and a ``str`` field holding one, is its ToString, as PowerShell itself shows it.
    """

    def __init__(self, properties: Mapping[str, Any], text: str | None) -> None:
        super().__init__(properties)
        self.text = text

    def __str__(self) -> str:
        return self.text if self.text is not None else super().__str__()


def _item_text(element: Any) -> str:
    """One item of a serialised list: a primitive's text, an object's ToString (e.g. an ADObjectId)."""
    if element.tag == "Obj":
        shown = element.find("ToString")
        return (shown.text or "") if shown is not None else ""
    return element.text or ""


class _Budget:
    """What one answer object may still expand to (values and characters)."""

    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_TOTAL_CHARS

    def spend(self, chars: int = 0) -> None:
        self.values -= 1
        self.chars -= chars
        if self.values < 0 or self.chars < 0:
            raise ShapeError(f"answer expands to more than {MAX_VALUES} values or {MAX_TOTAL_CHARS} characters")


def to_plain(value: Any, depth: int = 0, budget: _Budget | None = None) -> Any:
    """Generic conversion of any deserialised value into plain Python values."""
    budget = budget or _Budget()
    if depth > MAX_DEPTH:
        raise ShapeError("answer nested too deeply")
    if isinstance(value, str):
        budget.spend(min(len(value), MAX_STRING_CHARS))
        return _readable(value[:MAX_STRING_CHARS])
    budget.spend()
    if isinstance(value, PLAIN_SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        if len(value) > MAX_LIST_ITEMS:
            raise ShapeError(f"list of {len(value)} items exceeds {MAX_LIST_ITEMS}")
        return [to_plain(item, depth + 1, budget) for item in value]
    if isinstance(value, Mapping):
        return {str(k)[:256]: to_plain(v, depth + 1, budget) for k, v in list(value.items())[:MAX_LIST_ITEMS]}
    if isinstance(value, (bytes, bytearray)):
        budget.spend(min(len(value), MAX_STRING_CHARS))
        return bytes(value[:MAX_STRING_CHARS])
    if _is_enum(value):
        return str(value)
    items = _multi_valued_items(value, budget)
    if items is not None:
        return items
    adapted = getattr(value, "adapted_properties", None)
    extended = getattr(value, "extended_properties", None)
    if isinstance(adapted, dict) or isinstance(extended, dict):
        props: dict[str, Any] = {}
        for source in (adapted or {}, extended or {}):
            for key, item in source.items():
                props[str(key)[:256]] = to_plain(item, depth + 1, budget)
        text = getattr(value, "to_string", None)
        return PlainObject(props, _readable(text[:MAX_STRING_CHARS]) if isinstance(text, str) else None)
    # Anything else (a UUID, a pypsrp helper object): its string form is the honest plain value.
    text = str(value)[:MAX_STRING_CHARS]
    budget.spend(len(text))
    return _readable(text)


def convert(shape: Shape, obj: Any) -> dict[str, Any]:
    """One answer object as the plain dict ``shape`` declares; a misfit raises :class:`ShapeError`."""
    if shape.file_text:
        return text_object(shape, obj)
    plain = to_plain(obj)
    if not isinstance(plain, dict):
        raise ShapeError(f"{shape.cmdlet}: expected an object, got {type(plain).__name__}")
    for spec in shape.fields:
        if spec.name not in plain:
            if spec.required:
                raise ShapeError(f"{shape.cmdlet}: property {spec.name} missing")
            plain[spec.name] = None
            continue
        plain[spec.name] = _coerce(shape.cmdlet, spec, plain[spec.name])
    return plain


def _coerce(cmdlet: str, spec: Field, value: Any) -> Any:
    where = f"{cmdlet}: property {spec.name}"
    if value is None:
        if spec.nullable or not spec.required:
            return None
        raise ShapeError(f"{where} is null")
    if isinstance(value, DamagedText) or isinstance(value, PlainObject) and isinstance(value.text, DamagedText):
        raise ShapeError(f"{where}: text holds a lone UTF-16 surrogate and cannot be read")
    kind = spec.kind
    if kind == "any":
        return value
    if kind == "str":
        if isinstance(value, PlainObject) and value.text is not None:
            return value.text  # an object where text is wanted: its ToString
        if isinstance(value, (dict, list, bytes)):
            raise ShapeError(f"{where}: expected text, got {type(value).__name__}")
        return str(value)
    if kind == "bytes":
        if isinstance(value, bytes):
            return value
        raise ShapeError(f"{where}: expected bytes, got {type(value).__name__}")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ShapeError(f"{where}: expected a bool, got {type(value).__name__}")
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ShapeError(f"{where}: expected a number, got {type(value).__name__}")
        try:
            return int(value) if kind == "int" else float(value)
        except (ValueError, OverflowError):  # "x", int(inf), float(10**400)
            raise ShapeError(f"{where}: expected a number, got {str(value)[:40]!r}") from None
    if kind == "datetime":
        if not isinstance(value, str):
            raise ShapeError(f"{where}: expected a DateTime, got {type(value).__name__}")
        try:
            return parse_dotnet_datetime(value)
        except ShapeError as exc:
            raise ShapeError(f"{where}: {exc}") from None
    if kind == "list":
        if isinstance(value, list):
            return value
        if isinstance(value, str):
            return [value]
        raise ShapeError(f"{where}: expected a list, got {type(value).__name__}")
    raise ValueError(f"unknown field kind {kind!r}")  # a programming error, not bad input


def convert_all(shape: Shape, objects: Iterable[Any]) -> list[dict[str, Any]]:
    return [convert(shape, obj) for obj in objects]
