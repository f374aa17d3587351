"""Check E3 on Exchange 2016/2019: the IM setting override is in effect (the values OWA's servers load).

A setting override is stored in Active Directory; Exchange loads it only when the server's variant
configuration is refreshed (``Get-ExchangeDiagnosticInfo ... -Process
Microsoft.Exchange.Directory.TopologyService -Component VariantConfiguration -Argument Refresh``) and OWA
uses it after ``Restart-WebAppPool MSExchangeOWAAppPool`` (Microsoft, "Configure instant messaging
integration with Outlook on the web in Exchange 2016", steps 2 and 3). The same article gives the way
to see the values the server has loaded::

    [xml]$diag=Get-ExchangeDiagnosticInfo -Server <ServerName> -Process MSExchangeMailboxAssistants
      -Component VariantConfiguration -Argument "Config,Component=OwaServer"
    $diag.Diagnostics.Components.VariantConfiguration.Configuration.OwaServer.IMSettings

(``-Server`` takes the server's name, not its FQDN; Exchange 2016 CU3 and earlier need other values,
which this check does not send.) The answer's XML travels as text in the result's ``Result`` property.
No capture of a real answer is available: the element path is Microsoft's, and whether IMServerName and
IMCertificateThumbprint are attributes of ``IMSettings`` or child elements is not documented, so both
are read. An override that was changed but never refreshed leaves the server on the old values.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

from collectors.contract import CollectContext, Field, Shape
from collectors.helpers.cmdlet_policy import OneOf
from collectors.helpers.names import fqdn, ip_address
from collectors.helpers.text import trim_text
from collectors.im_certificate.im_settings import (
    SOURCE_SETTING_OVERRIDE,
    ImSettings,
    normalise_thumbprint,
)
from collectors.sources.safe_xml import UnsafeXML, bounded_fromstring

CMDLET = "Get-ExchangeDiagnosticInfo"
PROCESS = "MSExchangeMailboxAssistants"
COMPONENT = "VariantConfiguration"
# Read-only: "Refresh" (which changes what the server has loaded) is not allowed by this policy.
ARGUMENT = "Config,Component=OwaServer"
DIAGNOSTIC_PARAMETERS = {
    "Server": None,
    "Process": OneOf((PROCESS,)),
    "Component": OneOf((COMPONENT,)),
    "Argument": OneOf((ARGUMENT,)),
}
DIAGNOSTIC_INFO = Shape(CMDLET, (Field("Result", "str", nullable=True),))
# Diagnostics/Components/VariantConfiguration/Configuration/OwaServer/IMSettings (Microsoft's path).
IM_SETTINGS_PATH = ("Components", "VariantConfiguration", "Configuration", "OwaServer", "IMSettings")
KEYS = ("IMServerName", "IMCertificateThumbprint")

CHECK_OVERRIDE_IN_EFFECT = "im_setting_override_in_effect"


class DiagnosticAnswerError(ValueError):
    """The diagnostic answer is not the XML Microsoft documents; the message says what is wrong."""


@dataclass(frozen=True)
class LoadedImSettings:
    """The IM settings the server has loaded (None: the loaded configuration does not set it)."""

    server_name: str | None
    certificate_thumbprint: str | None


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(element: Element, name: str) -> Element | None:
    return next((c for c in element if _local(c.tag).casefold() == name.casefold()), None)


def _value(settings: Element, key: str) -> str | None:
    """An attribute of IMSettings, else the text of a child element of that name."""
    for attribute, value in settings.attrib.items():
        if _local(attribute).casefold() == key.casefold():
            return value
    child = _child(settings, key)
    return child.text if child is not None and child.text is not None else None


def parse_loaded_im_settings(text: str | None) -> LoadedImSettings:
    """The IMSettings of the OwaServer component in a VariantConfiguration answer.

    An answer without an IMSettings element means the server has loaded no IM settings (the values
    are None); an answer that is not XML, or whose root is not Diagnostics, raises DiagnosticAnswerError.
    """
    if not trim_text(text):
        raise DiagnosticAnswerError("the Result property is empty")
    try:
        root = bounded_fromstring(text or "")
    except (ParseError, UnsafeXML) as exc:
        raise DiagnosticAnswerError(f"the Result property is not XML the check can read: {exc}") from None
    if _local(root.tag).casefold() != "diagnostics":
        raise DiagnosticAnswerError(f"the Result's root element is <{_local(root.tag)[:40]}>, not <Diagnostics>")
    node: Element | None = root
    for name in IM_SETTINGS_PATH:
        node = _child(node, name) if node is not None else None
    if node is None:
        return LoadedImSettings(None, None)
    return LoadedImSettings(_value(node, KEYS[0]), _value(node, KEYS[1]))


def override_in_effect(configured: ImSettings, loaded: LoadedImSettings) -> bool:
    """The loaded IMServerName and IMCertificateThumbprint are the ones the override sets (FQDNs and
    thumbprints compared as the other E3 checks compare them)."""
    return (fqdn(configured.server_name, strict=True) == fqdn(loaded.server_name, strict=True)
            and normalise_thumbprint(configured.certificate_thumbprint)
            == normalise_thumbprint(loaded.certificate_thumbprint))


def server_name_argument(server: str) -> str:
    """-Server takes the server's name, not its FQDN (Microsoft's article): the first label of a host name."""
    return server if ip_address(server) is not None else server.split(".", 1)[0]


def read_loaded_im_settings(ctx: CollectContext, server: str) -> tuple[LoadedImSettings | None, str]:
    """Ask the server which IM settings it has loaded: (the settings, "") or (None, why not). An answer
    the check cannot read leaves this one check out; the run and the other E3 checks go on."""
    where = f"{ctx.where('exchange')} {CMDLET} -Component {COMPONENT}"
    answer = ctx.run("exchange", CMDLET, {"Server": server_name_argument(server), "Process": PROCESS,
                                          "Component": COMPONENT, "Argument": ARGUMENT}, DIAGNOSTIC_INFO)
    if len(answer.objects) != 1:
        return None, f"{where}: expected one result, got {len(answer.objects)}"
    try:
        return parse_loaded_im_settings(answer.objects[0]["Result"]), ""
    except DiagnosticAnswerError as exc:
        return None, f"{where}: {exc}"


def judge_override(ctx: CollectContext, im: ImSettings, server: str, logged: str) -> tuple[bool | None, str]:
    """Whether the server has loaded the override's values (None: not judged, while the override is
    unreadable or does not set both: the other E3 checks say so), and why the answer could not be read
    (``logged``: said once per change, not at every run)."""
    if im.source != SOURCE_SETTING_OVERRIDE or im.problem is not None:
        return None, logged
    if not (im.server_name and im.certificate_thumbprint):
        return None, logged
    loaded, problem = read_loaded_im_settings(ctx, server)
    if problem and problem != logged:
        ctx.log.warning("%s; not judging whether the IM setting override is in effect", problem)
    return (None if loaded is None else override_in_effect(im, loaded)), problem
