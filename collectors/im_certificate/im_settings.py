"""What OWA's IM settings (check E3) say, and how to judge them; pure functions, no remoting.

The settings are the Lync pool OWA talks to (``IMServerName``) and the thumbprint of the certificate
it presents (``IMCertificateThumbprint``). Exchange 2013 keeps them in OWA's web.config (see
:mod:`collectors.owa_webconfig`); Exchange 2016/2019 in a setting override (component OwaServer,
section IMSettings) that applies to the whole organisation or to named servers.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from collectors.helpers.names import fqdn, ip_address
from collectors.helpers.text import trim_text
from collectors.im_certificate.owa_web_config import (
    KEY_SERVER_NAME,
    KEY_THUMBPRINT,
    WebConfigProblem,
)

SOURCE_WEB_CONFIG = "web_config"
SOURCE_SETTING_OVERRIDE = "setting_override"
SOURCES = (SOURCE_WEB_CONFIG, SOURCE_SETTING_OVERRIDE)

PROBLEM_WEB_CONFIG_MISSING = "web_config_missing"
PROBLEM_OVERRIDE_CONFLICT = "setting_override_conflict"
# Why the settings could not be read: a closed list, so it can be a label.
SETTINGS_PROBLEMS: tuple[str, ...] = (
    PROBLEM_WEB_CONFIG_MISSING,
    *(problem.value for problem in WebConfigProblem),
    PROBLEM_OVERRIDE_CONFLICT,
)

OVERRIDE_COMPONENT = "OwaServer"
OVERRIDE_SECTION = "IMSettings"

# Settings are trimmed of ordinary whitespace only (trim_text, fqdn(strict=True)), never cleaned: the
# U+200E that the certificate MMC copies along with a thumbprint is not whitespace, OWA cannot use a
# value that carries one, and that is what the checks must report.
_THUMBPRINT = re.compile(r"[0-9A-Fa-f]{40}")


@dataclass(frozen=True)
class ImSettings:
    """The IM settings of one server as configured (values as written; None: not set)."""

    source: str
    server_name: str | None = None
    certificate_thumbprint: str | None = None
    problem: str | None = None  # one of SETTINGS_PROBLEMS when the settings could not be read


def thumbprint_well_formed(value: str | None) -> bool:
    """Exactly 40 hex digits once ordinary whitespace is trimmed; case does not matter."""
    return _THUMBPRINT.fullmatch(trim_text(value)) is not None


def normalise_thumbprint(value: str | None) -> str:
    return trim_text(value).upper()


def normalise_fqdn(value: str | None) -> str:
    return fqdn(value, strict=True)


def server_name_matches_pool(server_name: str | None, pool_fqdn: str) -> bool:
    name = normalise_fqdn(server_name)
    return bool(name) and name == normalise_fqdn(pool_fqdn)


# --- setting overrides (Exchange 2016/2019) -----------------------------------------------------


def _names(value: Any) -> list[str]:
    """A multi-valued property as a list of strings, whatever shape it arrived in."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list):
        return [str(item) for item in value if item is not None and str(item).strip()]
    return []


def names_server(entry: str, server: str) -> bool:
    """Does an override's Server entry name this server? Entries are names or patterns
    (``New-SettingOverride -Server EX16*``: Microsoft's published guidance uses wildcards), compared
    case-insensitively: FQDN against FQDN when both have a domain, else by the first label."""
    pattern, name = normalise_fqdn(entry), normalise_fqdn(server)
    if not pattern or not name:
        return False
    if ("." in pattern and "." in name) or ip_address(name) is not None:
        return fnmatch.fnmatchcase(name, pattern)
    return fnmatch.fnmatchcase(name.split(".", 1)[0], pattern.split(".", 1)[0])


def parse_version(value: Any) -> tuple[int, ...] | None:
    """An Exchange build as written in an override ("15.1.2375.7", "Version 15.2 (Build 1118.7)"); None
    when there is none or it does not read as one."""
    numbers = [int(n) for n in re.findall(r"\d+", trim_text(value))]
    return tuple(numbers[:4]) if numbers else None


def _in_version_range(override: Mapping[str, Any], version: tuple[int, ...] | None) -> bool:
    """MinVersion/MaxVersion (both inclusive) bound the builds an override applies to. A server whose
    build is unknown is taken as inside: an override is rarely bounded, and leaving one out would
    report settings as missing on a healthy server."""
    low, high = parse_version(override.get("MinVersion")), parse_version(override.get("MaxVersion"))
    if version is None:
        return True
    return (low is None or version >= low) and (high is None or version <= high)


def _in_effect(override: Mapping[str, Any]) -> bool:
    """Status is a SettingOverrideStatus enum; the real captures show ``Accepted`` for an override in
    effect. An override Exchange did not accept does not configure OWA; no Status at all is taken as
    in effect (older builds)."""
    status = trim_text(override.get("Status"))
    return not status or status.casefold() == "accepted"


def _parameters(override: Mapping[str, Any]) -> dict[str, list[str]]:
    """``IMServerName=x`` entries by lower-case key; a key may appear more than once."""
    found: dict[str, list[str]] = {}
    for entry in _names(override.get("Parameters")):
        key, sep, value = entry.partition("=")
        if sep:
            found.setdefault(trim_text(key).casefold(), []).append(value)
    return found


def override_scope(override: Mapping[str, Any], server: str, version: tuple[int, ...] | None) -> str | None:
    """"server" or "organization" when ``override`` is an IM settings override (OwaServer/IMSettings)
    in effect for ``server`` of build ``version``, by its scope; None when it does not apply."""
    if trim_text(override.get("ComponentName")).casefold() != OVERRIDE_COMPONENT.casefold():
        return None
    if trim_text(override.get("SectionName")).casefold() != OVERRIDE_SECTION.casefold():
        return None
    if not _in_effect(override) or not _in_version_range(override, version):
        return None
    servers = _names(override.get("Server"))
    if servers and not any(names_server(entry, server) for entry in servers):
        return None
    return "server" if servers else "organization"


def override_parameters(override: Mapping[str, Any]) -> dict[str, list[str]]:
    """An override's ``Key=Value`` parameters by lower-case key."""
    return _parameters(override)


def im_settings_from_overrides(
    overrides: Iterable[Mapping[str, Any]], server: str, version: tuple[int, ...] | None = None
) -> ImSettings:
    """The IM settings that apply to ``server`` (of build ``version``): a server-scoped override wins over
    an organisation-wide one (``Server`` Nil). Properties as real servers send them: ``ComponentName``,
    ``SectionName``, ``Parameters`` (``Key=Value`` strings), ``Server``, ``MinVersion``/``MaxVersion``,
    ``Status`` (../shared/captures/exchange/E19/GetSettingOverride.xml).

    Two overrides of the same scope that give one key different values are a conflict: which one
    Exchange uses is not something to guess, so the settings are reported unreadable.
    """
    scoped: dict[str, dict[str, list[str]]] = {"server": {}, "organization": {}}
    for override in overrides:
        applies = override_scope(override, server, version)
        if applies is None:
            continue
        for key, values in _parameters(override).items():
            scoped[applies].setdefault(key, []).extend(values)

    resolved: dict[str, str | None] = {}
    for key, normalise in ((KEY_SERVER_NAME, normalise_fqdn), (KEY_THUMBPRINT, normalise_thumbprint)):
        values = scoped["server"].get(key.casefold()) or scoped["organization"].get(key.casefold()) or []
        if len({normalise(value) for value in values}) > 1:
            return ImSettings(SOURCE_SETTING_OVERRIDE, problem=PROBLEM_OVERRIDE_CONFLICT)
        resolved[key] = values[0] if values else None
    return ImSettings(SOURCE_SETTING_OVERRIDE, resolved[KEY_SERVER_NAME], resolved[KEY_THUMBPRINT])


# --- judging the settings against the server's certificates ---------------------------------------

# The checks in the order they depend on each other: a check is only judged when the one it rests
# on passed, so the first failing check is the reason (a malformed thumbprint is not also "no match").
IM_CHECKS = (
    "settings_readable",
    "thumbprint_configured",
    "thumbprint_well_formed",
    "thumbprint_matches_certificate",
    "certificate_has_private_key",
    "certificate_valid_now",
    "server_name_configured",
    "server_name_matches_pool",
)


@dataclass(frozen=True)
class Certificate:
    """One Exchange certificate, as far as the checks need it.

    Everything but ``has_private_key`` comes from the certificate's DER (Get-ExchangeCertificate sends
    only ``RawData`` over remoting); whether the server holds the private key is read from its
    certificate store, None when that could not be read. Exchange's ``Status`` (chain validation) is
    not on the wire at all (MicrosoftDocs/office-docs-powershell issues 3493, 4651, 5256), so no check
    rests on it.
    """

    thumbprint: str  # upper-case hex SHA-1 of the DER
    subject_cn: str
    dns_names: tuple[str, ...]
    not_before: dt.datetime | None
    not_after: dt.datetime | None
    has_private_key: bool | None
    public_key_size: int | None


@dataclass(frozen=True)
class Evaluation:
    checks: dict[str, bool]  # only the checks that could be judged, by name (IM_CHECKS)
    certificate: Certificate | None  # the installed certificate the thumbprint names


def evaluate(
    settings: ImSettings, certificates: Mapping[str, Certificate], pool_fqdn: str | None, now: dt.datetime
) -> Evaluation:
    """Judge the IM settings against the certificates installed on the server (by thumbprint)."""
    checks: dict[str, bool] = {"settings_readable": settings.problem is None}
    if settings.problem is not None:
        return Evaluation(checks, None)
    matched: Certificate | None = None
    checks["thumbprint_configured"] = bool(trim_text(settings.certificate_thumbprint))
    if checks["thumbprint_configured"]:
        checks["thumbprint_well_formed"] = thumbprint_well_formed(settings.certificate_thumbprint)
    if checks.get("thumbprint_well_formed"):
        matched = certificates.get(normalise_thumbprint(settings.certificate_thumbprint))
        checks["thumbprint_matches_certificate"] = matched is not None
    if matched is not None:
        if matched.has_private_key is not None:  # None: the certificate store did not list it
            checks["certificate_has_private_key"] = matched.has_private_key
        if matched.not_before is not None and matched.not_after is not None:
            checks["certificate_valid_now"] = matched.not_before <= now <= matched.not_after
    checks["server_name_configured"] = bool(trim_text(settings.server_name))
    if checks["server_name_configured"] and pool_fqdn:
        checks["server_name_matches_pool"] = server_name_matches_pool(settings.server_name, pool_fqdn)
    return Evaluation(checks, matched)
