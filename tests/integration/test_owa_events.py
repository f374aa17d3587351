"""Check E1 (collector owa_events) through the real path: remote against the simulator, files in real folders.

Remote: the real JobRunner and pypsrp client against the simulated estate, scenarios switched live.
Files: a real temporary folder watched by watchdog (native and polling observers), .evtx files
written by tests/evtx_writer.py as Windows lays them out, and real damaged files from the shared
collection of Windows event logs.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from collectors.owa_events import files as owa_events_files
from collectors.owa_events.collector import OwaEventsCollector
from collectors.owa_events.reasons import IM_FAILURE_REASONS
from collectors.owa_events.remote import NO_EVENTS
from collectors.sources.folder_watch import POLLING_INTERVAL_SECONDS, FolderWatch
from collectors.sources.normalize import parse_dotnet_datetime
from collectors.sources.remoting import SessionPool
from tests.conftest import SHARED_EVTX, SIM_PASSWORD
from tests.evtx_writer import (
    EventSpec,
    EvtxWriter,
    background_event,
    corrupt_chunk,
    owa_event,
)
from tests.integration.collector_harness import Job
from tests.simulator.helpers import pool_for, props, run

LAST_112 = "lync_owa_im_initialised_timestamp_seconds"
EVENTS = "lync_owa_event_log_events_total"
FAILURES = "lync_owa_im_initialisation_failures_total"
LAST_FAILURE = "lync_owa_im_initialisation_last_failure_timestamp_seconds"
RECORDS_SKIPPED = "lync_owa_evtx_records_skipped_total"
CHUNKS_SKIPPED = "lync_owa_evtx_chunks_skipped_total"
FILES_UNREADABLE = "lync_owa_evtx_files_unreadable"
OTHER_COMPUTER = "lync_owa_evtx_other_computer_events_total"
EX01 = "ex01.contoso.com"


@pytest.fixture(autouse=True)
def _password(password_env):
    return password_env


# --- helpers --------------------------------------------------------------------------------------

class SpySessions(SessionPool):
    """The real session pool, noting every call's parameters and answer."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, dict[str, Any], Any]] = []

    def get(self, spec):
        session = super().get(spec)
        if not getattr(session, "spied", False):
            real_run = session.run

            def spied_run(cmdlet, parameters, shape, deadline, **kwargs):
                answer = real_run(cmdlet, parameters, shape, deadline, **kwargs)
                self.calls.append((cmdlet, dict(parameters or {}), answer))
                return answer

            session.run = spied_run
            session.spied = True
        return session

    def take(self) -> list[tuple[str, dict[str, Any], Any]]:
        calls, self.calls = self.calls, []
        return calls


def counters(job: Job) -> dict[str, dict[tuple[str, ...], float]]:
    return {name: job.values(name) for name in (EVENTS, FAILURES, RECORDS_SKIPPED, CHUNKS_SKIPPED)}


def failures(job: Job) -> dict[str, float]:
    return {labels[0]: value for labels, value in job.values(FAILURES).items()}


def last_failures(job: Job) -> dict[str, float]:
    return {labels[0]: value for labels, value in job.values(LAST_FAILURE).items()}


def events(job: Job) -> dict[str, float]:
    return {labels[0]: value for labels, value in job.values(EVENTS).items()}


def last_112(job: Job) -> float | None:
    return job.values(LAST_112).get(())


def owa_worker_start(sim) -> float:
    """When ex01's MSExchangeOWAAppPool worker started, read from the estate the way an operator would."""
    with pool_for(sim, EX01, password=SIM_PASSWORD) as pool:
        procs = run(pool, "Get-CimInstance", ClassName="Win32_Process", Filter="Name='w3wp.exe'").output
    (owa,) = [props(p) for p in procs if '-ap "MSExchangeOWAAppPool"' in props(p)["CommandLine"]]
    return parse_dotnet_datetime(owa["CreationDate"]).timestamp()


def assert_quiet(job: Job) -> None:
    """No failure signal at all: every reason at 0, no failure time."""
    assert failures(job) == dict.fromkeys(IM_FAILURE_REASONS, 0.0)
    assert last_failures(job) == {}  # a time of something never seen is absent, not 0
    assert events(job)["im_failure"] == 0


@pytest.fixture
def remote_job(sim, tmp_path):
    jobs: list[Job] = []

    def make(target: str = "ex01", settings: dict[str, Any] | None = None, sessions=None) -> Job:
        job = Job(sim, tmp_path, OwaEventsCollector(), target, settings, sessions=sessions)
        jobs.append(job)
        return job

    yield make
    for job in jobs:
        job.close()


# --- remote ---------------------------------------------------------------------------------------

def test_healthy_has_a_112_after_the_worker_start_and_no_failure(sim, remote_job):
    for target in ("ex01", "ex02"):
        job = remote_job(target)
        assert job.run().up, job.status
        assert last_112(job) is not None
        assert events(job) == {"im_initialised": 0, "im_failure": 0}  # history is not counted
        assert_quiet(job)
        # The evtx_* series belong to the .evtx reader: with source remote they do not exist.
        for name in (RECORDS_SKIPPED, CHUNKS_SKIPPED, FILES_UNREADABLE, OTHER_COMPUTER):
            assert job.values(name) == {}, name
    ex01 = remote_job("ex01")
    ex01.run()
    assert last_112(ex01) > owa_worker_start(sim)


def test_no_event_112_leaves_the_last_112_before_the_worker_start(sim, remote_job):
    job = remote_job()
    job.run()
    healthy_112 = last_112(job)
    assert healthy_112 > owa_worker_start(sim)
    sim.set_scenario("no-event-112")
    assert job.run().up
    assert last_112(job) < owa_worker_start(sim)
    assert abs(last_112(job) - healthy_112) < 600  # the same event: the pool restarted, no 112 followed
    assert events(job) == {"im_initialised": 0, "im_failure": 0}
    assert_quiet(job)
    fresh = remote_job()  # a job that starts in the broken state sees the same
    assert fresh.run().up
    assert last_112(fresh) < owa_worker_start(sim)
    assert_quiet(fresh)


def test_ucma_missing_failures_are_counted_by_reason(sim, remote_job):
    job = remote_job()
    job.run()
    sim.set_scenario("ucma-missing")
    assert job.run().up
    assert failures(job) == {**dict.fromkeys(IM_FAILURE_REASONS, 0.0), "ucma_missing": 2.0}
    assert events(job) == {"im_initialised": 0, "im_failure": 2}
    newest_failure = last_failures(job)["ucma_missing"]
    assert abs(newest_failure - (time.time() - 70 * 60)) < 300  # the event's own time (1h10m ago)
    assert set(last_failures(job)) == {"ucma_missing"}
    assert last_112(job) < owa_worker_start(sim)
    job.run()  # nothing new: counters stay
    assert failures(job)["ucma_missing"] == 2.0
    sim.set_scenario("healthy")  # healed: the failures are no longer in the log
    job.run()
    assert failures(job)["ucma_missing"] == 2.0 and events(job)["im_failure"] == 2  # counters never decrease
    assert last_failures(job) == {}  # the failures left the log: their times are gone, the 112 is newer
    assert last_112(job) > owa_worker_start(sim)


def test_a_job_started_during_failures_knows_their_time_but_does_not_count_history(sim, remote_job):
    sim.set_scenario("ucma-missing")
    job = remote_job()
    assert job.run().up
    assert failures(job) == dict.fromkeys(IM_FAILURE_REASONS, 0.0)
    assert last_failures(job)["ucma_missing"] > time.time() - 2 * 3600


def test_the_second_run_fetches_only_new_records(sim, remote_job):
    spy = SpySessions()
    job = remote_job(sessions=spy)
    job.run()
    first = spy.take()
    assert [cmdlet for cmdlet, _, _ in first] == ["Get-WinEvent", "Get-WinEvent"]  # look-back, then newest 112
    for _, params, _ in first:
        assert "Provider[@Name='MSExchange OWA']" in params["FilterXPath"] and params["MaxEvents"] >= 1
    assert "timediff(@SystemTime)" in first[0][1]["FilterXPath"]  # the first run is bounded in time
    seen = {obj["RecordId"] for _, _, answer in first for obj in answer.objects}
    (initialised,) = [obj["RecordId"] for _, _, answer in first for obj in answer.objects if obj["Id"] == 112]
    high = max(seen)

    job.run()
    (call,) = spy.take()
    assert call[1]["Oldest"] is True and f"EventRecordID > {high}" in call[1]["FilterXPath"]
    # Nothing new: the answer is the newest 112 re-read by its RecordId, nothing else.
    assert [obj["RecordId"] for obj in call[2].objects] == [initialised]

    sim.set_scenario("ucma-missing")
    job.run()
    (call,) = spy.take()
    new = [obj for obj in call[2].objects if obj["RecordId"] != initialised]
    assert len(new) == 2 and all(obj["RecordId"] > high for obj in new)
    assert all(obj["ProviderName"] == "MSExchange OWA" for obj in call[2].objects)
    newest_failure = max(obj["RecordId"] for obj in new)
    job.run()
    (call,) = spy.take()
    # Again nothing new: the newest 112 and the newest failure, re-read by RecordId.
    assert sorted(obj["RecordId"] for obj in call[2].objects) == [initialised, newest_failure]
    assert failures(job)["ucma_missing"] == 2


def test_no_matching_events_is_an_empty_answer_not_an_error(sim, remote_job):
    spy = SpySessions()
    job = remote_job("ex02", sessions=spy)  # its only OWA event is older than the 24h look-back
    assert job.run().up
    lookback, newest = spy.take()
    assert lookback[2].objects == [] and lookback[2].error_ids() == {NO_EVENTS}
    assert len(newest[2].objects) == 1 and last_112(job) is not None
    short = remote_job("ex01", {"lookback": "10m"})
    assert short.run().up and last_112(short) is not None


def test_a_failing_call_is_a_typed_error_and_counters_survive_it(sim, remote_job):
    job = remote_job()
    job.run()
    sim.set_scenario("ucma-missing")
    job.run()
    sim.set_fault(EX01, "terminating_error", cmdlet="Get-WinEvent")
    status = job.run()
    assert not status.up and status.error_count("command") == 1
    sim.clear_faults()
    assert job.run().up
    assert failures(job)["ucma_missing"] == 2  # not lost, not counted again


# --- files ----------------------------------------------------------------------------------------

NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def ago(**kw) -> dt.datetime:
    return NOW - dt.timedelta(**kw)


def export(path: Path, specs: list[EventSpec], first_xml_id: int, computer: str = "EX01.contoso.com") -> None:
    """An exported log holding ``specs``, XML EventRecordIDs from ``first_xml_id``, header numbers from 1;
    written beside and renamed into place, as a copy job would."""
    writer = EvtxWriter(computer=computer, first_record_number=1, xml_record_id_offset=first_xml_id - 1)
    writer.add_all(specs)
    partial = path.with_name(path.name + ".partial")
    writer.write(partial)
    os.replace(partial, path)


def log_events(start: dt.datetime, count: int, owa: dict[int, str | None], seed: int = 1) -> list[EventSpec]:
    """``count`` events a minute apart; positions in ``owa`` are OWA events (None: a 112, else a reason)."""
    rnd = random.Random(seed)
    specs = []
    for i in range(count):
        when = start + dt.timedelta(minutes=i)
        specs.append(owa_event(when, owa[i]) if i in owa else background_event(rnd, when))
    return specs


def run_until(job: Job, condition, what: str, timeout: float = 30.0) -> None:
    """Run the job until ``condition()`` holds; the watcher needs a moment to report a change."""
    end = time.monotonic() + timeout
    while True:
        status = job.run()
        if status.up and condition():
            return
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {timeout:.0f}s; up={status.up} {status.last_error!r} {counters(job)}")
        time.sleep(0.2)


@pytest.fixture
def files_job(sim, tmp_path):
    jobs: list[Job] = []

    def make(folder: Path, observer: str = "native", **extra: Any) -> Job:
        settings = {"source": "files", "path": str(folder), "observer": observer, **extra}
        job = Job(sim, tmp_path, OwaEventsCollector(), "ex01", settings)
        jobs.append(job)
        return job

    yield make
    for job in jobs:
        job.close()


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_files_new_replaced_and_corrupt(sim, tmp_path, files_job, observer, caplog):
    caplog.set_level(logging.INFO)
    folder = tmp_path / "exports"
    folder.mkdir()
    first = log_events(ago(hours=3), 40, {5: None, 20: "certificate_expired"})
    export(folder / "Application-1.evtx", first, first_xml_id=1001)
    commands_before = sim.stats()[EX01]["commands"]
    job = files_job(folder, observer)

    assert job.run().up
    assert last_112(job) == first[5].time.timestamp()
    assert last_failures(job)["certificate_expired"] == first[20].time.timestamp()
    assert events(job) == {"im_initialised": 0, "im_failure": 0}  # what was there at the start is history

    # A new export appears: its events are counted.
    second = log_events(ago(minutes=30), 20, {3: None, 10: "thumbprint_empty"}, seed=2)
    export(folder / "Application-2.evtx", second, first_xml_id=1041)
    run_until(job, lambda: events(job) == {"im_initialised": 1, "im_failure": 1}, "the new file's events")
    assert failures(job)["thumbprint_empty"] == 1
    assert last_112(job) == second[3].time.timestamp()

    # The first export is replaced by a longer one that starts one record later (so its bytes differ
    # and its cursor resets): only the event it adds is new.
    longer = first[1:] + log_events(ago(minutes=10), 5, {2: "ucma_missing"}, seed=3)
    export(folder / "Application-1.evtx", longer, first_xml_id=1002)
    run_until(job, lambda: failures(job)["ucma_missing"] == 1, "the longer file's new event")
    assert "Application-1.evtx was replaced" in caplog.text
    assert failures(job)["certificate_expired"] == 0 and events(job) == {"im_initialised": 1, "im_failure": 2}

    # A damaged copy (noise over records of one chunk) is counted, and the rest of it still read.
    damaged_specs = log_events(ago(minutes=5), 900, {1: "server_name_empty", 899: "certificate_not_found"}, seed=4)
    clean = folder / "damaged.tmp"
    export(clean, damaged_specs, first_xml_id=9001)
    (folder / "Damaged.EVTX").write_bytes(corrupt_chunk(clean.read_bytes(), 1, "records"))
    clean.unlink()
    run_until(job, lambda: job.values(RECORDS_SKIPPED)[()] >= 1 and failures(job)["certificate_not_found"] == 1,
              "the damaged file's readable events and its skipped records")
    assert failures(job)["server_name_empty"] == 1

    # Not an event log at all: counted as unreadable, the job stays up.
    (folder / "junk.evtx").write_bytes(b"not an event log" * 500)
    run_until(job, lambda: job.values(FILES_UNREADABLE)[()] == 1, "the unreadable file")

    settled = counters(job)
    for _ in range(3):
        assert job.run().up
    assert counters(job) == settled  # nothing is counted twice
    assert sim.stats()[EX01]["commands"] == commands_before  # files mode never calls the server


def test_a_share_of_every_servers_exports_counts_each_targets_own(tmp_path, files_job):
    """ex02's Event 112 must not hide that ex01 has none: the records' Computer decides."""
    folder = tmp_path / "share"
    folder.mkdir()
    job = files_job(folder)  # target ex01, host ex01.contoso.com
    anyone = files_job(folder, computer="*")
    by_short_name = files_job(folder, computer="EX02")
    for each in (job, anyone, by_short_name):
        assert each.run().up
    export(folder / "EX02-Application.evtx", log_events(ago(minutes=20), 12, {2: None, 7: "ucma_missing"}), 1,
           computer="EX02.contoso.com")
    run_until(job, lambda: job.values(OTHER_COMPUTER)[()] == 2, "ex02's two events, left out")
    assert events(job) == {"im_initialised": 0, "im_failure": 0} and last_112(job) is None
    run_until(anyone, lambda: events(anyone) == {"im_initialised": 1, "im_failure": 1}, "every computer's events")
    run_until(by_short_name, lambda: failures(by_short_name)["ucma_missing"] == 1, "EX02's events by short name")
    assert anyone.values(OTHER_COMPUTER)[()] == 0

    export(folder / "EX01-Application.evtx", log_events(ago(minutes=10), 12, {4: None}, seed=7), 1)  # same ids
    run_until(job, lambda: events(job)["im_initialised"] == 1, "ex01's own Event 112")
    assert failures(job)["ucma_missing"] == 0 and job.values(OTHER_COMPUTER)[()] == 2  # counted once
    run_until(by_short_name, lambda: by_short_name.values(OTHER_COMPUTER)[()] == 1, "ex01's event, left out")


@pytest.mark.skipif(not SHARED_EVTX.is_dir() and not os.environ.get("CI"), reason=f"{SHARED_EVTX} is absent")
def test_real_damaged_files_are_counted_not_fatal(tmp_path, files_job):
    folder = tmp_path / "exports"
    folder.mkdir()
    job = files_job(folder)
    assert job.run().up
    # Copied into the test's own folder (never into the repository): 7 chunks with a bad signature,
    # and a wrapped log with 3 damaged records.
    shutil.copy(SHARED_EVTX / "sysmon-dirty-header.evtx", folder / "sysmon.evtx")
    shutil.copy(SHARED_EVTX / "wrapped-with-bad-chunk-magic.evtx", folder / "wrapped.evtx")
    run_until(job, lambda: job.values(CHUNKS_SKIPPED)[()] == 7 and job.values(RECORDS_SKIPPED)[()] == 3,
              "the damaged chunks and records")
    os.utime(folder / "sysmon.evtx")  # touched: rescanned, its bad chunks are not counted again
    for _ in range(3):
        assert job.run().up
    assert job.values(CHUNKS_SKIPPED)[()] == 7 and job.values(RECORDS_SKIPPED)[()] == 3
    assert events(job) == {"im_initialised": 0, "im_failure": 0} and job.values(FILES_UNREADABLE)[()] == 0


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_only_new_or_changed_files_are_rescanned(tmp_path, files_job, monkeypatch, observer):
    folder = tmp_path / "exports"
    folder.mkdir()
    export(folder / "old.evtx", log_events(ago(hours=2), 30, {3: None}), 1)
    export(folder / "current.evtx", log_events(ago(hours=1), 30, {3: None}, seed=5), 101)
    scanned: list[str] = []
    real_scan = owa_events_files.scan_file

    def spy(path, *args, **kwargs):
        scanned.append(os.path.basename(path))
        return real_scan(path, *args, **kwargs)

    monkeypatch.setattr(owa_events_files, "scan_file", spy)
    job = files_job(folder, observer)
    assert job.run().up  # the first pass reads every file
    scanned.clear()
    for _ in range(3):  # reading the files does not make them "changed"
        time.sleep(POLLING_INTERVAL_SECONDS / 2)
        job.run()
    assert scanned == []
    grown = log_events(ago(hours=1), 30, {3: None}, seed=5) + log_events(ago(minutes=2), 5, {1: None}, seed=6)
    export(folder / "current.evtx", grown, 101)
    run_until(job, lambda: events(job)["im_initialised"] == 1, "the changed file's new 112")
    assert set(scanned) == {"current.evtx"}


def test_without_a_watcher_every_file_is_rescanned(tmp_path, files_job, monkeypatch):
    def refuse(self):
        raise OSError("inotify watch limit reached")

    monkeypatch.setattr(FolderWatch, "start", refuse)
    folder = tmp_path / "exports"
    folder.mkdir()
    job = files_job(folder)
    assert job.run().up and job.runner.state.watch is None
    export(folder / "new.evtx", log_events(ago(minutes=20), 10, {4: "certificate_no_private_key"}), 501)
    run_until(job, lambda: failures(job)["certificate_no_private_key"] == 1, "the new file, by a full rescan")


def test_a_dead_watcher_is_replaced_and_what_happened_meanwhile_is_read(tmp_path, files_job, caplog):
    folder = tmp_path / "exports"
    folder.mkdir()
    job = files_job(folder)
    job.run()
    dead = job.runner.state.watch
    dead.stop()  # as if its thread had died
    export(folder / "meanwhile.evtx", log_events(ago(minutes=4), 6, {2: "certificate_not_yet_valid"}), 1)
    with caplog.at_level(logging.WARNING):
        assert job.run().up
    assert "folder watcher" in caplog.text and "stopped" in caplog.text
    assert failures(job)["certificate_not_yet_valid"] == 1  # read by the full pass of the new watcher
    replacement = job.runner.state.watch
    assert replacement is not dead and replacement.running


def test_the_watcher_is_stopped_by_close_and_a_missing_folder_fails_the_run(tmp_path, files_job):
    folder = tmp_path / "exports"
    job = files_job(folder)
    status = job.run()
    assert not status.up and status.error_count("unreachable") == 1 and str(folder) in status.last_error
    folder.mkdir()
    export(folder / "a.evtx", log_events(ago(hours=1), 5, {2: None}), 1)
    assert job.run().up and last_112(job) is not None
    watch = job.runner.state.watch
    assert isinstance(watch, FolderWatch) and watch.running
    job.close()
    assert job.runner.state.watch is None and not watch.running


def test_a_full_pass_catches_what_a_watcher_missed(tmp_path, files_job, monkeypatch):
    folder = tmp_path / "exports"
    folder.mkdir()
    job = files_job(folder)
    job.run()
    monkeypatch.setattr(FolderWatch, "take_changes", lambda self: set())  # a watcher that hears nothing
    export(folder / "late.evtx", log_events(ago(minutes=3), 5, {1: "thumbprint_empty"}), 1)
    for _ in range(3):
        job.run()
    assert failures(job)["thumbprint_empty"] == 0
    monkeypatch.setattr(owa_events_files, "FULL_PASS_SECONDS", 0.0)
    job.run()
    assert failures(job)["thumbprint_empty"] == 1
