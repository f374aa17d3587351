"""Items of the Certificate provider (``Cert:\\LocalMachine\\My``) as remoting sends them: the
certificate with the provider's notes, its PSDrive and PSProvider, and the live values
``Select-Object`` reads (EnhancedKeyUsageList, DnsNameList...)."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID
from psrpcore.types import PSDateTime, PSInt

from simulator import certs, psobjects
from simulator.cmdlets.base import Invocation
from simulator.cmdlets.certificates import HostCertificate
from simulator.cmdlets.select import with_live

_CERT_QUALIFIER = "Microsoft.PowerShell.Security\\Certificate::"
_CERT_TYPES = [
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
    "System.Object",
]


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


def cert_location(path: str) -> tuple[str | None, str | None, str | None]:
    """``LocalMachine\\My\\THUMB`` -> (location, store, thumbprint)."""
    parts: list[str | None] = [p for p in path.split("\\") if p]
    if len(parts) > 3:
        return None, None, None
    parts += [None] * (3 - len(parts))
    return parts[0], parts[1], parts[2]
