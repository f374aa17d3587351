"""The configuration file (``--config.file``): what it holds and how it is loaded and checked.

The package is split by job: ``model`` (the sections' models and the loaded configuration),
``loader`` (``load_config``), ``credentials`` and ``collector_settings`` (the checks the models cannot
make), ``errors`` (problems, in the file's words) and ``yaml_source`` (reading YAML with positions,
shared with ``--web.config.file``). Import from here: the names below are the stable ones.
"""

from exporter.config.errors import ConfigError, Problem
from exporter.config.loader import load_config
from exporter.config.model import (
    ENDPOINT_KINDS,
    ROLES,
    CollectorSchema,
    Config,
    Credential,
    Endpoint,
    GlobalSettings,
    JobSpec,
    Target,
)

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
