"""Bounded XML parsing for everything a remote server sends.

A server's answer is untrusted. The standard library's ``ElementTree.fromstring`` expands entities
declared in a DTD, so a few hundred bytes can make it build tens of megabytes ("billion laughs"),
and it has no limit on nesting or on the number of elements. :func:`bounded_fromstring` refuses any
DTD, caps the nesting depth and the number of elements, and raises :class:`UnsafeXML` naming what
was refused. Malformed XML still raises ``ParseError``, as before. No honest answer has a DTD: WSMan
messages are SOAP 1.2 envelopes, which must not contain a document type declaration (W3C SOAP 1.2
Part 1, section 5), and the CLIXML of PSRP messages (MS-PSRP 2.2.5) defines no DTD.
"""

from __future__ import annotations

from typing import Any
from xml.etree.ElementTree import Element, TreeBuilder

import defusedxml
from defusedxml.ElementTree import DefusedXMLParser

# WSMan envelopes nest about 8 deep, PSRP CLIXML objects about 4 per serialisation level (Exchange
# answers are serialised 2 levels deep, ../shared/captures): 64 leaves room and stops a recursion bomb
# before pypsrp's recursive deserialiser reaches Python's recursion limit.
MAX_XML_DEPTH = 64
# One WSMan response is at most pypsrp's MaxEnvelopeSize (150 KiB) on a real server, a few thousand
# elements; one CLIXML message holds one output object. 200,000 elements is far above both and keeps
# a tree at tens of megabytes at worst (a 32 MiB answer of empty elements would be 4 million).
MAX_XML_ELEMENTS = 200_000


class UnsafeXML(ValueError):
    """An answer's XML was refused: a DTD or entity, or past the depth or element bound."""


class _BoundedBuilder(TreeBuilder):
    """Builds the tree like the standard one, counting depth and elements as they open."""

    def __init__(self, max_depth: int, max_elements: int) -> None:
        super().__init__()
        self._max_depth = max_depth
        self._max_elements = max_elements
        self._depth = 0
        self._elements = 0

    def start(self, tag: Any, attrs: Any) -> Element:
        self._depth += 1
        self._elements += 1
        if self._depth > self._max_depth:
            raise UnsafeXML(f"XML nested deeper than {self._max_depth} elements")
        if self._elements > self._max_elements:
            raise UnsafeXML(f"XML with more than {self._max_elements} elements")
        return super().start(tag, attrs)

    def end(self, tag: Any) -> Element:
        self._depth -= 1
        return super().end(tag)


def bounded_fromstring(
    text: str | bytes, max_depth: int = MAX_XML_DEPTH, max_elements: int = MAX_XML_ELEMENTS
) -> Element:
    """Parse one XML document like ``ElementTree.fromstring``, within the bounds above."""
    builder = _BoundedBuilder(max_depth, max_elements)
    parser = DefusedXMLParser(target=builder, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    try:
        parser.feed(text)
        return parser.close()
    except defusedxml.DTDForbidden:
        raise UnsafeXML("XML with a DTD (document type declaration), which can declare expanding "
                        "entities; WSMan and CLIXML never carry one") from None
    except defusedxml.DefusedXmlException as exc:  # entities, external references
        raise UnsafeXML(f"XML with {type(exc).__name__}") from None
