"""Paths named in the configuration."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationInfo


def resolve_path(name: str, info: ValidationInfo | None, base_dir: Path | None = None) -> Path:
    """A path from the configuration: relative paths are relative to the configuration file, as in Prometheus.

    ``info`` is the pydantic validation info of a settings model; the loader puts the file's folder in
    its context as ``base_dir``.
    """
    if base_dir is None and info is not None and isinstance(info.context, Mapping):
        base_dir = info.context.get("base_dir")
    path = Path(name)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path
