"""What the polling process and its serving process (exporter.serving, exporter.serving_child) say to
each other over their pipe. Plain tuples and a frozen dataclass: pickled by multiprocessing.

Polling process -> serving process:
  ("snapshot", Snapshot)        the latest exposition, live families, status page, health
  ("reload_result", id, ok, text)  the answer to a forwarded ``POST /-/reload``
  ("web_reload",)               read ``--web.config.file`` again (a reload just validated it)
  ("stop",)                     close every connection and exit
Serving process -> polling process:
  ("ready",) or ("failed", text) after start
  ("reload", id)                a client asked for ``POST /-/reload``
  ("log", fields)               a log record, logged by the polling process as its own
"""

from __future__ import annotations

from dataclasses import dataclass

SNAPSHOT, RELOAD_RESULT, WEB_RELOAD, STOP = "snapshot", "reload_result", "web_reload", "stop"
READY, FAILED, RELOAD, LOG = "ready", "failed", "reload", "log"


@dataclass(frozen=True)
class Snapshot:
    """A field left None is unchanged since the last snapshot (a large body is sent only when new)."""

    healthy: bool  # the scheduler is running
    body: bytes | None = None  # the cached exposition (exporter.metrics.ExpositionCache)
    gzip_body: bytes | None = None
    live: bytes | None = None  # families rendered at every publication: reloads, backoff, series cut
    status_page: bytes | None = None  # the HTML of ``/``


@dataclass(frozen=True)
class ServingOptions:
    """How the serving process serves; everything it needs that is not in a snapshot."""

    telemetry_path: str
    lifecycle: bool  # POST /-/reload allowed (it is forwarded to the polling process)
    web_config_path: str | None
    log_level: str
    log_format: str
    polling_pid: int  # whose process_* figures /metrics shows
    stale_after: float  # /healthz fails when the polling process has said nothing for this long
