"""Graceful stop on SIGINT/SIGTERM for the long-running commands (`run`, `demo`).

The handlers go in before anything slow starts: as PID 1 in a container a signal with no handler
is ignored, so `docker stop` during start-up would wait for SIGKILL. A signal that arrives before
the exporter serves is remembered, and the wait returns at once. The state lives here, not in the
CLI module, because `python -m exporter.cli` runs that module twice (as __main__ and as imported).
"""

from __future__ import annotations

import logging
import signal
import threading

log = logging.getLogger("exporter")
_requested = threading.Event()


def _handler(signum, frame) -> None:  # noqa: ARG001
    log.info("signal received, shutting down", extra={"signal": signal.Signals(signum).name})
    _requested.set()


def install_signal_handlers() -> None:
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)


def wait_for_signal() -> None:
    """Block until SIGINT or SIGTERM (at once if one arrived during start-up)."""
    if signal.getsignal(signal.SIGTERM) is not _handler:
        install_signal_handlers()
    while not _requested.wait(1.0):
        pass
