"""Check E1 in files mode when a chunk's slack space holds stale records, and when records are appended.

Through the real job (JobRunner, configuration loader, snapshot store) and the ``owa_events``
collector reading a real folder watched by watchdog. The files are written by tests/evtx_writer.py,
which leaves whole, valid copies of records past a chunk's end-of-data mark as Windows does when it
reuses a chunk: one numbered far above the real records (so a reader that believed it would move its
cursor there and never see a later record), one with the number of a real record (a duplicate).
"""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from collectors.owa_events.collector import OwaEventsCollector
from tests.conftest import SHARED_EVTX
from tests.evtx_writer import EvtxWriter, background_event, owa_event
from tests.integration.collector_harness import Job

EVENTS = "lync_owa_event_log_events_total"
FAILURES = "lync_owa_im_initialisation_failures_total"
LAST_112 = "lync_owa_im_initialised_timestamp_seconds"
RECORDS_SKIPPED = "lync_owa_evtx_records_skipped_total"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


@pytest.fixture
def files_job(sim, tmp_path):
    jobs: list[Job] = []

    def make(folder: Path, **extra: Any) -> Job:
        job = Job(sim, tmp_path, OwaEventsCollector(), "ex01", {"source": "files", "path": str(folder), **extra})
        jobs.append(job)
        return job

    yield make
    for job in jobs:
        job.close()


def events(job: Job) -> dict[str, float]:
    return {labels[0]: value for labels, value in job.values(EVENTS).items()}


def run_until(job: Job, condition, what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while True:
        status = job.run()
        if status.up and condition():
            return
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {timeout:.0f}s; up={status.up} {status.last_error!r} {events(job)}")
        time.sleep(0.2)


def cursor_of(job: Job, path: Path) -> int:
    return job.runner.state.files.cursors[os.fspath(path)].last_record_number


def add_minutes(writer: EvtxWriter, start: dt.datetime, count: int, owa: dict[int, str | None], seed: int):
    rnd = random.Random(seed)
    for i in range(count):
        when = start + dt.timedelta(minutes=i)
        writer.add(owa_event(when, owa[i]) if i in owa else background_event(rnd, when))


def test_stale_records_in_slack_never_move_the_cursor_and_appended_events_are_counted(tmp_path, files_job):
    folder = tmp_path / "exports"
    folder.mkdir()
    path = folder / "Application.evtx"
    writer = EvtxWriter()
    add_minutes(writer, NOW - dt.timedelta(hours=3), 150, {140: None}, seed=1)  # the 112 of the last start
    real_112 = writer.records[140]
    assert real_112.chunk_slot == writer.records[-1].chunk_slot  # in the chunk whose slack is written
    writer.leave_stale_copy(real_112, 9023)  # higher than any real record
    writer.leave_stale_copy(real_112, 100)  # the number of a real record
    writer.write(path)
    job = files_job(folder)

    assert job.run().up
    assert cursor_of(job, path) == 150  # not 9023
    assert job.values(LAST_112)[()] == real_112.spec.time.timestamp()
    assert events(job) == {"im_initialised": 0, "im_failure": 0}  # history at the first run
    assert job.values(RECORDS_SKIPPED)[()] == 0  # stale records are not damage

    # Appended in place, as Windows appends: first into the same chunk (over part of the slack), then
    # into new chunks. A cursor taken from the stale 9023 would skip all of them.
    add_minutes(writer, NOW - dt.timedelta(minutes=50), 30, {5: "certificate_expired", 25: None}, seed=2)
    writer.write(path, append=True)
    run_until(job, lambda: events(job) == {"im_initialised": 1, "im_failure": 1}, "the appended 112 and failure")
    assert job.values(FAILURES)[("certificate_expired",)] == 1
    assert job.values(LAST_112)[()] == writer.records[175].spec.time.timestamp()
    assert cursor_of(job, path) == 180

    grown = len(writer.slots)
    add_minutes(writer, NOW - dt.timedelta(minutes=15), 800, {790: "ucma_missing"}, seed=3)
    assert len(writer.slots) > grown  # the appended records fill new chunks
    writer.write(path, append=True)
    run_until(job, lambda: job.values(FAILURES)[("ucma_missing",)] == 1, "the failure in a new chunk")
    assert cursor_of(job, path) == 980
    assert events(job) == {"im_initialised": 1, "im_failure": 2}
    assert job.values(RECORDS_SKIPPED)[()] == 0
    for _ in range(2):
        assert job.run().up
    assert events(job) == {"im_initialised": 1, "im_failure": 2}  # nothing counted twice


@pytest.mark.skipif(not SHARED_EVTX.is_dir() and not os.environ.get("CI"), reason=f"{SHARED_EVTX} is absent")
def test_real_file_with_stale_records_in_slack_sets_the_cursor_to_its_last_real_record(tmp_path, files_job):
    """slack-high-record-number.evtx: real records 1 to 8, stale ones past the mark numbered up to 9023."""
    folder = tmp_path / "exports"
    folder.mkdir()
    shutil.copy(SHARED_EVTX / "slack-high-record-number.evtx", folder / "sysmon.evtx")
    job = files_job(folder)
    assert job.run().up
    assert cursor_of(job, folder / "sysmon.evtx") == 8
    assert job.values(RECORDS_SKIPPED)[()] == 0
