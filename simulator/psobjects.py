"""Building .NET-shaped objects for psrpcore's serializer.

Remote PowerShell sends every object as CLIXML: type names (``<TN>``), .NET properties (``<Props>``,
"adapted") and PowerShell-added members (``<MS>``, "extended"). These helpers build psrpcore
PSObjects with exactly those parts, so pypsrp on the client sees what it sees from Windows:
``<DT>`` datetimes with 7 fractional digits and an offset, enums as objects whose ToString is the
name, Exchange MultiValuedProperty as an unknown generic collection, known string lists as lists.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from psrpcore.types import (
    PSByte,
    PSDateTime,
    PSEnumBase,
    PSFlagBase,
    PSInt64,
    PSList,
    PSNoteProperty,
    PSObject,
    PSType,
    PSUInt,
    PSUInt64,
    PSUri,
)

from simulator.wire_values import ShownText, encode_string

_STRING_TYPE = "System.String, mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"
STRING_LIST_TYPES = [f"System.Collections.Generic.List`1[[{_STRING_TYPE}]]", "System.Object"]


def ps_object(
    type_names: Iterable[str],
    adapted: Mapping[str, Any] | None = None,
    extended: Mapping[str, Any] | None = None,
    to_string: str | None = None,
) -> PSObject:
    """A PSObject with these type names, .NET properties (adapted) and note properties (extended)."""
    obj = PSObject()
    obj.PSObject.type_names = list(type_names)
    for name, value in (adapted or {}).items():
        obj.PSObject.adapted_properties.append(PSNoteProperty(name, value))
    for name, value in (extended or {}).items():
        obj.PSObject.extended_properties.append(PSNoteProperty(name, value))
    if to_string is not None:
        # psrpcore writes a ToString unescaped; PowerShell escapes it like any string (CR LF...).
        obj.PSObject.to_string = to_string if isinstance(to_string, ShownText) else encode_string(to_string)
    return obj


def datetime_value(value: dt.datetime | None, tz: dt.tzinfo | None = None) -> PSDateTime | None:
    """A .NET DateTime: 7 fractional digits (ticks), local offset when ``tz`` is given, else UTC ("Z").

    Python has microseconds; the 7th digit is derived from them so answers stay stable.
    """
    if value is None:
        return None
    local = value.astimezone(tz or dt.timezone.utc)
    nanosecond = 100 * (1 + local.microsecond % 9)
    return PSDateTime(local, nanosecond=nanosecond)


def string_list(values: Iterable[str]) -> PSList:
    """``List<string>``: pypsrp knows this generic type and returns a Python list."""
    result = PSList(list(values))
    result.PSObject.type_names = list(STRING_LIST_TYPES)
    return result


def multi_valued(values: Iterable[Any], item_type: str = "System.String") -> PSList:
    """Exchange's ``MultiValuedProperty<T>``: pypsrp does not know it and hands over the raw <LST>."""
    result = PSList(list(values))
    qualified = _STRING_TYPE if item_type == "System.String" else item_type
    result.PSObject.type_names = [
        f"Microsoft.Exchange.Data.MultiValuedProperty`1[[{qualified}]]",
        "Microsoft.Exchange.Data.MultiValuedPropertyBase",
        "System.Object",
    ]
    return result


def uri(value: str | None) -> PSUri | None:
    return None if value is None else PSUri(value)


def uint64(value: int) -> PSUInt64:
    return PSUInt64(value)


def int64(value: int | None) -> PSInt64 | None:
    return None if value is None else PSInt64(value)


def uint32(value: int) -> PSUInt:
    return PSUInt(value)


def byte(value: int | None) -> PSByte | None:
    return None if value is None else PSByte(value)


# ----------------------------------------------------------------- enums (rehydrate=False: these
# type names must not enter psrpcore's global registry, which a psrpcore client in the same process
# would otherwise use to turn answers into these classes).


@PSType(["Microsoft.Rtc.Management.WritableConfig.Settings.Edge.VerificationLevel"], rehydrate=False)
class VerificationLevel(PSEnumBase):
    AlwaysVerifiable = 0
    AlwaysUnverifiable = 1
    UseSourceVerification = 2


@PSType(["Microsoft.Rtc.Management.WritableConfig.Settings.Edge.RoutingMethod"], rehydrate=False)
class RoutingMethod(PSEnumBase):
    UseDnsSrvRouting = 0
    UseDefaultRouting = 1


@PSType(["Microsoft.Exchange.Data.Directory.SystemConfiguration.InstantMessagingTypeOptions"], rehydrate=False)
class InstantMessagingTypeOptions(PSEnumBase):
    none = 0
    Ocs = 1


@PSType(["Microsoft.Exchange.Data.Directory.SystemConfiguration.UMUriType"], rehydrate=False)
class UMUriType(PSEnumBase):
    TelExtn = 0
    E164 = 1
    SipName = 2


@PSType(["System.IO.FileAttributes"], rehydrate=False)
class FileAttributes(PSFlagBase):
    none = 0
    ReadOnly = 1
    Hidden = 2
    System = 4
    Directory = 16
    Archive = 32
    Normal = 128


def enum_member(enum_cls: type, name: str) -> Any:
    """The member called ``name`` ("None" maps to the ``none`` member)."""
    return enum_cls["none" if name == "None" else name]


def flags(enum_cls: type, names: Iterable[str]) -> Any:
    value = enum_cls(0)
    for name in names:
        value |= enum_member(enum_cls, name)
    return value
