"""Which event log files of one folder changed since the last look, told by watchdog.

A collector reading a folder of exported ``.evtx`` files asks :meth:`FolderWatch.take_changes` at
every run and rescans only the files named. ``None`` means "do not trust me, rescan everything":
the watcher could not start, died, lost its folder, or has not been asked before. The native
observer (inotify on Linux, ReadDirectoryChangesW on Windows) does not see writes made by another
machine to a network share: the polling observer does, at the cost of listing the folder.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

POLLING_INTERVAL_SECONDS = 2.0
STOP_TIMEOUT_SECONDS = 5.0
# Events that can change what a file holds. Not "opened" / "closed_no_write": reading a file (our own
# scan) would otherwise mark it changed again at every run.
CHANGING_EVENTS = frozenset({EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_DELETED,
                             EVENT_TYPE_CLOSED})


def _text(path: bytes | str) -> str:
    return os.fsdecode(path)


class _Recorder(FileSystemEventHandler):
    """Runs on the observer's thread: notes changed paths, and whether the folder itself went away."""

    def __init__(self, watch: "FolderWatch") -> None:
        self.watch = watch

    def on_any_event(self, event: FileSystemEvent) -> None:
        paths = [_text(event.src_path)] + ([_text(event.dest_path)] if event.dest_path else [])
        if event.is_directory:
            if event.event_type in (EVENT_TYPE_DELETED, EVENT_TYPE_MOVED) and self.watch.folder in paths:
                self.watch._mark_broken("the watched folder was deleted or moved")
            return
        if event.event_type not in CHANGING_EVENTS:
            return
        for path in paths:
            self.watch._note(path)


class FolderWatch:
    """Changed ``*.evtx`` files (suffix case-insensitive) directly in ``folder``, not below it."""

    def __init__(self, folder: str | Path, polling: bool = False, suffix: str = ".evtx") -> None:
        self.folder = os.path.abspath(os.fspath(folder))
        self.polling = polling
        self.suffix = suffix.lower()
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._broken: str | None = None
        self._asked = False  # take_changes was called since the start
        self._observer: BaseObserver | None = None

    @property
    def running(self) -> bool:
        return self._observer is not None and self._observer.is_alive() and self._broken is None

    def start(self) -> None:
        """Start watching; raises OSError (folder missing, inotify limits) and leaves nothing running."""
        observer = PollingObserver(timeout=POLLING_INTERVAL_SECONDS) if self.polling else Observer()
        try:
            observer.schedule(_Recorder(self), self.folder, recursive=False)
            observer.start()
        except Exception as exc:
            _stop(observer)
            raise OSError(f"cannot watch {self.folder}: {type(exc).__name__}: {exc}") from None
        with self._lock:
            self._changed.clear()
            self._broken = None
            self._asked = False
        self._observer = observer

    def take_changes(self) -> set[str] | None:
        """Paths changed since the last call; None when the watcher cannot be trusted (rescan all)."""
        with self._lock:
            changed, self._changed = self._changed, set()
            broken, first, self._asked = self._broken, not self._asked, True
        if first or broken is not None or not self.running:
            return None  # what happened before it watched is unknown
        return changed

    def requeue(self, paths) -> None:
        """Hand paths back (their scan did not finish), so the next call returns them again."""
        with self._lock:
            self._changed.update(paths)

    def problem(self) -> str | None:
        if self._broken is not None:
            return self._broken
        if self._observer is None:
            return "not started"
        return None if self._observer.is_alive() else "the observer thread stopped"

    def stop(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            _stop(observer)

    # --- called on the observer's thread ---------------------------------------------------------
    def _note(self, path: str) -> None:
        if os.path.dirname(os.path.abspath(path)) == self.folder and path.lower().endswith(self.suffix):
            with self._lock:
                self._changed.add(os.path.abspath(path))

    def _mark_broken(self, why: str) -> None:
        with self._lock:
            self._broken = why


def _stop(observer: BaseObserver) -> None:
    try:
        observer.stop()
        if observer.is_alive():
            observer.join(STOP_TIMEOUT_SECONDS)
    except Exception:  # noqa: BLE001 - stopping is best effort; the threads are daemons
        log.debug("stopping a folder observer failed", exc_info=True)
