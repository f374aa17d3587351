"""Local mode: the written-bytes ledger of an IM log folder on this machine (or an SMB mount), kept
current between collector runs by a :class:`~collectors.sources.folder_watch.FolderWatch`.

Every file event costs one ``stat`` of the file it names; the whole folder is listed only when it
(re)appears and on :meth:`LocalFolder.refresh`, which the collector calls once per run to repair
whatever events missed. The lock only guards the ledger and is never held while waiting for the
observer (see the watcher's note on locks).
"""

from __future__ import annotations

import os
import stat
import threading

from collectors.im_log_folder.accounting import (
    FileState,
    FolderView,
    WrittenBytesLedger,
)
from collectors.sources.folder_watch import FolderPresence, FolderWatch


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


class LocalFolder:
    """The ledger of one folder, kept current by watchdog events between collector runs."""

    def __init__(self, folder: str, observer: str = "native", poll_interval: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._ledger = WrittenBytesLedger()
        self._present = False
        self._parent_present = False
        self._watch = FolderWatch(folder, observer, poll_interval, on_files=self._files_changed,
                                  on_folder=self._relist)
        self.folder = self._watch.folder

    # --- life cycle ----------------------------------------------------------------------------
    def start(self) -> FolderView:
        """Start observing; the first listing is the baseline of the written-bytes count."""
        self._relist(self._watch.start())
        return self.view()

    def stop(self) -> None:
        self._watch.stop()

    @property
    def running(self) -> bool:
        return self._watch.running

    # --- what the collector calls --------------------------------------------------------------
    def refresh(self) -> FolderView:
        """Re-arm dead watches and reconcile with a complete listing. OSError: the folder cannot be read."""
        self._relist(self._watch.refresh())
        return self.view()

    def view(self) -> FolderView:
        """The current state, as events left it (no I/O)."""
        with self._lock:
            return FolderView.of(self._ledger, self._present, self._parent_present)

    # --- called by the watcher (also on the observer's thread) ---------------------------------
    def _files_changed(self, paths: list[str]) -> None:
        with self._lock:
            self._ledger.update({os.path.basename(p): file_state(p) for p in paths})

    def _relist(self, presence: FolderPresence) -> None:
        with self._lock:
            # Listed under the lock (and after the watches were armed): an event applied in between
            # would be undone.
            self._ledger.reconcile(list_folder(self.folder) if presence.present else {})
            self._present = presence.present
            self._parent_present = presence.parent_present
