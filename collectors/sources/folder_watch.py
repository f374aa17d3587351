"""Follow the files of one local folder (or one mounted over SMB) with a watchdog observer.

Two non-recursive watches share one observer: one on the folder (its files' events) and one on its
parent (the folder itself being created, removed or renamed). :meth:`FolderWatch.refresh`, which a
collector calls once per run, re-arms a watch that died (the folder or its parent was removed) and
gives a recreated folder a fresh watch. The native observer (inotify, ReadDirectoryChangesW) does
not see writes made by another machine to a share; the polling observer does, at the cost of
listing the folder.

A collector uses it one of two ways:

- it asks :meth:`~FolderWatch.take_changes` at every run which files changed since it last asked
  (``owa_events``: the ``.evtx`` files to rescan); ``None`` means "do not trust me, rescan
  everything": the watcher has not been asked before, stopped, cannot watch the folder, or the
  folder came, went or was replaced;
- or it passes ``on_files`` and ``on_folder``, called on the observer's thread as events arrive
  (``im_log_folder``: a written-bytes ledger kept current between runs).

Locks: the observer holds its own lock while it calls our handler, and the handler may schedule or
unschedule watches (re-entrant). The watcher's lock guards only what it keeps between calls, and the
callbacks' owners guard their own state: nothing that waits for the observer is ever done while
holding either, so no two can wait for each other.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch
from watchdog.observers.polling import PollingObserver

log = logging.getLogger(__name__)

OBSERVER_KINDS = ("native", "polling")
POLLING_INTERVAL_SECONDS = 2.0
STOP_TIMEOUT_SECONDS = 5.0
# Events that can change what a file holds, and the folder coming and going. Not "opened",
# "closed without writing" or attribute changes: reading a file (a collector's own scan) would
# otherwise mark it changed again at every run.
_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent, FileMovedEvent,
           DirCreatedEvent, DirDeletedEvent, DirMovedEvent]


@dataclass(frozen=True)
class FolderPresence:
    """What :meth:`FolderWatch.refresh` found on disk."""

    identity: tuple[int, int] | None  # the folder's (device, inode); None while it is absent
    parent_present: bool

    @property
    def present(self) -> bool:
        return self.identity is not None


def make_observer(kind: str, poll_interval: float) -> BaseObserver:
    if kind == "polling":
        return PollingObserver(timeout=poll_interval)
    if kind == "native":
        return Observer()
    raise ValueError(f"observer must be one of {OBSERVER_KINDS}, not {kind!r}")


def directory_identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of a folder, None when there is none; other errors (a stale share) propagate."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: "FolderWatch") -> None:
        self._watch = watch

    def dispatch(self, event: FileSystemEvent) -> None:
        # An exception here would end the observer's thread, and with it every later event.
        try:
            self._watch.on_event(event)
        except OSError as exc:  # a share gone away mid-event; the next refresh() sorts it out
            log.debug("folder event not applied: %s", type(exc).__name__)
        except Exception:  # noqa: BLE001 - logged; the per-run refresh repairs what it missed
            log.exception("folder event handling failed")


class FolderWatch:
    """Files directly in ``folder`` (not below it) whose name ends with ``suffix`` (any case; "": all)."""

    def __init__(
        self,
        folder: str | Path,
        observer: str = "native",
        poll_interval: float = POLLING_INTERVAL_SECONDS,
        suffix: str = "",
        on_files: Callable[[list[str]], None] | None = None,
        on_folder: Callable[[FolderPresence], None] | None = None,
    ) -> None:
        """``on_files``: called with the paths an event names (default: kept for take_changes);
        ``on_folder``: called after the folder or its parent came or went and the watches followed."""
        self.folder = os.path.normpath(os.path.abspath(os.fspath(folder)))
        self.parent = os.path.dirname(self.folder)
        self.suffix = suffix.lower()
        self._observer = make_observer(observer, poll_interval)
        self._handler = _Handler(self)
        self._on_files = on_files or self._note
        self._on_folder = on_folder
        self._lock = threading.Lock()
        self._watches: dict[str, ObservedWatch | None] = {self.folder: None, self.parent: None}
        self._arm_error: str | None = None  # why the folder could not be watched, last time it was tried
        self._identity: tuple[int, int] | None = None  # the folder the watch follows
        self._changed: set[str] = set()
        self._unknown = True  # what happened since the last take_changes is not known
        self._started = False

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> FolderPresence:
        """Start observing. OSError: the observer cannot start, or the folder cannot be looked at
        (the observer then runs: stop() it)."""
        try:
            self._observer.start()
        except Exception as exc:  # noqa: BLE001 - a thread or the OS refused; said as an OSError
            raise OSError(f"cannot watch {self.folder}: {type(exc).__name__}: {exc}") from None
        self._started = True
        return self.refresh()

    def stop(self) -> None:
        """Stop the observer and its threads (also when start() never ran or failed)."""
        try:
            self._observer.stop()
            if self._started:
                self._started = False
                self._observer.join(STOP_TIMEOUT_SECONDS)
        except Exception:  # noqa: BLE001 - stopping is best effort; the threads are daemons
            log.debug("stopping a folder observer failed", exc_info=True)

    @property
    def running(self) -> bool:
        return self._observer.is_alive()

    def problem(self) -> str | None:
        """Why the watcher cannot be trusted now, or None."""
        if not self._started:
            return "not started"
        if not self._observer.is_alive():
            return "the observer thread stopped"
        return self._arm_error

    # --- what a collector calls ----------------------------------------------------------------
    def refresh(self) -> FolderPresence:
        """Bring the watches in line with the disk; safe from any thread. OSError: the folder cannot
        be looked at (a stale share)."""
        parent_present = directory_identity(self.parent) is not None
        if parent_present:
            self._arm(self.parent)
        identity = directory_identity(self.folder)
        if identity is None:
            self._disarm(self.folder)
            self._arm_error = None  # no folder to watch is not a failure to watch it
        else:
            # A recreated folder: the old watch follows the old one.
            self._arm(self.folder, fresh=identity != self._identity)
        with self._lock:
            if identity != self._identity:
                self._unknown = True
            self._identity = identity
        return FolderPresence(identity, parent_present or identity is not None)

    def take_changes(self) -> set[str] | None:
        """Paths changed since the last call; None when the watcher cannot be trusted (rescan all)."""
        try:
            self.refresh()
            looked = True
        except OSError:  # the folder cannot be looked at now: the full scan that follows says why
            looked = False
        with self._lock:
            changed, self._changed = self._changed, set()
            unknown, self._unknown = self._unknown, False
        if unknown or not looked or not self.running or not self._watching(self.folder):
            return None
        return changed

    def requeue(self, paths: Iterable[str]) -> None:
        """Hand paths back (their scan did not finish), so the next call returns them again."""
        with self._lock:
            self._changed.update(paths)

    # --- events (on the observer's thread) -----------------------------------------------------
    def on_event(self, event: FileSystemEvent) -> None:
        src = _norm(event.src_path)
        dest = _norm(event.dest_path) if event.dest_path else ""
        if event.is_directory:
            # The folder or its parent came or went. Events of two watches arrive in no fixed
            # order, so look at the disk rather than trust the event.
            if self.folder in (src, dest) or src == self.parent:
                presence = self.refresh()
                if self._on_folder is not None:
                    self._on_folder(presence)
            return
        # dest first: a rename is then seen from the new name while the old entry still exists.
        paths = [p for p in (dest, src) if p and os.path.dirname(p) == self.folder
                 and p.lower().endswith(self.suffix)]
        if paths:
            self._on_files(paths)

    def _note(self, paths: list[str]) -> None:
        with self._lock:
            self._changed.update(paths)

    # --- watches -------------------------------------------------------------------------------
    def _arm(self, path: str, fresh: bool = False) -> None:
        """Watch ``path`` unless a live watch exists (``fresh``: replace it)."""
        if not fresh and self._watching(path):
            return
        self._disarm(path)
        error = None
        try:
            self._watches[path] = self._observer.schedule(self._handler, path, event_filter=_EVENTS)
        except OSError as exc:  # gone again, or out of inotify watches: refresh() copes without
            self._watches[path] = None
            error = f"cannot watch {path}: {type(exc).__name__}: {exc}"
            log.debug("%s", error)
        if path == self.folder:
            self._arm_error = error  # the folder's watch is the one take_changes rests on

    def _disarm(self, path: str) -> None:
        watch = self._watches.get(path)
        self._watches[path] = None
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except KeyError:
                pass  # another thread did it first

    def _watching(self, path: str) -> bool:
        watch = self._watches.get(path)
        return watch is not None and any(e.watch == watch and e.is_alive() for e in list(self._observer.emitters))


def _norm(path: bytes | str) -> str:
    return os.path.normpath(os.fsdecode(path))
