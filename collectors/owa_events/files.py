"""Check E1 from a folder of exported event logs (.evtx): incremental, watched, never fooled twice.

- The folder's files are scanned by ``evtx_scan`` from a cursor per file, so a file that grew is
  read from where it stopped and an unchanged one costs one small read.
- A ``FolderWatch`` (watchdog) says which files changed, so only those are rescanned. When it
  cannot be trusted (not started, died, the folder vanished) every file is rescanned, and every
  ten minutes a full pass catches what a watcher may have missed; a watcher that fails to start is
  retried at the next run, and the run goes on without it.
- An event is known by (computer, EventRecordID, TimeCreated): exports overlap, a re-exported or
  replaced file resets its cursor and is read again, and a cleared log reuses RecordIds; none of
  that counts an event twice. The first complete pass only sets the "last seen" times.
- Only the target's own events count (by the records' Computer, setting ``computer``): a share may
  hold every server's exports. The others are counted apart, so a wrong name is visible.
- Damaged records and chunks are skipped and counted; a file that cannot be read at all is counted
  as unreadable, and the others are still read. Only a folder that cannot be listed fails the run.
  Stale records in a chunk's slack space are neither events nor damage (``evtx.layout``).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

from collectors.contract import CollectError, ErrorKind
from collectors.helpers.names import fqdn
from collectors.owa_events.tally import PROVIDER, Tally, meaning_of
from collectors.sources.evtx import (
    TIME_BUDGET_ERROR,
    FileCursor,
    ProviderEvent,
    ScanResult,
    scan_file,
    scan_folder,
)
from collectors.sources.folder_watch import FolderWatch

FULL_PASS_SECONDS = 600.0
EVTX_SUFFIX = ".evtx"
REMEMBERED_EVENTS = 20_000  # events kept to recognise a repeat; older ones are forgotten
SAFETY_SECONDS = 1.0  # left of the run's deadline after scanning, to build the samples

EventKey = tuple[str, int, int]  # computer (as fqdn() compares it), EventRecordID, TimeCreated in 100 ns ticks


@dataclass
class KnownEvents:
    """The events already taken in, bounded: when full, the oldest half is forgotten and anything
    at or before it is treated as known (old news), so a forgotten event is never counted again."""

    times: dict[EventKey, float] = field(default_factory=dict)
    horizon: float | None = None

    def add(self, key: EventKey, when: float) -> bool:
        """True when the event is new (and remembers it)."""
        if key in self.times or (self.horizon is not None and when <= self.horizon):
            return False
        self.times[key] = when
        if len(self.times) > REMEMBERED_EVENTS:
            ordered = sorted(self.times.items(), key=lambda item: item[1])
            forget = ordered[: len(ordered) // 2]
            self.horizon = forget[-1][1]
            for old, _ in forget:
                del self.times[old]
        return True


@dataclass
class FolderState:
    """Where reading the folder stands; plain data in the job's memory (the watcher lives beside it)."""

    cursors: dict[str, FileCursor] = field(default_factory=dict)
    bad_chunks: dict[str, int] = field(default_factory=dict)  # per file, at its last scan
    unreadable: dict[str, str] = field(default_factory=dict)  # per file, why its last scan failed
    known: KnownEvents = field(default_factory=KnownEvents)
    seeding: bool = True  # until the first complete pass over the folder
    count_from: float | None = None  # events older than this are old news, never counted
    last_full_pass: float | None = None  # monotonic


def _out_of_time(result: ScanResult) -> bool:
    return not result.complete and (result.error or "").startswith(TIME_BUDGET_ERROR)


@dataclass(frozen=True)
class ComputerFilter:
    """Which computer's events a job counts: exports of several servers may share one folder.

    A record's Computer is the FQDN of the server that logged it; the setting may be an FQDN or a
    short name, so names match when equal or when their first labels are ("*" matches any).
    """

    wanted: str

    def accepts(self, computer: str) -> bool:
        wanted = fqdn(self.wanted)
        name = fqdn(computer)
        return wanted == "*" or name == wanted or name.split(".", 1)[0] == wanted.split(".", 1)[0]


def event_key(event: ProviderEvent) -> EventKey:
    return (fqdn(event.computer), event.record_id, event.ticks)  # exact integers: no float rounding


class FolderReader:
    """One job's reading of one folder."""

    def __init__(self, folder: str, observer: str, lookback: float, log: logging.Logger | logging.LoggerAdapter,
                 computers: ComputerFilter = ComputerFilter("*")):
        self.folder = os.path.abspath(folder)
        self.observer = observer  # native or polling
        self.lookback = lookback
        self.log = log
        self.computers = computers

    def read(self, state: FolderState, tally: Tally, watch: FolderWatch | None, budget: float) -> None:
        """One run, with the watcher :meth:`ensure_watch` gave (None: rescan every file)."""
        now = time.monotonic()
        if state.count_from is None:
            state.count_from = time.time() - self.lookback
        changes = watch.take_changes() if watch is not None else None
        full_due = state.last_full_pass is None or now - state.last_full_pass >= FULL_PASS_SECONDS
        full = changes is None or state.seeding or full_due
        if full:
            results, removed, pending = self._full_pass(state, budget)
        else:
            results, removed, pending = self._changed_files(state, sorted(changes), budget)
        pending += [path for path, result in results.items() if _out_of_time(result)]
        if full and not pending:
            state.last_full_pass = now
        if pending and watch is not None:
            watch.requeue(pending)
        for path in removed:
            for per_file in (state.cursors, state.bad_chunks, state.unreadable):
                per_file.pop(path, None)
        counted = not state.seeding
        for path, result in results.items():
            self._take_in(state, tally, path, result, counted)
        if state.seeding and not pending:
            state.seeding = False
        tally.files_unreadable = len(state.unreadable)

    # --- watching ---------------------------------------------------------------------------------
    def ensure_watch(self, watch: FolderWatch | None) -> FolderWatch | None:
        """The running watcher: ``watch`` itself, or a new one; None when none could be started."""
        if watch is not None and watch.running:
            return watch
        if watch is not None:
            self.log.warning("folder watcher for %s stopped (%s); rescanning every file and restarting it",
                             self.folder, watch.problem())
            watch.stop()
        fresh = FolderWatch(self.folder, self.observer, suffix=EVTX_SUFFIX)
        try:
            fresh.start()
        except OSError as exc:
            fresh.stop()
            self.log.warning("%s; rescanning every file at each run instead", exc)
            return None
        problem = fresh.problem()
        if problem is not None:
            self.log.warning("%s; rescanning every file at each run until it can", problem)
        return fresh

    # --- scanning ---------------------------------------------------------------------------------
    def _full_pass(self, state: FolderState, budget: float):
        scan = scan_folder(self.folder, state.cursors, PROVIDER, max_seconds=budget)
        if scan.error is not None:
            raise CollectError(ErrorKind.UNREACHABLE, self.folder, scan.error)
        state.cursors = scan.cursors
        return scan.results, scan.removed, scan.pending

    def _changed_files(self, state: FolderState, paths: list[str], budget: float):
        deadline = time.monotonic() + budget
        results: dict[str, ScanResult] = {}
        removed: list[str] = []
        pending: list[str] = []
        for path in paths:
            if not os.path.isfile(path):
                removed.append(path)
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                pending.append(path)
                continue
            result = scan_file(path, PROVIDER, state.cursors.get(path), remaining)
            state.cursors[path] = result.cursor
            results[path] = result
        return results, removed, pending

    def _take_in(self, state: FolderState, tally: Tally, path: str, result: ScanResult, counted: bool) -> None:
        name = os.path.basename(path)
        if _out_of_time(result):
            self.log.debug("%s: %s; continuing at the next run", name, result.error)
        elif result.error is not None:
            if state.unreadable.get(path) != result.error:
                self.log.warning("cannot read %s: %s", name, result.error)
            state.unreadable[path] = result.error
        else:
            state.unreadable.pop(path, None)
        if result.reset is not None:
            self.log.info("%s was %s: read again from its start; events already counted are not counted twice",
                          name, result.reset)
        stats = result.stats
        tally.records_skipped += stats.records_unreadable
        # Every scan examines every chunk signature: count only bad chunks the file did not have before.
        tally.chunks_skipped += max(0, stats.chunks_bad - state.bad_chunks.get(path, 0))
        state.bad_chunks[path] = stats.chunks_bad
        if stats.records_unreadable or stats.chunks_bad:
            self.log.debug("%s: %d damaged records and %d damaged chunks skipped", name, stats.records_unreadable,
                           stats.chunks_bad)
        for event in sorted(result.events, key=lambda e: (e.time, e.record_id)):
            meaning = meaning_of(event.event_id, event.level, " ".join(event.data))
            if meaning is None:
                continue
            when = event.time.timestamp()
            if not state.known.add(event_key(event), when):
                continue
            if not self.computers.accepts(event.computer):
                tally.other_computer_events += 1
                if tally.other_computer_events == 1:
                    self.log.info("%s holds events of %s, not counted for this target (setting computer: %s)",
                                  name, event.computer, self.computers.wanted)
                continue
            tally.observe(meaning, when, counted and state.count_from is not None and when >= state.count_from)
