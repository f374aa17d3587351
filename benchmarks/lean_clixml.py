"""CLIXML straight into the plain values ``collectors/sources/normalize.py`` hands collectors (a prototype).

Two ways, both measured by ``bench_lean_transport.py`` beside the exporter's own path:

- :func:`walk_output`: one ``ElementTree`` parse (the C parser) and a walk of the tree into dicts,
  lists and scalars, with no object per CLIXML property in between;
- :func:`psrpcore_plain`: psrpcore's own ``deserialize`` result (``PSObject`` and its primitives)
  turned into the same plain values.

"The same" means what pypsrp 0.9 + ``normalize.to_plain`` give, quirks included, because that is what
the collectors read: DateTime, TimeSpan, Decimal and Version values stay the text sent; a GUID is its
text; an enum is its ToString; a collection pypsrp does not know as a list (e.g. Exchange's
MultiValuedProperty, or a ``List`1`` of a type it does not know) is the list of its items' texts; a
known list (``System.Object[]``, ``ArrayList``, ``List`1[[System.String]]``) holds converted items.
The bounds of ``normalize`` apply (string length, list length, depth, values and characters per answer),
and a document with a DTD is refused before parsing (no DTD, no entity can be declared). This covers
the answers the benchmark compares; types pypsrp maps to its own classes (ErrorRecord, PSCredential...)
are refused rather than guessed.
"""

from __future__ import annotations

import base64
import uuid
from typing import Any
from xml.etree.ElementTree import Element, XMLParser

from collectors.contract import ShapeError
from collectors.sources.file_text import decode_psrp_string
from collectors.sources.normalize import (
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    MAX_TOTAL_CHARS,
    MAX_VALUES,
    PlainObject,
    _readable,
)

# pypsrp 0.9's serializer: the types it reads as lists or dictionaries, and the ones it maps to a class
# of its own (refused here). Every other type falls through to the next name of the TN list; System.Object
# (always last) makes an object of properties.
_LIST_TYPES = {"System.Array", "System.Collections.ArrayList", "System.Collections.Generic.List"}
_DICT_TYPES = {"System.Collections.Hashtable", "System.Management.Automation.PSPrimitiveDictionary",
               "System.Management.Automation.PSBoundParametersDictionary"}
_PRIMITIVE_TYPES = {"System.String", "System.Char", "System.Boolean", "System.DateTime", "System.Byte",
                    "System.SByte", "System.UInt16", "System.Int16", "System.UInt32", "System.Int32",
                    "System.UInt64", "System.Int64", "System.Single", "System.Double", "System.Decimal",
                    "System.Guid", "System.Uri", "System.Version", "System.Xml.XmlDocument",
                    "System.Management.Automation.ScriptBlock", "System.Security.SecureString",
                    "System.Management.Automation.PSTypeName"}
_OWN_CLASSES = {"System.Collections.Queue", "System.Collections.Stack", "System.ConsoleColor",
                "System.Management.Automation.ErrorRecord", "System.Management.Automation.PSCredential",
                "System.Management.Automation.InformationRecord", "System.Globalization.CultureInfo",
                "System.Management.Automation.Host.Coordinates", "System.Management.Automation.Host.Size"}
_INTEGERS = {"By", "SB", "U16", "I16", "U32", "I32", "U64", "I64"}
_TEXTS = {"S", "URI", "XD", "SBK", "ToString"}  # decoded strings ("" when empty)
_RAW = {"DT", "TS", "D", "Version"}  # the text as sent


_KINDS: dict[tuple[str, ...], str] = {}  # type names -> kind; an estate sends a few dozen type lists


def pypsrp_kind(type_names: list[str]) -> str:
    """'list', 'dict', 'object' or 'raw': what pypsrp makes of an object with these type names."""
    key = tuple(type_names)
    kind = _KINDS.get(key)
    if kind is None:
        kind = _kind(type_names)
        if len(_KINDS) < 4096:
            _KINDS[key] = kind
    return kind


def _kind(type_names: list[str]) -> str:
    if not type_names:
        return "object"
    for name in type_names:
        if name.startswith("Deserialized.System."):
            name = name[13:]
        element = None
        for prefix in ("System.Collections.Generic.List`1[[", "System.Collections.ObjectModel.Collection`1[[",
                       "System.Collections.ObjectModel.ReadOnlyCollection`1[["):
            if name.startswith(prefix):
                element = name[len(prefix):-1].split(",")[0]
        if name.endswith("[]"):
            element = name[:-2]
        if name.startswith("System.Collections.Generic.Dictionary`2[["):
            return "dict"
        if element is not None:
            if element in _LIST_TYPES or element in _DICT_TYPES or element in _PRIMITIVE_TYPES or element == "System.Object":
                return "list"
            if element in _OWN_CLASSES:
                raise ShapeError(f"prototype does not convert lists of {element}")
            continue  # pypsrp drops the list and tries the next name
        if name in _LIST_TYPES:
            return "list"
        if name in _DICT_TYPES:
            return "dict"
        if name in _OWN_CLASSES or name in _PRIMITIVE_TYPES:
            raise ShapeError(f"prototype does not convert {name}")
        if name == "System.Object" or name == "System.Management.Automation.PSObject":
            return "object"
    return "raw"


class _Budget:
    """What one answer object may expand to, as ``normalize`` counts it."""

    __slots__ = ("values", "chars")

    def __init__(self) -> None:
        self.values = MAX_VALUES
        self.chars = MAX_TOTAL_CHARS

    def spend(self, chars: int = 0) -> None:
        self.values -= 1
        self.chars -= chars
        if self.values < 0 or self.chars < 0:
            raise ShapeError(f"answer expands to more than {MAX_VALUES} values or {MAX_TOTAL_CHARS} characters")


def _text(value: str, budget: _Budget) -> str:
    budget.spend(min(len(value), MAX_STRING_CHARS))
    value = value[:MAX_STRING_CHARS]
    return value if value.isascii() else _readable(value)  # ASCII holds no lone surrogate


def _decoded(text: str) -> str:
    """PSRP's ``_xHHHH_`` escapes undone; most strings have none."""
    return decode_psrp_string(text) if "_x" in text else text


def _guid(text: str) -> str:
    """A GUID as ``str(uuid.UUID(text))`` writes it; the canonical form needs no parsing."""
    if len(text) == 36 and text[8] == text[13] == text[18] == text[23] == "-":
        lowered = text.lower()
        if not lowered.strip("0123456789abcdef-"):
            return lowered
    return str(uuid.UUID(text))


# --------------------------------------------------------------------------- the direct walk

def parse_clixml(data: bytes) -> Element:
    """One PSRP message's CLIXML as a tree (the C parser), refusing a DTD: without one no entity can be
    declared, so the parser expands none. The bytes are read as UTF-8, as PSRP messages are."""
    if b"<!DOCTYPE" in data:
        raise ShapeError("XML with a DTD (document type declaration); CLIXML never carries one")
    parser = XMLParser(encoding="utf-8")
    parser.feed(data)
    return parser.close()


def walk_output(data: bytes) -> Any:
    """One PipelineOutput message's object as plain values."""
    return _Walk().value(parse_clixml(data), 0)


class _Walk:
    __slots__ = ("budget", "refs", "type_names")

    def __init__(self) -> None:
        self.budget = _Budget()
        self.refs: dict[str, Any] = {}
        self.type_names: dict[str, list[str]] = {}

    def value(self, el: Element, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ShapeError("answer nested too deeply")
        tag = el.tag
        budget = self.budget
        if tag in _TEXTS:
            return _text(_decoded(el.text) if el.text else "", budget)
        if tag == "Obj":
            return self._object(el, depth)
        if tag == "Ref":
            try:
                return self.refs[el.attrib["RefId"]]
            except KeyError:
                raise ShapeError("reference to an object not seen before") from None
        if tag == "Nil":
            budget.spend()
            return None
        if tag in _INTEGERS:
            budget.spend()
            return int(el.text or "")
        if tag == "B":
            budget.spend()
            return (el.text or "").lower() == "true"
        if tag in _RAW:
            return _text(el.text, budget) if el.text is not None else None
        if tag in ("Db", "Sg"):
            budget.spend()
            return float(el.text or "")
        if tag == "BA":
            raw = base64.b64decode(el.text or "")
            budget.spend(min(len(raw), MAX_STRING_CHARS))
            return raw[:MAX_STRING_CHARS]
        if tag == "G":
            return _text(_guid(el.text or ""), budget)
        if tag == "C":
            return _text(chr(int(el.text or "")), budget)
        raise ShapeError(f"prototype does not convert <{tag}>")

    def _types(self, el: Element) -> list[str]:
        tn = el.find("TN")
        if tn is not None:
            names = [t.text or "" for t in tn]
            self.type_names[tn.get("RefId", "")] = names
            return names
        ref = el.find("TNRef")
        return self.type_names.get(ref.get("RefId", ""), []) if ref is not None else []

    def _object(self, el: Element, depth: int) -> Any:
        names = self._types(el)
        kind = pypsrp_kind(names)
        budget = self.budget
        if kind == "list":
            items = el.find("LST")
            children = list(items) if items is not None else []
            if len(children) > MAX_LIST_ITEMS:
                raise ShapeError(f"list of {len(children)} items exceeds {MAX_LIST_ITEMS}")
            budget.spend()
            result: Any = [self.value(child, depth + 1) for child in children]
        elif kind == "dict":
            budget.spend()
            result = {}
            entries = el.find("DCT")
            for entry in list(entries if entries is not None else [])[:MAX_LIST_ITEMS]:
                key = value = None
                for part in entry:
                    if part.get("N") == "Key":
                        key = part
                    elif part.get("N") == "Value":
                        value = part
                if key is None or value is None:
                    raise ShapeError("dictionary entry without Key or Value")
                # normalize converts the key too (one value) and uses its text
                result[str(self.value(key, depth + 1))[:256]] = self.value(value, depth + 1)
        elif kind == "raw":
            raise ShapeError(f"prototype does not convert an object of types {names[:2]}")
        elif "System.Enum" in names:  # pypsrp keeps TN names as sent; normalize tests for this one
            budget.spend()
            shown = el.find("ToString")
            result = _decoded(shown.text or "") if shown is not None else None
        else:
            result = self._properties(el, depth)
        ref = el.get("RefId")
        if ref is not None:
            self.refs[ref] = result
        return result

    def _properties(self, el: Element, depth: int) -> Any:
        budget = self.budget
        budget.spend()
        props: dict[str, Any] = {}
        text = None
        for child in el:
            tag = child.tag
            if tag == "Props" or tag == "MS":
                for prop in child:
                    props[prop.get("N", "")[:256]] = self.value(prop, depth + 1)
            elif tag == "ToString":
                text = _readable(_decoded(child.text or "")[:MAX_STRING_CHARS])
            elif tag == "LST":
                # A collection pypsrp does not know (MultiValuedProperty...): normalize's list of item texts.
                # normalize charges the raw XML's length; the items' count stands in for it here.
                budget.spend(64 * len(child))
                return [_readable(_item_text(item)[:MAX_STRING_CHARS]) for item in list(child)[:MAX_LIST_ITEMS]]
        return PlainObject(props, text)


def _item_text(element: Element) -> str:
    if element.tag == "Obj":
        shown = element.find("ToString")
        return (shown.text or "") if shown is not None else ""
    return element.text or ""


# --------------------------------------------------------------------------- psrpcore's objects

def psrpcore_plain(value: Any, depth: int = 0, budget: _Budget | None = None) -> Any:
    """A psrpcore ``deserialize`` result as the same plain values."""
    from psrpcore.types import PSDateTime, PSDict, PSList, PSObject

    budget = budget or _Budget()
    if depth > MAX_DEPTH:
        raise ShapeError("answer nested too deeply")
    if value is None:
        budget.spend()
        return None
    meta = getattr(value, "PSObject", None)
    names = list(meta.type_names) if meta is not None else []
    if "System.Enum" in names or "Deserialized.System.Enum" in names:
        budget.spend()
        return meta.to_string
    if isinstance(value, bool):
        budget.spend()
        return bool(value)
    if isinstance(value, str):
        return _text(str(value), budget)
    if isinstance(value, bytes):
        budget.spend(min(len(value), MAX_STRING_CHARS))
        return bytes(value[:MAX_STRING_CHARS])
    if isinstance(value, PSDateTime):  # pypsrp keeps the text sent; psrpcore parsed it: write it back
        return _text(_dotnet_datetime(value), budget)
    if isinstance(value, int):
        budget.spend()
        return int(value)
    if isinstance(value, float):
        budget.spend()
        return float(value)
    if isinstance(value, uuid.UUID):
        return _text(str(value), budget)
    if isinstance(value, PSList) or isinstance(value, list):
        if len(value) > MAX_LIST_ITEMS:
            raise ShapeError(f"list of {len(value)} items exceeds {MAX_LIST_ITEMS}")
        if names and pypsrp_kind(names) == "object":  # a collection pypsrp does not know: item texts
            budget.spend()
            return [_readable(_psrpcore_item_text(item)[:MAX_STRING_CHARS]) for item in value]
        budget.spend()
        return [psrpcore_plain(item, depth + 1, budget) for item in value]
    if isinstance(value, PSDict) or isinstance(value, dict):
        budget.spend()
        return {str(psrpcore_plain(k, depth + 1, budget))[:256]: psrpcore_plain(v, depth + 1, budget)
                for k, v in list(value.items())[:MAX_LIST_ITEMS]}
    if isinstance(value, PSObject):
        budget.spend()
        props: dict[str, Any] = {}
        for prop in [*meta.adapted_properties, *meta.extended_properties]:
            props[prop.name[:256]] = psrpcore_plain(prop.get_value(value), depth + 1, budget)
        text = meta.to_string
        return PlainObject(props, _readable(str(text)[:MAX_STRING_CHARS]) if text is not None else None)
    return _text(str(value), budget)  # PSVersion, PSTimeSpan... (their text)


def _psrpcore_item_text(item: Any) -> str:
    meta = getattr(item, "PSObject", None)
    if isinstance(item, (str, int, float)) and not isinstance(item, bool):
        return str(item)
    if meta is not None and meta.to_string is not None:
        return str(meta.to_string)
    return str(item)


def _dotnet_datetime(value: Any) -> str:
    """A psrpcore DateTime as .NET's round-trip text (``o``), which is what Windows sends."""
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = value.microsecond * 10 + getattr(value, "nanosecond", 0) // 100 % 10
    if fraction:
        text += f".{fraction:07d}"
    offset = value.utcoffset()
    if offset is None:
        return text
    if not offset:
        return text + "Z"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{text}{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
