"""Render a templated record with python-evtx, the product's parser, into the project's element tree.

python-evtx (``Evtx``) parses the record's BinXML (template instance, template definition, names,
the substitution value table, nested BinXML) and renders it to XML text, which is parsed back
(defusedxml) into ``binxml.Element``, the tree ``event.event_from_root`` reads, so both renderers
yield the same event. Where python-evtx 0.8.1 is wrong, slow or unsafe, the project works around it:
- values are given to the renderer as text made from their raw bytes, as Windows writes it
  (``_prepare``): TimeCreated to the 100 ns tick, not through a float;
- the template is parsed once per chunk (stock python-evtx parses it again for every record);
- the chunk's string and template tables are loaded without following a chain that loops (the
  stock loaders have no visited set and spin forever), and a name or template missing from them is
  read at its offset;
- nested BinXML deeper than Windows writes, and values running past their record, are refused.
Anything python-evtx raises is the caller's to handle (``render.ChunkRenderer`` falls back to the
decoder).
"""

from __future__ import annotations

import re
import secrets
import struct
from typing import Iterator

import defusedxml.ElementTree as SafeET
from Evtx.Evtx import ChunkHeader, Record
from Evtx.Nodes import BXmlTypeNode, NameStringNode, TemplateNode
from Evtx.Views import render_root_node_with_subs

from collectors.sources.evtx.binxml import T_ARRAY, T_NULL, Element, Value, value_text
from collectors.sources.evtx.layout import CHUNK_HEADER_SIZE, CHUNK_SIZE

MAX_NESTED = 8  # BinXML values inside BinXML values; Windows uses one or two


class Refused(Exception):
    """A record python-evtx would render wrongly: nested deeper than Windows writes, or values
    running past the record."""


class Chunk(ChunkHeader):
    """python-evtx's chunk over one 64 KiB buffer, with cycle-proof, bounded table loading."""

    def __init__(self, buf: bytes):
        super().__init__(buf, 0)

    def template_at(self, root) -> TemplateNode:
        """The template a root node instantiates, from the chunk's cache: parsed once per chunk
        (stock ``RootNode.template()`` parses it again for every record)."""
        return self.templates()[root.template_instance().template_offset()]

    def _chains(self, table: int, buckets: int) -> Iterator[int]:
        seen: set[int] = set()
        for i in range(buckets):
            offset = self.unpack_dword(table + 4 * i)
            while CHUNK_HEADER_SIZE <= offset < CHUNK_SIZE - 8 and offset not in seen:
                seen.add(offset)
                yield offset
                offset = self.unpack_dword(offset)

    def _load_strings(self) -> None:
        if self._strings is None:
            self._strings = _ReadOnMiss(self, NameStringNode)
        for offset in self._chains(0x80, 64):
            try:
                self._strings[offset] = NameStringNode(self._buf, self._offset + offset, self, self)
            except Exception:  # a damaged entry: the record naming it fails on its own
                continue

    def _load_templates(self) -> None:
        if self._templates is None:
            self._templates = _ReadOnMiss(self, TemplateNode)
        for offset in self._chains(0x180, 32):
            if offset < 10 or self.unpack_byte(offset - 10) != 0x0C or self.unpack_dword(offset - 4) != offset:
                continue
            try:
                self._templates[offset] = TemplateNode(self._buf, self._offset + offset, self, self)
            except Exception:
                continue


class _ReadOnMiss(dict):
    """The chunk's names or templates by offset. The chunk's tables are only caches: a record may
    name a string or template defined inline by an earlier record and missing from the table
    (security-bad-string-cache.evtx), and stock python-evtx, which knows only the tables and what it
    has parsed, raises KeyError on it when the earlier record was not rendered. Such an entry is
    read at its offset."""

    def __init__(self, chunk: "Chunk", node_type):
        super().__init__()
        self._chunk, self._node_type = chunk, node_type

    def __missing__(self, offset: int):
        if not isinstance(offset, int) or not CHUNK_HEADER_SIZE <= offset < CHUNK_SIZE - 8:
            raise KeyError(offset)
        node = self[offset] = self._node_type(self._chunk._buf, offset, self._chunk, self._chunk)
        return node


class _Text:
    """A substitution value the renderer takes as text (it calls ``string()`` on what it is given)."""

    def __init__(self, text: str):
        self._text = text

    def string(self) -> str:
        return self._text


class _Root:
    """What python-evtx's renderer needs of a root node: its template (parsed once per chunk, where
    stock python-evtx parses it again for every record) and its substitution values."""

    def __init__(self, template, subs: list):
        self._template, self._subs = template, subs

    def template(self):
        return self._template

    def substitutions(self) -> list:
        return self._subs


class _Nested(BXmlTypeNode):
    """A BinXML value: the renderer recognises it by type and renders its ``root()``."""

    def __init__(self, root: _Root):  # no parsing: python-evtx parsed the original value already
        self._root = root


# Private-use characters around a per-process token: an array value's place in the rendered text.
_TOKEN = secrets.token_hex(4)
_MARK = re.compile("\ue000" + _TOKEN + r"(\d+)\ue001")


def render(chunk: Chunk, offset: int) -> Element:
    """The root element of the templated record at chunk offset ``offset``, rendered by python-evtx."""
    arrays: list[Value] = []
    record = Record(chunk._buf, offset, chunk)
    root = _prepare(chunk, record.root(), offset + record.size() - 4, arrays, 0)
    xml = render_root_node_with_subs(root, root.substitutions())
    return _element(SafeET.fromstring(_xml_safe(xml)), arrays)


def _prepare(chunk: Chunk, node, end: int, arrays: list[Value], depth: int) -> _Root:
    """python-evtx's parse of a root node (template, value table, values), with the values' text
    taken from their raw bytes as Windows writes it (``binxml.value_text``): python-evtx turns a
    FILETIME into a float, zero-pads hex integers, prints binary as base64, splits UTF-16 string
    arrays on byte pairs and loops forever on one of odd length. Arrays are kept raw (a marker
    stands in the text), and BinXML values are prepared the same way, to a bounded depth. A value
    running past its record or its enclosing BinXML value (``end``) is refused: python-evtx would
    take the next bytes as its own."""
    if depth > MAX_NESTED:
        raise Refused("BinXML nested too deep")
    values = node.substitutions()  # python-evtx's parse; raises on a size it cannot account for
    table = node.offset() + node.tag_and_children_length() + 4
    subs: list = []
    for i, value in enumerate(values):
        size, vtype = struct.unpack_from("<HB", chunk._buf, table + 4 * i)
        if value.offset() + size > end:
            raise Refused("a substitution value runs past its record or enclosing value")
        if isinstance(value, BXmlTypeNode):
            subs.append(_Nested(_prepare(chunk, value.root(), value.offset() + size, arrays, depth + 1)))
            continue
        raw = bytes(chunk._buf[value.offset():value.offset() + size])
        if vtype & T_ARRAY:
            arrays.append(Value(vtype, raw))
            subs.append(_Text(f"\ue000{_TOKEN}{len(arrays) - 1}\ue001"))
        else:
            subs.append(_Text("" if vtype == T_NULL or not raw else value_text(Value(vtype, raw))))
    return _Root(chunk.template_at(node), subs)


def _element(node, arrays: list[Value]) -> Element:
    el = Element(_local(node.tag))
    for name, value in node.attrib.items():
        el.attrs[_local(name)] = [value]
    if node.text:
        el.children.extend(_parts(node.text, arrays))
    for child in node:
        el.children.append(_element(child, arrays))
        if child.tail and child.tail.strip():  # python-evtx ends every element with a newline
            el.children.extend(_parts(child.tail, arrays))
    return el


def _parts(text: str, arrays: list[Value]) -> list:
    """Text, with each string array marker swapped back for the array's raw value."""
    if "\ue000" not in text:
        return [text]
    parts: list = []
    at = 0
    for m in _MARK.finditer(text):
        if m.start() > at:
            parts.append(text[at:m.start()])
        index = int(m.group(1))
        parts.append(arrays[index] if index < len(arrays) else m.group(0))
        at = m.end()
    if at < len(text):
        parts.append(text[at:])
    return parts


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


_BAD_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_CHAR_REF = re.compile(r"&#(x[0-9a-fA-F]+|[0-9]+);")


def _xml_safe(xml: str) -> str:
    """python-evtx passes NULs through and writes char references to surrogates, which expat refuses;
    it writes carriage returns as they are, which an XML parser turns into line feeds."""
    def ref(m: re.Match) -> str:
        code = int(m.group(1)[1:], 16) if m.group(1)[0] in "xX" else int(m.group(1))
        ok = (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD
              or 0x10000 <= code <= 0x10FFFF)
        return m.group(0) if ok else ""

    return _CHAR_REF.sub(ref, _BAD_XML_CHARS.sub("", xml)).replace("\r", "&#13;")
