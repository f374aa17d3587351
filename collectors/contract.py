"""The collector contract: everything a collector is given and everything it hands back.

Layers point one way (``tests/unit/test_layers.py`` enforces it)::

    collectors.helpers  <-  collectors.contract  <-  collectors.sources  <-  the checks  <-  registry  <-  exporter

This module is the contract. It imports nothing of the runtime (``exporter``) and nothing of the
sources: a collector declares its settings (a :class:`CollectorSettings` model), its per-job state,
its metrics (:class:`MetricSpec`) and the cmdlets it may call, and implements ``collect(ctx)``. The
context (:class:`CollectContext`) gives it the target as a :class:`TargetInfo` (name, host, roles;
never a credential), its typed settings and state, a deadline, a way to run cmdlets (the runtime's
:class:`CmdletRunner`) and the exporter's :class:`FactsBoard`, where jobs leave facts for other jobs.
A run returns samples or raises a typed :class:`CollectError`.
"""

from __future__ import annotations

import enum
import logging
import re
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import (
    Annotated,
    Any,
    ClassVar,
    Generic,
    Literal,
    Protocol,
    Sequence,
    TypeVar,
)

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictBool,
    ValidationInfo,
    field_validator,
)
from pydantic import Field as SettingField

from collectors.helpers.cmdlet_policy import ParameterPolicy, problem_with
from collectors.helpers.durations import format_duration, parse_duration
from collectors.helpers.values import yaml_type

METRIC_PREFIX = "lync_owa_"

# --- failures -------------------------------------------------------------------------------------


class ErrorKind(str, enum.Enum):
    AUTH = "auth"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    COMMAND = "command"
    SHAPE = "shape"


ERROR_KINDS: tuple[str, ...] = tuple(k.value for k in ErrorKind)


class CollectError(Exception):
    """A typed failure of one run: remote, local (folders, files) or network (DNS, TLS).

    ``str()`` is safe to log: it never carries a secret.
    """

    def __init__(self, kind: ErrorKind, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.kind = kind
        self.where = where
        self.message = message


class Deadline:
    """A point in monotonic time by which a run must be over."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0


# --- what a cmdlet answers ------------------------------------------------------------------------


class ShapeError(ValueError):
    """An answer did not have the shape a collector relies on."""


@dataclass(frozen=True)
class Field:
    """One property a collector reads, with the plain type it must have."""

    name: str
    kind: str = "any"  # str | bool | int | float | datetime | list | bytes | any
    required: bool = True  # the property must be present on the object
    nullable: bool = False  # a present property may be null


@dataclass(frozen=True)
class Shape:
    """What a collector expects each output object of one cmdlet to look like (applied by the source)."""

    cmdlet: str
    fields: tuple[Field, ...] = field(default_factory=tuple)
    # Each output object is the text of a file (``Get-Content -Raw``), handed over as {"Text": ...}.
    file_text: bool = False
    # Pipe the output through ``Select-Object -Property <the fields>``: for objects whose type table
    # sends less than a reader needs (an X509Certificate2 travels as RawData only). A collector using
    # it declares Select-Object on that endpoint too.
    select: bool = False

    @property
    def selected(self) -> list[str]:
        return [f.name for f in self.fields]


@dataclass(frozen=True)
class ErrorRecordInfo:
    """The parts of a PowerShell ErrorRecord a collector may act on."""

    fully_qualified_error_id: str
    category: str
    message: str

    @property
    def error_id(self) -> str:
        """The id without the command suffix: 'PathNotFound,Microsoft...GetItemCommand' -> 'PathNotFound'."""
        return self.fully_qualified_error_id.split(",", 1)[0]


@dataclass
class CmdletAnswer:
    objects: list[dict[str, Any]]
    errors: list[ErrorRecordInfo] = field(default_factory=list)

    def error_ids(self) -> set[str]:
        return {e.error_id for e in self.errors}


# --- settings -------------------------------------------------------------------------------------

# The configuration loader validates with ``context={SETTINGS_SOURCE: SOURCE_YAML, "base_dir": ...}``:
# in the file a duration must carry its unit ("30" could mean seconds or milliseconds), while code
# building settings directly may pass float seconds.
SETTINGS_SOURCE = "source"
SOURCE_YAML = "yaml"


def _duration_input(value: Any, info: ValidationInfo, *, allow_zero: bool) -> Any:
    if value is None:
        return None
    if isinstance(value, str):
        return parse_duration(value, allow_zero=allow_zero)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"must be a duration such as '30s', got {yaml_type(value)}")
    if isinstance(info.context, Mapping) and info.context.get(SETTINGS_SOURCE) == SOURCE_YAML:
        raise ValueError(f"duration {value!r} has no unit: write it as e.g. '{value}s'")
    return float(value)


def _positive_duration(value: Any, info: ValidationInfo) -> Any:
    return _duration_input(value, info, allow_zero=False)


def _non_negative_duration(value: Any, info: ValidationInfo) -> Any:
    return _duration_input(value, info, allow_zero=True)


Duration = Annotated[float, BeforeValidator(_positive_duration)]
NonNegativeDuration = Annotated[float, BeforeValidator(_non_negative_duration)]


class CollectorSettings(BaseModel):
    """Settings every collector has. Collectors subclass this to add their own keys.

    Durations are float seconds; in YAML they are Prometheus durations ("30s"). ``jitter`` left unset
    becomes 10% of the interval, at most 30 s. Subclasses keep ``extra="forbid"``: a misspelt key is
    an error, not a silently ignored setting.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: StrictBool = True
    interval: Duration = SettingField(default=60.0, gt=0)
    # validate_default so the cross-field checks below also run on defaults ("interval: 20s" alone
    # must fail against the 30 s default timeout); the string default goes through the duration parser.
    timeout: Duration = SettingField(default_factory=lambda: "30s", gt=0, validate_default=True)
    jitter: NonNegativeDuration | None = SettingField(default=None, validate_default=True)

    @field_validator("timeout")
    @classmethod
    def _timeout_below_interval(cls, timeout: float, info: ValidationInfo) -> float:
        interval = info.data.get("interval")
        if interval is not None and timeout >= interval:
            raise ValueError(
                f"timeout ({format_duration(timeout)}) must be shorter than interval ({format_duration(interval)}),"
                " or runs would overlap"
            )
        return timeout

    @field_validator("jitter")
    @classmethod
    def _jitter_default_and_bound(cls, jitter: float | None, info: ValidationInfo) -> float | None:
        interval = info.data.get("interval")
        if interval is None:  # interval itself was invalid and is reported already
            return jitter
        if jitter is None:
            return min(interval * 0.1, 30.0)
        if jitter >= interval:
            raise ValueError(
                f"jitter ({format_duration(jitter)}) must be shorter than interval ({format_duration(interval)})"
            )
        return jitter


# --- metrics --------------------------------------------------------------------------------------


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


# --- what a run is given --------------------------------------------------------------------------


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


T = TypeVar("T")


@dataclass(frozen=True)
class Fact(Generic[T]):
    """The name of one kind of fact on the board; the type parameter says what it holds."""

    name: str


@dataclass(frozen=True)
class Posted(Generic[T]):
    value: T
    fresh_until: float  # time.monotonic()


class FactsBoard:
    """Facts one job reads for others (the CMS copy of a hosting provider, the SipName UM servers).

    One board per exporter, owned by the runtime. A fact counts only while the job that posted it
    would still have its own data shown (its staleness bound): no job acts on old news.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._posted: dict[str, Posted[Any]] = {}

    def post(self, fact: Fact[T], value: T, lifetime: float) -> None:
        with self._changed:
            self._posted[fact.name] = Posted(value, time.monotonic() + lifetime)
            self._changed.notify_all()

    def fresh(self, fact: Fact[T]) -> Posted[T] | None:
        with self._changed:
            return self._fresh_locked(fact)

    def wait_for_fresh(self, fact: Fact[T], timeout: float) -> Posted[T] | None:
        with self._changed:
            self._changed.wait_for(lambda: self._fresh_locked(fact) is not None, timeout=max(timeout, 0.0))
            return self._fresh_locked(fact)

    def _fresh_locked(self, fact: Fact[T]) -> Posted[T] | None:
        posted = self._posted.get(fact.name)
        return posted if posted is not None and posted.fresh_until > time.monotonic() else None


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
