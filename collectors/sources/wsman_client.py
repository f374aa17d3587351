"""The pypsrp client of one endpoint: its WSMan transport, and how many pipelines it may run at once.

- **Lanes.** A runspace pool runs several commands at once, each in a runspace of its own, up to the
  MaxRunspaces the client asked for when it opened the pool (RunspacePool class,
  https://learn.microsoft.com/dotnet/api/system.management.automation.runspaces.runspacepool; MS-PSRP
  2.2.2.30 RUNSPACEPOOL_INIT_DATA, https://learn.microsoft.com/openspecs/windows_protocols/ms-psrp/ee0ce0cb-2523-4d43-b8e8-049bb89112ad). Concurrent
  pipelines need one HTTP connection each. That is safe only where every request authenticates
  itself (Basic, client certificates): Negotiate, Kerberos and NTLM authenticate a connection
  (pypsrp keeps one security context per host, and re-authenticating on a second connection would
  replace the first's), and WinRM message encryption seals messages in order with that one context.
  So those transports keep one pipeline at a time; see :func:`lanes_for`. Whether an endpoint's
  throttling (Exchange's PowerShellMaxConcurrency, a JEA configuration's limits) counts runspaces of
  one pool is not verified here; the Exchange endpoint is reached with Kerberos, so one lane anyway.
- **No environment lookups per request.** requests, trusting the environment, reads the proxy
  variables and evaluates ``no_proxy`` on every request (``Session.send`` -> ``resolve_proxies``);
  the exporter never uses a proxy towards Windows servers (monitoring traffic on the LAN must not
  wander through one), so the session stops trusting the environment once pypsrp has built it.
- **No request outlives its run.** pypsrp retries a Receive that timed out five times, sleeping up to
  62 s in between, whatever the run's deadline: one such Receive held a lane (or the lock of a pool
  being opened) for two minutes after its host was healed. Retries are off, and every request is
  bounded by the deadline of the run that makes it (collectors.sources.request_deadline).
- **pypsrp's serializer is not thread-safe** (one per pool, with per-message reference tables): with
  several lanes, building and parsing PSRP messages on one pool takes a lock; the HTTP waits do not.
"""

from __future__ import annotations

import functools
import queue
import threading
import urllib.parse
from typing import Any, Callable

from pypsrp.powershell import RunspacePool
from pypsrp.wsman import WSMan

from collectors.sources.kerberos import kerberos_identity
from collectors.sources.response_cap import AnswerTally, cap_response_bodies
from collectors.sources.wsman_tls import share_tls_context

# Pipelines at once on one pool where the transport allows it: a front end's or an Exchange server's
# jobs on one endpoint (up to 7 collectors) then wait on each other less, and each pool holds at most
# this many connections.
MAX_LANES = 4
# Authentications that carry the credential in every request, so any connection may carry any request.
PER_REQUEST_AUTH = frozenset({"basic", "certificate"})


def lanes_for(auth: str, encryption: str) -> int:
    """How many pipelines may run at once on one pool of this endpoint."""
    if auth not in PER_REQUEST_AUTH:
        return 1  # connection-bound authentication, perhaps sealed messages: one connection
    if encryption == "always":
        return 1
    return MAX_LANES


def open_wsman(spec: Any, tally: AnswerTally, lanes: int) -> WSMan:
    """The WSMan client of ``spec`` (an EndpointSpec): capped answers, no proxy, ``lanes`` connections."""
    parsed = urllib.parse.urlsplit(spec.url)
    verify: bool | str = spec.tls_verify
    if spec.tls_verify and spec.ca_file:
        verify = spec.ca_file
    negotiate: dict[str, Any] = {}
    if spec.auth in ("negotiate", "kerberos", "ntlm"):
        negotiate["negotiate_service"] = spec.spn_service
        if spec.spn_hostname:
            negotiate["negotiate_hostname_override"] = spec.spn_hostname
    wsman = WSMan(
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
    cap_response_bodies(wsman, parsed.hostname or spec.url, tally=tally)  # builds pypsrp's requests session
    wsman.transport.send = _without_retries(wsman.transport.send)
    session = wsman.transport.session
    # pypsrp merged the environment (CA bundle) when it built the session; no proxy is ever used.
    session.trust_env = False
    # Only the endpoint's scheme is ever used: the other adapter (and its pool manager) is dead weight.
    session.adapters.pop("http://" if parsed.scheme == "https" else "https://", None)
    if parsed.scheme == "https":
        share_tls_context(session)  # one trust store in memory for every HTTPS endpoint (wsman_tls says why)
    for adapter in session.adapters.values():
        manager = getattr(getattr(adapter, "inner", adapter), "poolmanager", None)
        if manager is not None:  # keep at most one connection per lane (the lanes bound those in use)
            manager.connection_pool_kw["maxsize"] = lanes
    return wsman


def _without_retries(send: Callable[..., bytes]) -> Callable[..., bytes]:
    """pypsrp's ``send``, never retried on a read timeout: the run fails by its deadline, and its
    pool is dropped, instead of sleeping 2 to 62 s between retries while holding a lane."""

    @functools.wraps(send)
    def once(message: bytes, *, retries_on_read_timeout: int = 0, timeout: Any = None) -> bytes:
        return send(message, retries_on_read_timeout=0, timeout=timeout)

    return once


def close_idle_connections(wsman: WSMan, keep: int = 1) -> None:
    """Close the transport's idle connections but the ``keep`` used last: a burst of calls opens one
    connection per lane, an idle session goes back to one (the caller makes sure no call is in flight)."""
    session = wsman.transport.session
    for adapter in list(session.adapters.values()) if session is not None else ():
        manager = getattr(getattr(adapter, "inner", adapter), "poolmanager", None)
        pools = getattr(manager, "pools", None)
        for key in list(pools.keys()) if pools is not None else ():
            idle = getattr(pools.get(key), "pool", None)  # urllib3's LIFO queue; None: a closed pool
            if idle is None:
                continue
            taken = []
            while True:
                try:
                    taken.append(idle.get_nowait())  # most recently used first
                except queue.Empty:
                    break
            open_ones = 0
            for index, conn in enumerate(taken):
                if conn is not None:
                    open_ones += 1
                    if open_ones > keep:
                        conn.close()
                        taken[index] = None  # the slot stays, empty, as urllib3 fills its queue
            for conn in reversed(taken):  # back in the same order
                idle.put_nowait(conn)


def make_thread_safe(pool: RunspacePool) -> None:
    """Serialise the pool's PSRP message building and parsing (its serializer is shared state)."""
    lock = threading.RLock()  # fragment_multiple calls fragment
    fragmenter = pool._fragmenter
    for name in ("fragment", "fragment_multiple", "defragment"):
        setattr(fragmenter, name, _locked(lock, getattr(fragmenter, name)))


def _locked(lock: threading.RLock, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return call

