"""What every collector is: a name, the roles it applies to, its metrics, and ``collect()``.

A collector knows its domain and nothing of HTTP or scheduling. It reads through the context
(remote sessions for the target's endpoints, a per-job memory for incremental reads) and returns
samples of the metrics it declared. A failure is raised as a typed :class:`RemoteError`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

from collectors.cmdlet_policy import ParameterPolicy, problem_with
from exporter.config import CollectorSettings, GlobalSettings, Target
from exporter.normalize import Shape
from exporter.remoting import CmdletAnswer, Deadline, EndpointSpec, ErrorKind, RemoteError, SessionPool

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


@dataclass
class CollectContext:
    """Everything one run of one job may use."""

    target: Target
    settings: CollectorSettings
    deadline: Deadline
    sessions: SessionPool
    memory: dict[str, Any]  # survives between runs of this job (cursors, counters, watchers)
    log: logging.LoggerAdapter
    # Estate-wide facts from the configuration's `global` section (e.g. the Lync pool FQDN).
    global_settings: GlobalSettings = field(default_factory=GlobalSettings)
    # (endpoint kind, cmdlet) pairs the collector declared; a call outside them is refused, so the
    # JEA role capability generated from the declarations (exporter/jea.py) is never short of one.
    declared_cmdlets: frozenset[tuple[str, str]] | None = None
    # cmdlet (lower case) -> the parameters the collector declared for it; calls are checked against it.
    declared_parameters: Mapping[str, ParameterPolicy] | None = None

    def endpoint(self, kind: str) -> EndpointSpec:
        endpoint = self.target.endpoint(kind)
        cred = self.target.credential
        return EndpointSpec(
            url=endpoint.url,
            configuration=endpoint.configuration,
            username=cred.username,
            password=cred.password.get_secret_value(),
            auth=cred.auth,
            tls_verify=endpoint.tls_verify,
            ca_file=endpoint.ca_file,
            encryption=endpoint.encryption,
        )

    def run(
        self,
        endpoint_kind: str,
        cmdlet: str,
        parameters: Mapping[str, Any] | None,
        shape: Shape,
        accept_error_ids: Sequence[str] = (),
    ) -> CmdletAnswer:
        if self.declared_cmdlets is not None and (endpoint_kind, cmdlet.lower()) not in self.declared_cmdlets:
            raise RemoteError(ErrorKind.COMMAND, self.target.host,
                              f"{cmdlet} on the {endpoint_kind} endpoint is not among the collector's declared cmdlets")
        if self.declared_parameters is not None and cmdlet.lower() in self.declared_parameters:
            problem = problem_with(cmdlet, parameters, self.declared_parameters[cmdlet.lower()])
            if problem:
                raise RemoteError(ErrorKind.COMMAND, self.target.host, problem)
        session = self.sessions.get(self.endpoint(endpoint_kind))
        return session.run(cmdlet, parameters, shape, self.deadline, accept_error_ids=accept_error_ids)


class Collector:
    """Base class; subclasses set the class attributes and implement :meth:`collect`."""

    name: ClassVar[str]
    roles: ClassVar[frozenset[str]]
    settings_model: ClassVar[type[CollectorSettings]] = CollectorSettings
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    # Every cmdlet the collector may call, by endpoint kind: the source of the JEA role capability.
    cmdlets: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Per cmdlet, the parameters it is called with and their allowed values (collectors.cmdlet_policy):
    # the source of the JEA role capability's parameter restrictions. A cmdlet left out is unrestricted.
    cmdlet_parameters: ClassVar[Mapping[str, ParameterPolicy]] = {}

    def declared_cmdlets(self) -> frozenset[tuple[str, str]]:
        return frozenset((endpoint, cmdlet.lower()) for endpoint, cmdlet in self.cmdlets)

    def declared_parameters(self) -> dict[str, ParameterPolicy]:
        return {cmdlet.lower(): policy for cmdlet, policy in self.cmdlet_parameters.items()}

    def collect(self, ctx: CollectContext) -> list[Sample]:
        raise NotImplementedError

    def close(self, memory: dict[str, Any]) -> None:
        """Release what a job keeps in its memory (file watchers); called once when the exporter stops."""
