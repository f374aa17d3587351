"""PowerShell remoting over pypsrp, by the design's remoting rules.

- Cmdlets with parameters only, never script text: Exchange's endpoint runs in no-language
  mode, JEA endpoints allow named cmdlets only, and nothing from configuration or from a server's
  answer can become code.
- One RunspacePool per host and endpoint, reused across runs. Opening a pool costs seconds on real
  servers; a pool found gone is reopened once. A failed call drops its pool; calls on other lanes
  finish on it, and the last one out closes it. Where the transport allows it the pool runs up to
  ``MAX_LANES`` pipelines at once, one connection each (collectors.sources.wsman_client), else one.
- A pipeline costs Command + Receive: no terminate Signal after it ends (collectors.sources.pipeline_call).
- Every call has a deadline: pypsrp's ``invoke()`` has none, so we poll with a timeout and stop.
  Every HTTP request of a call ends by it too (collectors.sources.request_deadline): a call abandoned
  at its deadline gives its lane, or the lock of the pool it was opening, back within a second.
- Failures are typed (:class:`ErrorKind`); messages name host and cause and never a secret.
- No answer is read past :data:`~collectors.sources.response_cap.MAX_RESPONSE_BYTES`: pypsrp reads every
  HTTP body whole into memory, so a lying server could otherwise make the exporter allocate gigabytes.
- Kerberos asks for ``HTTP/<host>`` (what Windows' own WinRM client asks for; AD maps it to the
  computer's HOST SPN), ``<host>`` being the URL's host unless ``spn_hostname`` says otherwise. A
  credential's keys may come from a keytab: the exporter gets its own tickets into a cache it owns (in
  memory unless told a path) and renews them before every run that would otherwise find them within
  minutes of expiry, so no run fails because a ticket ran out between two runs. Authentication
  failures (the KDC's and the server's) become ``kind=auth`` with what the operator should fix.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from pypsrp.exceptions import WSManFaultError
from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from collectors.contract import (
    CmdletAnswer,
    CollectError,
    Deadline,
    ErrorKind,
    ErrorRecordInfo,
    Shape,
    ShapeError,
)
from collectors.sources import pypsrp_parsing
from collectors.sources.kerberos import explain_auth_failure, tickets_for
from collectors.sources.normalize import convert_all
from collectors.sources.pipeline_call import run_pipeline
from collectors.sources.remoting_failures import (
    WSMAN_ACCESS_DENIED,
    WSMAN_OPERATION_TIMEOUT,
    WSMAN_SHELL_NOT_FOUND,
    classify_failure,
)
from collectors.sources.request_deadline import requests_end_by, requests_end_within
from collectors.sources.response_cap import AnswerTally, release_memory
from collectors.sources.wsman_client import (
    close_idle_connections,
    lanes_for,
    make_thread_safe,
    open_wsman,
)

__all__ = ["EndpointSpec", "RemoteSession", "SessionPool", "WSMAN_ACCESS_DENIED", "WSMAN_OPERATION_TIMEOUT",
           "WSMAN_SHELL_NOT_FOUND"]

log = logging.getLogger(__name__)

# Every answer pypsrp parses is parsed within bounds: no DTD or entity, bounded depth and elements.
pypsrp_parsing.install()

# Shells we open idle out on the server if we vanish (a crash, a dropped pool).
SHELL_IDLE_TIMEOUT_SECONDS = 600
# How long closing a session waits for a run in flight before leaving the pool to it: a run on a
# healthy host ends within it (then the pool is closed politely); one on a hung host does not.
CLOSE_WAIT_SECONDS = 2.0
# The most closing every session may take at shutdown: the rest of a stop fits Docker's 10 s grace.
CLOSE_ALL_SECONDS = 3.0
# What deleting a remote shell may take when a session closes politely.
POLITE_CLOSE_SECONDS = 2.0


@dataclass(frozen=True)
class EndpointSpec:
    """Where and how to reach one PowerShell endpoint of one host."""

    url: str
    configuration: str
    username: str
    password: str = field(repr=False)
    auth: str = "negotiate"
    tls_verify: bool = True
    ca_file: str | None = None
    encryption: str = "auto"
    keytab_file: str | None = None  # Kerberos keys of ``username`` (the principal) instead of a password
    ticket_cache: str | None = None  # with a keytab: where tickets are kept; alone: an existing cache ("env")
    spn_hostname: str | None = None  # the host part of the SPN, when not the URL's host
    spn_service: str = "HTTP"

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.url, self.configuration, self.username)

    @property
    def where(self) -> str:
        parsed = urllib.parse.urlsplit(self.url)
        return f"{parsed.hostname}:{parsed.port or ''}{parsed.path} ({self.configuration})"


class RemoteSession:
    """One reusable RunspacePool on one endpoint; up to ``lanes`` invocations at once on it."""

    def __init__(self, spec: EndpointSpec) -> None:
        self.spec = spec
        self.lanes = lanes_for(spec.auth, spec.encryption)
        self._slots = threading.BoundedSemaphore(self.lanes)
        self._state = threading.Condition()  # guards the fields below; notified when a run ends
        self._opening = threading.Lock()  # one pool opens at a time; the other lanes wait for it
        self._wsman: WSMan | None = None
        self._pool: RunspacePool | None = None
        self._in_flight = 0  # runs holding a lane
        # Runs on each pool (by id), and the pools dropped while runs were still on them: a dropped pool
        # is closed by the last run to leave it, never under a run.
        self._users: dict[int, int] = {}
        self._retired: dict[int, tuple[RunspacePool, WSMan | None]] = {}
        self.pools_opened = 0
        self._secrets = tuple(s for s in (spec.password,) if s)
        self._answers = AnswerTally()  # did a run read a large answer (its memory is given back after it)
        # Set by close(): a run still in flight at shutdown (abandoned past its deadline) must not
        # open a new pool on the server after the exporter closed the old one.
        self._closed = False
        self._left_to_run = False  # set by close() when runs held the session too long: the last drops the pool

    # --- public -------------------------------------------------------------------------------
    def run(
        self,
        cmdlet: str,
        parameters: Mapping[str, Any] | None,
        shape: Shape,
        deadline: Deadline,
        *,
        accept_error_ids: Sequence[str] = (),
    ) -> CmdletAnswer:
        """Run one cmdlet and return its output converted by ``shape``.

        Non-terminating errors whose id is in ``accept_error_ids`` are returned in the answer
        (e.g. Get-WinEvent's NoMatchingEventsFound, which means "nothing", not "failed");
        any other error fails the call with kind ``command``.
        """
        if not self._slots.acquire(timeout=max(deadline.remaining(), 0)):
            raise CollectError(ErrorKind.TIMEOUT, self.spec.where, "other calls on this session did not finish in time")
        with self._state:
            self._in_flight += 1
        try:
            with requests_end_by(deadline):
                return self._run_in_lane(cmdlet, dict(parameters or {}), shape, deadline, tuple(accept_error_ids))
        finally:
            with self._state:
                self._in_flight -= 1
                last_out = not self._in_flight and self._left_to_run
                if not self._in_flight and self.lanes > 1 and self._wsman is not None:
                    # Under the lock: no call of this session starts while its connections are trimmed.
                    close_idle_connections(self._wsman)
                self._state.notify_all()
            if last_out:  # close() gave up waiting for the runs: nobody else will drop the pool
                self._drop_pool(None)
            self._slots.release()
            release_memory(self._answers)

    @property
    def pools_retired_open(self) -> int:
        """Dropped pools that runs still use; each is closed when its last run leaves it."""
        with self._state:
            return len(self._retired)

    @property
    def runs_in_flight(self) -> int:
        """Runs holding a lane now (an abandoned run too, until it ends by its deadline)."""
        with self._state:
            return self._in_flight

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Close the pool politely, bounded in time; used at shutdown. No pool opens after this. Runs in
        flight (on a hung host) hold the session: past ``wait`` the pool is left to them, to drop when they end."""
        with self._state:
            self._closed = True
            if not self._state.wait_for(lambda: not self._in_flight, timeout=wait):
                self._left_to_run = True
                log.debug("session busy with an abandoned run; not waiting to close it", extra={"where": self.spec.where})
                return
            pool, wsman = self._take_pool()
        self._close_quietly(pool, wsman, polite=True)

    # --- internals ----------------------------------------------------------------------------
    def _run_in_lane(
        self, cmdlet: str, parameters: dict[str, Any], shape: Shape, deadline: Deadline, accept: tuple[str, ...]
    ) -> CmdletAnswer:
        where = f"{self.spec.where} {cmdlet}"
        for attempt in (1, 2):
            pool: RunspacePool | None = None
            try:
                pool = self._ensure_pool(deadline)
                raw_output, errors, failed = run_pipeline(
                    pool, cmdlet, parameters, shape.selected if shape.select else None, deadline, where)
                break
            # A failed call drops the pool it used; one that got no pool (it did not open in time, or
            # failed to open) leaves alone the pool another lane may have opened meanwhile.
            except CollectError:
                self._drop_pool_used(pool)
                raise
            except WSManFaultError as exc:
                self._drop_pool_used(pool)
                if attempt == 1 and exc.code == WSMAN_SHELL_NOT_FOUND and not deadline.expired:
                    log.info("remote shell gone, reopening", extra={"where": where})
                    continue
                raise classify_failure(exc, self.spec, where, self._redact) from None
            except Exception as exc:
                self._drop_pool_used(pool)
                raise classify_failure(exc, self.spec, where, self._redact) from None
            finally:
                self._let_go(pool)
        unexpected = [e for e in errors if e.error_id not in accept]
        if failed or unexpected:
            first = (unexpected or errors or [ErrorRecordInfo("PipelineFailed", "", "pipeline failed")])[0]
            kind = "terminating" if failed else "non-terminating"
            raise CollectError(
                ErrorKind.COMMAND, where, f"{kind} error {first.error_id}: {self._redact(first.message)[:300]}"
            )
        try:
            objects = convert_all(shape, raw_output)
        except ShapeError as exc:
            raise CollectError(ErrorKind.SHAPE, where, self._redact(str(exc))) from None
        return CmdletAnswer(objects, [e for e in errors if e.error_id in accept])

    def _ensure_pool(self, deadline: Deadline) -> RunspacePool:
        if self.spec.keytab_file:
            # Before every run, not only when a pool opens: a dropped connection re-authenticates
            # with whatever the cache holds then.
            try:
                tickets_for(self.spec).fresh()
            except Exception as exc:  # noqa: BLE001 - krb5 errors: the KDC's answer, a bad keytab
                raise CollectError(ErrorKind.AUTH, self.spec.where,
                                   self._redact(explain_auth_failure(exc, self.spec, force=True) or "")) from None
        if not self._opening.acquire(timeout=max(deadline.remaining(), 0)):
            raise CollectError(ErrorKind.TIMEOUT, self.spec.where, "the pool did not open in time")
        try:
            with self._state:
                pool, wsman = self._pool, self._wsman
                closed = self._closed
                if pool is not None and wsman is not None:  # an open pool serves runs; close() closes it after
                    self._users[id(pool)] = self._users.get(id(pool), 0) + 1
                    return pool
            if closed:
                raise CollectError(ErrorKind.UNREACHABLE, self.spec.where,
                                   "the exporter is shutting down; session closed")
            wsman = open_wsman(self.spec, self._answers, self.lanes)
            pool = RunspacePool(wsman, configuration_name=self.spec.configuration,
                                idle_timeout=SHELL_IDLE_TIMEOUT_SECONDS, max_runspaces=self.lanes)
            if self.lanes > 1:
                make_thread_safe(pool)
            try:
                pool.open()
            except BaseException:
                self._close_quietly(None, wsman, polite=False)
                raise
            with self._state:
                self._pool, self._wsman = pool, wsman
                self._users[id(pool)] = 1
            self.pools_opened += 1
            log.debug("runspace pool opened", extra={"where": self.spec.where})
            return pool
        finally:
            self._opening.release()

    def _take_pool(self) -> tuple[RunspacePool | None, WSMan | None]:
        """Forget the pool (caller holds ``_state``)."""
        pool, wsman = self._pool, self._wsman
        self._pool = None
        self._wsman = None
        return pool, wsman

    def _drop_pool_used(self, used: RunspacePool | None) -> None:
        if used is not None:
            self._drop_pool(used)

    def _drop_pool(self, used: RunspacePool | None) -> None:
        """Drop the pool a failed call used (``None``: whatever pool there is); a pool another lane
        already reopened is kept. New runs open a fresh pool; a dropped pool that runs are still on is
        retired, and the last of them closes it (:meth:`_let_go`)."""
        with self._state:
            if used is not None and self._pool is not used:
                return
            pool, wsman = self._take_pool()
            if pool is not None and self._users.get(id(pool), 0) > 0:
                self._retired[id(pool)] = (pool, wsman)
                return
        self._close_quietly(pool, wsman, polite=False)

    def _let_go(self, pool: RunspacePool | None) -> None:
        """A run is done with ``pool``: the last run to leave a retired pool closes it."""
        if pool is None:
            return
        with self._state:
            left = self._users.get(id(pool), 0) - 1
            if left > 0:
                self._users[id(pool)] = left
                return
            self._users.pop(id(pool), None)
            retired = self._retired.pop(id(pool), None)
        if retired is not None:
            self._close_quietly(*retired, polite=False)

    def _close_quietly(self, pool: RunspacePool | None, wsman: WSMan | None, polite: bool) -> None:
        if pool is not None:
            log.debug("runspace pool %s", "closed" if polite else "dropped", extra={"where": self.spec.where})
        if pool is not None and polite:
            try:
                with requests_end_within(POLITE_CLOSE_SECONDS):  # fits a container stop's grace with the rest
                    pool.close()
            except Exception as exc:  # noqa: BLE001 - best effort at shutdown; the shell idles out
                log.debug("closing the remote shell failed: %s", type(exc).__name__, extra={"where": self.spec.where})
        if wsman is not None:
            try:
                wsman.close()
            except Exception:  # noqa: BLE001
                pass

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


class SessionPool:
    """Hands out one :class:`RemoteSession` per endpoint, reused across runs."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str, str], RemoteSession] = {}
        self._lock = threading.Lock()
        self._closed = False

    def get(self, spec: EndpointSpec) -> RemoteSession:
        with self._lock:
            session = self._sessions.get(spec.key)
            if session is None or session.spec != spec:
                session = RemoteSession(spec)
                if self._closed:  # after close_all: hand out a session that refuses to open
                    session._closed = True
                self._sessions[spec.key] = session
            return session

    def sessions(self) -> list[RemoteSession]:
        with self._lock:
            return list(self._sessions.values())

    def close_all(self, timeout: float = 10.0) -> None:
        """Close every pool in parallel, bounded: a hung server must not hold up shutdown."""
        with self._lock:
            self._closed = True
        _close_in_parallel(self.sessions(), min(timeout, CLOSE_ALL_SECONDS))

    def release_unused(self, wanted: Iterable[EndpointSpec], timeout: float = 10.0) -> int:
        """Close the sessions of endpoints no job asks for any more (a target removed, or changed
        address, account or password), so the servers' shells are not left open until they expire.
        Bounded in time, as at shutdown; returns how many were released."""
        keep = {spec.key: spec for spec in wanted}
        with self._lock:
            unused = [key for key, session in self._sessions.items() if keep.get(key) != session.spec]
            released = [self._sessions.pop(key) for key in unused]
        _close_in_parallel(released, timeout)
        return len(released)


def _close_in_parallel(sessions: list[RemoteSession], timeout: float) -> None:
    threads = [threading.Thread(target=session.close, daemon=True) for session in sessions]
    for thread in threads:
        thread.start()
    end = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(end - time.monotonic(), 0))
