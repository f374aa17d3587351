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


# Exchange sends ADObjectId and version objects where a reader wants text, and lists of such objects
# (a dial plan's UMServers, an override's Server). Shapes from ../shared/captures/exchange.
ADOBJECTID_LIST = """<Obj N="UMServers" RefId="1"><TN RefId="1">
<T>Microsoft.Exchange.Data.MultiValuedProperty`1[[Microsoft.Exchange.Data.Directory.ADObjectId]]</T>
<T>Microsoft.Exchange.Data.MultiValuedPropertyBase</T><T>System.Object</T></TN>
<LST><Obj RefId="2"><TN RefId="2"><T>Microsoft.Exchange.Data.Directory.ADObjectId</T><T>System.Object</T></TN>
<ToString>EX01</ToString><Props><S N="Name">EX01</S><I32 N="Depth">9</I32></Props></Obj>
<Obj RefId="3"><TNRef RefId="2" /><ToString>EX02</ToString><Props><S N="Name">EX02</S></Props></Obj>
<S>ex03.contoso.com</S></LST></Obj>"""


def test_list_items_that_are_objects_become_their_tostring():
    from pypsrp.serializer import Serializer

    answer = make_obj(adapted={"UMServers": Serializer().deserialize(ADOBJECTID_LIST)})
    assert convert(Shape("Get-UMDialPlan", (Field("UMServers", "list"),)), answer)["UMServers"] == [
        "EX01", "EX02", "ex03.contoso.com"]


def test_an_object_where_text_is_wanted_is_its_tostring():
    identity = make_obj(adapted={"Rdn": "CN=owa (Default Web Site)", "Depth": 11}, to_string="EX01\\owa (Default Web Site)")
    version = make_obj(adapted={"Major": 15}, to_string="Version 15.1 (Build 2375.7)")
    shape = Shape("Get-OwaVirtualDirectory", (Field("Identity", "str"), Field("AdminDisplayVersion", "str")))
    plain = convert(shape, make_obj(adapted={"Identity": identity, "AdminDisplayVersion": version}))
    assert plain == {"Identity": "EX01\\owa (Default Web Site)", "AdminDisplayVersion": "Version 15.1 (Build 2375.7)"}
    # Without a ToString an object is no text.
    with pytest.raises(ShapeError, match="expected text"):
        convert(shape, make_obj(adapted={"Identity": make_obj(adapted={"Rdn": "x"}), "AdminDisplayVersion": "x"}))


def test_bytes_fields():
    shape = Shape("Get-ExchangeCertificate", (Field("RawData", "bytes"),))
    assert convert(shape, make_obj(adapted={"RawData": b"\x30\x82"})) == {"RawData": b"\x30\x82"}
    with pytest.raises(ShapeError, match="expected bytes"):
        convert(shape, make_obj(adapted={"RawData": "MIIC"}))
