"""The process's file descriptors, shared between inbound connections and outbound work.

Every open socket and file costs one descriptor, under one per-process limit (RLIMIT_NOFILE). When
incoming connections take them all, outbound work fails instead: a TLS probe would report "Too many
open files" as a failure of the server it probes, a false alarm. So the limit is first raised to the
hard limit, as Go programs do since Go 1.19 (the runtime raises it at start), and incoming connections
may then hold at most a quarter of it; the rest stays for sessions to Windows servers, probes, event
logs and watched folders.
"""

from __future__ import annotations

import logging

try:
    import resource
except ImportError:  # Windows: no RLIMIT_NOFILE; sockets are not counted against a small table there
    resource = None  # type: ignore[assignment]

__all__ = ["INBOUND_SHARE", "open_file_limit", "raise_open_file_limit", "inbound_connection_cap"]

log = logging.getLogger(__name__)

INBOUND_SHARE = 4  # incoming connections may hold at most 1/INBOUND_SHARE of the descriptors
_MIN_INBOUND = 4  # enough for a Prometheus HA pair and a person, whatever the limit


def open_file_limit() -> int | None:
    """The soft limit on open files, or None when there is none (or no way to know)."""
    if resource is None:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> None:
    """Raise the soft limit on open files to the hard limit (Docker's default soft limit is 1024 on
    many hosts, with a hard limit far above). A refusal is logged and otherwise harmless."""
    if resource is None:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard or (soft != resource.RLIM_INFINITY and hard != resource.RLIM_INFINITY and soft > hard):
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # macOS refuses RLIM_INFINITY, for one
        log.debug("cannot raise the open-file limit", extra={"soft": soft, "hard": hard, "reason": str(exc)})


def inbound_connection_cap(wanted: int) -> int:
    """How many incoming connections may be open at once: ``wanted``, within the inbound share."""
    limit = open_file_limit()
    if limit is None:
        return wanted
    return max(_MIN_INBOUND, min(wanted, limit // INBOUND_SHARE))
