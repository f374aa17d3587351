"""A lone UTF-16 surrogate in one value of an answer fails that value only, never the whole answer.

PowerShell writes half a surrogate pair as the CLIXML escape ``_xD800_``. pypsrp's own decoding is
strict, so one such value used to fail the whole PSRP message; the bounded parsing
(``collectors.sources.pypsrp_parsing``) keeps it, and ``normalize`` marks it damaged.
"""

from __future__ import annotations

import pytest
from pypsrp.complex_objects import GenericComplexObject, ObjectMeta
from pypsrp.serializer import Serializer

import collectors.sources.remoting  # noqa: F401 - installs the bounded parsing, as the exporter does
from collectors.contract import Field, Shape, ShapeError
from collectors.sources.normalize import DamagedText, convert, convert_all

ANSWER = (
    '<Obj RefId="0"><TN RefId="0"><T>Deserialized.Microsoft.Rtc.Management.Xds.CsSite</T></TN><MS>'
    '<S N="Identity">Site:Redmond</S><S N="Description">half a pair _xD83D_ here</S>'
    '<S N="Pair">ok _xD83D__xDE00_</S></MS><ToString>Site:Redmond</ToString></Obj>'
)



def output_object(clixml: str):
    """One pipeline output object, deserialised as pypsrp deserialises output (pypsrp.messages)."""
    return Serializer().deserialize(clixml, ObjectMeta("ObjDynamic", object=GenericComplexObject))


def test_an_object_with_a_lone_surrogate_in_an_undeclared_property_converts():
    obj = output_object(ANSWER)
    plain = convert(Shape("Get-CsSite", fields=(Field("Identity", "str"),)), obj)
    assert plain["Identity"] == "Site:Redmond"
    assert plain["Description"] == "half a pair \ufffd here" and isinstance(plain["Description"], DamagedText)
    assert plain["Pair"] == "ok \U0001f600"  # a whole pair is one character, as before
    plain["Description"].encode("utf-8")  # nothing left that a log line or the exposition cannot encode


def test_a_declared_field_with_a_lone_surrogate_fails_naming_the_property():
    obj = output_object(ANSWER)
    with pytest.raises(ShapeError, match="Get-CsSite: property Description: text holds a lone UTF-16 surrogate"):
        convert(Shape("Get-CsSite", fields=(Field("Description", "str"),)), obj)


def test_other_objects_of_the_answer_are_untouched():
    good = ANSWER.replace("_xD83D_ here", "here")
    objects = [output_object(good), output_object(ANSWER)]
    plain = convert_all(Shape("Get-CsSite", fields=(Field("Identity", "str"),)), objects)
    assert [p["Description"] for p in plain] == ["half a pair here", "half a pair \ufffd here"]
