"""What the MSExchange OWA events of check E1 add up to: the metrics and the job's running totals.

Both sources of the ``owa_events`` collector (Get-WinEvent on the server, exported .evtx files)
turn each event into an observation here. Counters live in the job's memory and never decrease;
an event that was already there when the job started (its first run reads a look-back) sets the
"last seen" times but is not counted, so an exporter restart does not replay history into rates.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from collectors.contract import MetricSpec, Sample
from collectors.owa_events.reasons import (
    EVENT_ID_IM_INITIALISED,
    IM_FAILURE_REASONS,
    im_failure_reason,
)

PROVIDER = "MSExchange OWA"
EVENT_KINDS = ("im_initialised", "im_failure")
FAILURE_LEVELS = frozenset({1, 2, 3})  # critical, error, warning

IM_INITIALISED_TIME = MetricSpec(
    "lync_owa_im_initialised_timestamp_seconds",
    "gauge",
    "TimeCreated (UTC) of the newest MSExchange OWA Event 112 (IM endpoint manager initialised); "
    "absent until one is seen.",
)
EVENTS = MetricSpec(
    "lync_owa_event_log_events_total",
    "counter",
    "MSExchange OWA events seen since the exporter started: Event 112 (im_initialised) and IM "
    "initialisation failures (im_failure).",
    ("event",),
)
FAILURES = MetricSpec(
    "lync_owa_im_initialisation_failures_total",
    "counter",
    "MSExchange OWA IM initialisation failures seen since the exporter started, by reason.",
    ("reason",),
)
LAST_FAILURE_TIME = MetricSpec(
    "lync_owa_im_initialisation_last_failure_timestamp_seconds",
    "gauge",
    "TimeCreated (UTC) of the newest IM initialisation failure of this reason; absent while none was seen.",
    ("reason",),
)
RECORDS_SKIPPED = MetricSpec(
    "lync_owa_evtx_records_skipped_total",
    "counter",
    "Event records in .evtx files skipped because they could not be read (source files only).",
)
CHUNKS_SKIPPED = MetricSpec(
    "lync_owa_evtx_chunks_skipped_total",
    "counter",
    "64 KiB chunks of .evtx files skipped because their signature is damaged (source files only).",
)
OTHER_COMPUTER_EVENTS = MetricSpec(
    "lync_owa_evtx_other_computer_events_total",
    "counter",
    "MSExchange OWA events in the folder's .evtx files logged by another computer than the one the "
    "job counts (setting computer), left out; each counted once (source files only).",
)
FILES_UNREADABLE = MetricSpec(
    "lync_owa_evtx_files_unreadable",
    "gauge",
    "Files named *.evtx in the folder that could not be read at all at their last scan (source files only).",
)
METRICS = (IM_INITIALISED_TIME, EVENTS, FAILURES, LAST_FAILURE_TIME, RECORDS_SKIPPED, CHUNKS_SKIPPED,
           OTHER_COMPUTER_EVENTS, FILES_UNREADABLE)


@dataclass(frozen=True)
class Meaning:
    """What one event of the provider means for check E1."""

    kind: str  # one of EVENT_KINDS
    reason: str | None = None  # one of IM_FAILURE_REASONS for im_failure

    @property
    def key(self) -> str:
        """What its time is kept under: ``im_initialised``, or the failure's reason."""
        return (self.reason or "other") if self.kind == "im_failure" else self.kind


def meaning_of(event_id: int | None, level: int | None, text: str) -> Meaning | None:
    """Event 112 is the success; a warning or error whose text is an IM initialisation failure is a
    failure with its reason; every other event of the provider (OWA writes many) means nothing here."""
    if event_id == EVENT_ID_IM_INITIALISED:
        return Meaning("im_initialised")
    if level in FAILURE_LEVELS:
        reason = im_failure_reason(text)
        if reason is not None:
            return Meaning("im_failure", reason)
    return None


@dataclass
class Tally:
    """Running totals of one job; plain data, kept in the job's memory."""

    events: dict[str, int] = field(default_factory=lambda: dict.fromkeys(EVENT_KINDS, 0))
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(IM_FAILURE_REASONS, 0))
    last_failure: dict[str, float] = field(default_factory=lambda: dict.fromkeys(IM_FAILURE_REASONS, 0.0))
    initialised_at: float | None = None
    records_skipped: int = 0
    chunks_skipped: int = 0
    other_computer_events: int = 0
    files_unreadable: int = 0

    def observe(self, meaning: Meaning, when: float, counted: bool) -> bool:
        """Add one event; True when it is the newest of its key (Event 112, or its failure reason)."""
        if counted:
            self.events[meaning.kind] += 1
            if meaning.kind == "im_failure":
                self.failures[meaning.key] += 1
        newest = self.time_of(meaning.key)
        if newest is None or when >= newest:
            self.set_time(meaning.key, when)
            return True
        return False

    def time_of(self, key: str) -> float | None:
        if key == "im_initialised":
            return self.initialised_at
        return self.last_failure[key] or None

    def set_time(self, key: str, when: float) -> None:
        """The time of the newest event of ``key`` (0 for a failure reason: none)."""
        if key == "im_initialised":
            self.initialised_at = when
        else:
            self.last_failure[key] = when

    def samples(self, *, reads_evtx: bool) -> list[Sample]:
        """Counters from the start at 0; times only of what was seen (docs/metrics.md, "Never seen");
        the evtx_* series only when the job reads .evtx files, where they can be anything but 0."""
        out: list[Sample] = []
        if self.initialised_at is not None:
            out.append(IM_INITIALISED_TIME.sample(self.initialised_at))
        out += [EVENTS.sample(self.events[kind], event=kind) for kind in EVENT_KINDS]
        out += [FAILURES.sample(self.failures[reason], reason=reason) for reason in IM_FAILURE_REASONS]
        out += [LAST_FAILURE_TIME.sample(self.last_failure[reason], reason=reason)
                for reason in IM_FAILURE_REASONS if self.last_failure[reason]]
        if not reads_evtx:
            return out
        out.append(RECORDS_SKIPPED.sample(self.records_skipped))
        out.append(CHUNKS_SKIPPED.sample(self.chunks_skipped))
        out.append(OTHER_COMPUTER_EVENTS.sample(self.other_computer_events))
        out.append(FILES_UNREADABLE.sample(self.files_unreadable))
        return out
