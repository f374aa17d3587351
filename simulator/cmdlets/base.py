"""Cmdlet declarations and PowerShell-style parameter binding.

A handler module declares each cmdlet with ``@cmdlet(...)``: its name, .NET class (which appears in
FullyQualifiedErrorIds), family (where it is available) and parameters. Binding follows PowerShell:
case-insensitive names, unique prefixes, aliases, positional arguments, switches, mandatory
parameters and the common parameters; mistakes raise the ParameterBindingException PowerShell
raises, as a terminating error.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

from simulator import errors
from simulator.estate import HostView

SWITCH, STRING, STRINGS, INT, HASHTABLE, ANY = "switch", "string", "strings", "int", "hashtable", "any"


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    kind: str = STRING
    mandatory: bool = False
    position: int | None = None
    aliases: tuple[str, ...] = ()


# Accepted by every cmdlet. Only ErrorAction changes behaviour here (see Output).
COMMON_PARAMS = (
    Param("Verbose", SWITCH, aliases=("vb",)),
    Param("Debug", SWITCH, aliases=("db",)),
    Param("ErrorAction", STRING, aliases=("ea",)),
    Param("WarningAction", STRING, aliases=("wa",)),
    Param("InformationAction", STRING, aliases=("infa",)),
    Param("ErrorVariable", STRING, aliases=("ev",)),
    Param("WarningVariable", STRING, aliases=("wv",)),
    Param("InformationVariable", STRING, aliases=("iv",)),
    Param("OutVariable", STRING, aliases=("ov",)),
    Param("OutBuffer", INT, aliases=("ob",)),
    Param("PipelineVariable", STRING, aliases=("pv",)),
)


class Output:
    """Where a handler writes: objects, non-terminating errors and warnings.

    The session provides the implementation (it owns the PSRP pipeline); ``-ErrorAction`` is applied
    here so every cmdlet honours it the same way.
    """

    def __init__(self, error_action: str = "Continue") -> None:
        self.error_action = error_action.lower()

    def write(self, obj: Any) -> None:
        raise NotImplementedError

    def warning(self, message: str) -> None:
        raise NotImplementedError

    def _error(self, spec: errors.ErrorSpec) -> None:
        raise NotImplementedError

    def error(self, spec: errors.ErrorSpec) -> None:
        if self.error_action in ("silentlycontinue", "ignore"):
            return
        if self.error_action == "stop":
            raise errors.TerminatingError(spec)
        self._error(spec)


@dataclasses.dataclass
class Invocation:
    cmdlet: Cmdlet
    params: dict[str, Any]
    view: HostView
    out: Output
    # What the previous command of a pipeline wrote (``X | Select-Object``); None when first.
    input: list[Any] | None = None

    def has(self, name: str) -> bool:
        return name in self.params

    def get(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)


Availability = Callable[[HostView], bool]


@dataclasses.dataclass(frozen=True)
class Cmdlet:
    name: str
    dotnet_class: str
    family: str  # "windows" (/wsman), "lync" (/wsman on Lync servers), "exchange" (/PowerShell)
    params: tuple[Param, ...]
    handler: Callable[[Invocation], None]
    available: Availability | None = None  # e.g. WebAdministration only where IIS is installed

    def bind(self, arguments: list[tuple[str | None, Any]]) -> dict[str, Any]:
        return _bind(self, arguments)

    def binding_error(self, error_id: str, message: str, parameter: str = "") -> errors.TerminatingError:
        return errors.TerminatingError(
            errors.parameter_binding(self.name, self.dotnet_class, error_id, message, parameter)
        )


REGISTRY: dict[str, Cmdlet] = {}


def cmdlet(
    name: str,
    dotnet_class: str,
    family: str,
    params: Iterable[Param] = (),
    available: Availability | None = None,
) -> Callable[[Callable[[Invocation], None]], Callable[[Invocation], None]]:
    """Register a handler as the implementation of cmdlet ``name``."""

    def register(handler: Callable[[Invocation], None]) -> Callable[[Invocation], None]:
        REGISTRY[name.lower()] = Cmdlet(name, dotnet_class, family, tuple(params), handler, available)
        return handler

    return register


# ---------------------------------------------------------------- binding


def plain(value: Any) -> Any:
    """psrpcore's PS* wrappers to plain Python (PSString -> str, PSList -> list, PSDict -> dict...)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, dt.datetime):
        return dt.datetime(
            value.year, value.month, value.day, value.hour, value.minute, value.second, value.microsecond, value.tzinfo
        )
    if isinstance(value, str):
        return str(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, dict):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def _resolve_name(cmd: Cmdlet, given: str) -> Param:
    every = cmd.params + COMMON_PARAMS
    lowered = given.lower().lstrip("-")
    for param in every:
        if lowered == param.name.lower() or lowered in (a.lower() for a in param.aliases):
            return param
    matches = [p for p in every if p.name.lower().startswith(lowered)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        names = " ".join(f"-{p.name}" for p in matches)
        raise cmd.binding_error(
            "AmbiguousParameter",
            f"Parameter cannot be processed because the parameter name '{given}' is ambiguous. "
            f"Possible matches include: {names}.",
            given,
        )
    raise cmd.binding_error(
        "NamedParameterNotFound", f"A parameter cannot be found that matches parameter name '{given}'.", given
    )


def _convert(cmd: Cmdlet, param: Param, value: Any) -> Any:
    value = plain(value)

    def cannot(target: str) -> errors.TerminatingError:
        return cmd.binding_error(
            "CannotConvertArgumentNoMessage",
            f"Cannot bind parameter '{param.name}'. Cannot convert value \"{value}\" to type \"{target}\".",
            param.name,
        )

    if param.kind == SWITCH:
        if value is None or value is True:
            return True
        if value is False:
            return False
        raise cannot("System.Management.Automation.SwitchParameter")
    if param.kind == INT:
        if isinstance(value, bool):
            raise cannot("System.Int64")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise cannot("System.Int64") from None
    if param.kind == STRING:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            return str(value)
        raise cannot("System.String")
    if param.kind == STRINGS:
        values = value if isinstance(value, list) else [value]
        if all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in values):
            return [str(v) for v in values]
        raise cannot("System.String[]")
    if param.kind == HASHTABLE:
        if isinstance(value, dict):
            return value
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            return value[0] if len(value) == 1 else value
        raise cannot("System.Collections.Hashtable[]")
    return value


def _bind(cmd: Cmdlet, arguments: list[tuple[str | None, Any]]) -> dict[str, Any]:
    bound: dict[str, Any] = {}
    positional: list[Any] = []
    for name, value in arguments:
        if name is None:
            positional.append(value)
            continue
        param = _resolve_name(cmd, name)
        if param.name in bound:
            raise cmd.binding_error(
                "ParameterAlreadyBound",
                f"Cannot bind parameter because parameter '{param.name}' is specified more than once. To provide "
                "multiple values to parameters that can accept multiple values, use the array syntax.",
                param.name,
            )
        bound[param.name] = _convert(cmd, param, value)
    slots = sorted((p for p in cmd.params if p.position is not None), key=lambda p: p.position)
    slots = [p for p in slots if p.name not in bound]
    for value in positional:
        if not slots:
            raise cmd.binding_error(
                "PositionalParameterNotFound",
                f"A positional parameter cannot be found that accepts argument '{plain(value)}'.",
            )
        param = slots.pop(0)
        bound[param.name] = _convert(cmd, param, value)
    missing = [p.name for p in cmd.params if p.mandatory and p.name not in bound]
    if missing:
        raise cmd.binding_error(
            "MissingMandatoryParameter",
            f"Cannot process command because of one or more missing mandatory parameters: {' '.join(missing)}.",
            missing[0],
        )
    return bound


def exclusive(inv: Invocation, *groups: Iterable[str]) -> None:
    """Parameters of different parameter sets used together: PowerShell's AmbiguousParameterSet."""
    used = [g for g in (tuple(g) for g in groups) if any(inv.has(p) for p in g)]
    if len(used) > 1:
        raise inv.cmdlet.binding_error(
            "AmbiguousParameterSet", "Parameter set cannot be resolved using the specified named parameters."
        )
