"""Scan every exported event log of a folder, each from its own cursor."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

from collectors.sources.evtx.scan import (
    DEFAULT_PROVIDER,
    FileCursor,
    ScanResult,
    scan_file,
)


@dataclass
class FolderScan:
    results: dict[str, ScanResult] = field(default_factory=dict)  # files scanned this time, by path
    cursors: dict[str, FileCursor] = field(default_factory=dict)  # the cursors to keep for next time
    removed: list[str] = field(default_factory=list)  # files that had a cursor and are gone
    pending: list[str] = field(default_factory=list)  # not scanned: the time budget ran out first
    error: str | None = None  # the folder itself could not be listed


def scan_folder(folder, cursors: dict[str, FileCursor] | None = None, provider: str = DEFAULT_PROVIDER,
                max_seconds: float | None = None, suffix: str = ".evtx") -> FolderScan:
    """Scan every ``*.evtx`` in ``folder`` (not recursive, suffix case-insensitive) from its cursor.

    New files start from nothing, changed ones from their cursor (scan_file notices a replaced or
    truncated file), removed ones are dropped from the cursors and listed. Files are taken oldest
    modification first, so a time budget that runs out leaves the newest for the next run.
    """
    cursors = dict(cursors or {})
    out = FolderScan()
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    try:
        entries = [e for e in os.scandir(folder) if e.name.lower().endswith(suffix.lower()) and e.is_file()]
        entries.sort(key=lambda e: (e.stat().st_mtime_ns, e.name))
    except OSError as exc:
        out.error = f"cannot list {folder}: {exc.strerror or exc}"
        out.cursors = cursors
        return out
    present = {os.fspath(e.path) for e in entries}
    out.removed = sorted(p for p in cursors if p not in present)
    for entry in entries:
        key = os.fspath(entry.path)
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            out.pending.append(key)
            if key in cursors:
                out.cursors[key] = cursors[key]
            continue
        result = scan_file(key, provider, cursors.get(key), remaining)
        out.results[key] = result
        out.cursors[key] = result.cursor
    return out
