"""Configuration loading and validation.

The file is YAML (see examples/config.yaml). Loading happens in three steps:

1. Compose the YAML into nodes and turn them into plain Python values ourselves, remembering the
   line and column of every key path. PyYAML silently keeps the last of two equal keys; composing by
   hand lets us report duplicates, and the marks let every error name its line.
2. Validate each section with pydantic models (extra keys forbidden) and translate pydantic's error
   locations back into key paths and lines.
3. Check what pydantic cannot see: references between sections, unique names, roles, environment
   variables and secret files, collector settings merged per target.

Every problem is collected before one ConfigError is raised, so an operator fixes a file in one go.
Secret values are only ever held in SecretStr and are never echoed: error messages describe inputs by
their YAML type, never by their value.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import logging
import os
import re
import stat
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol, Union
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from collectors.contract import SETTINGS_SOURCE, SOURCE_YAML, CollectorSettings
from collectors.helpers.paths import resolve_path
from collectors.helpers.values import yaml_type

__all__ = [
    "ROLES",
    "ENDPOINT_KINDS",
    "Problem",
    "ConfigError",
    "CollectorSchema",
    "GlobalSettings",
    "Credential",
    "Endpoint",
    "Target",
    "JobSpec",
    "Config",
    "load_config",
]

log = logging.getLogger(__name__)

ROLES: tuple[str, ...] = ("exchange_mailbox", "exchange_client_access", "lync_frontend", "lync_edge")
ENDPOINT_KINDS: tuple[str, ...] = ("windows", "exchange")
AuthMethod = Literal["basic", "ntlm", "negotiate", "kerberos", "credssp"]
Encryption = Literal["auto", "always", "never"]

_TOP_LEVEL_KEYS = ("global", "credentials", "collectors", "targets")
_EXCHANGE_ROLES = frozenset({"exchange_mailbox", "exchange_client_access"})
_TARGET_NAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_HOST_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"(?=.{{1,253}}\.?$){_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")
_ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A password file is a few bytes; refusing big ones avoids reading a log or a device by mistake.
_MAX_PASSWORD_FILE_BYTES = 64 * 1024
# Aliases can expand a small file exponentially ("billion laughs"); cap the expanded size.
_MAX_YAML_NODES = 100_000
# Passed to pydantic so duration fields know their input came from the file (bare numbers refused).


# --------------------------------------------------------------------------------------------------
# Problems and the error that carries them
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration, where it is (key path, 1-based line and column)."""

    path: str
    message: str
    line: int | None = None
    column: int | None = None

    def format(self, file: str | Path | None = None) -> str:
        location = [str(file)] if file else []
        if self.line is not None:
            location.append(str(self.line))
            if self.column is not None:
                location.append(str(self.column))
        prefix = ":".join(location)
        body = f"{self.path}: {self.message}" if self.path else self.message
        return f"{prefix}: {body}" if prefix else body


class ConfigError(Exception):
    """The configuration is unusable; ``problems`` lists everything found, in file order."""

    def __init__(self, problems: Sequence[Problem], file: str | Path | None = None):
        self.problems: list[Problem] = sorted(problems, key=lambda p: (p.line or 0, p.column or 0))
        self.file = str(file) if file is not None else None
        super().__init__(self._render())

    def _render(self) -> str:
        return "\n".join(problem.format(self.file) for problem in self.problems)

    def __str__(self) -> str:
        return self._render()


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


def _none_as_empty_mapping(value: Any) -> Any:
    # "section:" with everything below it commented out is null in YAML; treat it as empty.
    return {} if value is None else value


class _FileModel(BaseModel):
    # strict: YAML already yields typed scalars, so "yes" for an int or 3 for a string is a mistake.
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _check_hostname(value: str) -> str:
    if not _is_host(value):
        raise ValueError("must be a DNS name or an IP address (no scheme, port or path)")
    return value


class GlobalSettings(_FileModel):
    staleness_intervals: int = Field(default=3, ge=1)
    max_concurrent_jobs: int = Field(default=16, ge=1, le=256)
    lync_pool_fqdn: str | None = None

    @field_validator("lync_pool_fqdn")
    @classmethod
    def _pool_is_hostname(cls, fqdn: str | None) -> str | None:
        return fqdn if fqdn is None else _check_hostname(fqdn)


class _RawCredential(_FileModel):
    username: str = Field(min_length=1)
    password_env: str | None = Field(default=None, min_length=1)
    password_file: str | None = Field(default=None, min_length=1)
    auth: AuthMethod = "negotiate"

    @field_validator("password_env")
    @classmethod
    def _env_name_shape(cls, variable: str | None) -> str | None:
        # Not echoed: a password pasted here by mistake must not end up in the error.
        if variable is not None and not _ENV_NAME_RE.fullmatch(variable):
            raise ValueError("must be the name of an environment variable (letters, digits, '_'), not a password")
        return variable

    @model_validator(mode="after")
    def _exactly_one_password_source(self) -> _RawCredential:
        if self.password_env is not None and self.password_file is not None:
            raise ValueError("set only one of password_env or password_file, not both")
        if self.password_env is None and self.password_file is None:
            raise ValueError("set one of password_env or password_file (inline passwords are not allowed)")
        return self


class _RawEndpoint(_FileModel):
    url: str | None = None
    configuration: str | None = Field(default=None, min_length=1)
    tls_verify: bool = True
    ca_file: str | None = Field(default=None, min_length=1)
    encryption: Encryption = "auto"

    @field_validator("url")
    @classmethod
    def _url_shape(cls, url: str | None) -> str | None:
        if url is not None:
            _check_url(url)
        return url

    @field_validator("ca_file")
    @classmethod
    def _ca_file_readable(cls, ca_file: str | None, info: ValidationInfo) -> str | None:
        if ca_file is None:
            return None
        resolved = resolve_path(ca_file, info)
        if not resolved.is_file() or not os.access(resolved, os.R_OK):
            raise ValueError(f"CA file {str(resolved)!r} does not exist or is not readable")
        return str(resolved)


_EndpointSection = Annotated[_RawEndpoint | None, BeforeValidator(_none_as_empty_mapping)]


class _RawEndpoints(_FileModel):
    windows: _EndpointSection = None
    exchange: _EndpointSection = None


class _RawTarget(_FileModel):
    # roles, credential and collectors are only type-checked here; _Loader checks their meaning so
    # that each problem gets its own precise location.
    name: str
    host: str
    roles: list[str]
    credential: str
    endpoints: Annotated[_RawEndpoints, BeforeValidator(_none_as_empty_mapping)] = _RawEndpoints()
    collectors: Annotated[dict[str, Any], BeforeValidator(_none_as_empty_mapping)] = Field(default_factory=dict)

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
    password: SecretStr  # SecretStr keeps the value out of repr, str and pydantic errors
    auth: AuthMethod = "negotiate"


@dataclass(frozen=True)
class Endpoint:
    kind: Literal["windows", "exchange"]
    url: str
    configuration: str
    tls_verify: bool = True
    ca_file: str | None = None
    encryption: Encryption = "auto"


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
        """The Windows or Exchange remoting endpoint for this target (defaults filled in)."""
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
# Entry point
# --------------------------------------------------------------------------------------------------


def load_config(
    path: str | Path,
    collectors: Mapping[str, CollectorSchema],
    environ: Mapping[str, str] = os.environ,
) -> Config:
    """Load and validate a configuration file. Raises ConfigError listing every problem found."""
    path = Path(path)
    document = _read_document(path)
    loader = _Loader(path, document, collectors, environ)
    config = loader.load()
    if loader.problems or config is None:
        raise ConfigError(loader.problems, path)
    return config


# --------------------------------------------------------------------------------------------------
# YAML: nodes to values, remembering where every key path is
# --------------------------------------------------------------------------------------------------

KeyPath = tuple[str | int, ...]
_Position = tuple[int, int]  # 1-based line, column


@dataclass
class _Document:
    data: Any
    positions: dict[KeyPath, _Position]
    problems: list[tuple[KeyPath, str, _Position]]


class _DocumentTooLarge(Exception):
    pass


def _read_document(path: Path) -> _Document:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read configuration file: {exc.strerror or exc}")], path) from None
    try:
        root = yaml.compose(raw, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        raise ConfigError([_yaml_syntax_problem(exc)], path) from None
    except yaml.reader.ReaderError as exc:
        raise ConfigError([_yaml_reader_problem(exc, raw)], path) from None
    except yaml.YAMLError:
        raise ConfigError([Problem("", "not valid YAML")], path) from None
    except RecursionError:
        raise ConfigError([Problem("", "not usable YAML: nested too deeply")], path) from None
    if root is None:
        raise ConfigError([Problem("", "the configuration file is empty")], path)
    return _NodeConverter().convert_document(root)


def _yaml_syntax_problem(exc: yaml.MarkedYAMLError) -> Problem:
    # Built from the parser's own words, not str(exc): that includes a snippet of the line, which
    # could hold a secret someone pasted into the file.
    mark = exc.problem_mark or exc.context_mark
    words = " ".join(part for part in (exc.context, exc.problem) if part)
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
    return Problem("", f"not valid YAML: {words or 'syntax error'}", line, column)


def _yaml_reader_problem(exc: yaml.reader.ReaderError, raw: bytes) -> Problem:
    if exc.encoding != "unicode":  # a decoding error: the position is a byte offset
        return Problem("", f"not valid YAML: the file is not {exc.encoding} text ({exc.reason})")
    text = raw.decode("utf-8-sig", errors="replace")[: exc.position]
    line = text.count("\n") + 1
    column = exc.position - (text.rfind("\n") + 1) + 1
    return Problem("", f"not valid YAML: control character #x{exc.character:04x} is not allowed", line, column)


class _NodeConverter:
    """Turns composed YAML nodes into dicts, lists and scalars, recording key-path positions and
    problems (duplicate keys, odd tags) along the way."""

    _MAP_TAG = "tag:yaml.org,2002:map"
    _SEQ_TAG = "tag:yaml.org,2002:seq"
    _MERGE_TAG = "tag:yaml.org,2002:merge"

    def __init__(self) -> None:
        self.positions: dict[KeyPath, _Position] = {}
        self.problems: list[tuple[KeyPath, str, _Position]] = []
        self._constructor = yaml.constructor.SafeConstructor()
        self._budget = _MAX_YAML_NODES
        self._active: set[int] = set()  # nodes on the current path: detects recursive aliases

    def convert_document(self, root: yaml.Node) -> _Document:
        self.positions[()] = _position(root.start_mark)
        try:
            data = self._convert(root, ())
        except _DocumentTooLarge:
            data = None
            self.problems.append(
                (
                    (),
                    f"the document is too large (more than {_MAX_YAML_NODES} values once aliases are expanded)",
                    (1, 1),
                )
            )
        except RecursionError:
            data = None
            self.problems.append(((), "the document is nested too deeply", (1, 1)))
        return _Document(data, self.positions, self.problems)

    def _convert(self, node: yaml.Node, path: KeyPath) -> Any:
        self._budget -= 1
        if self._budget < 0:
            raise _DocumentTooLarge
        if id(node) in self._active:
            self._problem(path, "recursive YAML alias", node)
            return None
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        if node.tag not in (self._MAP_TAG, self._SEQ_TAG):
            self._problem(path, f"unsupported YAML tag {node.tag!r}", node)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path)
            return self._mapping(node, path)
        finally:
            self._active.discard(id(node))

    def _scalar(self, node: yaml.ScalarNode, path: KeyPath) -> Any:
        try:
            return self._constructor.construct_object(node, deep=True)
        except yaml.constructor.ConstructorError:
            self._problem(path, f"unsupported YAML tag {node.tag!r}", node)
        except Exception:  # e.g. "!!int abc": the constructor's own error text would echo the value
            self._problem(path, f"value cannot be read as {node.tag.rsplit(':', 1)[-1]}", node)
        return None

    def _sequence(self, node: yaml.SequenceNode, path: KeyPath) -> list[Any]:
        items = []
        for index, child in enumerate(node.value):
            self.positions[path + (index,)] = _position(child.start_mark)
            items.append(self._convert(child, path + (index,)))
        return items

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        # YAML merge keys ("<<: *defaults") first, so that explicit keys override them.
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == self._MERGE_TAG:
                result.update(self._merge_sources(value_node, path))
        seen: dict[str, _Position] = {}
        for key_node, value_node in node.value:
            if key_node.tag == self._MERGE_TAG:
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(path, "mapping keys must be plain strings", key_node)
                continue
            # Keys are names, so take their text as written ("on", "1" or "null" stay strings).
            key = key_node.value
            key_path = path + (key,)
            if key in seen:
                self._problem(key_path, f"duplicate key {key!r}: first defined at line {seen[key][0]}", key_node)
                continue
            seen[key] = self.positions[key_path] = _position(key_node.start_mark)
            result[key] = self._convert(value_node, key_path)
        return result

    def _merge_sources(self, node: yaml.Node, path: KeyPath) -> dict[str, Any]:
        sources = node.value if isinstance(node, yaml.SequenceNode) else [node]
        merged: dict[str, Any] = {}
        for source in reversed(sources):  # the first source listed wins
            if isinstance(source, yaml.MappingNode):
                merged.update(self._convert(source, path) or {})
            else:
                self._problem(path, "a YAML merge key (<<) must refer to a mapping", source)
        return merged

    def _problem(self, path: KeyPath, message: str, node: yaml.Node) -> None:
        self.problems.append((path, message, _position(node.start_mark)))


def _position(mark: yaml.Mark) -> _Position:
    return (mark.line + 1, mark.column + 1)


# --------------------------------------------------------------------------------------------------
# Validation of the whole document
# --------------------------------------------------------------------------------------------------


class _Loader:
    """Validates one composed document into a Config, collecting problems instead of stopping."""

    def __init__(
        self, path: Path, document: _Document, collectors: Mapping[str, CollectorSchema], environ: Mapping[str, str]
    ):
        self.path = path
        self.base_dir = path.parent
        self.document = document
        self.collectors = collectors
        self.environ = environ
        self.problems: list[Problem] = []
        self._seen_problems: set[tuple[str, str]] = set()
        self._context = {SETTINGS_SOURCE: SOURCE_YAML, "base_dir": self.base_dir}
        # Per collector: its `collectors.<name>` section and the errors it has on its own, so a
        # target inheriting a broken section does not repeat the section's errors.
        self._defaults: dict[str, dict[str, Any]] = {}
        self._default_errors: dict[str, set[tuple[Any, str]]] = {}
        for key_path, message, (line, column) in document.problems:
            self._add(Problem(_format_path(key_path), message, line, column))

    # ---- top level -------------------------------------------------------------------------------

    def load(self) -> Config | None:
        data = self.document.data
        if self.problems and data is None:
            return None
        if not isinstance(data, dict):
            self.problem(
                (), f"the top level must be a mapping with keys {', '.join(_TOP_LEVEL_KEYS)}, got {yaml_type(data)}"
            )
            return None
        self._check_known_keys(data, (), _TOP_LEVEL_KEYS)
        global_settings = self._validate(GlobalSettings, _none_as_empty_mapping(data.get("global")), ("global",))
        credentials = self._load_credentials(data.get("credentials"))
        self._load_collector_defaults(data.get("collectors"))
        targets = self._load_targets(data.get("targets"), data, credentials)
        if self.problems or global_settings is None:
            return None
        return Config(
            path=self.path,
            global_=global_settings,
            credentials={name: cred for name, cred in credentials.items() if cred is not None},
            targets=targets,
            collectors=dict(self.collectors),
        )

    # ---- credentials -----------------------------------------------------------------------------

    def _load_credentials(self, section: Any) -> dict[str, Credential | None]:
        """name -> Credential, or None for a credential that is defined but broken (so references
        to it are not reported as missing too)."""
        section = _none_as_empty_mapping(section)
        if not isinstance(section, dict):
            self.problem(
                ("credentials",), f"must be a mapping of credential name to credential, got {yaml_type(section)}"
            )
            return {}
        return {name: self._load_credential(name, raw) for name, raw in section.items()}

    def _load_credential(self, name: str, raw: Any) -> Credential | None:
        path: KeyPath = ("credentials", name)
        model = self._validate(_RawCredential, raw, path)
        # Read the password even if another key is wrong, so an unset variable shows up in the same run.
        password = self._read_password(raw, path, name)
        if model is None or password is None:
            return None
        return Credential(name=name, username=model.username, password=SecretStr(password), auth=model.auth)

    def _read_password(self, raw: Any, path: KeyPath, credential: str) -> str | None:
        if not isinstance(raw, dict):
            return None
        env, file_name = raw.get("password_env"), raw.get("password_file")
        if isinstance(env, str) and _ENV_NAME_RE.fullmatch(env) and file_name is None:
            return self._password_from_env(env, path + ("password_env",))
        if isinstance(file_name, str) and file_name and env is None:
            return self._password_from_file(file_name, path + ("password_file",), credential)
        return None  # neither or both: reported by the model

    def _password_from_env(self, variable: str, path: KeyPath) -> str | None:
        value = self.environ.get(variable)
        if value is None:
            self.problem(path, f"environment variable {variable} is not set")
        elif value == "":
            self.problem(path, f"environment variable {variable} is empty")
        return value or None

    def _password_from_file(self, file_name: str, path: KeyPath, credential: str) -> str | None:
        file_path = resolve_path(file_name, None, self.base_dir)
        try:
            info = file_path.stat()
            if not stat.S_ISREG(info.st_mode):
                self.problem(path, f"password file {str(file_path)!r} is not a regular file")
                return None
            if info.st_size > _MAX_PASSWORD_FILE_BYTES:
                self.problem(
                    path, f"password file {str(file_path)!r} is larger than {_MAX_PASSWORD_FILE_BYTES // 1024} KiB"
                )
                return None
            content = file_path.read_bytes()
        except OSError as exc:
            self.problem(path, f"cannot read password file {str(file_path)!r}: {exc.strerror or type(exc).__name__}")
            return None
        try:
            password = content.decode("utf-8").rstrip("\r\n")  # `echo secret > file` adds a newline
        except UnicodeDecodeError:  # its text would quote bytes of the secret
            self.problem(path, f"password file {str(file_path)!r} is not UTF-8 text")
            return None
        if not password:
            self.problem(path, f"password file {str(file_path)!r} is empty")
            return None
        _warn_if_shared(file_path, info.st_mode, credential)
        return password

    # ---- collector defaults ----------------------------------------------------------------------

    def _load_collector_defaults(self, section: Any) -> None:
        section = _none_as_empty_mapping(section)
        if not isinstance(section, dict):
            self.problem(("collectors",), f"must be a mapping of collector name to settings, got {yaml_type(section)}")
            return
        for name, raw in section.items():
            path: KeyPath = ("collectors", name)
            settings = self._collector_section(name, raw, path)
            if settings is None:
                continue
            self._defaults[name] = settings
            errors = self._settings_errors(self.collectors[name], settings)
            self._default_errors[name] = {(tuple(err["loc"]), err["msg"]) for err in errors}
            for err in errors:
                self._problem_from_error(err, path, self.collectors[name].settings_model)

    def _collector_section(self, name: str, raw: Any, path: KeyPath) -> dict[str, Any] | None:
        """The raw settings mapping of a `collectors.<name>` section, or None (problem reported)."""
        if name not in self.collectors:
            self.problem(path, f"unknown collector {name!r}{_suggest(name, self.collectors)}")
            return None
        raw = _none_as_empty_mapping(raw)
        if not isinstance(raw, dict):
            self.problem(path, f"collector settings must be a mapping, got {yaml_type(raw)}")
            return None
        return raw

    def _settings_errors(self, schema: CollectorSchema, raw: dict[str, Any]) -> list[Any]:
        try:
            schema.settings_model.model_validate(raw, context=self._context)
        except ValidationError as exc:
            return exc.errors(include_url=False)
        return []

    # ---- targets ---------------------------------------------------------------------------------

    def _load_targets(
        self, section: Any, data: dict[str, Any], credentials: dict[str, Credential | None]
    ) -> list[Target]:
        if section is None or section == []:
            where: KeyPath = ("targets",) if "targets" in data else ()
            self.problem(where, "no targets: define at least one entry under 'targets'")
            return []
        if not isinstance(section, list):
            self.problem(("targets",), f"must be a list of targets, got {yaml_type(section)}")
            return []
        first_line_of_name: dict[str, int] = {}
        targets = []
        for index, raw in enumerate(section):
            target = self._load_target(index, raw, credentials, first_line_of_name)
            if target is not None:
                targets.append(target)
        return targets

    def _load_target(
        self, index: int, raw: Any, credentials: dict[str, Credential | None], first_line_of_name: dict[str, int]
    ) -> Target | None:
        path: KeyPath = ("targets", index)
        problems_before = len(self.problems)
        model = self._validate(_RawTarget, raw, path)
        if not isinstance(raw, dict):
            return None
        # The checks below read the raw values (type-guarded) so they run even when another field
        # of the same target failed validation.
        self._check_unique_name(raw.get("name"), path + ("name",), first_line_of_name)
        roles = self._check_roles(raw.get("roles"), path + ("roles",))
        credential = self._resolve_credential(raw.get("credential"), path + ("credential",), credentials)
        settings = self._target_settings(raw.get("collectors"), path + ("collectors",), roles, raw.get("name"))
        if model is None or len(self.problems) > problems_before or credential is None:
            return None
        endpoints = {kind: _endpoint(kind, model.host, getattr(model.endpoints, kind)) for kind in ENDPOINT_KINDS}
        for endpoint in endpoints.values():
            _warn_if_insecure(model.name, endpoint, credential, used=endpoint.kind in _endpoint_kinds_used(roles))
        return Target(
            model.name,
            model.host,
            frozenset(roles),
            credential,
            types.MappingProxyType(endpoints),
            types.MappingProxyType(settings),
        )

    def _check_unique_name(self, name: Any, path: KeyPath, first_line_of_name: dict[str, int]) -> None:
        if not isinstance(name, str):
            return
        line = self._position(path)[0]
        if name in first_line_of_name:
            self.problem(
                path, f"duplicate target name {name!r}: defined at line {first_line_of_name[name]} and line {line}"
            )
        else:
            first_line_of_name[name] = line

    def _check_roles(self, roles: Any, path: KeyPath) -> set[str]:
        if not isinstance(roles, list):
            return set()  # missing or wrong type: reported by the model
        if not roles:
            self.problem(path, f"roles must not be empty; use one or more of {', '.join(ROLES)}")
        valid: set[str] = set()
        for index, role in enumerate(roles):
            if not isinstance(role, str):
                continue
            if role not in ROLES:
                self.problem(
                    path + (index,), f"unknown role {role!r}{_suggest(role, ROLES)} (roles: {', '.join(ROLES)})"
                )
            elif role in valid:
                self.problem(path + (index,), f"role {role!r} is listed twice")
            valid.add(role)
        return valid & set(ROLES)

    def _resolve_credential(
        self, name: Any, path: KeyPath, credentials: dict[str, Credential | None]
    ) -> Credential | None:
        if not isinstance(name, str):
            return None
        if name not in credentials:
            known = (
                f"{_suggest(name, credentials)} (defined: {', '.join(credentials)})"
                if credentials
                else " (no credentials are defined)"
            )
            self.problem(path, f"no credential named {name!r}{known}")
            return None
        return credentials[name]  # None when the credential itself is broken: reported there

    def _target_settings(
        self, section: Any, path: KeyPath, roles: set[str], target_name: Any
    ) -> dict[str, CollectorSettings]:
        """Settings of every known collector for this target; problems for the ones that run here."""
        own_sections = self._target_collector_sections(section, path, roles, target_name)
        settings = {}
        for name, schema in self.collectors.items():
            runs_here = bool(roles & schema.roles)
            own = own_sections.get(name)
            result = self._merged_settings(name, schema, own, path + (name,), report=runs_here)
            if result is not None:
                settings[name] = result
        return settings

    def _target_collector_sections(
        self, section: Any, path: KeyPath, roles: set[str], target_name: Any
    ) -> dict[str, dict[str, Any]]:
        section = _none_as_empty_mapping(section)
        if not isinstance(section, dict):
            return {}  # reported by the model
        sections = {}
        for name, raw in section.items():
            own = self._collector_section(name, raw, path + (name,))
            if own is None:
                continue
            schema = self.collectors[name]
            if roles and not roles & schema.roles:
                self.problem(
                    path + (name,),
                    f"collector {name!r} never runs on target {target_name!r}: it runs on roles "
                    f"{', '.join(sorted(schema.roles))}, the target has {', '.join(sorted(roles))}",
                )
                continue
            sections[name] = own
        return sections

    def _merged_settings(
        self, name: str, schema: CollectorSchema, own: dict[str, Any] | None, own_path: KeyPath, *, report: bool
    ) -> CollectorSettings | None:
        defaults = self._defaults.get(name, {})
        merged = {**defaults, **(own or {})}
        try:
            return schema.settings_model.model_validate(merged, context=self._context)
        except ValidationError as exc:
            if report:
                for err in exc.errors(include_url=False):
                    self._report_settings_error(name, err, own, own_path, schema)
            return None

    def _report_settings_error(
        self, name: str, err: Any, own: dict[str, Any] | None, own_path: KeyPath, schema: CollectorSchema
    ) -> None:
        base = self._settings_error_base(name, err, own, own_path)
        key = err["loc"][0] if err["loc"] else None
        if (
            base == own_path
            and key not in (own or {})
            and key in self._defaults.get(name, {})
            and err["type"] == "value_error"
        ):
            # The target's override clashes with a shared default: say where that default lives.
            err = {**err, "msg": f"{err['msg']} ({key} is set in collectors.{name})"}
        self._problem_from_error(err, base, schema.settings_model)

    def _settings_error_base(self, name: str, err: Any, own: dict[str, Any] | None, own_path: KeyPath) -> KeyPath:
        """Where a merged-settings error belongs: the target's section when the target set the key
        or caused the error, otherwise the shared `collectors.<name>` section."""
        loc = tuple(err["loc"])
        if own is not None and loc and loc[0] in own:
            return own_path
        if own is not None and (loc, err["msg"]) not in self._default_errors.get(name, set()):
            return own_path
        return ("collectors", name)

    # ---- shared helpers --------------------------------------------------------------------------

    def _validate(self, model: type[BaseModel], raw: Any, path: KeyPath) -> Any:
        try:
            return model.model_validate(raw, context=self._context)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self._problem_from_error(err, path, model)
            return None

    def _problem_from_error(self, err: Any, base: KeyPath, model: type[BaseModel]) -> None:
        loc = tuple(err["loc"])  # keys are always strings here, so pydantic adds no "[key]" entries
        self.problem(base + loc, _error_message(err, model, loc))

    def _check_known_keys(self, data: dict[str, Any], path: KeyPath, allowed: Sequence[str]) -> None:
        for key in data:
            if key not in allowed:
                self.problem(path + (key,), _unknown_key_message(key, allowed))

    def _position(self, path: KeyPath) -> _Position:
        # A missing key has no position of its own: use the nearest enclosing one.
        while path not in self.document.positions:
            path = path[:-1]
        return self.document.positions[path]

    def problem(self, path: KeyPath, message: str) -> None:
        line, column = self._position(path)
        self._add(Problem(_format_path(path), message, line, column))

    def _add(self, problem: Problem) -> None:
        key = (problem.path, problem.message)
        if key not in self._seen_problems:
            self._seen_problems.add(key)
            self.problems.append(problem)


# --------------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------------


def _endpoint(kind: str, host: str, raw: _RawEndpoint | None) -> Endpoint:
    raw = raw or _RawEndpoint()
    url_host = f"[{host}]" if ":" in host else host  # IPv6 literals need brackets in URLs
    if kind == "windows":
        default_url, default_configuration = f"https://{url_host}:5986/wsman", "Microsoft.PowerShell"
    else:  # Exchange's own remote PowerShell endpoint: http with Kerberos message encryption
        default_url, default_configuration = f"http://{url_host}/PowerShell", "Microsoft.Exchange"
    return Endpoint(
        kind=kind,  # type: ignore[arg-type]
        url=raw.url or default_url,
        configuration=raw.configuration or default_configuration,
        tls_verify=raw.tls_verify,
        ca_file=raw.ca_file,
        encryption=raw.encryption,
    )


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


def _is_host(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return bool(_HOSTNAME_RE.fullmatch(value))


def _warn_if_shared(file_path: Path, mode: int, credential: str) -> None:
    if os.name == "posix" and mode & 0o077:
        log.warning(
            "password file %s of credential %s is readable by group or others (mode %04o); chmod 600 it",
            file_path,
            credential,
            stat.S_IMODE(mode),
        )


def _endpoint_kinds_used(roles: set[str]) -> set[str]:
    # Lync cmdlets, event logs and files go through the Windows endpoint; Exchange cmdlets through
    # the Exchange one, which only Exchange servers have.
    return {"windows", "exchange"} if roles & _EXCHANGE_ROLES else {"windows"}


def _warn_if_insecure(target: str, endpoint: Endpoint, credential: Credential, *, used: bool) -> None:
    if not endpoint.tls_verify:  # an explicit choice: always say so
        log.warning("target %s: TLS certificate verification is disabled for its %s endpoint", target, endpoint.kind)
    is_http = endpoint.url.lower().startswith("http://")
    if not used or not is_http:
        return
    if credential.auth == "basic":
        log.warning(
            "target %s: Basic auth over plain http sends credential %s in clear on its %s endpoint",
            target,
            credential.name,
            endpoint.kind,
        )
    if endpoint.encryption == "never":
        log.warning("target %s: %s endpoint uses plain http with message encryption off", target, endpoint.kind)


def _format_path(path: KeyPath) -> str:
    """("targets", 0, "collectors", "x") -> "targets[0].collectors.x"; odd keys are quoted."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif _PLAIN_KEY_RE.fullmatch(part):
            text += f".{part}" if text else part
        else:
            text += f"[{json.dumps(part)}]"
    return text


def _error_message(err: Any, model: type[BaseModel], loc: KeyPath) -> str:
    """A pydantic error in the file's words. Inputs are described by type, never quoted, except
    for choices from a fixed list."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return _unknown_key_message(str(loc[-1]), _allowed_keys(model, loc[:-1]))
    if kind == "missing":
        return f"missing required key {loc[-1]!r}" if loc else "missing required value"
    message = str(err["msg"])
    if kind in ("value_error", "assertion_error"):
        return message.split(", ", 1)[1] if message.startswith(("Value error, ", "Assertion failed, ")) else message
    if kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        return f"must be a mapping, got {yaml_type(err.get('input'))}"
    message = message.replace("Input should be", "must be", 1)
    if kind == "literal_error" and isinstance(err.get("input"), str) and len(err["input"]) <= 64:
        return f"{message}, got {err['input']!r}"
    if kind.endswith("_type"):
        hint = "; quote it to make it a string" if kind == "string_type" and _is_scalar(err.get("input")) else ""
        return f"{message}, got {yaml_type(err.get('input'))}{hint}"
    return message


def _unknown_key_message(key: str, allowed: Sequence[str]) -> str:
    if key == "password":
        return "unknown key 'password': inline passwords are not allowed; use password_env or password_file"
    allowed_text = f" (allowed: {', '.join(allowed)})" if allowed else ""
    return f"unknown key {key!r}{_suggest(key, allowed)}{allowed_text}"


def _allowed_keys(model: type[BaseModel], loc: KeyPath) -> list[str]:
    """The keys of the model found at ``loc`` inside ``model`` (best effort, for error hints)."""
    current: Any = model
    for part in loc:
        current = _unwrap_optional(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            field_info = current.model_fields.get(str(part))
            current = field_info.annotation if field_info else None
        elif typing.get_origin(current) in (list, dict):
            current = typing.get_args(current)[-1]
        else:
            return []
    current = _unwrap_optional(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap_optional(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _suggest(word: str, choices: Any) -> str:
    matches = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list))
