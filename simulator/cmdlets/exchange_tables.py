"""Exchange objects' property tables and type names, as Exchange's remote endpoint sends them.

Every shape here (type names, property names and order, the CLIXML element of each property, enum
types and numbers) is the one real Exchange servers sent, in ../shared/captures/exchange (E15 =
Exchange 2013, E16 = Exchange 2016; Exchange 2019 answers with the 2016 shapes: its only capture,
Get-SettingOverride, is modelled as it is). ``exchange_objects.ObjectBuilder`` fills a table for one
server; tests/simulator/test_capture_shapes.py compares the answers with the captures through the
real pypsrp client, so they cannot drift apart.

A table's defaults are those of a fresh Exchange install (the booleans, numbers and enum values the
captures' servers had, which are Exchange's defaults), and empty lists where a capture listed
server-specific items (file types, MIME types). Nothing here is a capture's server-specific data
(names, GUIDs, dates).
"""

from __future__ import annotations

import dataclasses
from typing import Any

_SYS = "Microsoft.Exchange.Data.Directory.SystemConfiguration."
DIRECTORY_ASSEMBLY = ("Microsoft.Exchange.Data.Directory, Version=15.0.0.0, Culture=neutral, "
                      "PublicKeyToken=31bf3856ad364e35")
STRING_TYPE = "System.String, mscorlib, Version=4.0.0.0, Culture=neutral, PublicKeyToken=b77a5c561934e089"
STRINGS_TYPES = (f"Microsoft.Exchange.Data.MultiValuedProperty`1[[{STRING_TYPE}]]",
                 "Microsoft.Exchange.Data.MultiValuedPropertyBase", "System.Object")
_AUTH_METHOD_TYPE = f"{_SYS}AuthenticationMethod, {DIRECTORY_ASSEMBLY}"
AUTH_METHODS_TYPES = (f"Microsoft.Exchange.Data.Directory.ADMultiValuedProperty`1[[{_AUTH_METHOD_TYPE}]]",
                      f"Microsoft.Exchange.Data.MultiValuedProperty`1[[{_AUTH_METHOD_TYPE}]]",
                      "Microsoft.Exchange.Data.MultiValuedPropertyBase", "System.Object")
EXTENDED_PROTECTION_FLAGS_TYPES = (
    f"Microsoft.Exchange.Data.MultiValuedProperty`1[[{_SYS}ExtendedProtectionFlag, {DIRECTORY_ASSEMBLY}]]",
    "Microsoft.Exchange.Data.MultiValuedPropertyBase", "System.Object")
_AUTH_METHOD = ("enum", f"{_SYS}AuthenticationMethod")
AD_BASE_TYPES = [
    "Microsoft.Exchange.Data.Directory.ADObject",
    "Microsoft.Exchange.Data.Directory.ADRawEntry",
    "Microsoft.Exchange.Data.ConfigurableObject",
    "System.Object",
]
INSTANT_MESSAGING_TYPES = {"None": 0, "Ocs": 1, "Msn": 2}


def shape_version(version: int) -> int:
    """Which capture's shapes a server version answers with: 2013 (E15) or 2016 (E16; 2019 too)."""
    return 2013 if version == 2013 else 2016


@dataclasses.dataclass(frozen=True)
class P:
    """One property of a table: name, CLIXML kind, default, and the first version that has it."""

    name: str
    kind: str  # B I32 I64 S Nil enum strings list obj Ref G DT URI
    default: Any = None
    items: Any = None
    since: int = 2013


# Get-OwaVirtualDirectory's own properties, in the order Exchange sends them (E16; the entries
# "since=2016" are not in E15's answer). The ADObject properties that follow them come from ad_object().
OWA_VIRTUAL_DIRECTORY = [
    P("DirectFileAccessOnPublicComputersEnabled", "B", True),
    P("DirectFileAccessOnPrivateComputersEnabled", "B", True),
    P("WebReadyDocumentViewingOnPublicComputersEnabled", "B", True),
    P("WebReadyDocumentViewingOnPrivateComputersEnabled", "B", True),
    P("ForceWebReadyDocumentViewingFirstOnPublicComputers", "B", False),
    P("ForceWebReadyDocumentViewingFirstOnPrivateComputers", "B", False),
    P("WacViewingOnPublicComputersEnabled", "B", True),
    P("WacViewingOnPrivateComputersEnabled", "B", True),
    P("ForceWacViewingFirstOnPublicComputers", "B", False),
    P("ForceWacViewingFirstOnPrivateComputers", "B", False),
    P("RemoteDocumentsActionForUnknownServers", "enum", (_SYS + 'RemoteDocumentsActions', 'Block', 1)),
    P("ActionForUnknownFileAndMIMETypes", "enum", (_SYS + 'AttachmentBlockingActions', 'Allow', 0)),
    P("WebReadyFileTypes", "strings"),
    P("WebReadyMimeTypes", "strings"),
    P("WebReadyDocumentViewingForAllSupportedTypes", "B", True),
    P("WebReadyDocumentViewingSupportedMimeTypes", "strings"),
    P("WebReadyDocumentViewingSupportedFileTypes", "strings"),
    P("AllowedFileTypes", "strings"),
    P("AllowedMimeTypes", "strings"),
    P("ForceSaveFileTypes", "strings"),
    P("ForceSaveMimeTypes", "strings"),
    P("BlockedFileTypes", "strings"),
    P("BlockedMimeTypes", "strings"),
    P("RemoteDocumentsAllowedServers", "strings"),
    P("RemoteDocumentsBlockedServers", "strings"),
    P("RemoteDocumentsInternalDomainSuffixList", "strings"),
    P("FolderPathname", "Nil"),
    P("Url", "strings"),
    P("LogonFormat", "enum", (_SYS + 'LogonFormats', 'FullDomain', 0)),
    P("ClientAuthCleanupLevel", "enum", (_SYS + 'ClientAuthCleanupLevels', 'High', 0)),
    P("LogonPagePublicPrivateSelectionEnabled", "B", False),
    P("LogonPageLightSelectionEnabled", "B", False),
    P("FreCardsEnabled", "B", True, since=2016),
    P("InternalSPMySiteHostURL", "Nil", since=2016),
    P("ExternalSPMySiteHostURL", "Nil", since=2016),
    P("WacEditingEnabled", "B", True, since=2016),
    P("DropboxAttachmentsEnabled", "B", True, since=2016),
    P("BoxAttachmentsEnabled", "B", True, since=2016),
    P("OneDriveAttachmentsEnabled", "B", True, since=2016),
    P("GoogleDriveAttachmentsEnabled", "B", True, since=2016),
    P("ClassicAttachmentsEnabled", "B", True, since=2016),
    P("ReferenceAttachmentsEnabled", "B", True, since=2016),
    P("SaveAttachmentsToCloudEnabled", "B", True, since=2016),
    P("ThirdPartyAttachmentsEnabled", "B", True, since=2016),
    P("IsPublic", "B", False),
    P("ExternalDownloadHostName", "Nil", since=2016),
    P("InternalDownloadHostName", "Nil", since=2016),
    P("FilterWebBeaconsAndHtmlForms", "enum", (_SYS + 'WebBeaconFilterLevels', 'UserFilterChoice', 0)),
    P("NotificationInterval", "I32", 120),
    P("DefaultTheme", "S", ""),
    P("UserContextTimeout", "I32", 60),
    P("ExchwebProxyDestination", "Nil"),
    P("VirtualDirectoryType", "Nil"),
    P("OwaVersion", "enum", (_SYS + 'OwaVersions', 'Exchange2013', 4)),
    P("ServerName", "S", ""),
    P("InstantMessagingCertificateThumbprint", "S", ""),
    P("InstantMessagingServerName", "S", ""),
    P("RedirectToOptimalOWAServer", "B", True),
    P("DefaultClientLanguage", "I32", 0),
    P("LogonAndErrorLanguage", "I32", 0),
    P("UseGB18030", "B", False),
    P("UseISO885915", "B", False),
    P("OutboundCharset", "enum", (_SYS + 'OutboundCharsetOptions', 'AutoDetect', 1)),
    P("GlobalAddressListEnabled", "B", True),
    P("OrganizationEnabled", "B", True),
    P("ExplicitLogonEnabled", "B", True),
    P("OWALightEnabled", "B", True),
    P("DelegateAccessEnabled", "B", True),
    P("IRMEnabled", "B", True),
    P("CalendarEnabled", "B", True),
    P("ContactsEnabled", "B", True),
    P("TasksEnabled", "B", True),
    P("JournalEnabled", "B", True),
    P("NotesEnabled", "B", True),
    P("RemindersAndNotificationsEnabled", "B", True),
    P("PremiumClientEnabled", "B", True),
    P("SpellCheckerEnabled", "B", True),
    P("SearchFoldersEnabled", "B", True),
    P("SignaturesEnabled", "B", True),
    P("ThemeSelectionEnabled", "B", True),
    P("JunkEmailEnabled", "B", True),
    P("UMIntegrationEnabled", "B", True),
    P("WSSAccessOnPublicComputersEnabled", "B", True),
    P("WSSAccessOnPrivateComputersEnabled", "B", True),
    P("ChangePasswordEnabled", "B", True),
    P("UNCAccessOnPublicComputersEnabled", "B", True),
    P("UNCAccessOnPrivateComputersEnabled", "B", True),
    P("ActiveSyncIntegrationEnabled", "B", True),
    P("AllAddressListsEnabled", "B", True),
    P("RulesEnabled", "B", True),
    P("PublicFoldersEnabled", "B", True),
    P("SMimeEnabled", "B", True),
    P("RecoverDeletedItemsEnabled", "B", True),
    P("InstantMessagingEnabled", "B", True),
    P("TextMessagingEnabled", "B", True),
    P("ForceSaveAttachmentFilteringEnabled", "B", False),
    P("SilverlightEnabled", "B", True),
    P("PlacesEnabled", "B", False),
    P("WeatherEnabled", "B", True),
    P("LocalEventsEnabled", "B", False, since=2016),
    P("InterestingCalendarsEnabled", "B", True, since=2016),
    P("AllowCopyContactsToDeviceAddressBook", "B", True),
    P("AnonymousFeaturesEnabled", "B", True),
    P("IntegratedFeaturesEnabled", "B", True),
    P("DisplayPhotosEnabled", "B", True),
    P("SetPhotoEnabled", "B", True),
    P("PredictedActionsEnabled", "B", False),
    P("UserDiagnosticEnabled", "B", False),
    P("ReportJunkEmailEnabled", "B", True),
    P("WebPartsFrameOptionsType", "enum", (_SYS + 'WebPartsFrameOptions', 'SameOrigin', 3)),
    P("AllowOfflineOn", "enum", (_SYS + 'AllowOfflineOnEnum', 'AllComputers', 3)),
    P("SetPhotoURL", "S", ""),
    P("InstantMessagingType", "enum", (_SYS + 'InstantMessagingTypeOptions', 'None', 0)),
    P("Exchange2003Url", "Nil"),
    P("FailbackUrl", "Nil"),
    P("Name", "S", ""),
    P("InternalAuthenticationMethods", "list", AUTH_METHODS_TYPES, [_AUTH_METHOD + ("Basic", 0), _AUTH_METHOD + ("Fba", 3)]),
    P("MetabasePath", "S", ""),
    P("BasicAuthentication", "B", False),
    P("WindowsAuthentication", "B", False),
    P("DigestAuthentication", "B", False),
    P("FormsAuthentication", "B", False),
    P("LiveIdAuthentication", "B", False),
    P("AdfsAuthentication", "B", False),
    P("OAuthAuthentication", "B", False),
    P("DefaultDomain", "S", ""),
    P("GzipLevel", "enum", (_SYS + 'GzipLevel', 'Off', 0)),
    P("WebSite", "S", ""),
    P("DisplayName", "S", ""),
    P("Path", "S", ""),
    P("ExtendedProtectionTokenChecking", "enum", (_SYS + 'ExtendedProtectionTokenCheckingMode', 'None', 0)),
    P("ExtendedProtectionFlags", "list", EXTENDED_PROTECTION_FLAGS_TYPES, []),
    P("ExtendedProtectionSPNList", "strings"),
    P("AdminDisplayVersion", "obj"),
    P("Server", "obj"),
    P("InternalUrl", "URI"),
    P("ExternalUrl", "Nil"),
    P("ExternalAuthenticationMethods", "list", AUTH_METHODS_TYPES, [_AUTH_METHOD + ("Fba", 3)]),
]
OWA_VIRTUAL_DIRECTORY_TYPES = [
    f"{_SYS}ADOwaVirtualDirectory",
    f"{_SYS}ExchangeWebAppVirtualDirectory",
    f"{_SYS}ExchangeVirtualDirectory",
    f"{_SYS}ADVirtualDirectory",
    f"{_SYS}ADConfigurationObject",
    *AD_BASE_TYPES,
]
