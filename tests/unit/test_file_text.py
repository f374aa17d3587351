"""Get-Content -Raw's answer, as pypsrp 0.9 hands it over, back to the file's text."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape

import pytest
from psrpcore.types import PSNoteProperty, PSString, serialize
from pypsrp.serializer import Serializer

from collectors.contract import ShapeError
from collectors.sources.file_text import (
    FILE_TEXT,
    decode_psrp_string,
    unwrap_extended_string,
)
from collectors.sources.normalize import convert

# CRLF, a control character, a literal "_x000D_", a character outside the BMP and the U+200E trap.
TEXT = ('<?xml version="1.0" encoding="utf-8"?>\r\n<configuration>\x01 _x000D_ \U0001f600'
        '<appSettings><add key="IMCertificateThumbprint" value="\u200e74D4" /></appSettings></configuration>\r\n')
PSPATH = r"Microsoft.PowerShell.Core\FileSystem::C:\Program Files\Microsoft\Exchange Server\V15\web.config"


def psrp_escape(text: str) -> str:
    """How PowerShell writes a string into CLIXML: _x escaped first, then characters XML cannot carry."""
    out = []
    for char in text.replace("_x", "_x005F_x"):
        code = ord(char)
        if code > 0xFFFF:
            high, low = divmod(code - 0x10000, 0x400)
            out.append(f"_x{0xD800 + high:04X}__x{0xDC00 + low:04X}_")
        elif code < 0x20 or 0x7F <= code <= 0x9F:
            out.append(f"_x{code:04X}_")
        else:
            out.append(char)
    return escape("".join(out))


def windows_clixml(text: str) -> str:
    """A string with Get-Content's notes, as Windows serialises it (an extended primitive with type names)."""
    return (
        '<Obj RefId="0"><TN RefId="0"><T>System.String</T><T>System.Object</T></TN>'
        f"<ToString>{psrp_escape(text)}</ToString><S>{psrp_escape(text)}</S>"
        f'<MS><S N="PSPath">{escape(PSPATH)}</S><S N="PSChildName">web.config</S>'
        '<I64 N="ReadCount">1</I64></MS></Obj>'
    )


def test_windows_answer_comes_from_pypsrp_as_raw_clixml_and_is_unwrapped():
    handed_over = Serializer().deserialize(windows_clixml(TEXT))
    assert isinstance(handed_over, str) and handed_over.startswith("<Obj")  # what pypsrp 0.9 does
    assert convert(FILE_TEXT, handed_over) == {"Text": TEXT}


def test_answer_without_type_names_comes_as_an_object():
    value = PSString(TEXT)
    value.PSObject.extended_properties.append(PSNoteProperty("PSPath", PSPATH))
    handed_over = Serializer().deserialize(ET.tostring(serialize(value, None), encoding="unicode"))
    assert not isinstance(handed_over, str)
    assert convert(FILE_TEXT, handed_over) == {"Text": TEXT}


def test_bare_string_is_the_text():
    assert convert(FILE_TEXT, TEXT) == {"Text": TEXT}
    assert convert(FILE_TEXT, "") == {"Text": ""}


@pytest.mark.parametrize(
    "raw",
    [
        "<Obj RefId='0'><MS><S N='PSPath'>x</S></MS></Obj>",  # no value of its own
        "<Obj RefId='0'><S>unterminated",
        '<!DOCTYPE Obj [<!ENTITY a "b">]><Obj><S>&a;</S></Obj>',
        "<configuration />",
    ],
)
def test_anything_else_is_left_as_it_is(raw):
    assert unwrap_extended_string(raw) is None
    assert convert(FILE_TEXT, raw) == {"Text": raw}


def test_not_text_is_a_shape_error():
    with pytest.raises(ShapeError, match="Get-Content"):
        convert(FILE_TEXT, 42)


def test_decode_psrp_string():
    assert decode_psrp_string("a_x000D__x000A_b") == "a\r\nb"
    assert decode_psrp_string("_x005F_x000D_") == "_x000D_"
    assert decode_psrp_string("_xD83D__xDE00_") == "\U0001f600"
    assert decode_psrp_string("_xD83D_") == "\ud83d"  # a lone surrogate survives (the XML parser refuses it)
    assert decode_psrp_string("_x20_ _xZZZZ_") == "_x20_ _xZZZZ_"
