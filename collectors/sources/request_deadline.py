"""Every HTTP request a run makes ends by the run's deadline, so no lane or lock outlives the run.

pypsrp gives each request its own HTTP timeouts (a Receive: its WSMan OperationTimeout plus 2 s; the
others: the transport's read timeout) and retries a Receive whose answer did not come in time up to
five times, sleeping 2, 6, 14, 30 and 62 s in between (``WSMan.receive`` passes
``retries_on_read_timeout=5`` to ``_TransportHTTP.send``, pypsrp 0.9). So one Receive to a host that
stopped answering lived up to two minutes past its run's deadline, holding a lane of its pool or,
while it opened the pool, the lock every lane waits on: in the fault soak with four lanes, a healed
Exchange host stayed failing for 122 s (tests/integration/test_remoting_hung_lanes.py reproduces it).

Here the deadline of the run on the calling thread is kept per thread (the lanes of one pool share
its transport, so a timeout set on the transport would cut another lane's request), and each request
gets what is left of it as its total time (connect and read together), or is refused once it has
passed. pypsrp's retries are switched off where the transport is built
(collectors.sources.wsman_client): the next run opens a fresh pool instead.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from urllib3.util.timeout import Timeout

from collectors.contract import Deadline

_local = threading.local()


class DeadlinePassed(TimeoutError):
    """A request was about to start after its run's deadline (a TimeoutError: the run timed out)."""


@contextmanager
def requests_end_by(deadline: Deadline) -> Iterator[None]:
    """HTTP requests made on this thread inside the block end by ``deadline``."""
    previous = getattr(_local, "end", None)
    _local.end = deadline.at
    try:
        yield
    finally:
        _local.end = previous


@contextmanager
def requests_end_within(seconds: float) -> Iterator[None]:
    """HTTP requests made on this thread inside the block end within ``seconds`` from now, even past the
    run's deadline: the Signal that stops a pipeline after its deadline, a polite close at shutdown."""
    with requests_end_by(Deadline(seconds)):
        yield


def bounded(timeout: Any) -> Any:
    """The ``timeout`` a requests adapter was given, bounded by this thread's deadline, if any."""
    end = getattr(_local, "end", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise DeadlinePassed("the run's deadline passed before this request was sent")
    if isinstance(timeout, Timeout):
        connect, read = timeout.connect_timeout, timeout.read_timeout
    elif isinstance(timeout, tuple):
        connect, read = timeout
    else:
        connect = read = timeout
    return Timeout(connect=_at_most(connect, left), read=_at_most(read, left), total=left)


def _at_most(value: Any, left: float) -> float:
    return left if not isinstance(value, (int, float)) else min(float(value), left)
