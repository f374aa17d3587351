"""Signals for the long-running commands (`run`, `demo`): SIGINT/SIGTERM stop gracefully, SIGHUP
reloads the configuration.

The handlers go in before anything slow starts: as PID 1 in a container a signal with no handler
is ignored, so `docker stop` during start-up would wait for SIGKILL, and SIGHUP's default action
would kill the process. A signal that arrives before the exporter serves is remembered: a stop makes
the wait return at once, a reload runs as soon as the wait begins. The handlers only set flags; the
reload itself runs in the main thread, inside ``wait_for_signal``, never inside a signal handler.
The state lives here, not in the CLI module, because `python -m exporter.cli` runs that module twice
(as __main__ and as imported).
"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Callable

log = logging.getLogger("exporter")
_requested = threading.Event()  # stop
_reload_requested = threading.Event()
_wake = threading.Event()  # either of the above


def _handler(signum, frame) -> None:  # noqa: ARG001
    log.info("signal received, shutting down", extra={"signal": signal.Signals(signum).name})
    _requested.set()
    _wake.set()


def _reload_handler(signum, frame) -> None:  # noqa: ARG001
    _reload_requested.set()
    _wake.set()


def install_signal_handlers() -> None:
    signal.signal(signal.SIGINT, _handler)
    signal.signal(signal.SIGTERM, _handler)
    if hasattr(signal, "SIGHUP"):  # not on Windows (the on-box agent): reload over HTTP there
        signal.signal(signal.SIGHUP, _reload_handler)


def wait_for_signal(on_reload: Callable[[], object] | None = None) -> None:
    """Block until SIGINT or SIGTERM (at once if one arrived during start-up), running ``on_reload``
    in this thread for every SIGHUP (several SIGHUPs during one reload make one more reload)."""
    if signal.getsignal(signal.SIGTERM) is not _handler:
        install_signal_handlers()
    while not _requested.is_set():
        _wake.wait(1.0)
        _wake.clear()
        if _requested.is_set():
            break
        if _reload_requested.is_set():
            _reload_requested.clear()
            if on_reload is None:
                log.info("SIGHUP received; this command has no configuration to reload")
            else:
                log.info("SIGHUP received, reloading the configuration")
                on_reload()
