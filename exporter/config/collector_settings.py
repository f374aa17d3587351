"""Each collector's settings on each target: model defaults <- ``collectors.<name>`` <- the target's
own ``collectors.<name>``.

The shared section and a target's section are merged before the collector's settings model sees
them, so an error can come from either. This module puts each error where the operator has to fix
it (the target's section when the target set or caused it, the shared one otherwise) and does not
repeat a broken shared section's errors for every target inheriting it.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from pydantic import ValidationError

from collectors.contract import CollectorSettings
from collectors.helpers.values import yaml_type
from exporter.config.errors import Report, suggest
from exporter.config.model import CollectorSchema, none_as_empty_mapping
from exporter.config.yaml_source import KeyPath

__all__ = ["CollectorSettingsLoader"]


class CollectorSettingsLoader:
    """Reads the ``collectors`` section once (``load_defaults``), then each target's own settings
    (``for_target``). Problems go to ``report``."""

    def __init__(self, collectors: Mapping[str, CollectorSchema], report: Report) -> None:
        self.collectors = collectors
        self.report = report
        # Per collector: its `collectors.<name>` section and the errors it has on its own, so a
        # target inheriting a broken section does not repeat the section's errors.
        self._defaults: dict[str, dict[str, Any]] = {}
        self._default_errors: dict[str, set[tuple[Any, str]]] = {}
        # Valid settings by collector and merged section: targets with the same section share one (frozen)
        # model instead of one per target and collector (13 collectors x 1,000 targets: about 7 MB).
        self._validated: dict[Hashable, CollectorSettings] = {}

    def load_defaults(self, section: Any) -> None:
        section = none_as_empty_mapping(section)
        if not isinstance(section, dict):
            self.report.problem(
                ("collectors",), f"must be a mapping of collector name to settings, got {yaml_type(section)}"
            )
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
                self.report.problem_from_error(err, path, self.collectors[name].settings_model)

    def for_target(
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

    def _collector_section(self, name: str, raw: Any, path: KeyPath) -> dict[str, Any] | None:
        """The raw settings mapping of a `collectors.<name>` section, or None (problem reported)."""
        if name not in self.collectors:
            self.report.problem(path, f"unknown collector {name!r}{suggest(name, self.collectors)}")
            return None
        raw = none_as_empty_mapping(raw)
        if not isinstance(raw, dict):
            self.report.problem(path, f"collector settings must be a mapping, got {yaml_type(raw)}")
            return None
        return raw

    def _settings_errors(self, schema: CollectorSchema, raw: dict[str, Any]) -> list[Any]:
        try:
            schema.settings_model.model_validate(raw, context=self.report.context)
        except ValidationError as exc:
            return exc.errors(include_url=False)
        return []

    def _target_collector_sections(
        self, section: Any, path: KeyPath, roles: set[str], target_name: Any
    ) -> dict[str, dict[str, Any]]:
        section = none_as_empty_mapping(section)
        if not isinstance(section, dict):
            return {}  # reported by the model
        sections = {}
        for name, raw in section.items():
            own = self._collector_section(name, raw, path + (name,))
            if own is None:
                continue
            schema = self.collectors[name]
            if roles and not roles & schema.roles:
                self.report.problem(
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
        key = _frozen((name, merged))
        if key is not None and key in self._validated:
            return self._validated[key]
        try:
            settings = schema.settings_model.model_validate(merged, context=self.report.context)
        except ValidationError as exc:
            if report:
                for err in exc.errors(include_url=False):
                    self._report_settings_error(name, err, own, own_path, schema)
            return None
        if key is not None:
            self._validated[key] = settings
        return settings

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
        self.report.problem_from_error(err, base, schema.settings_model)

    def _settings_error_base(self, name: str, err: Any, own: dict[str, Any] | None, own_path: KeyPath) -> KeyPath:
        """Where a merged-settings error belongs: the target's section when the target set the key
        or caused the error, otherwise the shared `collectors.<name>` section."""
        loc = tuple(err["loc"])
        if own is not None and loc and loc[0] in own:
            return own_path
        if own is not None and (loc, err["msg"]) not in self._default_errors.get(name, set()):
            return own_path
        return ("collectors", name)


def _frozen(value: Any) -> Hashable | None:
    """A hashable key equal for equal YAML values (types kept apart: 1, 1.0 and True differ), or None
    for a value that cannot be keyed (then the section is validated on its own, as before)."""
    if isinstance(value, dict):
        items = [(_frozen(k), _frozen(v)) for k, v in value.items()]
        if any(k is None or v is None for k, v in items):
            return None
        return ("dict", frozenset(items))
    if isinstance(value, (list, tuple)):
        parts = [_frozen(v) for v in value]
        return None if any(p is None for p in parts) else (type(value).__name__, tuple(parts))
    if value is None or isinstance(value, (str, int, float, bool, bytes)):
        return (type(value).__name__, value)
    return None
