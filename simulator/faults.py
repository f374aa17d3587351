"""Fault injection: what can go wrong with one simulated host, switchable live.

Several faults can be active on a host at once (e.g. ``latency`` plus ``non_terminating_error``);
setting a fault of a kind already active replaces it.

- ``latency``: ``latency_ms`` added before every answer, and ``open_latency_ms`` more when a shell is
  created (real servers take seconds to start a PowerShell host and load the Lync module).
- ``refuse``: the host's listening socket is closed (connection refused) while its port stays held
  (simulator/transport.py); clearing re-binds the port.
- ``http_401``: every request is refused with 401 (as with a wrong password).
- ``http_500``: every request gets HTTP 500 with a WSMan fault body, as Windows sends.
- ``hang``: requests are read and never answered until the fault is cleared or the simulator stops.
- ``malformed``: Receive responses carry a corrupt PSRP fragment (the client's PSRP parser fails).
- ``malformed_soap``: every answer is HTTP 200 with a body that is not XML.
- ``huge``: every answer is HTTP 200, chunked, a SOAP envelope that never closes, ``size_mb`` MiB long
  (default 4096), generated as it is written (never held in memory). ``bytes_sent``/``streams_open``
  in its description say how much really left the simulator, to prove a client stopped reading.
- ``non_terminating_error``: the cmdlet writes an ErrorRecord and still completes (``output``: still
  write its objects too, default true).
- ``terminating_error``: the pipeline ends Failed with an ErrorRecord.
The two ``*_error`` faults take an optional ``cmdlet`` name to hit only that cmdlet.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Iterator

KINDS = (
    "latency",
    "refuse",
    "http_401",
    "http_500",
    "hang",
    "malformed",
    "malformed_soap",
    "huge",
    "non_terminating_error",
    "terminating_error",
)
_COMMAND_FAULTS = ("non_terminating_error", "terminating_error")
HUGE_DEFAULT_MB = 4096
_HUGE_PIECE = 64 * 1024
_HUGE_HEAD = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" '
              b'xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell"><s:Header/><s:Body>'
              b'<rsp:ReceiveResponse><rsp:Stream Name="stdout">')


class StreamCounter:
    """Bytes a ``huge`` fault really wrote to clients, and how many such answers are still being written."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.bytes_sent = 0
        self.streams_open = 0
        self.streams = 0  # answers started, ended or not

    def opened(self) -> None:
        with self._lock:
            self.streams_open += 1
            self.streams += 1

    def closed(self) -> None:
        with self._lock:
            self.streams_open -= 1

    def add(self, count: int) -> None:
        with self._lock:
            self.bytes_sent += count


def huge_body(total: int) -> Iterator[bytes]:
    """``total`` bytes of an endless-looking SOAP answer, piece by piece; only one piece ever exists."""
    yield _HUGE_HEAD
    filler = b"A" * _HUGE_PIECE
    left = total - len(_HUGE_HEAD)
    while left > 0:
        yield filler if left >= _HUGE_PIECE else filler[:left]
        left -= _HUGE_PIECE


class FaultError(ValueError):
    """A fault request that makes no sense; the message says which part."""


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    latency_ms: int = 0
    open_latency_ms: int = 0
    cmdlet: str | None = None
    output: bool = True
    size_mb: int = HUGE_DEFAULT_MB
    counter: StreamCounter = dataclasses.field(default_factory=StreamCounter, compare=False, repr=False)

    def describe(self) -> dict[str, Any]:
        data: dict[str, Any] = {"fault": self.kind}
        if self.kind == "huge":
            data.update(size_mb=self.size_mb, bytes_sent=self.counter.bytes_sent,
                        streams_open=self.counter.streams_open, streams=self.counter.streams)
        if self.kind == "latency":
            data["latency_ms"] = self.latency_ms
            if self.open_latency_ms:
                data["open_latency_ms"] = self.open_latency_ms
        if self.kind in _COMMAND_FAULTS:
            data["cmdlet"] = self.cmdlet
            if self.kind == "non_terminating_error":
                data["output"] = self.output
        return data


def make_fault(kind: str, **options: Any) -> Fault:
    if kind not in KINDS:
        raise FaultError(f"unknown fault {kind!r}; known: {', '.join(KINDS)}")
    allowed = {"latency": {"latency_ms", "open_latency_ms"}, "non_terminating_error": {"cmdlet", "output"},
               "terminating_error": {"cmdlet"}, "huge": {"size_mb"}}.get(kind, set())
    given = {k for k, v in options.items() if v is not None}
    unexpected = given - allowed
    if unexpected:
        raise FaultError(f"fault {kind!r} takes no option {sorted(unexpected)[0]!r}"
                         + (f" (options: {', '.join(sorted(allowed))})" if allowed else ""))
    latency = options.get("latency_ms")
    if kind == "latency":
        if latency is None:
            latency = 100
        if isinstance(latency, bool) or not isinstance(latency, (int, float)) or latency < 0:
            raise FaultError(f"latency_ms must be a number >= 0, got {latency!r}")
    open_latency = options.get("open_latency_ms") or 0
    if isinstance(open_latency, bool) or not isinstance(open_latency, (int, float)) or open_latency < 0:
        raise FaultError(f"open_latency_ms must be a number >= 0, got {open_latency!r}")
    cmdlet = options.get("cmdlet")
    if cmdlet is not None and (not isinstance(cmdlet, str) or not cmdlet.strip()):
        raise FaultError(f"cmdlet must be a cmdlet name, got {cmdlet!r}")
    output = options.get("output")
    output = True if output is None else output
    if not isinstance(output, bool):
        raise FaultError(f"output must be true or false, got {output!r}")
    size_mb = options.get("size_mb")
    size_mb = HUGE_DEFAULT_MB if size_mb is None else size_mb
    if isinstance(size_mb, bool) or not isinstance(size_mb, int) or size_mb < 1:
        raise FaultError(f"size_mb must be a whole number >= 1, got {size_mb!r}")
    return Fault(kind, int(latency or 0), int(open_latency), cmdlet, output, size_mb)


class FaultSet:
    """The active faults of one host; waiters on ``hang`` are woken when it changes."""

    def __init__(self) -> None:
        self._faults: dict[str, Fault] = {}
        self._changed = threading.Condition()

    def set(self, fault: Fault) -> None:
        with self._changed:
            self._faults[fault.kind] = fault
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._faults.clear()
            self._changed.notify_all()

    def active(self) -> dict[str, Fault]:
        with self._changed:
            return dict(self._faults)

    def has(self, kind: str) -> bool:
        with self._changed:
            return kind in self._faults

    def latency_seconds(self) -> float:
        fault = self.active().get("latency")
        return fault.latency_ms / 1000.0 if fault else 0.0

    def open_latency_seconds(self) -> float:
        fault = self.active().get("latency")
        return fault.open_latency_ms / 1000.0 if fault else 0.0

    def command_fault(self, cmdlet: str) -> Fault | None:
        """The *_error fault that applies to this cmdlet, terminating first."""
        active = self.active()
        for kind in ("terminating_error", "non_terminating_error"):
            fault = active.get(kind)
            if fault and (fault.cmdlet is None or fault.cmdlet.lower() == cmdlet.lower()):
                return fault
        return None

    def wait_while(self, kind: str, stopping: threading.Event) -> None:
        """Block while fault ``kind`` is active (a hung request), until cleared or stopping."""
        with self._changed:
            while kind in self._faults and not stopping.is_set():
                self._changed.wait(0.25)

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()
