"""Normalisation of pypsrp answers into plain values, with the quirks cmdlet-shapes.md lists."""

import datetime as dt

import pytest
from pypsrp.complex_objects import GenericComplexObject

from collectors.contract import Field, Shape, ShapeError
from collectors.sources.normalize import convert, parse_dotnet_datetime, to_plain


def make_obj(adapted=None, extended=None, types=None, to_string=None, property_sets=None):
    obj = GenericComplexObject()
    obj.adapted_properties = dict(adapted or {})
    obj.extended_properties = dict(extended or {})
    obj.types = list(types or ["System.Object"])
    obj.to_string = to_string
    obj.property_sets = list(property_sets or [])
    return obj


UTC = dt.timezone.utc


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2024-05-01T10:00:00.1234567+02:00", dt.datetime(2024, 5, 1, 8, 0, 0, 123456, UTC)),
        ("2024-05-01T10:00:00Z", dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)),
        ("2024-05-01T10:00:00", dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)),
        ("2024-05-01T10:00:00.5-05:30", dt.datetime(2024, 5, 1, 15, 30, 0, 500000, UTC)),
    ],
)
def test_dotnet_datetimes_become_aware_utc(text, expected):
    assert parse_dotnet_datetime(text) == expected


@pytest.mark.parametrize("text", ["", "yesterday", "2024-13-01T00:00:00", "2024-05-01T10:00:00+2"])
def test_bad_datetimes_are_shape_errors(text):
    with pytest.raises((ShapeError, ValueError)):
        parse_dotnet_datetime(text)


def test_enum_becomes_its_name():
    enum = make_obj(types=["Microsoft.Rtc.Management.WritableConfig.Policy.Edge.VerificationLevel", "System.Enum"],
                    to_string="UseSourceVerification", property_sets=[2])
    assert to_plain(enum) == "UseSourceVerification"


def test_multi_valued_property_becomes_a_list():
    mvp = make_obj(types=["Microsoft.Exchange.Data.MultiValuedProperty`1[[System.String]]"], to_string=None,
                   property_sets=["<LST><S>ex01.contoso.com</S><S>mail.contoso.com</S></LST>"])
    assert to_plain(mvp) == ["ex01.contoso.com", "mail.contoso.com"]


def test_hostile_multi_valued_property_is_a_shape_error_not_a_crash():
    billion = ('<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
               "<LST><S>&b;</S></LST>")
    with pytest.raises(ShapeError):
        to_plain(make_obj(property_sets=[billion]))


def test_objects_merge_adapted_and_extended_properties():
    obj = make_obj(adapted={"UpToDate": True}, extended={"PSComputerName": "fe01"})
    assert to_plain(obj) == {"UpToDate": True, "PSComputerName": "fe01"}


def test_deep_nesting_is_refused():
    value = []
    for _ in range(20):
        value = [value]
    with pytest.raises(ShapeError):
        to_plain(value)


SHAPE = Shape("Get-Thing", (Field("Name", "str"), Field("Ok", "bool"), Field("When", "datetime", nullable=True),
                            Field("Size", "int", required=False)))


def test_shape_converts_declared_fields():
    out = convert(SHAPE, make_obj(adapted={"Name": "x", "Ok": "True", "When": "2024-05-01T10:00:00Z", "Size": "42"}))
    assert out["Ok"] is True and out["Size"] == 42 and out["When"].tzinfo is not None


def test_shape_missing_optional_field_is_none():
    assert convert(SHAPE, make_obj(adapted={"Name": "x", "Ok": False, "When": None}))["Size"] is None


@pytest.mark.parametrize(
    "adapted, fragment",
    [
        ({"Ok": True, "When": None}, "Name missing"),
        ({"Name": "x", "Ok": 3, "When": None}, "expected a bool"),
        ({"Name": "x", "Ok": True, "When": 12}, "expected a DateTime"),
        ({"Name": None, "Ok": True, "When": None}, "Name is null"),
        ({"Name": "x", "Ok": True, "When": None, "Size": "big"}, "expected a number"),
    ],
)
def test_shape_errors_name_cmdlet_and_property(adapted, fragment):
    with pytest.raises(ShapeError) as err:
        convert(SHAPE, make_obj(adapted=adapted))
    assert "Get-Thing" in str(err.value) and fragment in str(err.value)


def test_non_object_answer_is_a_shape_error():
    with pytest.raises(ShapeError):
        convert(SHAPE, "just a string")
