"""Prometheus-style duration parsing and formatting."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collectors.helpers.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("1ms", 0.001),
        ("30s", 30.0),
        ("5m", 300.0),
        ("1h", 3600.0),
        ("1h30m", 5400.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("1y", 365 * 86400.0),
        ("1m30s500ms", 90.5),
        ("2y3w4d5h6m7s8ms", 2 * 31536000 + 3 * 604800 + 4 * 86400 + 5 * 3600 + 6 * 60 + 7 + 0.008),
        ("0005s", 5.0),
    ],
)
def test_parses_valid_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("30", "has no unit"),
        ("0.5", "has no unit"),
        ("-5s", "negative"),
        ("", "empty"),
        ("0s", "zero"),
        ("0ms", "zero"),
        ("1.5s", "whole numbers"),
        ("5 m", "invalid duration"),
        ("1m1h", "invalid duration"),  # units must be largest first
        ("1s1s", "invalid duration"),  # each unit at most once
        ("5sec", "invalid duration"),
        ("5M", "invalid duration"),
        ("s", "invalid duration"),
        ("30s\n", "invalid duration"),
        (" 30s", "invalid duration"),
        ("99999999999999y", "too long"),
    ],
)
def test_rejects_invalid_durations_with_a_clear_message(text, fragment):
    with pytest.raises(ValueError, match=fragment) as info:
        parse_duration(text)
    if text.strip():
        assert repr(text) in str(info.value)  # the message quotes what was written


@pytest.mark.parametrize("value", [30, 30.0, None, ["30s"]])
def test_rejects_non_strings(value):
    with pytest.raises(ValueError, match="must be a string"):
        parse_duration(value)  # type: ignore[arg-type]


def test_zero_allowed_on_request():
    assert parse_duration("0s", allow_zero=True) == 0.0
    assert parse_duration("0ms", allow_zero=True) == 0.0


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "0s"),  # below the grammar's resolution
        (0.5, "500ms"),
        (30, "30s"),
        (90.5, "1m30s500ms"),
        (5400, "1h30m"),
        (86400, "1d"),
        (604800, "1w"),
        (8 * 86400, "8d"),  # weeks only when exact, as Prometheus prints them
        (365 * 86400, "1y"),
    ],
)
def test_formats_like_prometheus(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_format_rejects_impossible_values(value):
    with pytest.raises(ValueError):
        format_duration(value)


@given(st.integers(min_value=1, max_value=10**13))
def test_format_then_parse_round_trips(millis):
    text = format_duration(millis / 1000)
    assert round(parse_duration(text) * 1000) == millis
