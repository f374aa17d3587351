"""How a run fails: a typed error of one kind, and the deadline it runs against."""

from __future__ import annotations

import enum
import time


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
