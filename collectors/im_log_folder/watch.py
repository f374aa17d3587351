"""Follow a local IM log folder (or one mounted over SMB) with a watchdog observer.

Two non-recursive watches share one observer: one on the folder (its files' events) and one on its
parent (the folder itself being removed, renamed or created). Every file event costs one ``stat``
of the file it names; the whole folder is listed only when it (re)appears and on ``refresh()``,
which the collector calls once per run to repair whatever events missed and to re-arm a watch that
died (the folder or its parent was removed). The native observer (inotify, ReadDirectoryChanges)
does not see writes made by another machine to a share; the polling observer does.

Locks: the observer holds its own lock while it calls our handler, and the handler may schedule or
unschedule watches (re-entrant). The state lock only guards the ledger: nothing that waits for the
observer is ever done while holding it, so the two can never wait for each other.
"""

from __future__ import annotations

import logging
import os
import stat
import threading

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

from collectors.im_log_folder.accounting import (
    FileState,
    FolderView,
    WrittenBytesLedger,
)

log = logging.getLogger(__name__)

OBSERVER_KINDS = ("native", "polling")
# Opened/closed-without-writing/attribute events say nothing about sizes: not even queued.
_EVENTS = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent, FileMovedEvent,
           DirCreatedEvent, DirDeletedEvent, DirMovedEvent]
STOP_TIMEOUT_SECONDS = 5.0


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


def is_directory(path: str) -> bool:
    return directory_identity(path) is not None


def file_state(path: str) -> FileState | None:
    """One file's size, identity and write time; None when it is gone (or not a plain file)."""
    try:
        st = os.stat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    identity = (st.st_dev, st.st_ino) if st.st_ino else None
    return FileState(st.st_size, identity, st.st_mtime)


def list_folder(folder: str) -> dict[str, FileState]:
    """Every plain file directly in ``folder``; {} when the folder is gone."""
    listing: dict[str, FileState] = {}
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not entry.is_file():
                    continue
                # os.stat rather than entry.stat(): DirEntry has no inode on Windows.
                state = file_state(entry.path)
                if state is not None:
                    listing[entry.name] = state
    except (FileNotFoundError, NotADirectoryError):
        return {}
    return listing


class _Handler(FileSystemEventHandler):
    def __init__(self, watch: "FolderWatch") -> None:
        self._watch = watch

    def dispatch(self, event: FileSystemEvent) -> None:
        # An exception here would end the observer's thread, and with it every later event.
        try:
            self._watch.on_event(event)
        except OSError as exc:  # a share gone away mid-event; the next refresh() sorts it out
            log.debug("IM log folder event not applied: %s", type(exc).__name__)
        except Exception:  # noqa: BLE001 - logged; the per-run reconcile still keeps the counts right
            log.exception("IM log folder event handling failed")


class FolderWatch:
    """The ledger of one folder, kept current by watchdog events between collector runs."""

    def __init__(self, folder: str, observer: str = "native", poll_interval: float = 1.0) -> None:
        self.folder = os.path.normpath(os.path.abspath(folder))
        self.parent = os.path.dirname(self.folder)
        self._observer = make_observer(observer, poll_interval)
        self._handler = _Handler(self)
        self._lock = threading.Lock()
        self._ledger = WrittenBytesLedger()
        self._present = False
        self._parent_present = False
        self._watches: dict[str, ObservedWatch | None] = {self.folder: None, self.parent: None}
        self._folder_identity: tuple[int, int] | None = None  # the folder the watch follows
        self._started = False

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> FolderView:
        """Start observing; the first listing is the baseline of the written-bytes count."""
        self._observer.start()
        self._started = True
        return self.refresh()

    def stop(self) -> None:
        """Stop the observer and its threads (also when start() never ran or failed)."""
        self._observer.stop()
        if self._started:
            self._started = False
            self._observer.join(STOP_TIMEOUT_SECONDS)

    @property
    def running(self) -> bool:
        return self._observer.is_alive()

    # --- what the collector calls --------------------------------------------------------------
    def refresh(self) -> FolderView:
        """Re-arm dead watches and reconcile with a complete listing. OSError: the folder cannot be read."""
        self._sync()
        return self.view()

    def view(self) -> FolderView:
        """The current state, as events left it (no I/O)."""
        with self._lock:
            return FolderView.of(self._ledger, self._present, self._parent_present)

    # --- events --------------------------------------------------------------------------------
    def on_event(self, event: FileSystemEvent) -> None:
        src = self._norm(event.src_path)
        dest = self._norm(event.dest_path) if event.dest_path else ""
        if event.is_directory:
            # The folder or its parent came or went. Events of two watches arrive in no fixed
            # order, so look at the disk rather than trust the event.
            if self.folder in (src, dest) or src == self.parent:
                self._sync()
            return
        paths = [p for p in (dest, src) if p and os.path.dirname(p) == self.folder]
        if not paths:
            return
        with self._lock:
            # dest first: a rename is then seen from the new name while the old entry still exists.
            seen = {os.path.basename(p): file_state(p) for p in paths}
            self._ledger.update(seen)

    def _sync(self) -> None:
        """Bring the watches and the ledger in line with the disk (a full listing of the folder)."""
        parent_present = is_directory(self.parent)
        if parent_present:
            self._arm(self.parent)
        identity = directory_identity(self.folder)
        if identity is None:
            self._disarm(self.folder)
        elif identity != self._folder_identity:
            self._arm(self.folder, fresh=True)  # a recreated folder: the old watch follows the old one
        else:
            self._arm(self.folder)
        self._folder_identity = identity
        with self._lock:
            # Listed under the lock (and after arming): an event applied in between would be undone.
            listing = list_folder(self.folder) if identity is not None else {}
            self._ledger.reconcile(listing)
            self._present = identity is not None
            self._parent_present = parent_present or self._present

    # --- watches -------------------------------------------------------------------------------
    def _arm(self, path: str, fresh: bool = False) -> None:
        """Watch ``path`` unless a live watch exists (``fresh``: replace it); safe from any thread."""
        watch = self._watches.get(path)
        if watch is not None and not fresh and self._alive(watch):
            return
        self._disarm(path)
        try:
            self._watches[path] = self._observer.schedule(self._handler, path, event_filter=_EVENTS)
        except OSError as exc:  # gone again, or out of inotify watches: refresh() copes without
            self._watches[path] = None
            log.debug("cannot watch %s: %s", path, type(exc).__name__)

    def _disarm(self, path: str) -> None:
        watch = self._watches.get(path)
        self._watches[path] = None
        if watch is not None:
            try:
                self._observer.unschedule(watch)
            except KeyError:
                pass  # another thread did it first

    def _alive(self, watch: ObservedWatch) -> bool:
        return any(e.watch == watch and e.is_alive() for e in list(self._observer.emitters))

    # --- helpers -------------------------------------------------------------------------------
    @staticmethod
    def _norm(path: bytes | str) -> str:
        return os.path.normpath(os.fsdecode(path))

