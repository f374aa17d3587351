"""Text a server sent, made comparable: one way to clean it, and one way to trim it without cleaning.

Servers (and copies out of Windows tools) bring invisible characters along: the U+200E the
certificate MMC puts before a thumbprint, a byte-order mark, zero-width spaces, control characters.
:func:`clean_text` removes them; :func:`trim_text` deliberately does not, for values where such a
character is itself the fault to report (OWA cannot use a thumbprint that carries one).
"""

from __future__ import annotations

import unicodedata
from typing import Any

# Around a value set by hand, only these count as whitespace; anything else stays part of the value.
ORDINARY_WHITESPACE = " \t\r\n"
# Control (Cc) and format (Cf) characters: C0/C1 controls, U+200B-U+200F, U+202A-U+202E, U+2060-U+206F,
# U+FEFF, U+00AD, ... Unicode classifies every invisible mark a server or a copy may add as one of them.
_INVISIBLE_CATEGORIES = ("Cc", "Cf")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def clean_text(value: Any) -> str:
    """``str()`` of the value ("" for None) without control or invisible format characters, wherever
    they are, and without whitespace around it. For one-line values: names, states, thumbprints."""
    text = _text(value)
    if text.isascii() and text.isprintable():
        return text.strip()  # the usual case, without a look at every character
    return "".join(ch for ch in text if unicodedata.category(ch) not in _INVISIBLE_CATEGORIES).strip()


def clean_words(value: Any) -> str:
    """Free text (an event message) for matching its words: :func:`clean_text`, except that every run
    of whitespace, line breaks and tabs included, becomes one space instead of being removed."""
    return " ".join(clean_text(" ".join(_text(value).split())).split())


def trim_text(value: Any) -> str:
    """``str()`` of the value ("" for None) with only ordinary whitespace (space, tab, CR, LF) trimmed:
    an invisible character stays, so a value pasted with one still reads as malformed."""
    return _text(value).strip(ORDINARY_WHITESPACE)
