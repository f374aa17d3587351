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

import base64
import binascii
import datetime as dt
import difflib
import hashlib
import hmac
import re
import secrets
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import yaml
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

__all__ = [
    "CLIENT_AUTH_TYPES",
    "TLS_VERSIONS",
    "WebConfigError",
    "TLSServerConfig",
    "WebConfig",
    "BasicAuth",
    "load_web_config",
    "build_ssl_context",
]

CLIENT_AUTH_TYPES = ("NoClientCert", "RequireAnyClientCert", "VerifyClientCertIfGiven", "RequireAndVerifyClientCert")
TLS_VERSIONS = {"TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}
_OBSOLETE_TLS_VERSIONS = ("TLS10", "TLS11")

# Go's names (crypto/tls.CipherSuites(), the secure ones) -> OpenSSL's. They only apply up to TLS 1.2;
# TLS 1.3 suites are not configurable in Go either and are accepted as no-ops.
CIPHER_SUITES = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
_TLS13_SUITES = ("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256")

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
_BCRYPT_MAX_PASSWORD_BYTES = 72  # bcrypt only ever reads this many; htpasswd and Go truncate the same way


class WebConfigError(Exception):
    """The web configuration file is unusable; ``problems`` lists every problem found."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        super().__init__("\n".join(f"{self.path}: {problem}" for problem in self.problems))


@dataclass(frozen=True)
class TLSServerConfig:
    cert_file: Path
    key_file: Path
    client_auth_type: str = "NoClientCert"
    client_ca_file: Path | None = None
    min_version: str = "TLS12"
    max_version: str = "TLS13"
    cipher_suites: tuple[str, ...] = ()


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


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys: PyYAML would keep the last one silently."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, (str, int, bool, float)):
                continue  # PyYAML itself refuses unhashable keys
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_web_config(path: str | Path) -> WebConfig:
    """Read, validate and prepare a web configuration file. Raises WebConfigError listing every problem."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise WebConfigError(path, [f"cannot read the web configuration file: {exc.strerror or exc}"]) from None
    try:
        document = yaml.load(raw, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        # The parser's own words and the position, never str(exc): it quotes the line, which may hold a hash.
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        words = " ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        if isinstance(exc, yaml.constructor.ConstructorError) and words.startswith("duplicate key"):
            raise WebConfigError(path, [f"{where}{words}"]) from None
        raise WebConfigError(path, [f"not valid YAML: {where}{words}"]) from None
    except (yaml.YAMLError, RecursionError):
        raise WebConfigError(path, ["not valid YAML"]) from None
    return _Validator(path).validate(document)


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
        return self.base / value.strip()

    def _version(self, section: dict[str, Any], where: str, key: str, default: str) -> str | None:
        value = section.get(key, default)
        if isinstance(value, str) and value in TLS_VERSIONS:
            return value
        if isinstance(value, str) and value in _OBSOLETE_TLS_VERSIONS:
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
            if name not in CIPHER_SUITES and name not in _TLS13_SUITES:
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
            return path.read_bytes()
        except OSError as exc:
            self.problems.append(f"{key}: cannot read {path}: {exc.strerror or exc}")
            return None

    def _certificates(self, path: Path, key: str) -> x509.Certificate | None:
        data = self._read(path, key)
        if data is None:
            return None
        try:
            certificates = x509.load_pem_x509_certificates(data)
        except ValueError:
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


def build_ssl_context(tls: TLSServerConfig) -> ssl.SSLContext:
    """The server-side context: versions, certificate and key, client certificate policy, ciphers."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = TLS_VERSIONS[tls.min_version]
    context.maximum_version = TLS_VERSIONS[tls.max_version]
    context.load_cert_chain(str(tls.cert_file), str(tls.key_file))
    if tls.client_auth_type != "NoClientCert":
        context.load_verify_locations(cafile=str(tls.client_ca_file))
        optional = tls.client_auth_type == "VerifyClientCertIfGiven"
        context.verify_mode = ssl.CERT_OPTIONAL if optional else ssl.CERT_REQUIRED
    openssl_names = [CIPHER_SUITES[name] for name in tls.cipher_suites if name in CIPHER_SUITES]
    if openssl_names:
        context.set_ciphers(":".join(openssl_names))
    return context


# --------------------------------------------------------------------------------------------------
# Basic authentication
# --------------------------------------------------------------------------------------------------


class BasicAuth:
    """Checks ``Authorization: Basic`` headers against bcrypt hashes.

    bcrypt is slow on purpose (~70 ms at cost 10), too slow to pay on every scrape: a successful check is
    remembered as an HMAC of (user, password, hash) under a key made at start, so the cache never holds
    anything a password can be recovered from, and is compared in constant time. Failures are never
    cached, so guessing always costs a bcrypt run; runs are serialised so a flood of wrong guesses uses
    one core at most. An unknown user is checked against a dummy hash of the same cost, so the answer
    takes as long as for a known user.
    """

    def __init__(self, users: Mapping[str, bytes]) -> None:
        self._users = dict(users)
        self._key = secrets.token_bytes(32)
        self._verified: dict[str, bytes] = {}
        self._bcrypt_lock = threading.Lock()
        self._dummy_hash: bytes | None = None  # made on first use: a high cost would slow the start

    @property
    def enabled(self) -> bool:
        return bool(self._users)

    def check_header(self, authorization: str | None) -> bool:
        credentials = parse_basic_authorization(authorization)
        return credentials is not None and self.verify(*credentials)

    def verify(self, user: str, password: str) -> bool:
        hashed = self._users.get(user)
        secret = password.encode("utf-8")[:_BCRYPT_MAX_PASSWORD_BYTES]
        digest = self._digest(user, secret, hashed or b"")
        cached = self._verified.get(user)
        if hashed is not None and cached is not None and hmac.compare_digest(cached, digest):
            return True
        with self._bcrypt_lock:
            try:
                matches = bcrypt.checkpw(secret, hashed or self._dummy())
            except ValueError:  # a hash bcrypt cannot read; the loader should have refused it
                matches = False
        if matches and hashed is not None:
            self._verified[user] = digest
            return True
        return False

    def _dummy(self) -> bytes:
        if self._dummy_hash is None:
            cost = max((int(h[4:6]) for h in self._users.values()), default=10)
            self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds=cost))
        return self._dummy_hash

    def _digest(self, user: str, secret: bytes, hashed: bytes) -> bytes:
        mac = hmac.new(self._key, digestmod=hashlib.sha256)
        for part in (user.encode("utf-8"), secret, hashed):  # length-prefixed: no two inputs share an encoding
            mac.update(len(part).to_bytes(4, "big"))
            mac.update(part)
        return mac.digest()


def parse_basic_authorization(value: str | None) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> (user, password), or None for anything else."""
    if not value:
        return None
    scheme, _, encoded = value.strip().partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


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
