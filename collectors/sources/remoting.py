"""PowerShell remoting over pypsrp, by the design's remoting rules.

- Cmdlets with parameters only, never script text: Exchange's endpoint runs in no-language
  mode, JEA endpoints allow named cmdlets only, and nothing from configuration or from a server's
  answer can become code.
- One RunspacePool per host and endpoint, reused across runs, one invocation at a time on it.
  Opening a pool costs seconds on real servers; a pool found gone is reopened once.
- Every call has a deadline: pypsrp's ``invoke()`` has none, so we poll with a timeout and stop.
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
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import requests
from pypsrp.complex_objects import PSInvocationState
from pypsrp.exceptions import (
    AuthenticationError,
    WinRMError,
    WinRMTransportError,
    WSManFaultError,
)
from pypsrp.powershell import PowerShell, RunspacePool
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
from collectors.sources.kerberos import (
    explain_auth_failure,
    kerberos_identity,
    short_error,
    tickets_for,
)
from collectors.sources.normalize import convert_all
from collectors.sources.response_cap import (
    AnswerTally,
    ResponseTooLarge,
    cap_response_bodies,
    release_memory,
)
from collectors.sources.safe_xml import UnsafeXML

log = logging.getLogger(__name__)

# Every answer pypsrp parses is parsed within bounds: no DTD or entity, bounded depth and elements.
pypsrp_parsing.install()

# WSMan fault codes that matter to us.
WSMAN_OPERATION_TIMEOUT = 0x80338029
WSMAN_SHELL_NOT_FOUND = 0x8033805B  # ERROR_WSMAN_UNEXPECTED_SELECTORS: the shell is gone
WSMAN_ACCESS_DENIED = 5

# Shells we open idle out on the server if we vanish (a crash, a dropped pool).
SHELL_IDLE_TIMEOUT_SECONDS = 600
# How long closing a session waits for a run in flight before leaving the pool to it: a run on a
# healthy host ends within it (then the pool is closed politely); one on a hung host does not.
CLOSE_WAIT_SECONDS = 2.0
# The most closing every session may take at shutdown: the rest of a stop fits Docker's 10 s grace.
CLOSE_ALL_SECONDS = 3.0


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
    """One reusable RunspacePool on one endpoint; one invocation at a time."""

    def __init__(self, spec: EndpointSpec) -> None:
        self.spec = spec
        self._lock = threading.Lock()
        self._wsman: WSMan | None = None
        self._pool: RunspacePool | None = None
        self.pools_opened = 0
        self._secrets = tuple(s for s in (spec.password,) if s)
        self._answers = AnswerTally()  # did a run read a large answer (its memory is given back after it)
        # Set by close(): a run still in flight at shutdown (abandoned past its deadline) must not
        # open a new pool on the server after the exporter closed the old one.
        self._closed = False
        self._left_to_run = False  # set by close() when a run held the session too long: that run drops the pool

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
        if not self._lock.acquire(timeout=max(deadline.remaining(), 0)):
            raise CollectError(ErrorKind.TIMEOUT, self.spec.where, "another call on this session did not finish in time")
        try:
            return self._run_locked(cmdlet, dict(parameters or {}), shape, deadline, tuple(accept_error_ids))
        finally:
            if self._left_to_run:  # close() gave up waiting for this run: nobody else will drop the pool
                self._close_pool(polite=False)
            self._lock.release()
            release_memory(self._answers)

    def close(self, wait: float = CLOSE_WAIT_SECONDS) -> None:
        """Close the pool politely, bounded in time; used at shutdown. No pool opens after this. A run in
        flight (on a hung host) holds the session: past ``wait`` the pool is left to it, to drop when it ends."""
        self._closed = True
        if not self._lock.acquire(timeout=wait):
            self._left_to_run = True
            log.debug("session busy with an abandoned run; not waiting to close it", extra={"where": self.spec.where})
            return
        try:
            self._close_pool(polite=True)
        finally:
            self._lock.release()

    # --- internals ----------------------------------------------------------------------------
    def _run_locked(
        self, cmdlet: str, parameters: dict[str, Any], shape: Shape, deadline: Deadline, accept: tuple[str, ...]
    ) -> CmdletAnswer:
        where = f"{self.spec.where} {cmdlet}"
        for attempt in (1, 2):
            try:
                pool = self._ensure_pool(deadline)
                raw_output, errors, failed = self._invoke(pool, cmdlet, parameters, deadline,
                                                          shape.selected if shape.select else None)
                break
            except CollectError:
                self._close_pool(polite=False)
                raise
            except WSManFaultError as exc:
                self._close_pool(polite=False)
                if attempt == 1 and exc.code == WSMAN_SHELL_NOT_FOUND and not deadline.expired:
                    log.info("remote shell gone, reopening", extra={"where": where})
                    continue
                raise self._classify(exc, where) from None
            except Exception as exc:
                self._close_pool(polite=False)
                raise self._classify(exc, where) from None
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

    def _set_http_timeouts(self, deadline: Deadline) -> None:
        """Bound every HTTP request pypsrp makes without a timeout of its own by what is left."""
        assert self._wsman is not None
        left = max(deadline.remaining(), 0.5)
        transport = self._wsman.transport
        transport.connection_timeout = min(left, 10.0)
        transport.read_timeout = left

    def _ensure_pool(self, deadline: Deadline) -> RunspacePool:
        if self._closed and self._pool is None:  # an open pool serves the run in flight; close() closes it after
            raise CollectError(ErrorKind.UNREACHABLE, self.spec.where, "the exporter is shutting down; session closed")
        if self.spec.keytab_file:
            # Before every run, not only when a pool opens: a dropped connection re-authenticates
            # with whatever the cache holds then.
            try:
                tickets_for(self.spec).fresh()
            except Exception as exc:  # noqa: BLE001 - krb5 errors: the KDC's answer, a bad keytab
                raise CollectError(ErrorKind.AUTH, self.spec.where,
                                   self._redact(explain_auth_failure(exc, self.spec, force=True) or "")) from None
        if self._pool is not None:
            self._set_http_timeouts(deadline)
            return self._pool
        spec = self.spec
        parsed = urllib.parse.urlsplit(spec.url)
        verify: bool | str = spec.tls_verify
        if spec.tls_verify and spec.ca_file:
            verify = spec.ca_file
        negotiate: dict[str, Any] = {}
        if spec.auth in ("negotiate", "kerberos", "ntlm"):
            negotiate["negotiate_service"] = spec.spn_service
            if spec.spn_hostname:
                negotiate["negotiate_hostname_override"] = spec.spn_hostname
        self._wsman = WSMan(
            server=parsed.hostname or "",
            port=parsed.port or (443 if parsed.scheme == "https" else 80),
            path=parsed.path.lstrip("/") or "wsman",
            ssl=parsed.scheme == "https",
            username=kerberos_identity(spec),
            password=spec.password or None,
            auth=spec.auth,
            cert_validation=verify,
            encryption=spec.encryption,
            # Monitoring traffic to servers on the LAN must not wander through a proxy.
            no_proxy=True,
            operation_timeout=20,
            **negotiate,
        )
        cap_response_bodies(self._wsman, parsed.hostname or spec.url, tally=self._answers)
        self._set_http_timeouts(deadline)
        pool = RunspacePool(self._wsman, configuration_name=spec.configuration, idle_timeout=SHELL_IDLE_TIMEOUT_SECONDS)
        pool.open()
        self.pools_opened += 1
        log.debug("runspace pool opened", extra={"where": spec.where})
        self._pool = pool
        return pool

    def _invoke(
        self, pool: RunspacePool, cmdlet: str, parameters: dict[str, Any], deadline: Deadline,
        select: list[str] | None = None,
    ) -> tuple[list[Any], list[ErrorRecordInfo], bool]:
        ps = PowerShell(pool)
        ps.add_cmdlet(cmdlet)
        if parameters:
            ps.add_parameters(parameters)
        if select:  # a second command of the same pipeline, still no script text
            ps.add_cmdlet("Select-Object").add_parameter("Property", select)
        ps.begin_invoke()
        while ps.state == PSInvocationState.RUNNING:
            left = deadline.remaining()
            if left <= 0:
                self._stop_quietly(ps)
                raise CollectError(ErrorKind.TIMEOUT, f"{self.spec.where} {cmdlet}", "deadline passed while waiting for output")
            # The WSMan operation timeout makes the server answer within it even with no output;
            # the HTTP read timeout is that plus 2 s, so one poll never outlives the deadline much.
            ps.poll_invoke(timeout=max(1, min(int(left) - 1, 20)))
        errors = [_error_info(rec) for rec in ps.streams.error]
        failed = bool(ps.had_errors) or ps.state == PSInvocationState.FAILED
        self._close_pipeline(ps)
        return list(ps.output), errors, failed

    def _close_pipeline(self, ps: PowerShell) -> None:
        # Frees the command on the server; a failure here does not spoil a good answer.
        try:
            ps.close()
        except Exception as exc:  # noqa: BLE001 - logged, the pool is dropped on the next error
            log.debug("closing pipeline failed: %s", type(exc).__name__)

    def _stop_quietly(self, ps: PowerShell) -> None:
        try:
            if self._wsman is not None:
                self._wsman.transport.read_timeout = 2
            ps.stop()
        except Exception:  # noqa: BLE001 - the server is slow or gone; the pool is dropped anyway
            pass

    def _close_pool(self, polite: bool) -> None:
        pool, wsman = self._pool, self._wsman
        self._pool = None
        self._wsman = None
        if pool is not None:
            log.debug("runspace pool %s", "closed" if polite else "dropped", extra={"where": self.spec.where})
        if pool is not None and polite:
            try:
                if wsman is not None:  # a polite close must fit a container stop's grace with the rest
                    wsman.transport.read_timeout = 2
                    wsman.transport.connection_timeout = 1
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

    def _classify(self, exc: BaseException, where: str) -> CollectError:
        """Map whatever pypsrp/requests raised onto one of the error kinds."""
        kind: ErrorKind
        if isinstance(exc, CollectError):
            return exc
        auth_problem = explain_auth_failure(exc, self.spec)
        if auth_problem is not None:
            kind, message = ErrorKind.AUTH, auth_problem
        elif isinstance(exc, ResponseTooLarge):
            kind, message = ErrorKind.SHAPE, str(exc)
        elif isinstance(exc, UnsafeXML):
            kind, message = ErrorKind.SHAPE, f"answer refused: {exc}"
        elif isinstance(exc, AuthenticationError):
            kind, message = ErrorKind.AUTH, "authentication failed (HTTP 401)"
        elif isinstance(exc, requests.exceptions.ConnectTimeout):
            kind, message = ErrorKind.UNREACHABLE, "connection timed out"
        elif isinstance(exc, (requests.exceptions.ReadTimeout, TimeoutError)):
            kind, message = ErrorKind.TIMEOUT, "no answer before the deadline"
        elif isinstance(exc, requests.exceptions.SSLError):
            kind, message = ErrorKind.UNREACHABLE, f"TLS handshake failed: {short_error(exc)}"
        elif isinstance(exc, requests.exceptions.ConnectionError):
            kind, message = ErrorKind.UNREACHABLE, f"cannot connect: {short_error(exc)}"
        elif isinstance(exc, WSManFaultError):
            if exc.code == WSMAN_OPERATION_TIMEOUT:
                kind = ErrorKind.TIMEOUT
            elif exc.code == WSMAN_ACCESS_DENIED:
                kind = ErrorKind.AUTH
            else:
                kind = ErrorKind.COMMAND
            code = f"0x{exc.code:08X}" if isinstance(exc.code, int) else str(exc.code)
            message = f"WSMan fault {code}: {(exc.reason or '')[:300]}"
        elif isinstance(exc, WinRMTransportError):
            kind, message = ErrorKind.UNREACHABLE, f"HTTP {exc.code} from the endpoint"
        elif isinstance(exc, (ET.ParseError, WinRMError, ValueError, KeyError, IndexError, TypeError, AttributeError)):
            # pypsrp could not make sense of the answer: broken SOAP, broken PSRP fragments.
            kind, message = ErrorKind.SHAPE, f"unreadable answer ({type(exc).__name__}: {short_error(exc)})"
        else:
            kind, message = ErrorKind.SHAPE, f"unexpected failure ({type(exc).__name__}: {short_error(exc)})"
        return CollectError(kind, where, self._redact(message))


def _error_info(record: Any) -> ErrorRecordInfo:
    """Read an ErrorRecord from pypsrp without trusting any attribute to be there."""
    fqid = str(getattr(record, "fq_error", None) or "Unknown")
    category = str(getattr(record, "reason", None) or getattr(record, "category", None) or "")
    message = getattr(record, "message", None) or ""
    exception = getattr(record, "exception", None)
    if not message and exception is not None:
        props = getattr(exception, "adapted_properties", None) or {}
        message = props.get("Message") or str(exception)
    return ErrorRecordInfo(fqid, category, str(message)[:2000])


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
        threads = [threading.Thread(target=s.close, daemon=True) for s in self.sessions()]
        for t in threads:
            t.start()
        end = time.monotonic() + min(timeout, CLOSE_ALL_SECONDS)
        for t in threads:
            t.join(max(end - time.monotonic(), 0))
