"""What is wrong with a configuration file, in the file's words.

Every problem names its key path ("targets[0].credential") and the line and column where that path
is, and all of them are collected before one ConfigError is raised, so an operator fixes a file in
one go. pydantic's errors are translated here: its locations become key paths, its wording becomes
the file's, and inputs are described by their YAML type, never quoted (they may be secrets).
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from collectors.helpers.values import yaml_type
from exporter.config.yaml_source import KeyPath, Position

__all__ = ["Problem", "ConfigError", "Report", "format_path", "unknown_key_message", "suggest"]

_PLAIN_KEY_RE = re.compile(r"[A-Za-z0-9_-]+")


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


class Report:
    """The problems found in one document so far, each placed at its key path's line and column
    (or the nearest enclosing key's, for a missing key) and each reported once."""

    def __init__(self, positions: Mapping[KeyPath, Position], context: Mapping[str, Any]) -> None:
        self.positions = positions
        self.context = context  # pydantic validation context: where values come from, the file's folder
        self.problems: list[Problem] = []
        self._seen: set[tuple[str, str]] = set()

    def position(self, path: KeyPath) -> Position:
        while path not in self.positions:  # the root () always has a position
            path = path[:-1]
        return self.positions[path]

    def problem(self, path: KeyPath, message: str) -> None:
        self.problem_at(path, message, self.position(path))

    def problem_at(self, path: KeyPath, message: str, position: Position) -> None:
        problem = Problem(format_path(path), message, *position)
        key = (problem.path, problem.message)
        if key not in self._seen:
            self._seen.add(key)
            self.problems.append(problem)

    def validate(self, model: type[BaseModel], raw: Any, path: KeyPath) -> Any:
        """``raw`` as a ``model``, or None with its errors reported under ``path``."""
        try:
            return model.model_validate(raw, context=self.context)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                self.problem_from_error(err, path, model)
            return None

    def problem_from_error(self, err: Any, base: KeyPath, model: type[BaseModel]) -> None:
        loc = tuple(err["loc"])  # keys are always strings here, so pydantic adds no "[key]" entries
        self.problem(base + loc, _error_message(err, model, loc))

    def check_known_keys(self, data: dict[str, Any], path: KeyPath, allowed: Sequence[str]) -> None:
        for key in data:
            if key not in allowed:
                self.problem(path + (key,), unknown_key_message(key, allowed))


def format_path(path: KeyPath) -> str:
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


def unknown_key_message(key: str, allowed: Sequence[str]) -> str:
    if key == "password":
        return "unknown key 'password': inline passwords are not allowed; use password_env or password_file"
    allowed_text = f" (allowed: {', '.join(allowed)})" if allowed else ""
    return f"unknown key {key!r}{suggest(key, allowed)}{allowed_text}"


def suggest(word: str, choices: Any) -> str:
    matches = difflib.get_close_matches(word, [str(c) for c in choices], n=1)
    return f"; did you mean {matches[0]!r}?" if matches else ""


def _error_message(err: Any, model: type[BaseModel], loc: KeyPath) -> str:
    """A pydantic error in the file's words. Inputs are described by type, never quoted, except
    for choices from a fixed list."""
    kind = err["type"]
    if kind == "extra_forbidden":
        return unknown_key_message(str(loc[-1]), _allowed_keys(model, loc[:-1]))
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


def _is_scalar(value: Any) -> bool:
    return value is not None and not isinstance(value, (dict, list))
