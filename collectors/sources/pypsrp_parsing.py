"""Where pypsrp reads a server's answer, read it within bounds.

pypsrp 0.9 parses every WSMan response (``pypsrp.wsman.WSMan._invoke``, ``_parse_wsman_fault``) and
every PSRP message (``pypsrp.serializer.Serializer.deserialize``) with the standard library's
``ElementTree.fromstring``, through the name ``ET`` of those modules. :func:`install` points that
name at a facade whose ``fromstring`` is :func:`~collectors.sources.safe_xml.bounded_fromstring` and
which forwards everything else (``Element``, ``SubElement``, ``tostring``, ``ParseError``) to the
standard module, so building requests is untouched. ``UnsafeXML`` is not a ``ParseError``: pypsrp's
own fallbacks (the serializer hands unparsable text back as a string) do not swallow it, and the run
fails with kind ``shape``.

pypsrp also decodes every CLIXML string's ``_xHHHH_`` escapes strictly, so one lone UTF-16
surrogate (``_xD800_``, which PowerShell writes for a string holding half a pair) made the whole
message, and with it the whole answer, fail. Such a string is now decoded as it was sent, the lone
surrogate kept; ``normalize`` then fails that value alone.
"""

from __future__ import annotations

import threading
import types
import xml.etree.ElementTree as ET
from typing import Any, Callable

import pypsrp.serializer
import pypsrp.wsman

from collectors.sources.file_text import decode_psrp_string
from collectors.sources.safe_xml import bounded_fromstring

# The pypsrp modules that parse answers (pypsrp.client, which parses Invoke-Command output, is not used).
PARSING_MODULES = (pypsrp.wsman, pypsrp.serializer)

_lock = threading.Lock()
_original_deserialize_string: Callable[..., str] | None = None


class _BoundedElementTree(types.ModuleType):
    """``xml.etree.ElementTree`` with bounded parsing; every other name is the standard module's."""

    fromstring = staticmethod(bounded_fromstring)
    XML = staticmethod(bounded_fromstring)

    def __init__(self) -> None:
        super().__init__("xml.etree.ElementTree", "ElementTree with bounded parsing of untrusted answers")

    def __getattr__(self, name: str) -> Any:
        return getattr(ET, name)


BOUNDED_ET = _BoundedElementTree()


def _tolerant_deserialize_string(self: Any, value: str | None) -> str:
    assert _original_deserialize_string is not None
    try:
        return _original_deserialize_string(self, value)
    except UnicodeDecodeError:  # a lone surrogate escape: keep it, normalize judges the value
        return decode_psrp_string(value or "")


def install() -> None:
    """Bound pypsrp's parsing of answers; idempotent, process-wide (pypsrp has no per-client hook)."""
    global _original_deserialize_string
    with _lock:
        for module in PARSING_MODULES:
            module.ET = BOUNDED_ET  # type: ignore[attr-defined]
        if _original_deserialize_string is None:
            _original_deserialize_string = pypsrp.serializer.Serializer._deserialize_string
            pypsrp.serializer.Serializer._deserialize_string = _tolerant_deserialize_string  # type: ignore[method-assign]


def installed() -> bool:
    return all(getattr(module, "ET", None) is BOUNDED_ET for module in PARSING_MODULES)


def uninstall() -> None:
    """Give pypsrp its own parser back: only for benchmarks that measure the unbounded cost."""
    global _original_deserialize_string
    with _lock:
        for module in PARSING_MODULES:
            module.ET = ET  # type: ignore[attr-defined]
        if _original_deserialize_string is not None:
            pypsrp.serializer.Serializer._deserialize_string = _original_deserialize_string  # type: ignore[method-assign]
            _original_deserialize_string = None
