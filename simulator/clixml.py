"""CLIXML files (Export-Clixml) turned into the objects a server sends over PowerShell remoting.

Used to replay an administrator's own captures (``replay:`` in a scenario, ``simulator/replay.py``)
and by the tests that keep the simulator's answers equal to the real captures. What "as remoting
sends it" means here, and where each rule comes from:

- **Type names.** PowerShell's serializer writes the type names the object holds
  (``InternalSerializer.WriteStartOfPSObject`` writes ``InternalTypeNames``); the *receiving*
  deserializer prepends ``Deserialized.`` (``Deserializer.AddDeserializationPrefix``). Both are in
  PowerShell's source (github.com/PowerShell/PowerShell, src/System.Management.Automation/engine/
  serialization.cs). So a live object on a server goes out as ``Microsoft.Exchange...ExchangeCertificate``
  and an Export-Clixml of what a client received reads ``Deserialized.Microsoft.Exchange...``
  (../shared/captures/exchange/wire). :func:`wire_type_names` gives the names as they travel: a
  capture's ``Deserialized.`` prefixes are the client's, and are removed. pypsrp keeps names as they
  arrive; PowerShell clients show them with the prefix.
- **Capture-only notes.** ``PSComputerName``, ``RunspaceId`` and ``PSShowComputerName`` are added
  by the client (Invoke-Command / implicit remoting) to what it received; they are dropped from the
  top-level objects (../shared/captures/README.md).
- **Depth.** When the depth runs out PowerShell writes a complex object as its ToString, as a string,
  and still writes lists and dictionaries as lists, with their items at the same depth
  (``InternalSerializer.WriteOneObject`` -> ``HandlePSObjectAsString``, ``HandleKnownContainerTypes``).
  Export-Clixml's default depth is 2 and the real captures show Exchange's nested objects (ADObjectId,
  ExchangeObjectVersion, enums) with their properties at that depth, as Exchange's endpoint sends them
  to its own shell (it rehydrates them); pypsrp's own tests model an Exchange Online answer the same
  way (an ADObjectId with its properties, tests/test_serializer.py, from jborean93/pypsrp issue 3).
  A capture deeper than that (``Export-Clixml -Depth 5``) is cut at depth 2: deeper objects become
  their ToString.
- Everything else is kept as written: element types (``S``, ``B``, ``I32``, ``DT``, ``BA``...),
  enums as objects with ToString and the number, ``Nil``, lists with their type names, references
  between properties of one object (``Ref``), DateTimes with the digits and offset the file has.

XML is parsed with defusedxml; a file that is not CLIXML, or hostile, is a :class:`CaptureError`
naming the file.
"""

from __future__ import annotations

import base64
import dataclasses
import decimal
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from psrpcore.types import (
    PSByte,
    PSChar,
    PSDecimal,
    PSDict,
    PSDouble,
    PSGuid,
    PSIEnumerable,
    PSInt,
    PSInt16,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSQueue,
    PSSByte,
    PSSingle,
    PSStack,
    PSString,
    PSUInt,
    PSUInt16,
    PSUInt64,
    PSUri,
    PSVersion,
)

from simulator.wire_values import (
    EnumFactory,
    datetime_value,
    decode_string,
    duration_value,
    shown,
)

NS = "{http://schemas.microsoft.com/powershell/2004/04}"
CAPTURE_ONLY_NOTES = ("PSComputerName", "RunspaceId", "PSShowComputerName")
DESERIALIZED = "Deserialized."
WIRE_DEPTH = 2
MAX_CAPTURE_BYTES = 64 * 1024 * 1024
_CONTAINERS = ("LST", "IE", "STK", "QUE", "DCT")


class CaptureError(ValueError):
    """A capture file that cannot be replayed; the message names the file and what is wrong."""


def wire_type_names(names: Iterable[str]) -> list[str]:
    """Type names as a server sends them: without the ``Deserialized.`` its clients add."""
    return [name[len(DESERIALIZED):] if name.startswith(DESERIALIZED) else name for name in names]


def _text(el: Element) -> str:
    return el.text or ""


_PRIMITIVES: dict[str, Any] = {
    "S": lambda el: PSString(decode_string(el.text)),
    "B": lambda el: _text(el).strip().lower() == "true",
    "I32": lambda el: PSInt(int(_text(el))),
    "I64": lambda el: PSInt64(int(_text(el))),
    "I16": lambda el: PSInt16(int(_text(el))),
    "U16": lambda el: PSUInt16(int(_text(el))),
    "U32": lambda el: PSUInt(int(_text(el))),
    "U64": lambda el: PSUInt64(int(_text(el))),
    "By": lambda el: PSByte(int(_text(el))),
    "SB": lambda el: PSSByte(int(_text(el))),
    "Sg": lambda el: PSSingle(float(_text(el))),
    "Db": lambda el: PSDouble(float(_text(el))),
    "D": lambda el: PSDecimal(decimal.Decimal(_text(el))),
    "C": lambda el: PSChar(int(_text(el))),
    "DT": lambda el: datetime_value(_text(el)),
    "TS": lambda el: duration_value(_text(el)),
    "G": lambda el: PSGuid(uuid.UUID(_text(el).strip())),
    "URI": lambda el: PSUri(decode_string(el.text)),
    "Version": lambda el: PSVersion(_text(el).strip()),
    "BA": lambda el: base64.b64decode(_text(el), validate=False),
    "XD": lambda el: PSString(decode_string(el.text)),
    "SBK": lambda el: PSString(decode_string(el.text)),
    # A SecureString is encrypted with the capturing session's key: it cannot be replayed.
    "SS": lambda el: None,
}
_ENUM_BASES = {"I32": PSInt, "I64": PSInt64, "I16": PSInt16, "U16": PSUInt16, "U32": PSUInt, "U64": PSUInt64,
               "By": PSByte, "SB": PSSByte}


# ------------------------------------------------------------ captures


@dataclasses.dataclass
class Capture:
    """An Export-Clixml file: its top-level elements and the document-wide TN/Obj reference maps."""

    path: Path
    elements: list[Element]
    type_names: dict[str, list[str]]
    objects: dict[str, Element]

    def to_wire(self, depth: int = WIRE_DEPTH) -> list[Any]:
        """The file's objects as psrpcore values, as remoting sends them (see the module docstring).
        Fresh objects on every call: answers never share state."""
        return [_Converter(self).top(element, depth) for element in self.elements]

    def __len__(self) -> int:
        return len(self.elements)


def load_capture(path: Path, where: str = "") -> Capture:
    """Read and check an Export-Clixml file; CaptureError names ``where`` and the file."""
    label = f"{where}: {path}" if where else str(path)
    try:
        size = path.stat().st_size
    except OSError as err:
        raise CaptureError(f"{label}: cannot read the capture ({err.strerror or err})") from None
    if not path.is_file():
        raise CaptureError(f"{label}: not a file")
    if size > MAX_CAPTURE_BYTES:
        raise CaptureError(f"{label}: {size} bytes, more than the {MAX_CAPTURE_BYTES} a capture may have")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise CaptureError(f"{label}: cannot read the capture ({err.strerror or err})") from None
    try:
        root = SafeET.fromstring(data)
    except DefusedXmlException as err:
        raise CaptureError(f"{label}: refused hostile XML ({type(err).__name__}: {err})") from None
    except ParseError as err:
        raise CaptureError(f"{label}: not XML, so not an Export-Clixml file ({err})") from None
    if root.tag != f"{NS}Objs":
        raise CaptureError(f"{label}: not CLIXML: the root element is <{root.tag.replace(NS, '')}>, "
                           "Export-Clixml writes <Objs> in the PowerShell namespace")
    for element in root.iter():
        if not isinstance(element.tag, str) or not element.tag.startswith(NS):
            raise CaptureError(f"{label}: not CLIXML: element <{element.tag}> is outside the PowerShell namespace")
        element.tag = element.tag[len(NS):]
    type_names = {tn.get("RefId", ""): [decode_string(t.text) for t in tn] for tn in root.iter("TN")}
    objects = {obj.get("RefId", ""): obj for obj in root.iter("Obj") if obj.get("RefId") is not None}
    capture = Capture(path, list(root), type_names, objects)
    try:
        capture.to_wire()  # every problem now, at load, not in the middle of an answer
    except CaptureError as err:
        raise CaptureError(f"{label}: {err}") from None
    except (ValueError, TypeError, KeyError) as err:
        raise CaptureError(f"{label}: unreadable value ({type(err).__name__}: {err})") from None
    return capture


class _Converter:
    """One top-level object at a time: Ref and enum bookkeeping are per answer object."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self.done: dict[str, Any] = {}
        self.enums = EnumFactory()

    def top(self, element: Element, depth: int) -> Any:
        return self.value(element, depth, top=True)

    def value(self, el: Element, depth: int, top: bool = False) -> Any:
        tag = el.tag
        if tag == "Nil":
            return None
        if tag == "Ref":
            ref = el.get("RefId", "")
            if ref in self.done:
                return self.done[ref]
            target = self.capture.objects.get(ref)
            if target is None:
                raise CaptureError(f"<Ref RefId={ref!r}> names no object of the file")
            return self.obj(target, depth, top=False)
        if tag == "Obj":
            return self.obj(el, depth, top)
        convert = _PRIMITIVES.get(tag)
        if convert is None:
            raise CaptureError(f"unknown CLIXML element <{tag}>")
        return convert(el)

    def names(self, el: Element) -> list[str]:
        tn = el.find("TN")
        if tn is not None:
            return [decode_string(t.text) for t in tn]
        ref = el.find("TNRef")
        if ref is not None:
            found = self.capture.type_names.get(ref.get("RefId", ""))
            if found is None:
                raise CaptureError(f"<TNRef RefId={ref.get('RefId')!r}> names no <TN> of the file")
            return found
        return []

    def obj(self, el: Element, depth: int, top: bool) -> Any:
        ref = el.get("RefId")
        if ref is not None and ref in self.done:
            return self.done[ref]
        result = self._obj(el, depth, top)
        if ref is not None:
            self.done[ref] = result
        return result

    def _obj(self, el: Element, depth: int, top: bool) -> Any:
        names = self.names(el)
        text = el.find("ToString")
        to_string = decode_string(text.text) if text is not None else None
        container = next((c for c in el if c.tag in _CONTAINERS), None)
        primitive = next((c for c in el if c.tag in _PRIMITIVES), None)
        if container is not None:
            return self._container(el, container, names, depth)
        if primitive is not None and "System.Enum" in names:
            if depth <= 0:
                return PSString(to_string or "")
            base = _ENUM_BASES.get(primitive.tag, PSInt)
            return self.enums(wire_type_names(names)[0], to_string or "", int(_text(primitive)), base)
        if primitive is not None:
            # A primitive with notes (e.g. Get-Content's lines): the value, plus its MS.
            value = self.value(primitive, depth)
            if isinstance(value, PSObject):
                self._members(value, el, depth, top, adapted=False)
            return value
        if depth <= 0:
            return PSString(to_string or "")
        obj = PSObject()
        obj.PSObject.type_names = wire_type_names(names)
        if to_string is not None:
            obj.PSObject.to_string = shown(to_string)
        self._members(obj, el, depth, top, adapted=True)
        return obj

    def _members(self, obj: Any, el: Element, depth: int, top: bool, adapted: bool) -> None:
        if adapted:
            props = el.find("Props")
            for prop in props if props is not None else ():
                obj.PSObject.adapted_properties.append(
                    PSNoteProperty(decode_string(prop.get("N")), self.value(prop, depth - 1)))
        notes = el.find("MS")
        for note in notes if notes is not None else ():
            name = decode_string(note.get("N"))
            if note.tag == "MS" or not name:  # a member set (PSStandardMembers...): not data
                continue
            if top and name in CAPTURE_ONLY_NOTES:
                continue
            obj.PSObject.extended_properties.append(PSNoteProperty(name, self.value(note, depth - 1)))

    def _container(self, el: Element, container: Element, names: list[str], depth: int) -> Any:
        result: Any
        if container.tag == "DCT":
            result = PSDict()
            for entry in container:
                key = entry.find("*[@N='Key']")
                value = entry.find("*[@N='Value']")
                if key is None:
                    raise CaptureError("a dictionary entry <En> without a Key")
                result[self.value(key, depth)] = None if value is None else self.value(value, depth)
        else:
            items = [self.value(item, depth) for item in container]
            if container.tag == "QUE":
                result = _queue(items)
            elif container.tag == "STK":
                result = PSStack(items)
            elif container.tag == "IE":
                result = PSIEnumerable(items)
            else:
                result = PSList(items)
        result.PSObject.type_names = wire_type_names(names)
        notes = el.find("MS")
        for note in notes if notes is not None else ():
            name = decode_string(note.get("N"))
            if note.tag != "MS" and name and name not in CAPTURE_ONLY_NOTES:
                result.PSObject.extended_properties.append(PSNoteProperty(name, self.value(note, depth - 1)))
        return result


def _queue(items: list[Any]) -> PSQueue:
    queue = PSQueue()
    for item in items:
        queue.put(item)
    return queue
