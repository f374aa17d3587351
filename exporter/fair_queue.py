"""Queues that are fair between clients: first in, first out for each client, round robin between them.

A client that sends a hundred requests at once (a password-guessing flood, a slowloris) gets its turn
once per round like every other client, so Prometheus, one request per scrape, waits behind at most
one request of each other client instead of behind the whole flood.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

__all__ = ["RoundRobinQueue", "FairLimiter"]

T = TypeVar("T")


class RoundRobinQueue(Generic[T]):
    """A blocking queue of items filed under a key (the client's address); ``get`` takes the oldest
    item of the key whose turn it is. ``close`` wakes every waiting ``get`` with None."""

    def __init__(self) -> None:
        self._lanes: OrderedDict[Hashable, deque[T]] = OrderedDict()
        self._ready = threading.Condition()
        self._count = 0
        self._closed = False

    def put(self, key: Hashable, item: T) -> None:
        with self._ready:
            self._lanes.setdefault(key, deque()).append(item)
            self._count += 1
            self._ready.notify()

    def get(self, timeout: float | None = None) -> T | None:
        """The next item, or None once closed (or after ``timeout`` seconds without one)."""
        with self._ready:
            if not self._ready.wait_for(lambda: self._count or self._closed, timeout) or self._closed:
                return None
            return self._pop()

    def take_nowait(self) -> T | None:
        with self._ready:
            return self._pop() if self._count else None

    def close(self) -> None:
        with self._ready:
            self._closed = True
            self._ready.notify_all()

    def __len__(self) -> int:
        return self._count

    def _pop(self) -> T:
        key, lane = next(iter(self._lanes.items()))
        item = lane.popleft()
        self._count -= 1
        if lane:
            self._lanes.move_to_end(key)  # this key had its turn: to the back of the round
        else:
            del self._lanes[key]
        return item


class FairLimiter:
    """At most ``slots`` holders at a time; when all are taken, waiters are let in round robin by key.

    A released slot passes straight to the next waiter, so a newcomer cannot overtake the queue.
    """

    def __init__(self, slots: int) -> None:
        if slots < 1:
            raise ValueError("a limiter needs at least one slot")
        self._lock = threading.Lock()
        self._free = slots
        self._waiting: RoundRobinQueue[threading.Event] = RoundRobinQueue()

    @contextmanager
    def slot(self, key: Hashable) -> Iterator[None]:
        self._acquire(key)
        try:
            yield
        finally:
            self._release()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def _acquire(self, key: Hashable) -> None:
        with self._lock:
            if self._free and not len(self._waiting):
                self._free -= 1
                return
            turn = threading.Event()
            self._waiting.put(key, turn)
        turn.wait()  # set by _release, which handed this waiter its slot

    def _release(self) -> None:
        with self._lock:
            turn = self._waiting.take_nowait()
            if turn is None:
                self._free += 1
            else:
                turn.set()
