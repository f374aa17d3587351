"""The text of a file as ``Get-Content -Raw`` answers it, whichever way pypsrp hands it over.

PowerShell attaches note properties (PSPath, PSChildName, ReadCount...) to the string Get-Content
writes, so Windows serialises it as an extended primitive: ``<Obj><TN>System.String...</TN>
<ToString>..</ToString><S>..</S><MS>notes</MS></Obj>``. pypsrp 0.9 does not deserialise that: with
the type names present it returns the element's raw CLIXML as a string; without them, an object whose
``property_sets`` hold the string. A server (or the simulator) may also send the bare string.
All three come out here as the file's text.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

import defusedxml
import defusedxml.ElementTree as SafeET

from collectors.contract import Shape, ShapeError

# Past this, the wrapper is not unpacked; the caller's own size cap then refuses the text.
MAX_WRAPPED_CHARS = 8 * 1024 * 1024
# PSRP escapes characters XML cannot carry (and "_x" itself) as _xHHHH_ UTF-16 code units.
_PSRP_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")


def decode_psrp_string(text: str) -> str:
    """Undo PSRP's ``_xHHHH_`` escapes; surrogate pairs become one character, a lone one stays as it is."""
    units = _PSRP_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text)
    return units.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "surrogatepass")


def unwrap_extended_string(raw: str) -> str | None:
    """The string inside the raw CLIXML of an extended primitive string, or None when ``raw`` is not one."""
    if not raw.startswith("<Obj") or len(raw) > MAX_WRAPPED_CHARS:
        return None
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, defusedxml.DefusedXmlException, ValueError):
        return None
    # The value is a direct <S> child; the notes' own <S N="..."> elements sit under <MS>.
    value = root.find("S")
    if root.tag != "Obj" or value is None:
        return None
    return decode_psrp_string(value.text or "")


def file_text(obj: Any) -> str | None:
    if isinstance(obj, str):
        unwrapped = unwrap_extended_string(obj)
        return obj if unwrapped is None else unwrapped
    for candidate in [*(getattr(obj, "property_sets", None) or []), getattr(obj, "to_string", None)]:
        if isinstance(candidate, str):
            return candidate
    return None


def text_object(shape: Shape, obj: Any) -> dict[str, Any]:
    """An output object of a ``file_text`` shape as ``{"Text": <the file's text>}``."""
    text = file_text(obj)
    if text is None:
        raise ShapeError(f"{shape.cmdlet}: expected the file's text, got {type(obj).__name__}")
    return {"Text": text}


FILE_TEXT = Shape("Get-Content", file_text=True)
