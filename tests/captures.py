"""Real objects real Exchange servers returned (../shared/captures, read its README; the ``captures``
fixture finds them), as pypsrp hands them to the exporter: deserialised by pypsrp's own deserialiser."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
from pypsrp.serializer import Serializer

_CLIXML_NS = "{http://schemas.microsoft.com/powershell/2004/04}"
# Notes Export-Clixml and Invoke-Command add that a remote answer of the cmdlet itself does not carry.
CAPTURE_ONLY_NOTES = ("PSComputerName", "RunspaceId", "PSShowComputerName")


def deserialised(path: Path) -> list[Any]:
    """The file's objects as pypsrp deserialises them (one deserialiser: TNRef points across objects)."""
    root = SafeET.fromstring(path.read_bytes())
    serializer = Serializer()
    objects = []
    for element in root:
        for node in element.iter():
            node.tag = node.tag.removeprefix(_CLIXML_NS)
        obj = serializer.deserialize(SafeET.tostring(element, encoding="unicode"), clear=False)
        for note in CAPTURE_ONLY_NOTES:
            getattr(obj, "extended_properties", {}).pop(note, None)
        objects.append(obj)
    return objects


def to_string_field(text: str, heading: str) -> str:
    """A value from an X509Certificate's ToString ("[Thumbprint]\\r\\n  8BFE...\\r\\n"): an independent
    reading of what the DER says, written by the server itself."""
    lines = text.splitlines()
    return lines[lines.index(f"[{heading}]") + 1].strip()
