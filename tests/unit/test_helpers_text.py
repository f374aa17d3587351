"""collectors.helpers.text: the one way a server's text is cleaned, and the one way it is only trimmed.

The cases are the union of what the cleaners this replaced handled (Lync certificates, the Edge's
hosting provider, the IM log folder, the OWA application pool, OWA's event messages)."""

from __future__ import annotations

import pytest

from collectors.helpers.text import clean_text, clean_words, trim_text

THUMB = "74D4289D432CCF279E83886B413062367B198913"
# Every invisible character one of the former cleaners removed: format (Cf) and control (Cc) ones.
INVISIBLE = ("\x00\x01\x1b\x7f\x85\x9f\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c"
             "\u202d\u202e\u2060\u2061\u2066\u2069\u206f\ufeff")


@pytest.mark.parametrize("value, text", [
    ("Started", "Started"),
    (" Default ", "Default"),
    (" STARTING\r\n", "STARTING"),
    ("\u200eStopping", "Stopping"),  # the MMC's left-to-right mark
    ("\u200eCN=contoso.com\u200f", "CN=contoso.com"),
    (" InstantMessaging_1.LOG\u200e", "InstantMessaging_1.LOG"),
    ("\u200e C:\\Program Files\\Exchange\\V15\\ \r\n", "C:\\Program Files\\Exchange\\V15\\"),
    ("\u200eHybrid EXO ", "Hybrid EXO"),
    ("\ufeff<?xml", "<?xml"),
    ("\u2028Started\u2029", "Started"),  # line and paragraph separators are whitespace
    ("\u00a0Default\u3000", "Default"),
    ("Web Services", "Web Services"),  # whitespace inside stays
    ("Ex\u200bchange\u2060 2019", "Exchange 2019"),  # invisible characters inside go
    ("a\tb\nc\x00d", "abcd"),  # so do control characters inside, line breaks included
    (INVISIBLE, ""),
    (f"x{INVISIBLE}y", "xy"),
    (" \u200b", ""),
    ("caf\u00e9 \U0001f600", "caf\u00e9 \U0001f600"),  # visible non-ASCII stays
    ("", ""),
    (None, ""),
    (1, "1"),
])
def test_clean_text(value, text):
    assert clean_text(value) == text


@pytest.mark.parametrize("value, text", [
    (f"IM Certificate with thumbprint \u200e{THUMB}\n\thas  EXPIRED", f"IM Certificate with thumbprint {THUMB} has EXPIRED"),
    ("has \u200e expired", "has expired"),  # no double space where a mark stood alone
    ("could not\r\nbe found", "could not be found"),  # a line break separates words
    ("  Instant\u00a0Messaging\x00 server  ", "Instant Messaging server"),
    (INVISIBLE, ""),
    (None, ""),
])
def test_clean_words(value, text):
    assert clean_words(value) == text


@pytest.mark.parametrize("value, text", [
    (f"  {THUMB}\r\n\t", THUMB),
    (f"\u200e{THUMB}", f"\u200e{THUMB}"),  # an invisible mark stays: it is the fault to report
    (f"{THUMB}\u200f ", f"{THUMB}\u200f"),
    (f"\u00a0{THUMB}", f"\u00a0{THUMB}"),  # a no-break space is not ordinary whitespace
    ("a b", "a b"),
    ("", ""),
    (None, ""),
])
def test_trim_text(value, text):
    assert trim_text(value) == text
