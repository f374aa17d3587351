"""A cap on what one WSMan response body may make the exporter read.

pypsrp reads every HTTP body whole into memory, so a lying server could otherwise make the exporter
allocate gigabytes. The cap wraps the transport adapters of pypsrp's requests session; nothing of
pypsrp is replaced.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from typing import Any

import requests
from pypsrp.wsman import WSMan

from collectors.sources import request_deadline

# The most one WSMan response body may hold. WinRM packs output to the client's MaxEnvelopeSize
# (pypsrp asks for 150 KiB), so a real answer stays far below; past this the connection is dropped
# unread and the run fails with kind ``shape``. Counted after any content decoding (no gzip bomb).
MAX_RESPONSE_BYTES = 32 * 1024 * 1024
# An answer this large leaves memory that glibc keeps (below): the run that read it gives it back.
LARGE_ANSWER_BYTES = 4 * 1024 * 1024
RELEASE_AFTER_LARGE_ANSWERS = True  # off only in benchmarks/bench_memory_spike.py, to show the difference

log = logging.getLogger(__name__)


class AnswerTally:
    """Whether a session's transport read a large answer since the last look; one per session."""

    def __init__(self) -> None:
        self.large = False

    def take_large(self) -> bool:
        large, self.large = self.large, False
        return large


def _load_malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        return libc.malloc_trim if libc is not None else None
    except (OSError, AttributeError):  # not glibc (musl, Windows): nothing to trim
        return None


_malloc_trim = _load_malloc_trim()


def trim_heap() -> bool:
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``, every arena).

    After freeing a large block glibc raises its mmap threshold to that block's size (up to 32 MiB),
    so the next large answers are served from the heaps of the threads that read them, and their
    freed pages stay there, pinned by any small live block above them (a failed run's traceback,
    until the cyclic collector runs): RSS stayed at 330 MB after a spike of 32 MiB answers, and stays
    at 72 MB with this (benchmarks/bench_memory_spike.py, docs/reliability.md).
    """
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def release_memory(tally: AnswerTally) -> None:
    """After a run: if it read a large answer, return the freed memory to the system."""
    if tally.take_large() and RELEASE_AFTER_LARGE_ANSWERS and trim_heap():
        log.debug("large answer read; heap trimmed")


class ResponseTooLarge(Exception):
    """A server sent (or announced) a response body over the cap; its connection was dropped."""

    def __init__(self, host: str, limit: int) -> None:
        super().__init__(f"{host} sent an answer over the {limit // (1024 * 1024)} MiB cap on one WSMan response "
                         f"({limit} bytes); connection dropped unread")
        self.host = host
        self.limit = limit


class _CappedBody:
    """A urllib3 response whose body, as requests reads it (``stream``/``read``), stops at ``limit`` bytes.

    Everything else (status, headers, ``release_conn``, what cookie handling reads) is the wrapped one's.
    """

    def __init__(self, raw: Any, limit: int, host: str, tally: AnswerTally | None = None) -> None:
        self._raw = raw
        self._limit = limit
        self._host = host
        self._seen = 0
        self._tally = tally

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    # pypsrp binds Negotiate/Kerberos to the TLS channel (the server certificate's hash, which
    # Windows requires with CbtHardeningLevel=Strict) only when the response "is" urllib3's
    # HTTPResponse, read through ``_fp``: look like the wrapped response to isinstance().
    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        return type(self._raw)

    def _count(self, data: bytes) -> bytes:
        self._seen += len(data)
        if self._tally is not None and self._seen >= LARGE_ANSWER_BYTES:
            self._tally.large = True
        if self._seen > self._limit:
            self._raw.close()  # closes the socket: the rest of the body is never read
            raise ResponseTooLarge(self._host, self._limit)
        return data

    def stream(self, amt: int | None = 2**16, decode_content: bool | None = None):
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            yield self._count(chunk)

    def read(self, amt: int | None = None, *args: Any, **kwargs: Any) -> bytes:
        room = self._limit - self._seen + 1
        return self._count(self._raw.read(room if amt is None else min(amt, room), *args, **kwargs))


class _CappedAdapter(requests.adapters.BaseAdapter):
    """Wraps one of a session's transport adapters: no response body it delivers can pass the cap.

    A declared Content-Length over the cap fails at once; a chunked or lying body fails when the
    cap is reached. Responses name this adapter as their ``connection``, so the requests an auth
    handshake (Negotiate, CredSSP) re-sends through it are capped too.
    """

    def __init__(self, inner: requests.adapters.BaseAdapter, limit: int, host: str,
                 tally: AnswerTally | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.limit = limit
        self.host = host
        self.tally = tally

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        # Every request, an auth handshake's too, also ends by the deadline of the run that makes it.
        kwargs["timeout"] = request_deadline.bounded(kwargs.get("timeout"))
        response = self.inner.send(request, **kwargs)
        response.connection = self
        declared = (response.headers.get("Content-Length") or "").strip()
        if declared.isdigit() and int(declared) > self.limit:
            response.raw.close()
            raise ResponseTooLarge(self.host, self.limit)
        response.raw = _CappedBody(response.raw, self.limit, self.host, self.tally)
        return response

    def close(self) -> None:
        # urllib3 2's PoolManager.clear() only forgets its pools: their sockets close when a pool is
        # garbage-collected, and a failed run's traceback (a reference cycle) keeps the pool alive
        # until the cyclic collector runs. Close them now, so a dropped session holds no connection.
        managers = [getattr(self.inner, "poolmanager", None), *getattr(self.inner, "proxy_manager", {}).values()]
        for manager in managers:
            pools = getattr(manager, "pools", None)
            for key in pools.keys() if pools is not None else ():
                pool = pools.get(key)
                if pool is not None:
                    pool.close()
        self.inner.close()


def cap_response_bodies(wsman: WSMan, host: str, limit: int | None = None, tally: AnswerTally | None = None) -> None:
    """Cap every response body the transport of ``wsman`` will read at ``limit`` (MAX_RESPONSE_BYTES).

    pypsrp offers no hook into its requests session: it builds it inside its first ``send()``.
    So the session is built here, with the builder pypsrp would call (``_build_session``, the one
    private name used), and its adapters are wrapped; nothing of pypsrp is replaced.
    """
    transport = wsman.transport
    if transport.session is None:
        transport.session = transport._build_session()
    session = transport.session
    for prefix, adapter in list(session.adapters.items()):
        if not isinstance(adapter, _CappedAdapter):
            session.mount(prefix, _CappedAdapter(adapter, limit or MAX_RESPONSE_BYTES, host, tally))
