"""Read OWA's IM settings (check E3, Exchange 2013) out of the text of ``ClientAccess\\Owa\\web.config``.

Exchange 2013 keeps two ``<appSettings>`` keys there: ``IMCertificateThumbprint`` and
``IMServerName``. The file comes from a server, so it is untrusted: it is size-capped before parsing,
parsed with defusedxml with DTDs refused (no entity is ever expanded, internal or external), and any
problem comes back as a typed :class:`WebConfigProblem` instead of an exception.

Keys are read as .NET reads appSettings: names are case-insensitive, ``<add>`` elements apply in
order (a repeated key: the last one wins), ``<remove key>`` drops a key and ``<clear/>`` drops all.
Values are returned exactly as written: judging them (whitespace, invisible characters) is the
caller's job, so that a malformed thumbprint can be told apart from a missing one.
"""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree as SafeET

KEY_THUMBPRINT = "IMCertificateThumbprint"
KEY_SERVER_NAME = "IMServerName"

# A real OWA web.config is some 30 KiB; anything past this is not one and is refused unread.
MAX_WEB_CONFIG_BYTES = 1024 * 1024


class WebConfigProblem(str, enum.Enum):
    TOO_LARGE = "web_config_too_large"
    NOT_XML = "web_config_not_xml"
    DTD_OR_ENTITY = "web_config_dtd_or_entity"
    NOT_A_CONFIGURATION = "web_config_not_a_configuration"
    DUPLICATE_APP_SETTINGS = "web_config_duplicate_app_settings"


@dataclass(frozen=True)
class ImAppSettings:
    """The two IM keys as written (None: the key is absent); ``duplicate_keys`` names IM keys set twice."""

    server_name: str | None
    certificate_thumbprint: str | None
    duplicate_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class WebConfigError:
    """Why the file could not be read; ``detail`` is for logs only (never a label)."""

    problem: WebConfigProblem
    detail: str


def _local_name(tag: object) -> str:
    # "{namespace}name" -> "name"; comments and processing instructions have non-string tags.
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1]


def _too_large(text: str) -> bool:
    # Characters never outnumber UTF-8 bytes, so the cheap length test settles most cases.
    if len(text) > MAX_WEB_CONFIG_BYTES:
        return True
    return len(text.encode("utf-8", "surrogatepass")) > MAX_WEB_CONFIG_BYTES


def parse_im_app_settings(text: str) -> ImAppSettings | WebConfigError:
    """The IM keys of a web.config's text, or the problem that stops us reading them."""
    if not isinstance(text, str):
        return WebConfigError(WebConfigProblem.NOT_XML, f"expected text, got {type(text).__name__}")
    if _too_large(text):
        return WebConfigError(WebConfigProblem.TOO_LARGE, f"larger than {MAX_WEB_CONFIG_BYTES} bytes")
    try:
        root = SafeET.fromstring(text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        return WebConfigError(WebConfigProblem.DTD_OR_ENTITY, type(exc).__name__)
    except ET.ParseError as exc:
        return WebConfigError(WebConfigProblem.NOT_XML, str(exc)[:200])
    except (ValueError, UnicodeError) as exc:  # e.g. lone surrogates that expat cannot take
        return WebConfigError(WebConfigProblem.NOT_XML, f"{type(exc).__name__}: {str(exc)[:160]}")
    if _local_name(root.tag) != "configuration":
        return WebConfigError(WebConfigProblem.NOT_A_CONFIGURATION, f"root element is {_local_name(root.tag)[:60]!r}")
    sections = [child for child in root if _local_name(child.tag) == "appSettings"]
    if len(sections) > 1:
        # .NET refuses a section that appears twice ("Sections must only appear once per config file").
        return WebConfigError(WebConfigProblem.DUPLICATE_APP_SETTINGS, f"{len(sections)} <appSettings> sections")
    return _read_app_settings(sections[0] if sections else None)


def _read_app_settings(section: ET.Element | None) -> ImAppSettings:
    wanted = {KEY_THUMBPRINT.casefold(): KEY_THUMBPRINT, KEY_SERVER_NAME.casefold(): KEY_SERVER_NAME}
    values: dict[str, str] = {}
    duplicates: set[str] = set()
    for element in section if section is not None else ():
        kind = _local_name(element.tag)
        if kind == "clear":
            values.clear()
            continue
        key = (element.get("key") or "").casefold()
        if key not in wanted:
            continue
        if kind == "remove":
            values.pop(key, None)
        elif kind == "add":
            if key in values:
                duplicates.add(wanted[key])
            values[key] = element.get("value") or ""
    return ImAppSettings(
        server_name=values.get(KEY_SERVER_NAME.casefold()),
        certificate_thumbprint=values.get(KEY_THUMBPRINT.casefold()),
        duplicate_keys=tuple(sorted(duplicates)),
    )
