"""Get-Item, Get-ChildItem, Get-Content and Get-ItemProperty over the simulated providers."""

from __future__ import annotations

import datetime as dt
import fnmatch
import ntpath
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from psrpcore.types import PSDateTime, PSInt

from simulator import certs, errors, psobjects
from simulator.cmdlets.base import (
    INT,
    STRING,
    STRINGS,
    SWITCH,
    Invocation,
    Param,
    cmdlet,
)
from simulator.cmdlets.certificates import HostCertificate, machine_store
from simulator.cmdlets.providers import (
    CERT_STORES,
    CERTIFICATE,
    FILESYSTEM,
    REGISTRY,
    FileSystem,
    FsItem,
    Registry,
    classify,
    parent_of,
)
from simulator.cmdlets.select import with_live
from simulator.estate import HostView

_FS_QUALIFIER = "Microsoft.PowerShell.Core\\FileSystem::"
_REG_QUALIFIER = "Microsoft.PowerShell.Core\\Registry::"
_CERT_QUALIFIER = "Microsoft.PowerShell.Security\\Certificate::"
_FILE_TYPES = ["System.IO.FileInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"]
_DIR_TYPES = ["System.IO.DirectoryInfo", "System.IO.FileSystemInfo", "System.MarshalByRefObject", "System.Object"]
_CERT_TYPES = [
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
    "System.Object",
]
_STRING_ARRAY_TYPES = ["System.String[]", "System.Array", "System.Object"]
_CLASSES = {
    "Get-Item": "Microsoft.PowerShell.Commands.GetItemCommand",
    "Get-ChildItem": "Microsoft.PowerShell.Commands.GetChildItemCommand",
    "Get-Content": "Microsoft.PowerShell.Commands.GetContentCommand",
    "Get-ItemProperty": "Microsoft.PowerShell.Commands.GetItemPropertyCommand",
}


def _paths(inv: Invocation) -> list[str]:
    if inv.has("Path") and inv.has("LiteralPath"):
        raise inv.cmdlet.binding_error(
            "AmbiguousParameterSet", "Parameter set cannot be resolved using the specified named parameters.")
    return inv.get("LiteralPath") or inv.get("Path") or ["."]


def _not_found(inv: Invocation, path: str) -> None:
    inv.out.error(errors.path_not_found(path, inv.cmdlet.name, inv.cmdlet.dotnet_class))


def _fs_only_switches(inv: Invocation, provider: str, names: tuple[str, ...]) -> None:
    """-File, -Directory, -Raw... are dynamic parameters of the FileSystem provider only."""
    if provider != FILESYSTEM:
        for name in names:
            if inv.has(name):
                raise inv.cmdlet.binding_error(
                    "NamedParameterNotFound", f"A parameter cannot be found that matches parameter name '{name}'.",
                    name)


def _has_wildcard(path: str) -> bool:
    return any(ch in path for ch in "*?[")


# ---------------------------------------------------------------- objects


def _creation_time(view: HostView, item: FsItem) -> dt.datetime | None:
    """A declared file or folder was created once, at a fixed instant: its relative ``created`` is
    taken from the estate's start, where other times slide with "now" (a log keeps being written,
    it does not keep being created). Clients rely on it to tell a file from its replacement."""
    parent = parent_of(item.path)
    for dir_path, directory in view.host.windows.directories.items():
        _, norm = classify(dir_path)
        if item.is_dir and norm.lower() == item.path.lower():
            spec = directory.created
        elif not item.is_dir and parent is not None and norm.lower() == parent.lower():
            entries = {name.lower(): entry for name, entry in directory.files.items()}
            entry = entries.get(item.name.lower())
            spec = entry.created if entry is not None else None
        else:
            continue
        return spec.resolve(view.started_at) if spec is not None else item.created
    return item.created


def fs_object(inv: Invocation, item: FsItem) -> Any:
    view = inv.view
    parent = parent_of(item.path)
    created = _creation_time(view, item)
    base_name, extension = ntpath.splitext(item.name) if not item.is_dir else (item.name, "")
    adapted: dict[str, Any] = {"Name": item.name}
    if not item.is_dir:
        adapted.update({
            "Length": psobjects.int64(item.size),
            "DirectoryName": parent,
            "IsReadOnly": False,
        })
    else:
        adapted["Parent"] = ntpath.basename(parent.rstrip("\\")) if parent else None
    adapted.update({
        "Exists": True,
        "FullName": item.path,
        "Extension": extension,
        "CreationTime": view.local_dt(created),
        "CreationTimeUtc": view.utc_dt(created),
        "LastAccessTime": view.local_dt(item.modified),
        "LastAccessTimeUtc": view.utc_dt(item.modified),
        "LastWriteTime": view.local_dt(item.modified),
        "LastWriteTimeUtc": view.utc_dt(item.modified),
        "Attributes": psobjects.FileAttributes.Directory if item.is_dir else psobjects.FileAttributes.Archive,
    })
    extended = {
        "PSPath": _FS_QUALIFIER + item.path,
        "PSParentPath": _FS_QUALIFIER + parent if parent else "",
        "PSChildName": item.name,
        "PSIsContainer": item.is_dir,
        "Mode": "d-----" if item.is_dir else "-a----",
        "BaseName": base_name,
    }
    return psobjects.ps_object(_DIR_TYPES if item.is_dir else _FILE_TYPES, adapted, extended, to_string=item.path)


def cert_object(inv: Invocation, cert: HostCertificate) -> Any:
    """A certificate of Cert:\\LocalMachine\\My as Windows sends it over remoting.

    PowerShell's own type table (Types_Ps1Xml.cs, X509Certificate2: SerializationMethod
    SpecificProperties, SerializationDepth 1, PropertySerializationSet RawData) sends the DER as the
    only property; the notes the certificate provider adds to every item it outputs (PSPath,
    PSParentPath, PSChildName, PSDrive, PSProvider, PSIsContainer) travel too, being instance members
    (InternalSerializer.SerializeExtendedProperties). Everything else (Thumbprint, NotAfter,
    HasPrivateKey, FriendlyName...) is read from the DER by the client, or asked for with
    ``Get-ChildItem ... | Select-Object -Property ...`` (the live values are attached for that).
    """
    view, gen = inv.view, cert.generated
    parent = f"{_CERT_QUALIFIER}LocalMachine\\My"
    obj = psobjects.ps_object(
        _CERT_TYPES,
        adapted={"RawData": gen.der},
        extended={
            "PSPath": f"{parent}\\{gen.thumbprint}",
            "PSParentPath": parent,
            "PSChildName": gen.thumbprint,
            "PSDrive": _cert_drive(),
            "PSProvider": _cert_provider(),
            "PSIsContainer": False,
        },
        to_string=certs.to_string(gen, view.tz),
    )
    return with_live(obj, {
        "Archived": False,
        "FriendlyName": cert.friendly_name,
        "HasPrivateKey": cert.has_private_key,
        "NotAfter": PSDateTime(gen.not_after.astimezone(view.tz)),
        "NotBefore": PSDateTime(gen.not_before.astimezone(view.tz)),
        "RawData": gen.der,
        "SerialNumber": gen.serial_hex,
        "Thumbprint": gen.thumbprint,
        "Version": PSInt(gen.certificate.version.value + 1),
        "Issuer": gen.issuer,
        "Subject": gen.subject,
        "EnhancedKeyUsageList": _key_usages(gen.certificate),
        "DnsNameList": _dns_names(gen.certificate),
        "SendAsTrustedIssuer": False,
        "PSPath": f"{parent}\\{gen.thumbprint}",
        "PSParentPath": parent,
        "PSChildName": gen.thumbprint,
        "PSIsContainer": False,
    })


_SECURITY_ASSEMBLY = "Microsoft.PowerShell.Security, Version=3.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35"
# Names Windows gives the EKUs it knows (certmgr / EnhancedKeyUsageRepresentation.FriendlyName).
_EKU_NAMES = {"1.3.6.1.5.5.7.3.1": "Server Authentication", "1.3.6.1.5.5.7.3.2": "Client Authentication",
              "1.3.6.1.5.5.7.3.3": "Code Signing", "1.3.6.1.5.5.7.3.4": "Secure Email"}


def _dns_names(certificate: x509.Certificate) -> Any:
    """DnsNameList (PowerShell's type table): the SAN DNS names, else the subject CN; each a
    DnsNameRepresentation (Punycode, Unicode; ToString the name: CertificateProvider.cs)."""
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
            x509.DNSName)
    except x509.ExtensionNotFound:
        names = [str(a.value) for a in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    items = [psobjects.ps_object(
        ["Microsoft.PowerShell.Commands.DnsNameRepresentation", "System.ValueType", "System.Object"],
        adapted={"Punycode": name, "Unicode": name}, to_string=name) for name in names]
    result = psobjects.PSList(items)
    result.PSObject.type_names = [
        f"System.Collections.Generic.List`1[[Microsoft.PowerShell.Commands.DnsNameRepresentation, "
        f"{_SECURITY_ASSEMBLY}]]", "System.Object"]
    return result


def _key_usages(certificate: x509.Certificate) -> Any:
    """EnhancedKeyUsageList: EnhancedKeyUsageRepresentation (FriendlyName, ObjectId; ToString
    "Name (OID)": CertificateProvider.cs)."""
    try:
        oids = [u.dotted_string for u in certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        oids = []
    items = []
    for oid in oids:
        name = _EKU_NAMES.get(oid, "")
        items.append(psobjects.ps_object(
            ["Microsoft.PowerShell.Commands.EnhancedKeyUsageRepresentation", "System.ValueType", "System.Object"],
            adapted={"FriendlyName": name, "ObjectId": oid}, to_string=f"{name} ({oid})" if name else oid))
    result = psobjects.PSList(items)
    result.PSObject.type_names = [
        f"System.Collections.Generic.List`1[[Microsoft.PowerShell.Commands.EnhancedKeyUsageRepresentation, "
        f"{_SECURITY_ASSEMBLY}]]", "System.Object"]
    return result


def _cert_drive() -> Any:
    """The Cert: drive (PSDriveInfo) as a note at depth 1: its properties at depth 0, so the
    provider is its ToString and the (empty) credential a PSCredential object, which PowerShell always
    serialises with depth 1 (InternalSerializer.GetDepthOfSerialization). Property list: .NET
    PSDriveInfo."""
    credential = psobjects.ps_object(["System.Management.Automation.PSCredential", "System.Object"],
                                     adapted={"UserName": None, "Password": None},
                                     to_string="System.Management.Automation.PSCredential")
    return psobjects.ps_object(
        ["System.Management.Automation.PSDriveInfo", "System.Object"],
        adapted={"CurrentLocation": "", "Name": "Cert", "Provider": "Microsoft.PowerShell.Security\\Certificate",
                 "Root": "\\", "Description": "X509 Certificate Provider", "MaximumSize": None,
                 "Credential": credential, "DisplayRoot": None},
        to_string="Cert",
    )


def _cert_provider() -> Any:
    """The Certificate provider (ProviderInfo) as a note at depth 1 (property list: .NET
    ProviderInfo; enums and objects at depth 0 are their ToString, lists stay lists)."""
    drives = psobjects.PSList(["Cert"])
    drives.PSObject.type_names = [
        "System.Collections.ObjectModel.Collection`1[[System.Management.Automation.PSDriveInfo, "
        "System.Management.Automation, Version=3.0.0.0, Culture=neutral, PublicKeyToken=31bf3856ad364e35]]",
        "System.Object"]
    return psobjects.ps_object(
        ["System.Management.Automation.ProviderInfo", "System.Object"],
        adapted={"ImplementingType": "Microsoft.PowerShell.Commands.CertificateProvider",
                 "HelpFile": "Microsoft.PowerShell.Security.dll-Help.xml", "Name": "Certificate", "PSSnapIn": None,
                 "ModuleName": "Microsoft.PowerShell.Security", "Module": "Microsoft.PowerShell.Security",
                 "Description": "", "Capabilities": "ShouldProcess", "Home": "", "Drives": drives},
        to_string="Microsoft.PowerShell.Security\\Certificate",
    )


def _registry_value(value: Any) -> Any:
    if isinstance(value, list):
        result = psobjects.PSList([str(v) for v in value])
        result.PSObject.type_names = list(_STRING_ARRAY_TYPES)
        return result
    if isinstance(value, bool):
        return int(value)
    return value


def registry_key_object(path: str, values: dict, subkeys: int) -> Any:
    parent = path.rsplit("\\", 1)[0] if "\\" in path else ""
    names = psobjects.PSList(list(values))
    names.PSObject.type_names = list(_STRING_ARRAY_TYPES)
    return psobjects.ps_object(
        ["Microsoft.Win32.RegistryKey", "System.MarshalByRefObject", "System.Object"],
        adapted={"Name": path, "SubKeyCount": subkeys, "ValueCount": len(values)},
        extended={
            "Property": names,
            "PSPath": _REG_QUALIFIER + path,
            "PSParentPath": _REG_QUALIFIER + parent if parent else "",
            "PSChildName": path.rsplit("\\", 1)[-1],
            "PSIsContainer": True,
        },
        to_string=path,
    )


def _cert_location(path: str) -> tuple[str | None, str | None, str | None]:
    """``LocalMachine\\My\\THUMB`` -> (location, store, thumbprint)."""
    parts: list[str | None] = [p for p in path.split("\\") if p]
    if len(parts) > 3:
        return None, None, None
    parts += [None] * (3 - len(parts))
    return parts[0], parts[1], parts[2]


# ---------------------------------------------------------------- cmdlets

_PATH_PARAMS = (Param("Path", STRINGS, position=0), Param("LiteralPath", STRINGS, aliases=("PSPath", "LP")))


@cmdlet("Get-Item", _CLASSES["Get-Item"], "windows", params=_PATH_PARAMS + (Param("Force", SWITCH),))
def get_item(inv: Invocation) -> None:
    literal = inv.has("LiteralPath")  # -LiteralPath never expands wildcards: "[" is a character there
    for raw in _paths(inv):
        provider, path = classify(raw)
        if provider == FILESYSTEM:
            fs = FileSystem(inv.view)
            if not literal and _has_wildcard(path):
                parent = parent_of(path) or path
                for item in fs.children(parent):
                    if fnmatch.fnmatchcase(item.name.lower(), ntpath.basename(path).lower()):
                        inv.out.write(fs_object(inv, item))
                continue
            item = fs.get(path)
            if item is None:
                _not_found(inv, raw)
            else:
                inv.out.write(fs_object(inv, item))
        elif provider == REGISTRY:
            registry = Registry(inv.view)
            found = registry.get(path)
            if found is None:
                _not_found(inv, raw)
                continue
            inv.out.write(registry_key_object(found[0], found[1], len(registry.children(found[0]))))
        elif provider == CERTIFICATE:
            location, store, thumb = _cert_location(path)
            certs = machine_store(inv.view) if (store or "").lower() == "my" else []
            match = [c for c in certs if thumb and c.thumbprint.lower() == thumb.lower()]
            if location and location.lower() == "localmachine" and thumb and match:
                inv.out.write(cert_object(inv, match[0]))
            else:
                _not_found(inv, raw)
        else:
            _not_found(inv, raw)


@cmdlet(
    "Get-ChildItem",
    _CLASSES["Get-ChildItem"],
    "windows",
    params=_PATH_PARAMS + (
        Param("Filter", STRING, position=1),
        Param("Recurse", SWITCH, aliases=("s",)),
        Param("Force", SWITCH),
        Param("Name", SWITCH),
        Param("File", SWITCH, aliases=("af",)),
        Param("Directory", SWITCH, aliases=("ad", "d")),
    ),
)
def get_child_item(inv: Invocation) -> None:
    name_filter = (inv.get("Filter") or "*").lower()
    for raw in _paths(inv):
        provider, path = classify(raw)
        _fs_only_switches(inv, provider, ("File", "Directory"))
        if provider == FILESYSTEM:
            fs = FileSystem(inv.view)
            item = fs.get(path)
            if item is None:
                _not_found(inv, raw)
                continue
            listing = fs.children(path, recurse=bool(inv.get("Recurse"))) if item.is_dir else [item]
            for child in listing:
                if inv.get("File") and child.is_dir or inv.get("Directory") and not child.is_dir:
                    continue
                if fnmatch.fnmatchcase(child.name.lower(), name_filter):
                    inv.out.write(child.name if inv.get("Name") else fs_object(inv, child))
        elif provider == CERTIFICATE:
            location, store, thumb = _cert_location(path)
            if location is None or location.lower() != "localmachine" or thumb is not None:
                if location is None and path == "":
                    continue  # Cert:\ itself: store locations, not needed by anything here
                _not_found(inv, raw)
                continue
            if store is None:
                continue
            if store.lower() not in (s.lower() for s in CERT_STORES):
                _not_found(inv, raw)
                continue
            if store.lower() == "my":
                for cert in machine_store(inv.view):
                    inv.out.write(cert_object(inv, cert))
        elif provider == REGISTRY:
            registry = Registry(inv.view)
            if registry.get(path) is None:
                _not_found(inv, raw)
                continue
            for child_path, values in registry.children(path):
                inv.out.write(registry_key_object(child_path, values, len(registry.children(child_path))))
        else:
            _not_found(inv, raw)


@cmdlet(
    "Get-Content",
    _CLASSES["Get-Content"],
    "windows",
    params=_PATH_PARAMS + (
        Param("Raw", SWITCH),
        Param("TotalCount", INT, aliases=("First", "Head")),
        Param("Tail", INT, aliases=("Last",)),
        Param("Encoding", STRING),
        Param("ReadCount", INT),
    ),
)
def get_content(inv: Invocation) -> None:
    for raw in _paths(inv):
        provider, path = classify(raw)
        _fs_only_switches(inv, provider, ("Raw", "Encoding"))
        if provider != FILESYSTEM:
            inv.out.error(errors.invalid_argument(
                "Cannot use interface. The IContentCmdletProvider interface is not implemented by this provider.",
                f"NotSupported,{inv.cmdlet.dotnet_class}", inv.cmdlet.name))
            continue
        item = FileSystem(inv.view).get(path)
        if item is None:
            _not_found(inv, raw)
            continue
        if item.is_dir:
            inv.out.error(errors.invalid_argument(
                f"Unable to get content because it is a directory: '{item.path}'. Please use 'Get-ChildItem' "
                "instead.", f"GetContentReaderUnauthorizedAccessError,{inv.cmdlet.dotnet_class}", inv.cmdlet.name))
            continue
        text = item.content or ""
        if inv.get("Raw"):
            inv.out.write(text)
            continue
        lines = text.splitlines()
        if inv.get("TotalCount") is not None:
            lines = lines[: inv.get("TotalCount")]
        if inv.get("Tail") is not None:
            lines = lines[-inv.get("Tail"):] if inv.get("Tail") else []
        for line in lines:
            inv.out.write(line)


@cmdlet(
    "Get-ItemProperty",
    _CLASSES["Get-ItemProperty"],
    "windows",
    params=_PATH_PARAMS + (Param("Name", STRINGS, position=1),),
)
def get_item_property(inv: Invocation) -> None:
    for raw in _paths(inv):
        provider, path = classify(raw)
        if provider == FILESYSTEM:
            item = FileSystem(inv.view).get(path)
            if item is None:
                _not_found(inv, raw)
            else:
                inv.out.write(fs_object(inv, item))
            continue
        if provider != REGISTRY:
            _not_found(inv, raw)
            continue
        found = Registry(inv.view).get(path)
        if found is None:
            _not_found(inv, raw)
            continue
        key_path, values = found
        wanted = inv.get("Name")
        selected: dict[str, Any] = {}
        if wanted is None:
            selected = dict(values)
        else:
            lookup = {k.lower(): k for k in values}
            for name in wanted:
                if name.lower() in lookup:
                    selected[lookup[name.lower()]] = values[lookup[name.lower()]]
                else:
                    inv.out.error(errors.property_not_found(name, key_path))
        if not selected:
            continue
        parent = key_path.rsplit("\\", 1)[0]
        extended = {name: _registry_value(value) for name, value in selected.items()}
        extended.update({
            "PSPath": _REG_QUALIFIER + key_path,
            "PSParentPath": _REG_QUALIFIER + parent,
            "PSChildName": key_path.rsplit("\\", 1)[-1],
        })
        inv.out.write(psobjects.ps_object(
            ["System.Management.Automation.PSCustomObject", "System.Object"], extended=extended))
