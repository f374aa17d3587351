"""Which parameters, with which values, a collector may pass to a cmdlet.

A collector declares, per cmdlet, the parameters it passes and what their values may be. The runtime
refuses a call outside the declaration before anything is sent, and `exporter.jea` turns the
declarations into the JEA role capability's `Parameters` with `ValidateSet`/`ValidatePattern`, so the
endpoint on the server allows exactly what the exporter sends: e.g. `Get-Content` only on OWA's
web.config, `Get-ItemProperty` only on the two registry keys the checks read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Union


@dataclass(frozen=True)
class OneOf:
    """The value must be one of these strings (case-insensitive, as PowerShell compares)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Matching:
    """The whole value must match this regular expression (case-insensitive)."""

    pattern: str


# None: any value (configurable paths, XPath filters, switches).
Rule = Union[OneOf, Matching, None]
ParameterPolicy = Mapping[str, Rule]


def problem_with(cmdlet: str, parameters: Mapping[str, Any] | None, policy: ParameterPolicy) -> str | None:
    """Why this call breaks the policy, or None when it keeps to it."""
    allowed = {name.lower(): (name, rule) for name, rule in policy.items()}
    for name, value in (parameters or {}).items():
        if name.lower() not in allowed:
            return f"{cmdlet}: parameter -{name} is not among the collector's declared parameters"
        rule = allowed[name.lower()][1]
        if rule is None:
            continue
        if not isinstance(value, str):
            return f"{cmdlet}: parameter -{name} must be a string to be checked against its declaration"
        if isinstance(rule, OneOf) and value.lower() not in {v.lower() for v in rule.values}:
            return f"{cmdlet}: -{name} value is not one of the declared values"
        if isinstance(rule, Matching) and not re.fullmatch(rule.pattern, value, re.IGNORECASE):
            return f"{cmdlet}: -{name} value does not match the declared pattern"
    return None


def merge(rules: list[Rule]) -> Rule:
    """One rule allowing what each of several collectors' rules allows (for a shared cmdlet)."""
    if any(rule is None for rule in rules):
        return None
    one_ofs = [rule for rule in rules if isinstance(rule, OneOf)]
    if len(one_ofs) == len(rules):
        values: list[str] = []
        for one_of in one_ofs:
            values += [v for v in one_of.values if v.lower() not in {x.lower() for x in values}]
        return OneOf(tuple(values))
    alternatives = []
    for rule in rules:
        if isinstance(rule, OneOf):
            alternatives += [re.escape(v) for v in rule.values]
        elif isinstance(rule, Matching):
            alternatives.append(rule.pattern)
    return Matching("|".join(f"(?:{a})" for a in alternatives))
