"""A job's failures in the log the way an operator reads them: one line when a failure starts (or
changes kind), a reminder at most every ``remind_every`` seconds while it lasts, one line when it
recovers. A host that stays down therefore costs a line every few minutes, not one per run; the
metrics (``lync_owa_collector_up``, ``..._errors_total``) still count every run.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

# Long enough that a dead host is a handful of lines an hour; short enough that someone tailing the
# log still sees it is failing.
REMIND_EVERY_SECONDS = 600.0


class FailureLog:
    """Per job; ``failed`` after every failed run, ``succeeded`` after every successful one."""

    def __init__(self, log: logging.Logger | logging.LoggerAdapter, remind_every: float = REMIND_EVERY_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.remind_every = remind_every
        self.clock = clock
        self._lock = threading.Lock()  # an abandoned run and the next one may report at the same time
        self._kind: str | None = None  # the kind of the failure going on, None while healthy
        self._since = 0.0
        self._failed_runs = 0
        self._last_logged = 0.0
        self._unlogged = 0

    @property
    def failing(self) -> bool:
        return self._kind is not None

    def failed(self, kind: str, message: str) -> None:
        with self._lock:
            now = self.clock()
            if self._kind is None:
                self._since, self._failed_runs, self._unlogged = now, 0, 0
                line = f"collector run failed: kind={kind} {message}"
            elif kind != self._kind:
                line = f"collector run failed: kind={kind} (was {self._kind}) {message}"
            elif now - self._last_logged >= self.remind_every:
                line = (f"collector still failing: kind={kind}, {self._failed_runs + 1} failed runs in "
                        f"{now - self._since:.0f}s ({self._unlogged} not logged): {message}")
            else:
                line = None
            self._kind = kind
            self._failed_runs += 1
            if line is None:
                self._unlogged += 1
                return
            self._last_logged, self._unlogged = now, 0
        self.log.warning(line)

    def succeeded(self) -> None:
        with self._lock:
            if self._kind is None:
                return
            line = (f"collector recovered after {self._failed_runs} failed runs in "
                    f"{self.clock() - self._since:.0f}s (last failure kind={self._kind})")
            self._kind = None
        self.log.info(line)
