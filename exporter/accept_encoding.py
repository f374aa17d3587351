"""Content-coding negotiation for ``/metrics`` (RFC 9110, section 12.5.3, Accept-Encoding).

Coding names are case-insensitive, each may carry a weight ``;q=`` from 0 to 1 where 0 means "not
acceptable", ``*`` stands for every coding not named, and ``x-gzip`` is to be taken as ``gzip``
(section 8.4.1.3). Prometheus sends ``Accept-Encoding: gzip``; curl sends nothing unless asked.
"""

from __future__ import annotations

__all__ = ["accepts_gzip"]


def accepts_gzip(header: str | None) -> bool:
    """True when the answer should be gzip-compressed: gzip is acceptable (weight above 0) and not
    weighted below an explicitly named identity. A malformed weight makes that element count as
    absent, never as a reason to fail the scrape."""
    if not header:
        return False
    weights: dict[str, float] = {}
    for element in header.split(","):
        coding, _, params = element.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        weight = _weight(params)
        if weight is not None:
            key = "gzip" if coding == "x-gzip" else coding
            weights[key] = max(weight, weights.get(key, 0.0))
    gzip = weights.get("gzip", weights.get("*", 0.0))
    identity = weights.get("identity")  # never named: acceptable, but with no weight of its own
    return gzip > 0 and (identity is None or gzip >= identity)


def _weight(params: str) -> float | None:
    """The q parameter's value (1 when absent), or None when it is not a valid qvalue."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() != "q":
            continue
        try:
            weight = float(value.strip())
        except ValueError:
            return None
        return weight if 0.0 <= weight <= 1.0 else None
    return 1.0
