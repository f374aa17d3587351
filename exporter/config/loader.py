"""Loading a configuration file: ``load_config``.

Loading happens in three steps:

1. Read the YAML into plain values, remembering the line and column of every key path
   (yaml_source).
2. Validate each section with its pydantic model (model) and translate pydantic's errors into key
   paths and lines (errors).
3. Check what the models cannot see: references between sections, unique names, roles,
   environment variables and secret files (credentials), collector settings merged per target
   (collector_settings).

Every problem is collected before one ConfigError is raised, so an operator fixes a file in one go.
"""

from __future__ import annotations

import logging
import os
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collectors.contract import SETTINGS_SOURCE, SOURCE_YAML
from collectors.helpers.values import yaml_type
from exporter.config.collector_settings import CollectorSettingsLoader
from exporter.config.credentials import load_credentials
from exporter.config.errors import ConfigError, Problem, Report, suggest
from exporter.config.model import (
    ENDPOINT_KINDS,
    ROLES,
    TOP_LEVEL_KEYS,
    CollectorSchema,
    Config,
    Credential,
    Endpoint,
    GlobalSettings,
    RawTarget,
    Target,
    none_as_empty_mapping,
)
from exporter.config.yaml_source import Document, KeyPath, YamlError, read_yaml

__all__ = ["load_config"]

log = logging.getLogger("exporter.config")  # the package's name: operators' log filters predate the split

_EXCHANGE_ROLES = frozenset({"exchange_mailbox", "exchange_client_access"})


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
    if loader.report.problems or config is None:
        raise ConfigError(loader.report.problems, path)
    return config


def _read_document(path: Path) -> Document:
    try:
        document = read_yaml(path)
    except OSError as exc:
        raise ConfigError([Problem("", f"cannot read configuration file: {exc.strerror or exc}")], path) from None
    except YamlError as exc:
        line, column = exc.position or (None, None)
        raise ConfigError([Problem("", exc.message, line, column)], path) from None
    if document is None:
        raise ConfigError([Problem("", "the configuration file is empty")], path)
    return document


class _Loader:
    """Validates one read document into a Config, collecting problems instead of stopping."""

    def __init__(
        self, path: Path, document: Document, collectors: Mapping[str, CollectorSchema], environ: Mapping[str, str]
    ):
        self.path = path
        self.base_dir = path.parent
        self.document = document
        self.collectors = collectors
        self.environ = environ
        self.report = Report(document.positions, {SETTINGS_SOURCE: SOURCE_YAML, "base_dir": self.base_dir})
        self.settings = CollectorSettingsLoader(collectors, self.report)
        for key_path, message, position in document.problems:
            self.report.problem_at(key_path, message, position)

    def load(self) -> Config | None:
        data = self.document.data
        if self.report.problems and data is None:
            return None
        if not isinstance(data, dict):
            self.report.problem(
                (), f"the top level must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}, got {yaml_type(data)}"
            )
            return None
        self.report.check_known_keys(data, (), TOP_LEVEL_KEYS)
        global_settings = self.report.validate(GlobalSettings, none_as_empty_mapping(data.get("global")), ("global",))
        credentials = load_credentials(data.get("credentials"), self.report, self.environ, self.base_dir)
        self.settings.load_defaults(data.get("collectors"))
        targets = self._load_targets(data.get("targets"), data, credentials)
        if self.report.problems or global_settings is None:
            return None
        return Config(
            path=self.path,
            global_=global_settings,
            credentials={name: cred for name, cred in credentials.items() if cred is not None},
            targets=targets,
            collectors=dict(self.collectors),
        )

    def _load_targets(
        self, section: Any, data: dict[str, Any], credentials: dict[str, Credential | None]
    ) -> list[Target]:
        if section is None or section == []:
            where: KeyPath = ("targets",) if "targets" in data else ()
            self.report.problem(where, "no targets: define at least one entry under 'targets'")
            return []
        if not isinstance(section, list):
            self.report.problem(("targets",), f"must be a list of targets, got {yaml_type(section)}")
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
        problems_before = len(self.report.problems)
        model = self.report.validate(RawTarget, raw, path)
        if not isinstance(raw, dict):
            return None
        # The checks below read the raw values (type-guarded) so they run even when another field
        # of the same target failed validation.
        self._check_unique_name(raw.get("name"), path + ("name",), first_line_of_name)
        roles = self._check_roles(raw.get("roles"), path + ("roles",))
        credential = self._resolve_credential(raw.get("credential"), path + ("credential",), credentials)
        settings = self.settings.for_target(raw.get("collectors"), path + ("collectors",), roles, raw.get("name"))
        if model is None or len(self.report.problems) > problems_before or credential is None:
            return None
        endpoints = {kind: Endpoint.of(kind, model.host, getattr(model.endpoints, kind)) for kind in ENDPOINT_KINDS}
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
        line = self.report.position(path)[0]
        if name in first_line_of_name:
            self.report.problem(
                path, f"duplicate target name {name!r}: defined at line {first_line_of_name[name]} and line {line}"
            )
        else:
            first_line_of_name[name] = line

    def _check_roles(self, roles: Any, path: KeyPath) -> set[str]:
        if not isinstance(roles, list):
            return set()  # missing or wrong type: reported by the model
        if not roles:
            self.report.problem(path, f"roles must not be empty; use one or more of {', '.join(ROLES)}")
        valid: set[str] = set()
        for index, role in enumerate(roles):
            if not isinstance(role, str):
                continue
            if role not in ROLES:
                self.report.problem(
                    path + (index,), f"unknown role {role!r}{suggest(role, ROLES)} (roles: {', '.join(ROLES)})"
                )
            elif role in valid:
                self.report.problem(path + (index,), f"role {role!r} is listed twice")
            valid.add(role)
        return valid & set(ROLES)

    def _resolve_credential(
        self, name: Any, path: KeyPath, credentials: dict[str, Credential | None]
    ) -> Credential | None:
        if not isinstance(name, str):
            return None
        if name not in credentials:
            known = (
                f"{suggest(name, credentials)} (defined: {', '.join(credentials)})"
                if credentials
                else " (no credentials are defined)"
            )
            self.report.problem(path, f"no credential named {name!r}{known}")
            return None
        return credentials[name]  # None when the credential itself is broken: reported there


def _endpoint_kinds_used(roles: set[str]) -> set[str]:
    # Event logs, files, registry and IIS go through the Windows endpoint everywhere; Exchange cmdlets
    # through the Exchange one; a front end's Lync cmdlets through /OcsPowershell (an Edge has none:
    # its Lync cmdlets take the Windows endpoint).
    kinds = {"windows"}
    if roles & _EXCHANGE_ROLES:
        kinds.add("exchange")
    if "lync_frontend" in roles:
        kinds.add("lync")
    return kinds


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
