"""An XML bomb in a remote answer is refused before it expands, by the real pypsrp client.

A hostile loopback server answers the WSMan Create (the first request of a run) with a few hundred
bytes whose DTD declares nested entities ("billion laughs"): the standard library's parser would
expand them to megabytes. The run must fail with kind ``shape`` and say why; the same bound holds
where pypsrp parses an HTTP 500 fault and a PSRP message, and in the project's own CLIXML parsing.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from pypsrp.serializer import Serializer

from collectors.contract import ErrorKind, ShapeError
from collectors.sources import pypsrp_parsing
from collectors.sources.normalize import to_plain
from collectors.sources.safe_xml import (
    MAX_XML_DEPTH,
    MAX_XML_ELEMENTS,
    UnsafeXML,
    bounded_fromstring,
)
from tests.integration.test_remoting_hostile import CraftedServer, _run_against

SOAP = "http://www.w3.org/2003/05/soap-envelope"


def laughs(levels: int = 6, fan: int = 6, width: int = 100, root: str = "s:Envelope") -> str:
    """Nested entities: ``width * fan**levels`` characters once expanded (4.7 MB with the defaults)."""
    entities = ['<!ENTITY a0 "' + "x" * width + '">']
    entities += [f'<!ENTITY a{i} "' + f"&a{i - 1};" * fan + '">' for i in range(1, levels + 1)]
    return (f"<!DOCTYPE {root} [{''.join(entities)}]>"
            f'<s:Envelope xmlns:s="{SOAP}"><s:Header/><s:Body>&a{levels};</s:Body></s:Envelope>')


BOMB = laughs()


def test_the_bomb_is_small_and_would_expand_to_megabytes_without_the_bound():
    assert len(BOMB) < 600
    assert len(ET.fromstring(BOMB).find(f"{{{SOAP}}}Body").text) == 100 * 6**6  # what the bound prevents


def _served(status: bytes, body: str):
    data = body.encode()
    head = (b"HTTP/1.1 " + status + b"\r\nContent-Type: application/soap+xml;charset=UTF-8\r\n"
            b"Content-Length: %d\r\n\r\n" % len(data))
    server = CraftedServer(head, data)
    try:
        return _run_against(server)
    finally:
        server.close()


def test_a_bomb_in_a_wsman_answer_fails_the_run_with_kind_shape():
    assert pypsrp_parsing.installed()
    error = _served(b"200 OK", BOMB)
    assert error.kind is ErrorKind.SHAPE
    assert "answer refused: XML with a DTD" in str(error) and "127.0.0.1" in str(error), str(error)


def test_a_bomb_in_a_wsman_fault_fails_the_run_with_kind_shape():
    # pypsrp parses a 500's body looking for a WSMan fault, and falls back only on ParseError.
    error = _served(b"500 Internal Server Error", BOMB)
    assert error.kind is ErrorKind.SHAPE and "answer refused: XML with a DTD" in str(error), str(error)


def test_a_deep_answer_fails_the_run_with_kind_shape():
    deep = f'<s:Envelope xmlns:s="{SOAP}"><s:Body>' + "<a>" * 200 + "</a>" * 200 + "</s:Body></s:Envelope>"
    error = _served(b"200 OK", deep)
    assert error.kind is ErrorKind.SHAPE and f"nested deeper than {MAX_XML_DEPTH}" in str(error), str(error)


def test_a_bomb_in_a_psrp_message_is_refused_by_pypsrps_deserialiser():
    # Serializer.deserialize hands unparsable text back as a string; a refused one must raise instead.
    with pytest.raises(UnsafeXML, match="DTD"):
        Serializer().deserialize(laughs(root="Obj").replace("s:Envelope", "Obj"))


def test_bounds_count_elements_and_depth_and_keep_good_xml():
    many = "<r>" + "<i/>" * (MAX_XML_ELEMENTS + 1) + "</r>"
    with pytest.raises(UnsafeXML, match=f"more than {MAX_XML_ELEMENTS} elements"):
        bounded_fromstring(many)
    assert len(bounded_fromstring("<r>" + "<i/>" * (MAX_XML_ELEMENTS - 1) + "</r>")) == MAX_XML_ELEMENTS - 1
    nested = "<a>" * MAX_XML_DEPTH + "</a>" * MAX_XML_DEPTH
    assert bounded_fromstring(nested).tag == "a"
    with pytest.raises(ET.ParseError):  # malformed stays a ParseError, as pypsrp expects
        bounded_fromstring("<a><b></a>")


def test_a_bomb_in_an_exchange_multi_valued_property_fails_that_answer_object():
    class MultiValued:  # what pypsrp hands over for a MultiValuedProperty it cannot deserialise
        property_sets = [laughs(root="LST").replace('<s:Envelope xmlns:s="' + SOAP + '"><s:Header/><s:Body>', "<LST>")
                         .replace("</s:Body></s:Envelope>", "</LST>")]
    with pytest.raises(ShapeError, match="unreadable multi-valued property: UnsafeXML"):
        to_plain(MultiValued())
