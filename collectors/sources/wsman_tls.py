"""One TLS client context per trust setting for every HTTPS connection to a WSMan endpoint.

Left alone, urllib3 builds a context for every connection it opens and loads the trust into it there:
the CA file requests passes on (``verify=<path>``), or the whole system store (``verify=True``,
``load_default_certs``). The context lives as long as its connection, and a session keeps its
connection between runs, so every HTTPS endpoint held a copy of its trust store: about 100 kB of RSS a
session with a one-CA file, 0.9 MB with a store the size of Debian's, 115 kB shared
(``benchmarks/bench_memory_per_host.py --https-sessions``; ``docs/performance.md``, "Memory at 1,000
hosts"). Shared, the store is loaded once.

:func:`share_tls_context` gives a pypsrp session's pool managers the shared context and makes requests
pass no CA path any more (urllib3 would load it into the shared context again on every connection).
requests would also hand every validating connection a CA path (certifi's bundle for ``verify=True``)
that urllib3 loads into the context it is given: that path is withheld, so the shared context trusts
exactly what it was made with. Certificate and host name checks stay urllib3's, as before: it sets ``CERT_REQUIRED`` on the context
(the same for every user of it) and matches the host name of each connection itself. Only endpoints
that validate share a context; ``tls_verify: false`` keeps urllib3's own, which loads no trust, and so
does a session presenting a client certificate (urllib3 loads it into the context it connects with).
"""

from __future__ import annotations

import os
import ssl
import threading
from typing import Any

from urllib3.util.ssl_ import create_urllib3_context

__all__ = ["share_tls_context", "shared_context"]

_MAX_CONTEXTS = 16  # distinct CA files (or versions of one) kept at once
_contexts: dict[tuple[Any, ...], ssl.SSLContext] = {}
_lock = threading.Lock()


def shared_context(ca_path: str | None) -> ssl.SSLContext:
    """The client context trusting ``ca_path`` (a CA file or a hashed folder; None: the system store),
    made once per version of it."""
    key = (ca_path, _file_version(ca_path))
    with _lock:
        context = _contexts.get(key)
        if context is None:
            context = create_urllib3_context()
            if ca_path and os.path.isdir(ca_path):
                context.load_verify_locations(capath=ca_path)
            elif ca_path:
                context.load_verify_locations(ca_path)  # OSError / SSLError: the run fails, nothing is kept
            else:
                context.load_default_certs()
            if len(_contexts) >= _MAX_CONTEXTS:
                del _contexts[next(iter(_contexts))]
            _contexts[key] = context
        return context


def share_tls_context(session: Any) -> bool:
    """Make the HTTPS connections of pypsrp's requests ``session`` use the shared context of the trust it
    was built with (``session.verify``: True, or the path of the endpoint's ``ca_file`` or of the
    environment's CA bundle, which pypsrp merged in). A session that does not validate is left alone.
    True when the session now shares a context."""
    verify = session.verify
    if verify is False or session.cert:
        # A client certificate would be loaded into the context, and so presented to every endpoint.
        return False
    context = shared_context(verify if isinstance(verify, str) else None)
    session.verify = True  # validation stays on; the trust is in the context, not a path loaded per connection
    for adapter in session.adapters.values():
        inner = getattr(adapter, "inner", adapter)
        manager = getattr(inner, "poolmanager", None)
        if manager is not None:
            manager.connection_pool_kw["ssl_context"] = context
        if hasattr(inner, "cert_verify"):
            inner.cert_verify = _trusting_the_context_only(inner.cert_verify)
    return True


def _trusting_the_context_only(cert_verify: Any) -> Any:
    """requests' ``HTTPAdapter.cert_verify``, minus the CA path it gives every validating connection:
    with ``verify=True`` that path is certifi's bundle, which urllib3 would load into the shared context,
    widening a trust pinned to the endpoint's CA file to every public CA."""

    def verify_with_context(conn: Any, url: str, verify: Any, cert: Any) -> None:
        cert_verify(conn, url, verify, cert)  # CERT_REQUIRED, and the client certificate if any
        if verify:
            conn.ca_certs = None
            conn.ca_cert_dir = None

    return verify_with_context


def _file_version(path: str | None) -> tuple[int, int, int] | None:
    """A CA file replaced on disk gets a fresh context at the next pool opening."""
    if not path:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)
