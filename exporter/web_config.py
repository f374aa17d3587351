"""``--web.config.file``: TLS and basic authentication for the exporter's own HTTP endpoint.

The file uses the exporter-toolkit format that official Prometheus exporters read, so an operator can
reuse the file and the habits they have: ``tls_server_config``, ``http_server_config`` and
``basic_auth_users`` (user name -> bcrypt hash). Unknown keys are errors; keys of that format this
exporter does not implement are errors too, named as such, rather than silently ignored security
settings. Relative paths are relative to the web configuration file, as in exporter-toolkit.

Everything is checked when the file is loaded (the certificate, the key and that they match, the CA
file, every hash), so a bad file stops the exporter at start with one message per problem, naming the
file and the key. Secrets (hashes, passwords, keys) never appear in messages or in ``repr``.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from collectors.helpers.paths import pem_certificates, read_small_file, resolve_path
from exporter.basic_auth import BasicAuth, parse_basic_authorization
from exporter.config.yaml_source import Position, YamlError, YamlSyntaxError, read_yaml
from exporter.tls_server import (
    CIPHER_SUITES,
    CLIENT_AUTH_TYPES,
    OBSOLETE_TLS_VERSIONS,
    TLS13_SUITES,
    TLS_VERSIONS,
    TLSServerConfig,
    build_ssl_context,
)

__all__ = [
    "CLIENT_AUTH_TYPES",
    "TLS_VERSIONS",
    "WebConfigError",
    "TLSServerConfig",
    "WebConfig",
    "BasicAuth",
    "parse_basic_authorization",
    "load_web_config",
    "build_ssl_context",
]

# Response headers exporter-toolkit lets the file set, and the values it allows where it restricts them.
RESPONSE_HEADERS = (
    "Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options", "X-XSS-Protection",
    "Strict-Transport-Security",
)
_HEADER_VALUES = {"X-Frame-Options": ("deny", "sameorigin"), "X-Content-Type-Options": ("nosniff",)}

_TOP_KEYS = ("tls_server_config", "http_server_config", "basic_auth_users")
_TLS_KEYS = (
    "cert_file", "key_file", "client_auth_type", "client_ca_file", "min_version", "max_version", "cipher_suites",
)
_HTTP_KEYS = ("http2", "headers")
# Part of the exporter-toolkit format but not implemented here: refused by name, never ignored.
_UNSUPPORTED = {
    (): ("rate_limit",),
    ("tls_server_config",): ("cert", "key", "client_ca", "client_allowed_sans", "prefer_server_cipher_suites",
                             "curve_preferences"),
}

# $2a$/$2b$/$2y$ (htpasswd writes $2y$), a two-digit cost, 22 characters of salt and 31 of hash.
_BCRYPT_RE = re.compile(r"\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}")


class WebConfigError(Exception):
    """The web configuration file is unusable; ``problems`` lists every problem found."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__("\n".join(f"{self.path}: {problem}" for problem in self.problems))


@dataclass(frozen=True)
class WebConfig:
    """A validated web configuration. ``ssl_context`` is built at load time so its errors surface then."""

    path: str
    tls: TLSServerConfig | None = None
    basic_auth_users: Mapping[str, bytes] = field(default_factory=dict, repr=False)
    headers: Mapping[str, str] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    warnings: tuple[str, ...] = ()

    def summary(self) -> str:
        """One line for logs and ``check``: what is protected, never a secret."""
        parts = []
        if self.tls is None:
            parts.append("TLS off")
        else:
            parts.append(f"TLS on ({self.tls.min_version}-{self.tls.max_version}, {self.tls.client_auth_type})")
        users = len(self.basic_auth_users)
        parts.append(f"basic auth for {users} users" if users else "basic auth off")
        return ", ".join(parts)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def load_web_config(path: str | Path) -> WebConfig:
    """Read, validate and prepare a web configuration file. Raises WebConfigError listing every problem."""
    path = Path(path)
    try:
        document = read_yaml(path, typed_keys=True)  # keys as PyYAML reads them: an unquoted 1234 is no name
    except OSError as exc:
        raise WebConfigError(path, [f"cannot read the web configuration file: {exc.strerror or exc}"]) from None
    except YamlSyntaxError as exc:
        # The parser's own words and the position, never the line itself: it may hold a hash.
        raise WebConfigError(path, [f"not valid YAML: {_where(exc.position)}{exc.words}"]) from None
    except YamlError:
        raise WebConfigError(path, ["not valid YAML"]) from None
    if document is not None and document.problems:  # duplicate keys, unsupported tags, ...
        raise WebConfigError(path, [f"{_where(position)}{message}" for _, message, position in document.problems])
    return _Validator(path).validate(document.data if document is not None else None)


class _Validator:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent
        self.problems: list[str] = []
        self.warnings: list[str] = []

    def validate(self, document: Any) -> WebConfig:
        if document is None:
            document = {}
            self.warnings.append("the file configures neither TLS nor basic authentication")
        if not isinstance(document, dict):
            found = _kind(document)
            raise WebConfigError(self.path, [f"expected a mapping of settings at the top level, found {found}"])
        self._check_keys(document, (), _TOP_KEYS)
        tls = self._tls(document["tls_server_config"]) if "tls_server_config" in document else None
        headers = self._http(document.get("http_server_config"))
        users = self._users(document.get("basic_auth_users"))
        context = self._ssl_context(tls) if tls is not None and not self.problems else None  # files checked in _tls
        if self.problems:
            raise WebConfigError(self.path, self.problems)
        if users and tls is None:
            self.warnings.append(
                "basic_auth_users without tls_server_config: passwords cross the network in clear text"
            )
        return WebConfig(str(self.path), tls, users, headers, context, tuple(self.warnings))

    # -- sections ------------------------------------------------------------------------------------

    def _tls(self, section: Any) -> TLSServerConfig | None:
        where = "tls_server_config"
        if not isinstance(section, dict) or not section:
            self.problems.append(f"{where}: expected a mapping with cert_file and key_file, found {_kind(section)}")
            return None
        self._check_keys(section, (where,), _TLS_KEYS)
        cert_file = self._file(section, where, "cert_file", required=True)
        key_file = self._file(section, where, "key_file", required=True)
        ca_file = self._file(section, where, "client_ca_file", required=False)
        auth = section.get("client_auth_type", "NoClientCert")
        if not isinstance(auth, str) or auth not in CLIENT_AUTH_TYPES:
            choices = ", ".join(CLIENT_AUTH_TYPES)
            self.problems.append(f"{where}.client_auth_type: {_shown(auth)} is not one of {choices}")
            auth = "NoClientCert"
        elif auth == "NoClientCert" and ca_file is not None:
            self.problems.append(
                f"{where}.client_ca_file: set, but client_auth_type is NoClientCert (no client is checked)"
            )
        elif auth != "NoClientCert" and section.get("client_ca_file") is None:
            self.problems.append(f"{where}.client_ca_file: required with client_auth_type {auth}")
        if auth == "RequireAnyClientCert":
            # Python's ssl module cannot ask for a certificate without verifying it.
            self.warnings.append(
                f"{where}.client_auth_type RequireAnyClientCert: client certificates are also verified against "
                "client_ca_file here (as RequireAndVerifyClientCert); Go exporters accept any certificate"
            )
        min_version = self._version(section, where, "min_version", "TLS12")
        max_version = self._version(section, where, "max_version", "TLS13")
        if min_version and max_version and TLS_VERSIONS[min_version] > TLS_VERSIONS[max_version]:
            self.problems.append(f"{where}: min_version {min_version} is above max_version {max_version}")
        suites = self._cipher_suites(section.get("cipher_suites"), f"{where}.cipher_suites")
        self._check_files(cert_file, key_file, ca_file)
        if cert_file is None or key_file is None:
            return None
        return TLSServerConfig(
            cert_file, key_file, auth, ca_file, min_version or "TLS12", max_version or "TLS13", suites
        )

    def _http(self, section: Any) -> dict[str, str]:
        where = "http_server_config"
        if section is None:
            return {}
        if not isinstance(section, dict):
            self.problems.append(f"{where}: expected a mapping, found {_kind(section)}")
            return {}
        self._check_keys(section, (where,), _HTTP_KEYS)
        if "http2" in section and not isinstance(section["http2"], bool):
            self.problems.append(f"{where}.http2: expected true or false, found {_kind(section['http2'])}")
        headers = section.get("headers") or {}
        if not isinstance(headers, dict):
            found = _kind(headers)
            self.problems.append(f"{where}.headers: expected a mapping of header names to values, found {found}")
            return {}
        result = {}
        for name, value in headers.items():
            key = f"{where}.headers.{name}"
            if name not in RESPONSE_HEADERS:
                self.problems.append(f"{key}: not a header this file can set (one of {', '.join(RESPONSE_HEADERS)})")
            elif not isinstance(value, str) or any(c in value for c in "\r\n\0"):
                self.problems.append(f"{key}: expected a single-line string")
            elif not value:
                continue  # blank means unset, as in exporter-toolkit
            elif name in _HEADER_VALUES and value.lower() not in _HEADER_VALUES[name]:
                self.problems.append(f"{key}: {_shown(value)} is not one of {', '.join(_HEADER_VALUES[name])}")
            else:
                result[name] = value
        return result

    def _users(self, section: Any) -> dict[str, bytes]:
        where = "basic_auth_users"
        if section is None:
            return {}
        if not isinstance(section, dict):
            self.problems.append(f"{where}: expected a mapping of user names to bcrypt hashes, found {_kind(section)}")
            return {}
        users = {}
        for user, hashed in section.items():
            if not isinstance(user, str) or not user:
                self.problems.append(f"{where}: user name {user!r} must be a non-empty string (quote it)")
                continue
            key = f"{where}.{user}"
            if ":" in user:
                self.problems.append(f"{key}: a user name cannot contain ':' (basic authentication splits on it)")
            elif not isinstance(hashed, str) or not _BCRYPT_RE.fullmatch(hashed.strip()):
                # Never echo the value: it may be a plain password pasted by mistake.
                self.problems.append(
                    f"{key}: not a bcrypt hash (expected $2y$10$ followed by 53 characters, as printed by "
                    "`htpasswd -nBC 10 \"\" | tr -d ':\\n'`)"
                )
            elif not 4 <= int(_BCRYPT_RE.fullmatch(hashed.strip()).group(1)) <= 31:  # type: ignore[union-attr]
                self.problems.append(f"{key}: bcrypt cost must be between 04 and 31")
            else:
                users[user] = hashed.strip().encode("ascii")
        return users

    # -- values --------------------------------------------------------------------------------------

    def _check_keys(self, section: dict[Any, Any], where: tuple[str, ...], allowed: tuple[str, ...]) -> None:
        prefix = ".".join(where) + "." if where else ""
        unsupported = _UNSUPPORTED.get(where, ())
        for key in section:
            if key in allowed:
                continue
            if key in unsupported:
                self.problems.append(
                    f"{prefix}{key}: part of the exporter-toolkit format, not supported by this exporter"
                )
                continue
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]}?)" if close else f" (expected one of {', '.join(allowed)})"
            self.problems.append(f"{prefix}{key}: unknown key{hint}")

    def _file(self, section: dict[str, Any], where: str, key: str, *, required: bool) -> Path | None:
        value = section.get(key)
        if value is None:
            if required:
                self.problems.append(f"{where}.{key}: required")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problems.append(f"{where}.{key}: expected a file name, found {_kind(value)}")
            return None
        return resolve_path(value.strip(), None, self.base)

    def _version(self, section: dict[str, Any], where: str, key: str, default: str) -> str | None:
        value = section.get(key, default)
        if isinstance(value, str) and value in TLS_VERSIONS:
            return value
        if isinstance(value, str) and value in OBSOLETE_TLS_VERSIONS:
            self.problems.append(
                f"{where}.{key}: {value} is not supported (TLS 1.0 and 1.1 are obsolete); use TLS12 or TLS13"
            )
        else:
            self.problems.append(f"{where}.{key}: {_shown(value)} is not one of {', '.join(TLS_VERSIONS)}")
        return None

    def _cipher_suites(self, value: Any, where: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"{where}: expected a list of cipher suite names, found {_kind(value)}")
            return ()
        for name in value:
            if name not in CIPHER_SUITES and name not in TLS13_SUITES:
                self.problems.append(f"{where}: {_shown(name)} is not a supported cipher suite (Go's names, such as "
                                     "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)")
        return tuple(value)

    # -- the TLS context -----------------------------------------------------------------------------

    def _check_files(self, cert_file: Path | None, key_file: Path | None, ca_file: Path | None) -> None:
        """Read every file named, so one run reports all of their problems, in words the TLS library lacks."""
        where = "tls_server_config"
        leaf = self._certificates(cert_file, f"{where}.cert_file") if cert_file else None
        key = self._private_key(key_file, f"{where}.key_file") if key_file else None
        if ca_file is not None:
            self._certificates(ca_file, f"{where}.client_ca_file")
        if leaf is not None and key is not None:
            if _public_der(leaf.public_key()) != _public_der(key.public_key()):
                self.problems.append(f"{where}.key_file: {key_file} does not match the certificate in {cert_file}")
            now = dt.datetime.now(dt.timezone.utc)
            if leaf.not_valid_after_utc < now:
                expired = f"{leaf.not_valid_after_utc:%Y-%m-%d}"
                self.warnings.append(f"{where}.cert_file: the certificate expired on {expired}")
            elif leaf.not_valid_before_utc > now:
                self.warnings.append(f"{where}.cert_file: the certificate is not valid before "
                                     f"{leaf.not_valid_before_utc:%Y-%m-%d}")

    def _ssl_context(self, tls: TLSServerConfig) -> ssl.SSLContext | None:
        where = "tls_server_config"
        try:
            return build_ssl_context(tls)
        except (ssl.SSLError, OSError) as exc:  # what the checks above did not foresee
            self.problems.append(f"{where}: the TLS library refused the configuration: {_ssl_reason(exc)}")
            return None

    def _read(self, path: Path, key: str) -> bytes | None:
        try:
            return read_small_file(path)
        except OSError as exc:  # FileRefused too: not a regular file, or too large
            self.problems.append(f"{key}: cannot read {path}: {exc.strerror or exc}")
            return None

    def _certificates(self, path: Path, key: str) -> x509.Certificate | None:
        data = self._read(path, key)
        if data is None:
            return None
        certificates = pem_certificates(data)
        if not certificates:
            self.problems.append(f"{key}: {path} holds no PEM certificate")
            return None
        return certificates[0]

    def _private_key(self, path: Path, key: str) -> Any:
        data = self._read(path, key)
        if data is None:
            return None
        try:
            return serialization.load_pem_private_key(data, password=None)
        except TypeError:
            self.problems.append(f"{key}: {path} holds an encrypted private key; give an unencrypted one")
        except (ValueError, UnsupportedAlgorithm):
            self.problems.append(f"{key}: {path} holds no usable PEM private key")
        return None


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def _where(position: Position | None) -> str:
    return f"line {position[0]}, column {position[1]}: " if position is not None else ""


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    return "a string" if isinstance(value, str) else type(value).__name__


def _shown(value: Any) -> str:
    """A short, safe rendering of a non-secret setting's value for an error message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _public_der(public_key: Any) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _ssl_reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason)
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return type(exc).__name__
