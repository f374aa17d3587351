"""Bytes written to the IM log folder (check E2), counted from successive views of its files.

The folder's total size goes up and down (logs rotate, old ones are cleaned up, the folder may be
removed and recreated), so "is the log being written?" is answered by a counter that only grows:
each file adds what it grew by since it was last seen; a file that shrank or is a new file under a
known name counts its whole new size; a deleted file adds nothing.

A file is followed by name and by an identity (an inode locally, the creation time remotely), so a
rename is recognised as the same file: rotating ``x.LOG`` to ``x.1.LOG`` does not count the old
log's bytes a second time. NTFS gives a file created under a recently renamed file's name the old
creation time ("file tunnelling"), so two files may share an identity remotely; the larger one is
taken as the continuation.

The ledger is a plain, single-threaded object: the remote path feeds it complete listings, the
local watcher feeds it the one or two files an event names, and a complete listing on every
collector run repairs whatever an event missed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Hashable, Mapping

# How long the state of a file that left its name (deleted, or replaced by another file) waits to be
# claimed by a rename a watcher reports later: inotify reports a move it could not pair as "deleted"
# then "created", the polling observer reports the new file before the move of the old one.
DEPARTED_FILE_GRACE_SECONDS = 10.0


@dataclass(frozen=True)
class FileState:
    size: int
    identity: Hashable | None = None  # None: unknown, then the name alone follows the file
    modified: float | None = None  # Unix time of the last write


@dataclass(frozen=True)
class FolderView:
    """What the collector exports about the folder, taken from a ledger in one go."""

    present: bool
    parent_present: bool
    files: int
    bytes: int
    newest_write: float | None
    written_bytes: int

    @classmethod
    def of(cls, ledger: "WrittenBytesLedger", present: bool, parent_present: bool) -> "FolderView":
        return cls(
            present=present,
            parent_present=parent_present or present,
            files=ledger.file_count if present else 0,
            bytes=ledger.total_bytes if present else 0,
            newest_write=ledger.newest_write if present else None,
            written_bytes=ledger.written_bytes,
        )


def _same_file(before: FileState, now: FileState) -> bool:
    return before.identity is None or now.identity is None or before.identity == now.identity


class WrittenBytesLedger:
    """Per-file sizes and the count of bytes written to them, which never decreases."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.files: dict[str, FileState] = {}
        self.written_bytes = 0
        self.primed = False
        self._clock = clock
        # Files that left their name in an event: (state, when), until a rename claims them.
        self._departed: list[tuple[FileState, float]] = []

    # --- views ---------------------------------------------------------------------------------
    @property
    def file_count(self) -> int:
        return len(self.files)

    @property
    def total_bytes(self) -> int:
        return sum(state.size for state in self.files.values())

    @property
    def newest_write(self) -> float | None:
        return max((s.modified for s in self.files.values() if s.modified is not None), default=None)

    # --- updates -------------------------------------------------------------------------------
    def reconcile(self, listing: Mapping[str, FileState]) -> int:
        """A complete listing of the folder ({} when it is absent). The first one is the baseline."""
        if not self.primed:
            self.files = dict(listing)
            self.primed = True
            return 0
        seen: dict[str, FileState | None] = {name: None for name in self.files}
        seen.update(listing)
        added = self._apply(seen)
        self._departed.clear()  # a complete listing is the truth: anything unclaimed is gone
        return added

    def update(self, seen: Mapping[str, FileState | None]) -> int:
        """What a watcher learnt about some files (None: the file is gone); others are unchanged."""
        if not self.primed:
            return 0  # the baseline listing that follows includes these changes
        now = self._clock()
        self._departed = [(s, at) for s, at in self._departed if now - at <= DEPARTED_FILE_GRACE_SECONDS]
        return self._apply(seen)

    def forget_all(self) -> None:
        """The folder is gone: its files go, without adding to the count."""
        self.files.clear()
        self._departed.clear()

    # --- the accounting ------------------------------------------------------------------------
    def _apply(self, seen: Mapping[str, FileState | None]) -> int:
        before = self.files
        present = {name: state for name, state in seen.items() if state is not None}
        carries_on = {
            name for name, state in present.items()
            if name in before and _same_file(before[name], state) and state.size >= before[name].size
        }
        # Known files that did not carry on under their own name may have been renamed.
        movable: dict[object, tuple[str | None, FileState, float | None]] = {
            ("name", name): (name, state, None) for name, state in before.items()
            if name not in carries_on and state.identity is not None
        }
        movable.update({("departed", i): (None, state, at) for i, (state, at) in enumerate(self._departed)})

        files = dict(before)
        for name, state in seen.items():
            if state is None:
                files.pop(name, None)
        added = 0
        # Largest first: of two files sharing an identity, the larger is the older one's continuation.
        for name in sorted(present, key=lambda n: (-present[n].size, n)):
            state = present[name]
            if name in carries_on:
                added += state.size - before[name].size
            else:
                source = self._rename_source(name, state, movable)
                if source is not None:
                    old_name, old_state, _ = movable.pop(source)
                    added += state.size - old_state.size
                    if old_name is not None and old_name not in present:
                        files.pop(old_name, None)  # it lives on under the new name
                else:
                    added += state.size
            files[name] = state
        # Unclaimed files that left their name in this event may still turn up under another one.
        now = self._clock()
        departed: list[tuple[FileState, float]] = []
        for old_name, old_state, since in movable.values():
            if old_name is None:
                departed.append((old_state, since or now))
            elif old_name in seen and (seen[old_name] is None or not _same_file(old_state, seen[old_name])):
                departed.append((old_state, now))
        self._departed = departed
        self.files = files
        self.written_bytes += added
        return added

    @staticmethod
    def _rename_source(
        name: str, state: FileState, movable: Mapping[object, tuple[str | None, FileState, float | None]]
    ) -> object | None:
        """The known file this one was renamed from: same identity, another name, not larger."""
        best: tuple[int, object] | None = None
        for key, (old_name, old_state, _) in movable.items():
            if old_name == name or old_state.identity != state.identity or old_state.size > state.size:
                continue
            if best is None or old_state.size > best[0]:
                best = (old_state.size, key)
        return None if best is None else best[1]
