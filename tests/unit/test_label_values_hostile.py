"""Hostile label values (they come from servers) through label_value and a real exposition render.

Whatever a server writes into a name that ends up in a label (10,000 characters, lone surrogates from
CLIXML ``_xD800_`` escapes or surrogateescape-decoded file names, controls, invisible and bidi
characters, newlines, quotes, backslashes), the exposition stays valid UTF-8, parses with
prometheus_client's own parser, and every label value is sanitised and bounded.
"""

from __future__ import annotations

import gzip
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from collectors.contract import MAX_LABEL_CHARS, MetricSpec, label_value
from exporter.metrics import ExpositionCache
from exporter.state import SnapshotStore

SPEC = MetricSpec("lync_owa_test_hostile_info", "gauge", "A metric whose labels come from a server.",
                  ("replica", "version"))
INVISIBLE = "\u00ad\u061c\u180e\u200b\u200c\u200d\u200e\u200f\u2028\u2029\u202a\u202e\u2060\u2066\u2069\ufeff"

HOSTILE = [
    "x" * 10_000,
    "\u00e9" * 10_000,  # 2 bytes each in UTF-8
    "\U0001f600" * 10_000,  # 4 bytes each
    b"fe01\xff\xfe\x80.contoso.com".decode("utf-8", "surrogateescape"),
    "\ud800",
    "a\udfffb\ud83d",
    "".join(chr(c) for c in range(0x20)) + "\x7f\x80\x85\x9f",
    INVISIBLE,
    "\u200eEA5A3324" + "0" * 32,
    "line one\nline two\r\nline three",
    'quote " and \\" and \\\\ and \\n literally',
    "\\",
    '"',
    "\\" * 300,
    '"' * 300,
    "",
    " leading and trailing ",
    "tab\there",
    "right-to-left \u202eevil\u202c text",
]


def hostile_label_texts() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(st.characters(exclude_categories=()), max_size=300),  # every code point, surrogates too
        st.binary(max_size=300).map(lambda b: b.decode("utf-8", "surrogateescape")),
        st.text(st.sampled_from('\\"\n\r\t\x00' + INVISIBLE + "a\u00e9\U0001f600"), max_size=300),
        st.tuples(st.sampled_from(["a", "\\", '"', "\n", "\ud800", "\U0001f600"]),
                  st.integers(100, 12_000)).map(lambda t: t[0] * t[1]),
    )


def assert_clean(value: str) -> None:
    assert isinstance(value, str)
    assert len(value) <= MAX_LABEL_CHARS
    value.encode("utf-8")  # strict: no lone surrogate survives
    for char in value:
        assert unicodedata.category(char) not in ("Cc", "Cs"), repr(char)
        assert char not in INVISIBLE, repr(char)


def render(samples: list, target: str = "fe01", **cache_kw) -> tuple[bytes, dict]:
    store = SnapshotStore()
    store.register("hostile", target, 60)
    store.record_success("hostile", target, samples, 0.1)
    cache = ExpositionCache(store, [SPEC], process_metrics=False, **cache_kw)
    body = cache.render()
    assert gzip.decompress(cache.render(accept_gzip=True)) == body
    return body, parse(body)


def parse(body: bytes) -> dict:
    text = body.decode("utf-8")  # strict
    return {family.name: family for family in text_string_to_metric_families(text)}


def hostile_series(families: dict) -> list[dict[str, str]]:
    return [s.labels for s in families["lync_owa_test_hostile_info"].samples]


@pytest.mark.parametrize("value", HOSTILE, ids=range(len(HOSTILE)))
def test_label_value_sanitises_and_bounds(value):
    clean = label_value(value)
    assert_clean(clean)
    assert label_value(clean) == clean  # idempotent: a second pass changes nothing


def test_label_value_keeps_what_is_readable():
    assert label_value('a "quoted" \\path\\') == 'a "quoted" \\path\\'
    assert label_value("line one\nline two") == "line oneline two"
    assert label_value(b"ex\xff01".decode("utf-8", "surrogateescape")) == "ex01"
    long = label_value("y" * 10_000)
    assert len(long) == MAX_LABEL_CHARS and long.endswith("\u2026")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_label_texts())
def test_label_value_property(value):
    assert_clean(label_value(value))


def test_every_hostile_value_renders_parses_and_reads_back_bounded():
    samples = [SPEC.sample(i, replica=value, version=HOSTILE[-1 - i]) for i, value in enumerate(HOSTILE)]
    body, families = render(samples)
    series = hostile_series(families)
    # Values that sanitise to the same text would be one series twice: rendered once, never invalid.
    expected = {(label_value(v), label_value(HOSTILE[-1 - i])) for i, v in enumerate(HOSTILE)}
    assert {(s["replica"], s["version"]) for s in series} == expected
    assert len(series) == len(expected)
    for labels in series:
        assert labels["target"] == "fe01"
        assert_clean(labels["replica"])
        assert_clean(labels["version"])
    per_label = MAX_LABEL_CHARS * 2 * 4  # every character escaped (x2) and 4 bytes in UTF-8
    assert max(len(line) for line in body.splitlines()) < 2 * per_label + 200


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(hostile_label_texts(), hostile_label_texts()), min_size=1, max_size=8))
def test_random_hostile_values_always_render_parseable(pairs):
    body, families = render([SPEC.sample(1, replica=a, version=b) for a, b in pairs])
    series = hostile_series(families)
    assert {(s["replica"], s["version"]) for s in series} == {(label_value(a), label_value(b)) for a, b in pairs}
    for labels in series:
        assert_clean(labels["replica"])
        assert_clean(labels["version"])


def test_the_running_renderer_survives_a_hostile_snapshot():
    """Started as in the exporter: the renderer thread rebuilds off the scrape path and must not die."""
    store = SnapshotStore()
    store.register("hostile", "fe01", 60)
    cache = ExpositionCache(store, [SPEC], process_metrics=False)
    cache.start()
    try:
        store.record_success("hostile", "fe01", [SPEC.sample(1, replica="\ud800" + "q" * 10_000, version="\n")], 0.1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not hostile_series(parse(cache.render())):
            time.sleep(0.05)
        series = hostile_series(parse(cache.render()))
        assert [s["replica"] for s in series] == [label_value("q" * 10_000)]
        store.record_success("hostile", "fe01", [SPEC.sample(2, replica="after", version="")], 0.1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and hostile_series(parse(cache.render()))[0]["replica"] != "after":
            time.sleep(0.05)
        assert hostile_series(parse(cache.render()))[0]["replica"] == "after"  # still rebuilding
    finally:
        cache.stop()
