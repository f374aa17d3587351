"""Decode a record's BinXML into a small element tree: templates, template-less records, nested BinXML.

python-evtx renders the templated records (``pyevtx``); this decoder reads what it cannot: records
written without templates (exports, events forwarded by Windows Event Collector: their elements
carry no dependency identifier, and python-evtx always reads one), and templated records python-evtx
fails on (``render``). It follows MS-EVEN6 2.2.12 (BinXml) and libevtx's notes; it builds no XML text.

Values stay raw (``Value``: type and bytes) until a caller asks for text, so a FILETIME is read as
the exact 64-bit tick count. Every read is bounded by the chunk, nesting is bounded, and every token
consumes at least one byte, so a damaged record raises (``BinXmlError`` or a struct/index error,
caught by the caller) and never loops.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Union

MAX_DEPTH = 32  # elements inside elements, templates and nested BinXML together; Windows uses about 6
MAX_NODES = 50_000  # elements one record may produce (a 64 KiB chunk holds a few thousand honestly)
EPOCH_1601 = datetime(1601, 1, 1, tzinfo=timezone.utc)

# Value types (MS-EVEN6 2.2.18)
T_NULL, T_WSTRING, T_ASTRING = 0x00, 0x01, 0x02
T_FILETIME, T_SYSTIME, T_SID, T_BXML = 0x11, 0x12, 0x13, 0x21
T_ARRAY = 0x80
_INTS = {0x03: "<b", 0x04: "<B", 0x05: "<h", 0x06: "<H", 0x07: "<i", 0x08: "<I", 0x09: "<q", 0x0A: "<Q"}
_FIXED_SIZES = {0x03: 1, 0x04: 1, 0x05: 2, 0x06: 2, 0x07: 4, 0x08: 4, 0x09: 8, 0x0A: 8, 0x0B: 4, 0x0C: 8,
                0x0D: 4, 0x0F: 16, 0x11: 8, 0x12: 16, 0x14: 4, 0x15: 8}
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}


class BinXmlError(Exception):
    pass


@dataclass(frozen=True)
class Value:
    """A typed value as stored (substitution values, text of template-less records)."""

    vtype: int
    raw: bytes


@dataclass(frozen=True)
class Sub:
    """A substitution slot in a template definition."""

    index: int
    vtype: int
    optional: bool


Part = Union[str, Value, Sub]


@dataclass
class Element:
    name: str
    attrs: dict[str, list] = field(default_factory=dict)  # name -> parts
    children: list = field(default_factory=list)  # Element or parts

    def child(self, name: str) -> "Element | None":
        for c in self.children:
            if isinstance(c, Element) and c.name == name:
                return c
        return None

    def elements(self) -> list["Element"]:
        return [c for c in self.children if isinstance(c, Element)]

    def parts(self) -> list:
        return [c for c in self.children if not isinstance(c, Element)]

    def text(self) -> str:
        return parts_text(self.parts())

    def attr(self, name: str) -> list:
        return self.attrs.get(name, [])


class ChunkDecoder:
    """Decodes the records of one chunk; names and template definitions are read once per chunk."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self._names: dict[int, str] = {}
        self._templates: dict[int, list] = {}
        self._nested: dict[tuple[int, int], list] = {}  # BinXML values, by (offset, size)
        self._nodes = 0

    def record(self, offset: int, size: int) -> Element:
        """The root element of the record at ``offset`` (chunk-relative) of ``size`` bytes."""
        self._nested.clear()  # values lie inside the record: never shared between records
        self._nodes = 0
        nodes = self._fragment(offset + 0x18, offset + size - 4, in_template=False, depth=0)[0]
        roots = [n for n in nodes if isinstance(n, Element)]
        if not roots:
            raise BinXmlError("no element in the record")
        return roots[0]

    # --- token stream -------------------------------------------------------------------------------
    def _fragment(self, pos: int, end: int, in_template: bool, depth: int) -> tuple[list, int]:
        """Nodes up to an end-of-stream token (or ``end``), and the position after it."""
        if depth > MAX_DEPTH:
            raise BinXmlError("BinXML nested too deep")
        buf, nodes = self.buf, []
        while pos < end:
            token = buf[pos]
            kind = token & 0x0F
            if token == 0x00:
                return nodes, pos + 1
            if token == 0x0F:  # fragment header: token, major, minor, flags
                pos += 4
            elif token == 0x0C:
                instance, pos = self._template_instance(pos, end, depth)
                nodes.extend(instance)
            elif kind == 0x01:
                element, pos = self._element(pos, end, in_template, depth)
                nodes.append(element)
            else:
                raise BinXmlError(f"unexpected token 0x{token:02x} at 0x{pos:x}")
        return nodes, pos

    def _count(self) -> None:
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise BinXmlError(f"more than {MAX_NODES} elements in one record")

    def _element(self, pos: int, end: int, in_template: bool, depth: int) -> tuple[Element, int]:
        if depth > MAX_DEPTH:
            raise BinXmlError("BinXML nested too deep")
        self._count()
        buf = self.buf
        has_attrs = buf[pos] & 0x40
        pos += 3 if in_template else 1  # a dependency identifier only inside template definitions
        pos += 4  # data size
        name, pos = self._name(pos)
        element = Element(name)
        if has_attrs:
            pos += 4  # attribute list size
            while pos < end and buf[pos] & 0x0F == 0x06:
                attr, pos = self._name(pos + 1)
                parts, pos = self._content(pos, end, in_template, depth, attribute=True)
                element.attrs[attr] = parts
        token = buf[pos]
        if token == 0x03:  # close empty element
            return element, pos + 1
        if token != 0x02:
            raise BinXmlError(f"expected the end of a start tag at 0x{pos:x}, found 0x{token:02x}")
        pos += 1
        while True:
            if pos >= end:
                raise BinXmlError(f"element {name} runs past its record")
            token = buf[pos]
            if token == 0x04:
                return element, pos + 1
            if token & 0x0F == 0x01:
                child, pos = self._element(pos, end, in_template, depth + 1)
                element.children.append(child)
            elif token == 0x0C:
                instance, pos = self._template_instance(pos, end, depth + 1)
                element.children.extend(instance)
            else:
                parts, pos = self._content(pos, end, in_template, depth, attribute=False)
                if not parts:
                    raise BinXmlError(f"unexpected token 0x{token:02x} in element {name} at 0x{pos:x}")
                element.children.extend(parts)

    def _content(self, pos: int, end: int, in_template: bool, depth: int, attribute: bool) -> tuple[list, int]:
        """Text-like tokens (values, substitutions, CDATA, references) up to any other token."""
        buf, parts = self.buf, []
        while pos < end:
            token = buf[pos]
            kind = token & 0x0F
            if kind == 0x05:  # value text: a type byte, then a counted UTF-16 string
                vtype = buf[pos + 1]
                if vtype != T_WSTRING:
                    raise BinXmlError(f"value text of type 0x{vtype:02x} at 0x{pos:x}")
                count = struct.unpack_from("<H", buf, pos + 2)[0]
                parts.append(_utf16(buf[pos + 4:pos + 4 + 2 * count]))
                pos += 4 + 2 * count
            elif token in (0x0D, 0x0E):
                if not in_template:
                    raise BinXmlError(f"substitution outside a template at 0x{pos:x}")
                index, vtype = struct.unpack_from("<HB", buf, pos + 1)
                parts.append(Sub(index, vtype, token == 0x0E))
                pos += 4
            elif kind == 0x07:  # CDATA
                count = struct.unpack_from("<H", buf, pos + 1)[0]
                parts.append(_utf16(buf[pos + 3:pos + 3 + 2 * count]))
                pos += 3 + 2 * count
            elif kind == 0x08:  # character reference
                parts.append(chr(struct.unpack_from("<H", buf, pos + 1)[0]))
                pos += 3
            elif kind == 0x09:  # entity reference
                name, pos = self._name(pos + 1)
                parts.append(_ENTITIES.get(name, f"&{name};"))
            elif token in (0x0A, 0x0B) and not attribute:  # processing instruction: ignored
                if token == 0x0A:
                    pos = self._name(pos + 1)[1]
                else:
                    pos += 3 + 2 * struct.unpack_from("<H", buf, pos + 1)[0]
            else:
                break
        return parts, pos

    def _name(self, pos: int) -> tuple[str, int]:
        """A name reference at ``pos``; its definition follows inline when it points just past itself."""
        offset = struct.unpack_from("<I", self.buf, pos)[0]
        pos += 4
        name = self._name_at(offset)
        if offset == pos:
            pos += 8 + 2 * len(name) + 2
        return name, pos

    def _name_at(self, offset: int) -> str:
        name = self._names.get(offset)
        if name is None:
            count = struct.unpack_from("<H", self.buf, offset + 6)[0]
            raw = self.buf[offset + 8:offset + 8 + 2 * count]
            if len(raw) != 2 * count:
                raise BinXmlError(f"name at 0x{offset:x} runs past the chunk")
            name = self._names[offset] = raw.decode("utf-16-le", "replace")
        return name

    # --- templates ----------------------------------------------------------------------------------
    def _template_instance(self, pos: int, end: int, depth: int) -> tuple[list, int]:
        if depth > MAX_DEPTH:
            raise BinXmlError("BinXML nested too deep")
        buf = self.buf
        definition = struct.unpack_from("<I", buf, pos + 6)[0]
        pos += 10
        if definition == pos:  # the definition follows inline: skip it (next, GUID, size, body)
            pos += 24 + struct.unpack_from("<I", buf, pos + 20)[0]
        count = struct.unpack_from("<I", buf, pos)[0]
        pos += 4
        if pos + 4 * count > end:
            raise BinXmlError(f"{count} substitution values do not fit in the record")
        descriptors = [struct.unpack_from("<HB", buf, pos + 4 * i) for i in range(count)]
        pos += 4 * count
        values = []
        for size, vtype in descriptors:
            if pos + size > end:
                raise BinXmlError("a substitution value runs past its record")
            values.append((vtype, pos, size))
            pos += size
        body = self._template(definition, depth)
        return self._instantiate(body, values, depth), pos

    def _template(self, offset: int, depth: int) -> list:
        body = self._templates.get(offset)
        if body is None:
            if not 0 < offset <= len(self.buf) - 24:
                raise BinXmlError(f"template offset 0x{offset:x} outside the chunk")
            size = struct.unpack_from("<I", self.buf, offset + 20)[0]
            start = offset + 24
            if start + size > len(self.buf):
                raise BinXmlError(f"template at 0x{offset:x} runs past the chunk")
            self._templates[offset] = []  # a template that (through damage) contains itself is empty
            try:
                body = self._templates[offset] = self._fragment(start, start + size, True, depth + 1)[0]
            except Exception:
                del self._templates[offset]  # not cached: the next record using it tries again, from its depth
                raise
        return body

    def _instantiate(self, nodes: list, values: list, depth: int) -> list:
        out = []
        for node in nodes:
            if isinstance(node, Element):
                self._count()
                copy = Element(node.name)
                for name, parts in node.attrs.items():
                    filled = self._fill(parts, values, depth, attribute=True)
                    if filled or not all(isinstance(p, Sub) and p.optional for p in parts):
                        copy.attrs[name] = filled
                copy.children = self._instantiate(node.children, values, depth)
                out.append(copy)
            else:
                out.extend(self._fill([node], values, depth, attribute=False))
        return out

    def _fill(self, parts: list, values: list, depth: int, attribute: bool) -> list:
        out = []
        for part in parts:
            if not isinstance(part, Sub):
                out.append(part)
                continue
            if part.index >= len(values):
                continue  # a missing value renders as nothing, as Windows does
            vtype, at, size = values[part.index]
            if vtype == T_NULL or size == 0:
                continue
            if vtype == T_BXML:
                if not attribute:
                    # Cached: a damaged template may name one value many times, nested many deep.
                    nested = self._nested.get((at, size))
                    if nested is None:
                        nested = self._nested[(at, size)] = self._fragment(at, at + size, False, depth + 1)[0]
                    out.extend(nested)
                continue
            out.append(Value(vtype, self.buf[at:at + size]))
        return out


# --- values as text -----------------------------------------------------------------------------------

def _utf16(raw: bytes) -> str:
    return raw.decode("utf-16-le", "replace")


def parts_text(parts) -> str:
    return "".join(p if isinstance(p, str) else value_text(p) for p in parts if not isinstance(p, Element))


def filetime_text(ticks: int) -> str:
    """Windows' own form, to the 100 ns tick: 2024-03-01T08:00:00.1234567Z."""
    when = EPOCH_1601 + timedelta(microseconds=ticks // 10)
    return when.strftime("%Y-%m-%dT%H:%M:%S") + f".{when.microsecond:06d}{ticks % 10}Z"


def systemtime_ticks(raw: bytes) -> int:
    year, month, _dow, day, hour, minute, second, ms = struct.unpack_from("<8H", raw)
    when = datetime(year, month, day, hour, minute, second, ms * 1000, tzinfo=timezone.utc)
    delta = when - EPOCH_1601
    return (delta.days * 86400 + delta.seconds) * 10_000_000 + delta.microseconds * 10


def value_text(value: Value) -> str:
    vtype, raw = value.vtype, value.raw
    if vtype & T_ARRAY:
        return ", ".join(array_items(value))
    if vtype == T_WSTRING:
        return _utf16(raw).rstrip("\0")
    if vtype == T_ASTRING:
        return raw.decode("cp1252", "replace").rstrip("\0")
    if vtype in _INTS:
        return str(struct.unpack_from(_INTS[vtype], raw)[0])
    if vtype in (0x0B, 0x0C):
        return repr(struct.unpack_from("<f" if vtype == 0x0B else "<d", raw)[0])
    if vtype == 0x0D:
        return "true" if struct.unpack_from("<I", raw)[0] else "false"
    if vtype == 0x0F:
        a, b, c = struct.unpack_from("<IHH", raw)
        return f"{{{a:08x}-{b:04x}-{c:04x}-{raw[8:10].hex()}-{raw[10:16].hex()}}}"
    if vtype in (0x10, 0x14, 0x15):
        return hex(int.from_bytes(raw, "little"))
    if vtype == T_FILETIME:
        return filetime_text(struct.unpack_from("<Q", raw)[0])
    if vtype == T_SYSTIME:
        return filetime_text(systemtime_ticks(raw))
    if vtype == T_SID:
        count = raw[1]
        subs = struct.unpack_from(f"<{count}I", raw, 8)
        return "-".join(["S", str(raw[0]), str(int.from_bytes(raw[2:8], "big")), *map(str, subs)])
    return raw.hex().upper()  # binary and anything else


def array_items(value: Value) -> list[str]:
    """The items of an array value (a string array is NUL-separated; others have a fixed size)."""
    base, raw = value.vtype & ~T_ARRAY, value.raw
    if base == T_WSTRING:
        items = _utf16(raw).split("\0")
        return items[:-1] if items and items[-1] == "" else items
    if base == T_ASTRING:
        items = raw.decode("cp1252", "replace").split("\0")
        return items[:-1] if items and items[-1] == "" else items
    size = _FIXED_SIZES.get(base)
    if not size:
        return [raw.hex().upper()]
    return [value_text(Value(base, raw[i:i + size])) for i in range(0, len(raw) - size + 1, size)]
