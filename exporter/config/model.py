"""The shape of a configuration: the models each section of the file is validated with, and the
loaded configuration the runtime works from.

The file's sections are pydantic models (extra keys forbidden, strict types: YAML already yields
typed scalars, so "yes" for an int is a mistake). What they cannot check on their own (references
between sections, roles, secrets, collector settings) is the loader's job; what comes out is a set
of frozen dataclasses with every default filled in. Secrets are only ever held in SecretStr.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collectors.contract import CollectorSettings
from collectors.helpers.names import is_host, is_host_name
from collectors.helpers.paths import check_ca_file

__all__ = [
    "ROLES",
    "ENDPOINT_KINDS",
    "CollectorSchema",
    "GlobalSettings",
    "Credential",
    "Endpoint",
    "Target",
    "JobSpec",
    "Config",
]

ROLES: tuple[str, ...] = ("exchange_mailbox", "exchange_client_access", "lync_frontend", "lync_edge")
# windows: WinRM (event logs, files, registry, IIS; the Edge's Lync cmdlets); exchange: Exchange's
# /PowerShell; lync: Lync/Skype for Business' /OcsPowershell on front ends, where its RBAC applies.
EndpointKind = Literal["windows", "exchange", "lync"]
ENDPOINT_KINDS: tuple[EndpointKind, ...] = ("windows", "exchange", "lync")
AuthMethod = Literal["basic", "ntlm", "negotiate", "kerberos", "credssp"]
Encryption = Literal["auto", "always", "never"]

TOP_LEVEL_KEYS = ("global", "credentials", "collectors", "targets")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_TARGET_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")


# --------------------------------------------------------------------------------------------------
# What the loader knows of each collector
# --------------------------------------------------------------------------------------------------


class CollectorSchema(Protocol):
    """What the configuration needs to know about a collector (its class, from the registry): its
    settings model and its roles."""

    @property
    def settings_model(self) -> type[CollectorSettings]: ...

    @property
    def roles(self) -> frozenset[str]: ...


# --------------------------------------------------------------------------------------------------
# Models for the file's sections (validated from YAML values)
# --------------------------------------------------------------------------------------------------


def none_as_empty_mapping(value: Any) -> Any:
    # "section:" with everything below it commented out is null in YAML; treat it as empty.
    return {} if value is None else value


class _FileModel(BaseModel):
    # strict: YAML already yields typed scalars, so "yes" for an int or 3 for a string is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_hostname(value: str) -> str:
    if not is_host(value, trailing_dot=True):
        raise ValueError("must be a DNS name or an IP address (no scheme, port or path)")
    return value


class GlobalSettings(_FileModel):
    staleness_intervals: int = Field(default=3, ge=1)
    # Runs wait on the network, not the CPU: 64 keep a thousand hosts' jobs moving (docs/performance.md).
    max_concurrent_jobs: int = Field(default=64, ge=1, le=256)
    lync_pool_fqdn: str | None = None
    # Hybrid with Exchange Online (IM in OWA for mailboxes there, through the Edge): auto, true, false.
    hybrid: Literal["auto"] | bool = "auto"
    # Label values come from servers: a hostile or broken one must not blow up the exposition.
    max_series_per_target: int = Field(default=2000, ge=1, le=1_000_000)

    @field_validator("lync_pool_fqdn")
    @classmethod
    def _pool_is_hostname(cls, fqdn: str | None) -> str | None:
        return fqdn if fqdn is None else _check_hostname(fqdn)

    @field_validator("hybrid", mode="before")
    @classmethod
    def _hybrid_choice(cls, value: Any) -> Any:
        if value == "auto" or isinstance(value, bool):
            return value
        raise ValueError(f"must be auto, true or false, got {value!r}")


_SPN_SERVICE_RE = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,31}")
# What the exporter itself can tell about a ticket cache name: "env" (KRB5CCNAME, or the default),
# a TYPE:residual name (FILE:, DIR:, KEYRING:, KCM:, MEMORY:) or a plain path (a FILE: cache).
_CCACHE_TYPES = ("FILE", "DIR", "KEYRING", "KCM", "MEMORY")


class RawCredential(_FileModel):
    username: str = Field(min_length=1)
    password_env: str | None = Field(default=None, min_length=1)
    password_file: str | None = Field(default=None, min_length=1)
    # Kerberos without a password: the user's keys (the exporter gets and renews its own tickets),
    # or a ticket cache someone else keeps filled (kinit, k5start, a sidecar).
    keytab_file: str | None = Field(default=None, min_length=1)
    ticket_cache: str | None = Field(default=None, min_length=1)
    auth: AuthMethod = "negotiate"

    @field_validator("ticket_cache")
    @classmethod
    def _ticket_cache_shape(cls, cache: str | None) -> str | None:
        if cache is None or cache == "env":
            return cache
        kind, sep, rest = cache.partition(":")
        if sep and kind.upper() in _CCACHE_TYPES:
            if not rest:
                raise ValueError(f"{kind}: needs a name after the colon, e.g. FILE:/run/lync-owa-exporter/krb5cc")
            return cache
        if sep and len(kind) > 1:
            raise ValueError(f"unknown ticket cache type {kind!r}; use env, a path, or one of "
                             f"{', '.join(t + ':' for t in _CCACHE_TYPES)}")
        return cache  # a path

    @field_validator("password_env")
    @classmethod
    def _env_name_shape(cls, variable: str | None) -> str | None:
        # Not echoed: a password pasted here by mistake must not end up in the error.
        if variable is not None and not ENV_NAME_RE.fullmatch(variable):
            raise ValueError("must be the name of an environment variable (letters, digits, '_'), not a password")
        return variable

    @model_validator(mode="after")
    def _exactly_one_password_source(self) -> RawCredential:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set only one of password_env or password_file, not both")
        has_password = self.password_env is not None or self.password_file is not None
        if has_password and self.keytab_file is not None:
            raise ValueError("set either a password (password_env or password_file) or keytab_file, not both")
        if has_password and self.ticket_cache is not None:
            raise ValueError("ticket_cache goes with keytab_file or alone (an existing cache), not with a password")
        if not has_password and self.keytab_file is None and self.ticket_cache is None:
            raise ValueError("set one of password_env, password_file, keytab_file or ticket_cache "
                             "(inline passwords are not allowed)")
        if (self.keytab_file is not None or self.ticket_cache is not None) and self.auth not in ("kerberos",
                                                                                                  "negotiate"):
            source = "keytab_file" if self.keytab_file is not None else "ticket_cache"
            raise ValueError(f"{source} holds Kerberos keys or tickets: it needs auth: kerberos (or negotiate), "
                             f"not {self.auth}")
        if self.keytab_file is not None and self.ticket_cache is not None:
            if self.ticket_cache == "env":
                raise ValueError("with keytab_file, ticket_cache names where the exporter keeps its tickets "
                                 "(a writable path or MEMORY:name); 'env' is for an existing cache")
        if self.keytab_file is not None or self.ticket_cache is not None:
            if "@" not in self.username:
                raise ValueError("with keytab_file or ticket_cache, username is the Kerberos principal: "
                                 "user@REALM (e.g. svc-lyncmon@CONTOSO.COM)")
        return self


class RawEndpoint(_FileModel):
    url: str | None = None
    configuration: str | None = Field(default=None, min_length=1)
    tls_verify: bool = True
    ca_file: str | None = Field(default=None, min_length=1)
    encryption: Encryption = "auto"
    # Kerberos asks the KDC for a ticket to SERVICE/HOST: by default HTTP/<the URL's host>. Set
    # spn_hostname when the URL names an address, a CNAME or a load-balanced name that has no SPN.
    spn_hostname: str | None = None
    spn_service: str = "HTTP"

    @field_validator("spn_hostname")
    @classmethod
    def _spn_hostname_shape(cls, name: str | None) -> str | None:
        if name is not None and (not is_host_name(name) or is_host(name) and _is_ip(name)):
            raise ValueError("must be the DNS name the SPN is registered for (e.g. ex01.contoso.com), "
                             "without scheme, port, path or the service prefix")
        return name

    @field_validator("spn_service")
    @classmethod
    def _spn_service_shape(cls, service: str) -> str:
        if not _SPN_SERVICE_RE.fullmatch(service):
            raise ValueError("must be the service class of the SPN, e.g. HTTP (letters, digits, '-')")
        return service

    @field_validator("url")
    @classmethod
    def _url_shape(cls, url: str | None) -> str | None:
        if url is not None:
            _check_url(url)
        return url

    @field_validator("ca_file")
    @classmethod
    def _ca_file_readable(cls, ca_file: str | None, info: ValidationInfo) -> str | None:
        return None if ca_file is None else check_ca_file(ca_file, info, require_certificate=False)


_EndpointSection = Annotated[RawEndpoint | None, BeforeValidator(none_as_empty_mapping)]


class _RawEndpoints(_FileModel):
    windows: _EndpointSection = None
    exchange: _EndpointSection = None
    lync: _EndpointSection = None


class RawTarget(_FileModel):
    # roles, credential and collectors are only type-checked here; the loader checks their meaning
    # so that each problem gets its own precise location.
    name: str
    host: str
    roles: list[str]
    credential: str
    endpoints: Annotated[_RawEndpoints, BeforeValidator(none_as_empty_mapping)] = _RawEndpoints()
    collectors: Annotated[dict[str, Any], BeforeValidator(none_as_empty_mapping)] = Field(default_factory=dict)

    @field_validator("name")
    @classmethod
    def _name_charset(cls, name: str) -> str:
        if not _TARGET_NAME_RE.fullmatch(name):
            raise ValueError("target names may contain only letters, digits, '_', '.' and '-'")
        return name

    @field_validator("host")
    @classmethod
    def _host_is_hostname(cls, host: str) -> str:
        return _check_hostname(host)


# --------------------------------------------------------------------------------------------------
# The loaded configuration
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credential:
    name: str
    username: str
    password: SecretStr  # SecretStr keeps the value out of repr, str and pydantic errors; empty without one
    auth: AuthMethod = "negotiate"
    keytab_file: str | None = None  # resolved path
    ticket_cache: str | None = None  # as configured ("env", TYPE:name, or a resolved path)


@dataclass(frozen=True)
class Endpoint:
    kind: EndpointKind
    url: str
    configuration: str
    tls_verify: bool = True
    ca_file: str | None = None
    encryption: Encryption = "auto"
    spn_hostname: str | None = None
    spn_service: str = "HTTP"

    @classmethod
    def of(cls, kind: EndpointKind, host: str, raw: RawEndpoint | None) -> Endpoint:
        """The endpoint as configured for ``host``, its defaults filled in."""
        raw = raw or RawEndpoint()
        url_host = f"[{host}]" if ":" in host else host  # IPv6 literals need brackets in URLs
        if kind == "windows":
            default_url, default_configuration = f"https://{url_host}:5986/wsman", "Microsoft.PowerShell"
        elif kind == "lync":
            # Lync/Skype for Business' remote PowerShell, IIS-hosted on the front end's internal web
            # site; role-based access control applies to these sessions only (docs/deployment.md).
            default_url, default_configuration = f"https://{url_host}/OcsPowershell", "Microsoft.PowerShell"
        else:  # Exchange's own remote PowerShell endpoint: http with Kerberos message encryption
            default_url, default_configuration = f"http://{url_host}/PowerShell", "Microsoft.Exchange"
        return cls(
            kind=kind,
            url=raw.url or default_url,
            configuration=raw.configuration or default_configuration,
            tls_verify=raw.tls_verify,
            ca_file=raw.ca_file,
            encryption=raw.encryption,
            spn_hostname=raw.spn_hostname,
            spn_service=raw.spn_service,
        )


@dataclass(frozen=True)
class Target:
    name: str
    host: str
    roles: frozenset[str]
    credential: Credential
    endpoints: Mapping[str, Endpoint] = field(default_factory=dict)
    settings: Mapping[str, CollectorSettings] = field(default_factory=dict, repr=False)

    def __hash__(self) -> int:  # names are unique within a Config; the mappings are not hashable
        return hash(("Target", self.name))

    def endpoint(self, kind: str) -> Endpoint:
        """The Windows, Exchange or Lync remoting endpoint for this target (defaults filled in)."""
        if kind not in self.endpoints:
            raise ValueError(f"unknown endpoint kind {kind!r}; expected one of {', '.join(ENDPOINT_KINDS)}")
        return self.endpoints[kind]

    def collector_settings(self, collector_name: str) -> CollectorSettings:
        """Settings for one collector on this target: model defaults <- `collectors.<name>` <- the
        target's own `collectors.<name>`."""
        try:
            return self.settings[collector_name]
        except KeyError:
            raise KeyError(f"no settings for collector {collector_name!r} on target {self.name!r}") from None

    def runs(self, schema: CollectorSchema) -> bool:
        return bool(self.roles & schema.roles)


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: a collector polling a target."""

    collector: str
    target: Target
    settings: CollectorSettings

    @property
    def id(self) -> str:
        return f"{self.collector}/{self.target.name}"

    def __hash__(self) -> int:
        return hash(("JobSpec", self.collector, self.target.name))


@dataclass(frozen=True)
class Config:
    path: Path
    global_: GlobalSettings
    credentials: Mapping[str, Credential]
    targets: list[Target]
    collectors: Mapping[str, CollectorSchema] = field(default_factory=dict, repr=False)

    def target(self, name: str) -> Target:
        for target in self.targets:
            if target.name == name:
                return target
        raise KeyError(f"no target named {name!r}")

    def jobs(self, collectors: Mapping[str, CollectorSchema] | None = None) -> list[JobSpec]:
        """One job per enabled collector x target whose roles intersect the collector's, ordered by
        collector name, then by target in file order. ``collectors`` defaults to the registry the
        configuration was loaded with (settings only exist for collectors known at load time)."""
        registry = self.collectors if collectors is None else collectors
        jobs = []
        for name in sorted(registry):
            for target in self.targets:
                if not target.runs(registry[name]):
                    continue
                settings = target.collector_settings(name)
                if settings.enabled:
                    jobs.append(JobSpec(collector=name, target=target, settings=settings))
        return jobs


# --------------------------------------------------------------------------------------------------
# Value checks
# --------------------------------------------------------------------------------------------------


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _check_url(url: str) -> None:
    # The URL is not echoed back: someone may have put "user:password@" in it.
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError on a bad port
    except ValueError:
        raise ValueError("not a valid URL") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise ValueError("URL must not contain credentials; use a credential entry")
    if not parts.hostname:
        raise ValueError("URL has no host")
    if parts.path in ("", "/"):
        raise ValueError("URL needs a path, e.g. /wsman or /PowerShell")


