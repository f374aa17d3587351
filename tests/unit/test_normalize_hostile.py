"""Hostile and broken remote answers through collectors.sources.normalize: a clean value or ShapeError, nothing else.

Servers are untrusted: an answer may hold any shape and type, nested, shared by reference (CLIXML
``<Ref>``: pypsrp hands the same object over at every place), with huge numbers, odd floats,
undecodable text, control characters, very long strings and impossible DateTimes. Whatever comes,
``to_plain`` and ``convert`` either return plain values of the declared kinds or raise
ShapeError, and the work they do is bounded (counted in calls, never timed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
from typing import Any, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypsrp.complex_objects import GenericComplexObject
from pypsrp.serializer import Serializer

from collectors.contract import Field, Shape, ShapeError
from collectors.sources import normalize
from collectors.sources.normalize import (
    MAX_DEPTH,
    MAX_LIST_ITEMS,
    MAX_STRING_CHARS,
    MAX_VALUES,
    convert,
    convert_all,
    parse_dotnet_datetime,
    to_plain,
)

KINDS = ("str", "bool", "int", "float", "datetime", "list", "any")
NAMES = ("Name", "Value", "When", "Items", "name", "Name ", "\u200eName", "")
HYPOTHESIS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                                HealthCheck.data_too_large])


def make_obj(adapted=None, extended=None, types=None, to_string=None, property_sets=None) -> GenericComplexObject:
    obj = GenericComplexObject()
    obj.adapted_properties = adapted if adapted is not None else {}
    obj.extended_properties = extended if extended is not None else {}
    obj.types = list(types or ["System.Object"])
    obj.to_string = to_string
    obj.property_sets = list(property_sets or [])
    return obj


# --- strategies ---------------------------------------------------------------------------------

any_char_text = st.text(st.characters(exclude_categories=()), max_size=40)  # surrogates and controls too
bytes_ish = st.binary(max_size=40).map(lambda b: b.decode("utf-8", "surrogateescape"))
controls = st.text(st.sampled_from("\x00\x01\x1b\x7f\x85\u200b\u200e\u202e\u2028\ufeff\ufffe\r\n\t\\\"'"), max_size=20)
long_text = st.tuples(st.sampled_from(["x", "\u00e9", "\ud800", "\x00", "9", " "]),
                      st.sampled_from([MAX_STRING_CHARS - 1, MAX_STRING_CHARS + 1, 300_000])).map(lambda t: t[0] * t[1])
datetime_like = st.one_of(
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})?\Z"),
    st.sampled_from(["0000-01-01T00:00:00", "9999-12-31T23:59:59.9999999-14:00", "0001-01-01T00:00:00+14:00",
                     "2024-02-30T00:00:00Z", "2024-01-01T24:00:00", "2024-01-01T00:00:00+99:59",
                     "2024-01-01T00:00:00.0000000000000001Z", "2024-01-01T00:00:00\x00Z", " 2024-01-01T00:00:00Z "]),
)
numbers = st.one_of(
    st.integers(),
    st.sampled_from([2**63, -(2**63) - 1, 2**64, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["1e999", "-inf", "nan", "0x10", "1_000", "9" * 5000, " 42 ", "4\u0662"]),
)
scalars = st.one_of(
    st.none(), st.booleans(), numbers, any_char_text, bytes_ish, controls, long_text, datetime_like,
    st.binary(max_size=40), st.binary(max_size=40).map(bytearray),
    st.datetimes(timezones=st.none() | st.timezones()), st.dates(), st.timedeltas(), st.uuids(),
    st.sampled_from(["True", "false", "TRUE", "yes", "", "null"]),
)
clixml_lists = st.one_of(
    st.lists(any_char_text.filter(lambda s: all(c.isprintable() and not 0xD800 <= ord(c) <= 0xDFFF for c in s)),
             max_size=5).map(lambda items: "<LST>" + "".join(f"<S>{_xml_escape(i)}</S>" for i in items) + "</LST>"),
    st.sampled_from([
        '<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]><LST><S>&b;</S></LST>',
        '<!DOCTYPE l SYSTEM "file:///etc/passwd"><LST><S>x</S></LST>',
        "<LST><S>unclosed", "<LST>" + "<S/>" * (MAX_LIST_ITEMS + 5) + "</LST>", "<LST><LST><S>x</S></LST></LST>",
    ]),
)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _objects(children) -> st.SearchStrategy:
    keys = st.one_of(st.sampled_from(NAMES), any_char_text)
    props = st.dictionaries(keys, children, max_size=5)
    return st.builds(
        make_obj,
        adapted=st.one_of(st.none(), props),
        extended=st.one_of(st.none(), props),
        types=st.one_of(st.none(), st.lists(st.sampled_from(["System.Enum", "System.Object", "Deserialized.X", ""]),
                                            max_size=3)),
        to_string=st.one_of(st.none(), any_char_text),
        property_sets=st.lists(st.one_of(clixml_lists, st.integers(), any_char_text), max_size=2),
    )


def _containers(children) -> st.SearchStrategy:
    keys = st.one_of(st.sampled_from(NAMES), any_char_text, st.integers(), st.none(), st.booleans())
    return st.one_of(
        st.lists(children, max_size=6), st.lists(children, max_size=6).map(tuple),
        st.dictionaries(keys, children, max_size=6), _objects(children),
    )


answers = st.recursive(scalars, _containers, max_leaves=40)
fields = st.lists(st.builds(Field, name=st.sampled_from(NAMES), kind=st.sampled_from(KINDS), required=st.booleans(),
                            nullable=st.booleans()), max_size=6, unique_by=lambda f: f.name)


# --- what "clean" means -------------------------------------------------------------------------

PLAIN_LEAVES = (type(None), bool, int, float, str, bytes)


def assert_plain(value: Any, depth: int = 0) -> None:
    assert depth <= MAX_DEPTH + 1
    if isinstance(value, str):
        assert len(value) <= MAX_STRING_CHARS
    elif isinstance(value, bytes):
        assert len(value) <= MAX_STRING_CHARS
    elif isinstance(value, list):
        assert len(value) <= MAX_LIST_ITEMS
        for item in value:
            assert_plain(item, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            assert isinstance(key, str) and len(key) <= 256
            assert_plain(item, depth + 1)
    else:
        assert isinstance(value, PLAIN_LEAVES), type(value)


def assert_kind(spec: Field, value: Any) -> None:
    if value is None:
        assert spec.nullable or not spec.required
        return
    expected = {"str": str, "bool": bool, "float": float, "list": list}.get(spec.kind)
    if expected is not None:
        assert type(value) is expected, (spec, value)
    elif spec.kind == "int":
        assert isinstance(value, int) and not isinstance(value, bool)
    elif spec.kind == "datetime":
        assert isinstance(value, dt.datetime) and value.utcoffset() == dt.timedelta(0)


@contextlib.contextmanager
def counted_calls() -> Iterator[list[int]]:
    """Count every to_plain call (it recurses through the module attribute): the work done."""
    calls = [0]
    original = normalize.to_plain

    def counting(*args, **kwargs):
        calls[0] += 1
        return original(*args, **kwargs)

    normalize.to_plain = counting
    try:
        yield calls
    finally:
        normalize.to_plain = original


def converted_or_shape_error(fn, *args) -> Any:
    """fn(*args) with only ShapeError allowed to escape; returns the value or the ShapeError."""
    try:
        return fn(*args)
    except ShapeError as exc:
        assert str(exc)  # a message that says what and where
        return exc


# --- properties ---------------------------------------------------------------------------------

@HYPOTHESIS
@given(answers)
def test_to_plain_gives_plain_values_or_shape_error(value):
    with counted_calls() as calls:
        out = converted_or_shape_error(to_plain, value)
    assert calls[0] <= MAX_VALUES + 2
    if not isinstance(out, ShapeError):
        assert_plain(out)


@HYPOTHESIS
@given(answers, fields)
def test_shape_convert_gives_declared_kinds_or_shape_error(value, specs):
    shape = Shape("Get-Hostile", tuple(specs))
    out = converted_or_shape_error(convert, shape, value)
    if isinstance(out, ShapeError):
        return
    assert isinstance(out, dict)
    for spec in specs:
        assert spec.name in out
        assert_kind(spec, out[spec.name])


@HYPOTHESIS
@given(st.lists(answers, max_size=4), fields)
def test_convert_all_of_a_hostile_answer(values, specs):
    out = converted_or_shape_error(convert_all, Shape("Get-Hostile", tuple(specs)), values)
    assert isinstance(out, (list, ShapeError))


@HYPOTHESIS
@given(st.one_of(datetime_like, any_char_text, bytes_ish, controls, long_text))
def test_parse_dotnet_datetime_is_aware_utc_or_shape_error(text):
    out = converted_or_shape_error(parse_dotnet_datetime, text)
    if not isinstance(out, ShapeError):
        assert out.utcoffset() == dt.timedelta(0)


@HYPOTHESIS
@given(numbers, st.sampled_from(["int", "float"]))
def test_numbers_convert_or_shape_error(value, kind):
    out = converted_or_shape_error(convert, Shape("Get-Number", (Field("N", kind),)), {"N": value})
    if not isinstance(out, ShapeError):
        number = out["N"]
        assert isinstance(number, int if kind == "int" else float)
        if kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and math.isfinite(value) and abs(value) < 1e300:
            assert number == float(value)


# --- shapes that used to escape or run away -------------------------------------------------------

@pytest.mark.parametrize("text", ["0000-01-01T00:00:00", "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
                                  "2024-01-01T00:00:00+99:00", "2024-01-01T25:00:00", "2024-13-01T00:00:00"])
def test_impossible_datetimes_are_shape_errors(text):
    with pytest.raises(ShapeError):
        parse_dotnet_datetime(text)
    with pytest.raises(ShapeError, match="Get-Thing: property When"):
        convert(Shape("Get-Thing", (Field("When", "datetime"),)), {"When": text})


@pytest.mark.parametrize("kind, value", [("int", float("inf")), ("int", float("-inf")), ("int", float("nan")),
                                         ("float", 10**400), ("int", "9" * 5000)])
def test_unrepresentable_numbers_are_shape_errors(kind, value):
    with pytest.raises(ShapeError, match="expected a number"):
        convert(Shape("Get-Number", (Field("N", kind),)), {"N": value})


def _shared_reference_bomb(width: int, levels: int, leaf: Any = "x") -> Any:
    value = leaf
    for _ in range(levels):
        value = [value] * width
    return value


@pytest.mark.parametrize("leaf", ["x", "y" * (MAX_STRING_CHARS + 1), 7])
def test_shared_references_cannot_multiply_the_work(leaf):
    bomb = _shared_reference_bomb(30, 7, leaf)  # a few objects, 30**7 places
    with counted_calls() as calls, pytest.raises(ShapeError, match="expands to more than"):
        to_plain(make_obj(adapted={"Items": bomb}))
    assert calls[0] <= MAX_VALUES + 2


def test_a_real_clixml_reference_bomb_is_a_shape_error():
    """Through pypsrp's own deserialiser: <Ref> yields the same object again, as a server can make it."""
    def type_names(i: int) -> str:
        return f'<TN RefId="{i}"><T>System.Collections.ArrayList</T><T>System.Object</T></TN>'

    xml = f'<Obj RefId="0">{type_names(0)}<LST><S>x</S></LST></Obj>'
    for i in range(1, 7):
        refs = f'<Ref RefId="{i - 1}" />' * 29
        xml = f'<Obj RefId="{i}">{type_names(i)}<LST>{xml}{refs}</LST></Obj>'
    assert len(xml) < 8192
    answer = Serializer().deserialize(xml)
    assert answer[1] is answer[2]  # shared, not copied
    with counted_calls() as calls, pytest.raises(ShapeError):
        convert(Shape("Get-Bomb"), make_obj(adapted={"Items": answer}))
    assert calls[0] <= MAX_VALUES + 2


def test_multi_valued_property_items_are_bounded():
    raw = "<LST>" + f"<S>{'z' * (MAX_STRING_CHARS * 2)}</S>" * 3 + "</LST>"
    out = to_plain(make_obj(property_sets=[raw]))
    assert len(out) == 3 and all(len(item) == MAX_STRING_CHARS for item in out)


def test_a_multi_valued_property_shared_many_times_is_bounded():
    mvp = make_obj(property_sets=["<LST>" + "<S>ab</S>" * 1000 + "</LST>"])
    with counted_calls() as calls, pytest.raises(ShapeError, match="expands to more than"):
        to_plain(make_obj(adapted={f"P{i}": [mvp] * 1000 for i in range(10)}))
    assert calls[0] <= MAX_VALUES + 2


def test_self_reference_is_a_shape_error():
    obj = make_obj(adapted={})
    obj.adapted_properties["Self"] = obj
    looped: list[Any] = []
    looped.append(looped)
    for value in (obj, looped):
        with pytest.raises(ShapeError, match="nested too deeply"):
            to_plain(value)


def test_ordinary_large_answer_still_converts():
    """The bounds leave real answers alone: a 10,000-item list of long strings, a 64 KiB text."""
    obj = make_obj(adapted={"Lines": ["l" * 1000] * MAX_LIST_ITEMS, "Raw": "r" * MAX_STRING_CHARS})
    out = to_plain(obj)
    assert len(out["Lines"]) == MAX_LIST_ITEMS and len(out["Raw"]) == MAX_STRING_CHARS
