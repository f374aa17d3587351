"""The collector contract: everything a collector is given and everything it hands back.

Layers point one way (``tests/unit/test_layers.py`` enforces it)::

    collectors.helpers  <-  collectors.contract  <-  collectors.sources  <-  the checks  <-  registry  <-  exporter

This package is the contract, one module per part of it; everything is imported from here. It imports nothing of the runtime (``exporter``) and nothing of the
sources: a collector declares its settings (a :class:`CollectorSettings` model), its per-job state,
its metrics (:class:`MetricSpec`) and the cmdlets it may call, and implements ``collect(ctx)``. The
context (:class:`CollectContext`) gives it the target as a :class:`TargetInfo` (name, host, roles;
never a credential), its typed settings and state, a deadline, a way to run cmdlets (the runtime's
:class:`CmdletRunner`) and the exporter's :class:`FactsBoard`, where jobs leave facts for other jobs.
A run returns samples or raises a typed :class:`CollectError`.
"""

from __future__ import annotations

from collectors.contract.answers import (
    CmdletAnswer,
    ErrorRecordInfo,
    Field,
    Shape,
    ShapeError,
)
from collectors.contract.collector import (
    SELECT,
    CmdletRunner,
    CollectContext,
    Collector,
    Estate,
    NoState,
    SettingsT,
    StateT,
    TargetInfo,
)
from collectors.contract.facts import Fact, FactsBoard, Posted, T
from collectors.contract.failures import ERROR_KINDS, CollectError, Deadline, ErrorKind
from collectors.contract.metrics import (
    MAX_LABEL_CHARS,
    METRIC_PREFIX,
    MetricSpec,
    Sample,
    label_value,
)
from collectors.contract.settings import (
    SETTINGS_SOURCE,
    SOURCE_YAML,
    CollectorSettings,
    Duration,
    NonNegativeDuration,
)

__all__ = [
    "ERROR_KINDS", "MAX_LABEL_CHARS", "METRIC_PREFIX", "SELECT", "SETTINGS_SOURCE", "SOURCE_YAML",
    "CmdletAnswer", "CmdletRunner", "CollectContext", "CollectError", "Collector", "CollectorSettings",
    "Deadline", "Duration", "ErrorKind", "ErrorRecordInfo", "Estate", "Fact", "FactsBoard", "Field",
    "MetricSpec", "NoState", "NonNegativeDuration", "Posted", "Sample", "SettingsT", "Shape", "ShapeError",
    "StateT", "T", "TargetInfo", "label_value",
]
