"""The collector itself, and the context each run of it is given."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, Literal, Protocol, Sequence, TypeVar

from collectors.contract.answers import CmdletAnswer, Shape
from collectors.contract.facts import Fact, FactsBoard, T
from collectors.contract.failures import CollectError, Deadline, ErrorKind
from collectors.contract.metrics import MetricSpec, Sample
from collectors.contract.settings import CollectorSettings
from collectors.helpers.cmdlet_policy import ParameterPolicy, problem_with


@dataclass(frozen=True)
class TargetInfo:
    """The target a job polls, as a collector may know it: never its credential or endpoints."""

    name: str
    host: str
    roles: frozenset[str]


@dataclass(frozen=True)
class Estate:
    """Estate-wide facts from the configuration's ``global`` section."""

    lync_pool_fqdn: str | None = None
    # Hybrid with Exchange Online: "auto" (when the CMS or the Edge holds its hosting provider), or
    # declared: True / False. The Edge checks judge only where it applies.
    hybrid: Literal["auto"] | bool = "auto"


class CmdletRunner(Protocol):
    """How the runtime runs a cmdlet on one of the target's endpoints (``windows`` or ``exchange``)."""

    def run(self, endpoint_kind: str, cmdlet: str, parameters: Mapping[str, Any] | None, shape: Shape,
            deadline: Deadline, accept_error_ids: Sequence[str]) -> CmdletAnswer: ...

    def where(self, endpoint_kind: str) -> str:
        """The endpoint as error messages name it (host, port, path, configuration)."""
        ...


SELECT = "select-object"  # the one cmdlet besides Get-/Test- ones a collector may declare: it only selects
SettingsT = TypeVar("SettingsT", bound=CollectorSettings)
StateT = TypeVar("StateT")


@dataclass
class CollectContext(Generic[SettingsT, StateT]):
    """Everything one run of one job may use."""

    target: TargetInfo
    settings: SettingsT
    state: StateT  # survives between runs of this job (cursors, counters, watchers)
    deadline: Deadline
    runner: CmdletRunner
    log: logging.LoggerAdapter
    estate: Estate = field(default_factory=Estate)
    facts: FactsBoard = field(default_factory=FactsBoard)
    # How long this job's data is shown after its last success: what a fact it posts stays good for.
    fact_lifetime: float = 0.0
    # (endpoint kind, cmdlet) pairs the collector declared; a call outside them is refused, so the
    # JEA role capability generated from the declarations (exporter/jea.py) is never short of one.
    declared_cmdlets: frozenset[tuple[str, str]] | None = None
    # cmdlet (lower case) -> the parameters the collector declared for it; calls are checked against it.
    declared_parameters: Mapping[str, ParameterPolicy] | None = None

    def where(self, endpoint_kind: str) -> str:
        return self.runner.where(endpoint_kind)

    def post(self, fact: Fact[T], value: T) -> None:
        self.facts.post(fact, value, self.fact_lifetime)

    def run(
        self,
        endpoint_kind: str,
        cmdlet: str,
        parameters: Mapping[str, Any] | None,
        shape: Shape,
        accept_error_ids: Sequence[str] = (),
    ) -> CmdletAnswer:
        if self.declared_cmdlets is not None and (endpoint_kind, cmdlet.lower()) not in self.declared_cmdlets:
            raise CollectError(ErrorKind.COMMAND, self.target.host,
                               f"{cmdlet} on the {endpoint_kind} endpoint is not among the collector's declared cmdlets")
        if shape.select and self.declared_cmdlets is not None and (endpoint_kind, SELECT) not in self.declared_cmdlets:
            raise CollectError(ErrorKind.COMMAND, self.target.host,
                               f"{cmdlet} | Select-Object: Select-Object is not among the collector's declared cmdlets")
        if self.declared_parameters is not None and cmdlet.lower() in self.declared_parameters:
            problem = problem_with(cmdlet, parameters, self.declared_parameters[cmdlet.lower()])
            if problem:
                raise CollectError(ErrorKind.COMMAND, self.target.host, problem)
        return self.runner.run(endpoint_kind, cmdlet, parameters, shape, self.deadline, accept_error_ids)


@dataclass
class NoState:
    """The state of a collector that remembers nothing between runs."""


class Collector(Generic[SettingsT, StateT]):
    """Base class; subclasses set the class attributes and implement :meth:`collect`.

    The registry holds the classes; the runtime makes one instance per exporter, so nothing a
    collector keeps on ``self`` is shared between two exporters in one process.
    """

    name: ClassVar[str]
    roles: ClassVar[frozenset[str]]
    settings_model: ClassVar[type[CollectorSettings]] = CollectorSettings
    # The per-job state: a class whose no-argument call gives a fresh state.
    state_model: ClassVar[type[Any]] = NoState
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    # Every cmdlet the collector may call, by endpoint kind: the source of the JEA role capability.
    cmdlets: ClassVar[tuple[tuple[str, str], ...]] = ()
    # Per cmdlet, the parameters it is called with and their allowed values (helpers.cmdlet_policy):
    # the source of the JEA role capability's parameter restrictions. A cmdlet left out is unrestricted.
    cmdlet_parameters: ClassVar[Mapping[str, ParameterPolicy]] = {}
    # Facts crossing targets, by the role of the target a job runs on: what its jobs post on the
    # board and what they read from it. A sharded exporter plans with these (exporter.sharding).
    posts_facts: ClassVar[Mapping[str, tuple[Fact[Any], ...]]] = {}
    reads_facts: ClassVar[Mapping[str, tuple[Fact[Any], ...]]] = {}

    @classmethod
    def facts_posted(cls, roles: Iterable[str]) -> frozenset[str]:
        """Names of the facts a job of this collector posts on a target with ``roles``."""
        return frozenset(fact.name for role in roles for fact in cls.posts_facts.get(role, ()))

    @classmethod
    def facts_read(cls, roles: Iterable[str], settings: Any) -> frozenset[str]:
        """Names of the facts a job with these settings reads on a target with ``roles``."""
        return frozenset(fact.name for role in roles for fact in cls.reads_facts.get(role, ()))

    def post_facts(self, ctx: CollectContext[SettingsT, StateT]) -> None:
        """Only post this job's facts, judging and exporting nothing: a shard reads a fact its own
        jobs need from a target another shard polls. By default, a whole run whose samples are
        dropped; a collector whose facts take fewer calls than its run overrides this."""
        self.collect(ctx)

    @classmethod
    def declared_cmdlets(cls) -> frozenset[tuple[str, str]]:
        return frozenset((endpoint, cmdlet.lower()) for endpoint, cmdlet in cls.cmdlets)

    @classmethod
    def declared_parameters(cls) -> dict[str, ParameterPolicy]:
        return {cmdlet.lower(): policy for cmdlet, policy in cls.cmdlet_parameters.items()}

    def new_state(self) -> StateT:
        state: StateT = self.state_model()
        return state

    def collect(self, ctx: CollectContext[SettingsT, StateT]) -> list[Sample]:
        raise NotImplementedError

    def close(self, state: StateT) -> None:
        """Release what a job keeps in its state (file watchers); called once when the job stops."""
