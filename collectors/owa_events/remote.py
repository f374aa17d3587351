"""Check E1 from the server: Get-WinEvent, filtered on the server, incremental by RecordId.

Every query names the provider in its XPath filter, so the server never sends the rest of the log.
- First run: the events of the last ``lookback`` (newest first, at most ``max_events``) and, when
  none of them is an Event 112, the newest Event 112 however old. They set the "last seen" times and
  the cursor; they are not counted (they happened before the job started).
- Later runs fetch what is new: ``EventRecordID > high``, oldest first, a page of ``max_events`` at a
  time. The same filter re-reads, by RecordId, the newest Event 112 and the newest failure of each
  reason seen (one record each, usually just the 112), so the times exported are what the log
  holds now: a failure record that is no longer in the log (cleared) no longer counts as the
  newest failure, while the time of the last Event 112 is kept (it did happen; a wrapped log
  loses it while IM works fine).
- A cleared log starts its RecordIds again from 1, below the cursor. The filter also asks for
  records below the lowest id still remembered that were written since the last query (minus
  a margin for clock skew): in a log that was not cleared there are none, so such a record means
  the log was cleared, and its new records are counted from there.
- "No events were found" (NoMatchingEventsFound) is an empty answer, not a failure.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from collectors.contract import CollectContext, Field, Shape
from collectors.helpers.text import clean_text
from collectors.owa_events.tally import PROVIDER, Meaning, Tally, meaning_of

CMDLET = "Get-WinEvent"
LOG_NAME = "Application"
NO_EVENTS = "NoMatchingEventsFound"
CLOCK_SKEW_SECONDS = 300.0  # how far apart the exporter's and the server's clocks may be
REMEMBERED_IDS = 4096  # recent RecordIds kept to tell a repeat from a record of a cleared log
MAX_PAGES_PER_RUN = 5  # a backlog larger than this many pages is read over the next runs

EVENT_RECORD = Shape(
    CMDLET,
    (
        Field("RecordId", "int"),
        Field("Id", "int"),
        Field("TimeCreated", "datetime"),
        Field("Level", "int", required=False, nullable=True),
        Field("ProviderName", "str", required=False, nullable=True),
        Field("Message", "str", required=False, nullable=True),
        Field("Properties", "any", required=False, nullable=True),
    ),
)


@dataclass(frozen=True)
class Record:
    """One EventLogRecord of the provider, reduced to what check E1 needs."""

    record_id: int
    event_id: int
    when: float  # TimeCreated, Unix seconds (UTC)
    meaning: Meaning | None


@dataclass
class RemoteCursor:
    """Where reading the server's log stands; plain data in the job's memory."""

    high: int | None = None  # the highest RecordId taken in
    remembered: dict[int, None] = field(default_factory=dict)  # recent RecordIds, oldest first
    newest: dict[str, int] = field(default_factory=dict)  # Meaning.key -> RecordId of the newest such event
    queried_at: float | None = None  # exporter clock (Unix seconds) when the last answered query was sent

    def remember(self, record_id: int) -> None:
        self.remembered[record_id] = None
        self.high = record_id if self.high is None else max(self.high, record_id)
        while len(self.remembered) > REMEMBERED_IDS:
            del self.remembered[min(self.remembered)]


def xpath(*conditions: str) -> str:
    """An event-log XPath filter on the provider; the conditions are our own text, never an answer's."""
    return f"*[System[Provider[@Name='{PROVIDER}']{''.join(f' and {c}' for c in conditions)}]]"


def _system_time(unix: float) -> str:
    moment = dt.datetime.fromtimestamp(unix, dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def new_records_filter(cursor: RemoteCursor, since: float, refresh: bool = True) -> str:
    """The steady-state filter: records above the cursor, the newest of each kind again, and records
    of a cleared log (below every remembered id, written since ``since``)."""
    written_since = f"TimeCreated[@SystemTime >= '{_system_time(since)}']"
    if cursor.high is None:
        return xpath(written_since)
    lowest = min(cursor.remembered) if cursor.remembered else cursor.high + 1
    again = [f"EventRecordID = {record_id}" for record_id in sorted(set(cursor.newest.values()))] if refresh else []
    parts = [f"EventRecordID > {cursor.high}", *again, f"(EventRecordID < {lowest} and {written_since})"]
    return xpath(f"({' or '.join(parts)})")


def _text(obj: dict[str, Any]) -> str:
    """The rendered message; without one (provider metadata missing), the insertion strings."""
    message = obj.get("Message")
    if isinstance(message, str) and clean_text(message):
        return message
    properties = obj.get("Properties")
    values = []
    for prop in properties if isinstance(properties, list) else []:
        value = prop.get("Value") if isinstance(prop, dict) else prop
        if isinstance(value, str):
            values.append(value)
    return " ".join(values)


def to_record(obj: dict[str, Any]) -> Record | None:
    """None for a record of another provider (the server's filter should never let one through)."""
    provider = obj.get("ProviderName")
    if isinstance(provider, str) and clean_text(provider).casefold() != PROVIDER.casefold():
        return None
    when = obj["TimeCreated"].timestamp()
    return Record(obj["RecordId"], obj["Id"], when, meaning_of(obj["Id"], obj.get("Level"), _text(obj)))


def take_in(cursor: RemoteCursor, tally: Tally, records: list[Record], *, counted: bool,
            log: logging.Logger | logging.LoggerAdapter, refreshed: bool = False) -> None:
    """Add one answer's records to the cursor and the tally (pure: no I/O). ``refreshed``: the query
    asked again for every record in ``cursor.newest``."""
    records = sorted(records, key=lambda r: r.record_id)
    again = {key: record_id for key, record_id in cursor.newest.items()} if refreshed else {}
    by_id = {r.record_id: r for r in records}
    same: set[int] = set()
    for key, record_id in again.items():
        record = by_id.get(record_id)
        if record is not None and record.meaning is not None and record.meaning.key == key:
            same.add(record_id)
            tally.set_time(key, record.when)  # the same record: the server's answer is authoritative
        elif key != "im_initialised":
            tally.set_time(key, 0.0)  # gone from the log: no longer the newest failure it holds
            del cursor.newest[key]
    fresh = [r for r in records if r.record_id not in same]
    if cursor.high is not None and any(r.record_id <= cursor.high and r.record_id not in cursor.remembered
                                       for r in fresh):
        log.info("RecordId went back below %d: the %s log was cleared; reading it from its new records",
                 cursor.high, LOG_NAME)
        cursor.high, cursor.remembered = None, {}
    for record in fresh:
        if record.record_id in cursor.remembered:
            continue
        cursor.remember(record.record_id)
        if record.meaning is not None and tally.observe(record.meaning, record.when, counted):
            cursor.newest[record.meaning.key] = record.record_id


def _query(ctx: CollectContext, filter_xpath: str, max_events: int, oldest: bool = False) -> list[Record]:
    parameters: dict[str, Any] = {"LogName": LOG_NAME, "FilterXPath": filter_xpath, "MaxEvents": max_events}
    if oldest:
        parameters["Oldest"] = True
    answer = ctx.run("windows", CMDLET, parameters, EVENT_RECORD, accept_error_ids=(NO_EVENTS,))
    return [r for r in (to_record(obj) for obj in answer.objects) if r is not None]


def read(ctx: CollectContext, cursor: RemoteCursor, tally: Tally, lookback: float, max_events: int) -> None:
    """One run. An answer changes the cursor and the tally only once its call succeeded (the first
    run's two calls both), so a failed call leaves them as the last good answer left them."""
    sent = time.time()
    if cursor.queried_at is None:
        recent = _query(ctx, xpath(f"TimeCreated[timediff(@SystemTime) <= {int(lookback * 1000)}]"), max_events)
        if not any(r.event_id == 112 for r in recent):
            recent += _query(ctx, xpath("EventID=112"), 1)
        take_in(cursor, tally, recent, counted=False, log=ctx.log)
        cursor.queried_at = sent
        return
    since = cursor.queried_at - CLOCK_SKEW_SECONDS
    for page in range(MAX_PAGES_PER_RUN):
        records = _query(ctx, new_records_filter(cursor, since, refresh=page == 0), max_events, oldest=True)
        take_in(cursor, tally, records, counted=True, log=ctx.log, refreshed=page == 0)
        if len(records) < max_events or ctx.deadline.remaining() < 2:
            break
    else:
        ctx.log.info("more than %d new %s events; the rest are read at the next runs",
                     MAX_PAGES_PER_RUN * max_events, PROVIDER)
    cursor.queried_at = sent
