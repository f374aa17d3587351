"""Exchange's objects as its remote endpoint sends them, built from the scenario.

Shapes are the captures' (``exchange_tables.py`` names where they come from); values are the
scenario's where it has them, otherwise a table's defaults.

Nested objects are built as Exchange has them: ``Identity``/``Server``/``ObjectCategory`` are
ADObjectId objects (their ToString is what PowerShell shows), ``ExchangeVersion`` an
ExchangeObjectVersion, ``AdminDisplayVersion`` a ServerVersion, ``OrganizationId`` an OrganizationId,
``Id`` a reference to ``Identity`` (one object, written twice), each with a ``SerializationData``
note. That note is a .NET BinaryFormatter blob Exchange's own shell uses to rebuild the live object;
here it is an opaque, well-formed but empty BinaryFormatter stream: nothing may read it.
"""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Iterable
from typing import Any

from psrpcore.types import PSByte, PSDateTime, PSInt, PSInt64, PSList, PSUri, PSVersion

from simulator import psobjects
from simulator.cmdlets.exchange_tables import (
    DIRECTORY_ASSEMBLY,
    STRINGS_TYPES,
    P,
    shape_version,
)
from simulator.estate import HostView
from simulator.wire_values import EnumFactory, shown

_DATA_ASSEMBLY = "Microsoft.Exchange.Data, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
_MANAGEMENT_ASSEMBLY = "Microsoft.Exchange.Management, Version=15.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
EXCHANGE_CERTIFICATE_TYPES = [
    "Microsoft.Exchange.Management.SystemConfigurationTasks.ExchangeCertificate",
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
    "System.Object",
]


def serialization_data(type_name: str, assembly: str = _DATA_ASSEMBLY) -> bytes:
    """An opaque .NET BinaryFormatter stream naming ``type_name``'s assembly (see the module docstring):
    the serialization header, one BinaryLibrary record, MessageEnd ([MS-NRBF] 2.6.1, 2.6.2, 2.6.3)."""
    header = b"\x00" + struct.pack("<iiii", 1, -1, 1, 0)

    def text(value: str) -> bytes:
        raw = value.encode("utf-8")
        length, prefix = len(raw), b""
        while True:  # 7-bit encoded length
            byte = length & 0x7F
            length >>= 7
            prefix += bytes([byte | (0x80 if length else 0)])
            if not length:
                return prefix + raw

    library = b"\x0c" + struct.pack("<i", 2) + text(assembly)
    return header + library + b"\x0b"


class ObjectBuilder:
    """Builds one answer object for one host: enum members and AD names are per object."""

    def __init__(self, view: HostView) -> None:
        self.view = view
        self.enums = EnumFactory()
        org = view.scenario.model.exchange_org
        self.organization = org.organization if org else "Contoso"
        self.domain_controller = org.domain_controller if org else "dc01.contoso.com"
        self.domain = self.domain_controller.split(".", 1)[1] if "." in self.domain_controller else "contoso.com"
        self.domain_dn = ",".join(f"DC={part}" for part in self.domain.split("."))
        self.org_dn = f"CN={self.organization},CN=Microsoft Exchange,CN=Services,CN=Configuration,{self.domain_dn}"

    # -------------------------------------------------------- values

    def enum(self, type_name: str, name: str, value: int) -> Any:
        return self.enums(type_name, name, value)

    def strings(self, values: Iterable[str], types: Iterable[str] = STRINGS_TYPES) -> PSList:
        """Exchange's MultiValuedProperty of strings: an object with type names and <LST>."""
        result = PSList([str(v) for v in values])
        result.PSObject.type_names = list(types)
        return result

    def typed_list(self, types: Iterable[str], items: Iterable[Any]) -> PSList:
        result = PSList([self._item(item) for item in items])
        result.PSObject.type_names = list(types)
        return result

    def _item(self, item: Any) -> Any:
        if isinstance(item, tuple) and item and item[0] == "enum":
            return self.enum(item[1], item[2], item[3])
        return item

    def ad_time(self, days_before_start: float, utc: bool = False) -> PSDateTime:
        """A directory timestamp: whole seconds (the captures show none), fixed relative to the
        estate's start; local (the server's offset) or UTC ("Z")."""
        moment = (self.view.started_at - dt.timedelta(days=days_before_start)).replace(microsecond=0)
        return PSDateTime(moment.astimezone(dt.timezone.utc if utc else self.view.tz))

    def _changed(self, moment: dt.datetime | None, days_before_start: float, utc: bool) -> PSDateTime:
        """WhenChanged: a scenario's time (whole seconds, as directory times are), else a fixed age."""
        if moment is None:
            return self.ad_time(days_before_start, utc=utc)
        return PSDateTime(moment.replace(microsecond=0).astimezone(dt.timezone.utc if utc else self.view.tz))

    def guid(self, *parts: str) -> uuid.UUID:
        return uuid.uuid5(uuid.NAMESPACE_URL, "simulated-ad:" + "/".join(p.lower() for p in parts))

    # -------------------------------------------------------- nested objects

    def ad_object_id(self, dn: str, shown_as: str, parent: str) -> Any:
        """An ADObjectId (E15 and E16 send the same properties)."""
        rdn = dn.split(",", 1)[0]
        return psobjects.ps_object(
            ["Microsoft.Exchange.Data.Directory.ADObjectId", "Microsoft.Exchange.Data.ObjectId", "System.Object"],
            adapted={
                "OrgHierarchyToIgnore": None,
                "IsDeleted": False,
                "Rdn": rdn,
                "Parent": parent,
                "Depth": PSInt(dn.count(",")),
                "DistinguishedName": dn,
                "IsRelativeDn": False,
                "DomainId": self.domain,
                "PartitionGuid": uuid.UUID(int=0),
                "PartitionFQDN": self.domain,
                "ObjectGuid": self.guid(dn),
                "Name": rdn.partition("=")[2],
            },
            extended={"SerializationData": serialization_data("Microsoft.Exchange.Data.Directory.ADObjectId",
                                                              _DATA_ASSEMBLY)},
            to_string=shown(shown_as),
        )

    def schema_class(self, class_name: str) -> Any:
        """An ObjectCategory: the schema class's ADObjectId, shown by its canonical name."""
        return self.ad_object_id(f"CN={class_name},CN=Schema,CN=Configuration,{self.domain_dn}",
                                 f"{self.domain}/Configuration/Schema/{class_name}",
                                 f"{self.domain}/Configuration/Schema")

    def exchange_object_version(self, major: int, minor: int, build: str) -> Any:
        return psobjects.ps_object(
            ["Microsoft.Exchange.Data.ExchangeObjectVersion", "System.Object"],
            adapted={
                "NextMajorVersion": f"{major + 1}.0 (0.0.0.0)",
                "NextMinorVersion": f"{major}.{minor + 1} (0.0.0.0)",
                "Major": PSByte(major),
                "Minor": PSByte(minor),
                "ExchangeBuild": build,
            },
            extended={"SerializationData": serialization_data("Microsoft.Exchange.Data.ExchangeObjectVersion")},
            to_string=f"{major}.{minor} ({build})",
        )

    def server_version(self, build: str) -> Any:
        parts = [int(p) for p in (build.split(".") + ["0", "0", "0", "0"])[:4]]
        return psobjects.ps_object(
            ["Microsoft.Exchange.Data.ServerVersion", "System.Object"],
            adapted={"Major": PSInt(parts[0]), "Minor": PSInt(parts[1]), "Build": PSInt(parts[2]),
                     "Revision": PSInt(parts[3]), "FilePatchLevelDescription": None},
            extended={"SerializationData": serialization_data("Microsoft.Exchange.Data.ServerVersion")},
            to_string=f"Version {parts[0]}.{parts[1]} (Build {parts[2]}.{parts[3]})",
        )

    def organization_id(self, version: int) -> Any:
        adapted: dict[str, Any] = {"OrganizationalUnit": None, "ConfigurationUnit": None}
        if shape_version(version) >= 2016:
            adapted["IsConsumerOrganization"] = False
        adapted["IdForEventLog"] = ""
        return psobjects.ps_object(
            ["Microsoft.Exchange.Data.Directory.OrganizationId", "System.Object"],
            adapted=adapted,
            extended={"SerializationData": serialization_data("Microsoft.Exchange.Data.Directory.OrganizationId",
                                                              DIRECTORY_ASSEMBLY)},
            to_string=shown(""),  # the first-party organization: an empty ToString, written
        )

    # -------------------------------------------------------- whole objects

    def table(self, entries: Iterable[P], version: int, values: dict[str, Any]) -> dict[str, Any]:
        """A table's properties for ``version``: the given values, else each entry's default."""
        props: dict[str, Any] = {}
        for entry in entries:
            if shape_version(version) < entry.since:
                continue
            if entry.name in values:
                props[entry.name] = values[entry.name]
            elif entry.kind in ("B", "S"):
                props[entry.name] = entry.default
            elif entry.kind == "I32":
                props[entry.name] = PSInt(entry.default)
            elif entry.kind == "I64":
                props[entry.name] = PSInt64(entry.default)
            elif entry.kind == "Nil":
                props[entry.name] = None
            elif entry.kind == "enum":
                props[entry.name] = self.enum(*entry.default)
            elif entry.kind == "strings":
                props[entry.name] = self.strings([])
            elif entry.kind == "list":
                props[entry.name] = self.typed_list(entry.default, entry.items or [])
            else:
                raise KeyError(f"{entry.name}: a {entry.kind} property needs a value from the builder")
        return props

    def ad_object(
        self,
        types: list[str],
        own: dict[str, Any],
        *,
        name: str,
        dn: str,
        identity_shown: str,
        identity_parent: str,
        schema_class: str,
        object_classes: list[str],
        exchange_version: tuple[int, int, str],
        version: int,
        name_first: bool = False,
        object_state: str = "Unchanged",
        created_days: float = 400,
        changed_days: float = 30,
        changed_at: dt.datetime | None = None,
    ) -> Any:
        """An Exchange AD object: its own properties, then ADObject's (the captures' order)."""
        identity = self.ad_object_id(dn, identity_shown, identity_parent)
        tail: dict[str, Any] = {}
        if name_first:
            tail["Name"] = name
            tail["AdminDisplayName"] = ""
        else:
            tail["AdminDisplayName"] = ""
        tail["ExchangeVersion"] = self.exchange_object_version(*exchange_version)
        if not name_first:
            tail["Name"] = name
        tail.update({
            "DistinguishedName": dn,
            "Identity": identity,
            "Guid": self.guid(dn),
            "ObjectCategory": self.schema_class(schema_class),
            "ObjectClass": self.strings(object_classes),
            "WhenChanged": self._changed(changed_at, changed_days, utc=False),
            "WhenCreated": self.ad_time(created_days),
            "WhenChangedUTC": self._changed(changed_at, changed_days, utc=True),
            "WhenCreatedUTC": self.ad_time(created_days, utc=True),
            "OrganizationId": self.organization_id(version),
            "Id": identity,  # the same object: sent as <Ref>, as Exchange does
            "OriginatingServer": self.domain_controller,
            "IsValid": True,
            "ObjectState": self.enum("Microsoft.Exchange.Data.ObjectState", object_state,
                                     {"Unchanged": 1, "Changed": 2}[object_state]),
        })
        return psobjects.ps_object(
            types,
            adapted={**own, **tail},
            extended={"SerializationData": serialization_data(types[0], DIRECTORY_ASSEMBLY)},
            to_string=identity_shown,
        )


def exchange_certificate(der: bytes, to_string: str) -> Any:
    """Get-ExchangeCertificate's object on the wire: RawData only (X509Certificate2's type data in
    PowerShell's own type table: SerializationMethod SpecificProperties, PropertySerializationSet
    RawData; Types_Ps1Xml.cs) plus the SerializationData note Exchange adds and the ToString
    (../shared/captures/exchange/E16/GetExchangeCertificate.xml). Thumbprint, validity, subject and
    SANs are in the DER; Services, Status, HasPrivateKey are nowhere on the wire."""
    return psobjects.ps_object(
        EXCHANGE_CERTIFICATE_TYPES,
        adapted={"RawData": der},
        extended={"SerializationData": serialization_data(EXCHANGE_CERTIFICATE_TYPES[0], _MANAGEMENT_ASSEMBLY)},
        to_string=to_string,
    )


def uri(value: str | None) -> PSUri | None:
    return None if value is None else PSUri(value)


def version_or_nil(value: str | None) -> PSVersion | None:
    return None if not value else PSVersion(value)
