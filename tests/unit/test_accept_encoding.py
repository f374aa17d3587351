"""Accept-Encoding as RFC 9110 (section 12.5.3) reads it: names are case-insensitive, q=0 refuses a
coding, ``*`` covers every coding not named, x-gzip is gzip, and a malformed weight never fails."""

from __future__ import annotations

import pytest

from exporter.accept_encoding import accepts_gzip


@pytest.mark.parametrize("header, expected", [
    ("gzip", True),                        # what Prometheus sends
    ("GZIP", True),                        # case-insensitive
    ("  Gzip ; Q=1.0 ", True),
    ("x-gzip", True),                      # section 8.4.1.3: the same coding
    ("gzip;q=0", False),                   # explicitly not acceptable
    ("gzip;q=0.000", False),
    ("gzip;q=0.001", True),
    ("deflate, gzip;q=0.5", True),
    ("gzip;q=0.5, identity", False),       # identity preferred
    ("gzip, identity;q=0.5", True),
    ("gzip;q=0.8, identity;q=0.8", True),  # a tie: the smaller answer
    ("*", True),                           # any coding
    ("*;q=0", False),
    ("identity;q=0, *", True),
    ("deflate, *;q=0", False),
    ("gzip;q=0, *", False),                # named beats *
    ("br, deflate", False),
    ("gzip;q=2", False),                   # not a qvalue: the element is ignored
    ("gzip;q=abc", False),
    ("gzip;q=abc, *", True),
    ("", False),
    (None, False),
    (",,;", False),
    ("gzip;level=1", True),                # other parameters do not matter
])
def test_gzip_is_chosen_as_rfc_9110_says(header, expected):
    assert accepts_gzip(header) is expected
