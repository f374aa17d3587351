"""What a collector exports: its metrics, and the samples of one run."""

from __future__ import annotations

import re
from dataclasses import dataclass

METRIC_PREFIX = "lync_owa_"


@dataclass(frozen=True)
class MetricSpec:
    """One metric a collector exports. ``labels`` excludes ``target``, which every sample gets."""

    name: str
    kind: str  # gauge | counter
    help: str
    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.name.startswith(METRIC_PREFIX):
            raise ValueError(f"metric {self.name} lacks the {METRIC_PREFIX} prefix")
        if self.kind not in ("gauge", "counter"):
            raise ValueError(f"metric {self.name}: kind {self.kind!r}")
        if (self.kind == "counter") != self.name.endswith("_total"):
            raise ValueError(f"metric {self.name}: only counters end in _total")

    def sample(self, value: float, **labels: str) -> "Sample":
        if set(labels) != set(self.labels):
            raise ValueError(f"{self.name}: labels {sorted(labels)} != {sorted(self.labels)}")
        return Sample(self, tuple(label_value(labels[name]) for name in self.labels), float(value))


# Controls, invisible and bidi format characters, and lone surrogates (from CLIXML _xD800_ escapes or
# surrogateescape-decoded file names), which UTF-8 cannot encode: one would break the whole exposition.
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\xad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f"
                            r"\ufeff\ud800-\udfff]")
MAX_LABEL_CHARS = 128


def label_value(value: object) -> str:
    """Label values come from servers: strip control and invisible characters, bound the length."""
    text = _CONTROL_CHARS.sub("", str(value))
    return text if len(text) <= MAX_LABEL_CHARS else text[: MAX_LABEL_CHARS - 1] + "…"


@dataclass(frozen=True)
class Sample:
    spec: MetricSpec
    label_values: tuple[str, ...]
    value: float
