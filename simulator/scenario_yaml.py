"""Reading scenario files: safe YAML with ``!delete`` and no duplicate keys, and overlay merging.

Where a scenario comes from (a shipped name or a path), how its text is parsed, and how an overlay
is merged onto its base. What a scenario means (validation, consistency, replays) is
``simulator/scenario.py``'s.
"""

from __future__ import annotations

import copy
import importlib.resources
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

SHIPPED_DIR = "scenarios"


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; the message names the file and the key path."""


class _Delete:
    """The ``!delete`` marker of overlays."""

    def __repr__(self) -> str:
        return "!delete"


DELETE = _Delete()


class _Loader(yaml.SafeLoader):
    """Safe YAML plus ``!delete`` and an error on duplicate keys (a silent overwrite hides typos)."""


def _construct_delete(loader: yaml.SafeLoader, node: yaml.Node) -> _Delete:
    return DELETE


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in result:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        result[key] = loader.construct_object(value_node, deep=deep)
    return result


_Loader.add_constructor("!delete", _construct_delete)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def scenario_names() -> list[str]:
    """Names of the scenarios shipped in simulator/scenarios (healthy first)."""
    names = sorted(
        entry.name[: -len(".yaml")]
        for entry in importlib.resources.files("simulator").joinpath(SHIPPED_DIR).iterdir()
        if entry.name.endswith(".yaml")
    )
    return sorted(names, key=lambda n: (n != "healthy", n))


def read_text(name_or_path: str | Path) -> tuple[str, str, Path | None]:
    """(label for errors, YAML text, directory for relative bases)."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        if not candidate.is_file():
            raise ScenarioError(f"{candidate}: scenario file not found")
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise ScenarioError(f"{candidate}: cannot read the scenario file ({err})") from None
        return candidate.name, text, candidate.parent
    name = str(name_or_path)
    resource = importlib.resources.files("simulator").joinpath(SHIPPED_DIR, f"{name}.yaml")
    if not resource.is_file():
        raise ScenarioError(f"unknown scenario {name!r}; known: {', '.join(scenario_names())}")
    return f"{name}.yaml", resource.read_text(encoding="utf-8"), None


def parse_document(label: str, text: str) -> dict:
    try:
        document = yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ScenarioError(f"{label}: invalid YAML: {err}") from None
    if not isinstance(document, dict):
        raise ScenarioError(f"{label}: a scenario must be a YAML mapping")
    return document


def deep_merge(base: Any, overlay: Any, path: tuple = ()) -> Any:
    """Overlay onto base: mappings merge, ``!delete`` removes, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(overlay, dict):
        return copy.deepcopy(overlay)
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if value is DELETE:
            if key not in merged:
                raise ScenarioError(f"{dotted(path + (key,))}: !delete of a key the base does not have")
            del merged[key]
        elif key in merged:
            merged[key] = deep_merge(merged[key], value, path + (key,))
        else:
            merged[key] = _strip_deletes(value, path + (key,))
    return merged


def _strip_deletes(value: Any, path: tuple) -> Any:
    if value is DELETE:
        raise ScenarioError(f"{dotted(path)}: !delete of a key the base does not have")
    if isinstance(value, dict):
        return {k: _strip_deletes(v, path + (k,)) for k, v in value.items()}
    return copy.deepcopy(value)


def dotted(path: Iterable) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


