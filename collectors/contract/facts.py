"""Facts one job leaves for others, on a board the runtime owns."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

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
