"""Check E2 (IM log folder exists and grows) through the real paths.

Remote: the collector through the real JobRunner and pypsrp against the simulator; the simulator
grows InstantMessaging_2.LOG over time, so the written-bytes counter grows between runs.
Local: watchdog observers (native and polling) on real temporary folders; the state must follow
every change within seconds (polled with generous timeouts, never timed).
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Callable, TypeVar

import pytest

from collectors.im_log_folder.accounting import FolderView
from collectors.im_log_folder.collector import ImLogFolderCollector
from collectors.im_log_folder.local_folder import LocalFolder
from simulator.scenario import scenario_names
from tests.integration.collector_harness import Job

PRESENT = "lync_owa_im_log_folder_present"
PARENT_PRESENT = "lync_owa_im_log_parent_folder_present"
FILES = "lync_owa_im_log_files"
BYTES = "lync_owa_im_log_bytes"
NEWEST = "lync_owa_im_log_newest_write_timestamp_seconds"
WRITTEN = "lync_owa_im_log_written_bytes_total"
IM_FOLDER = r"C:\Program Files\Microsoft\Exchange Server\V15\Logging\OWA\InstantMessaging"
EX01_LOG_BYTES = 10485760 + 204800  # InstantMessaging_1.LOG + _2.LOG at the simulator's start
WAIT_SECONDS = 30.0  # generous: a slow shared machine must not fail these

T = TypeVar("T")


def wait_for(read: Callable[[], T], ok: Callable[[T], bool], what: str, timeout: float = WAIT_SECONDS) -> T:
    end = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what}: still {value!r} after {timeout:g}s")
        time.sleep(0.05)


def value(job: Job, metric: str) -> float | None:
    return job.values(metric).get((), None)


def folder_metrics(job: Job) -> dict[str, float | None]:
    return {m: value(job, m) for m in (PRESENT, PARENT_PRESENT, FILES, BYTES, NEWEST, WRITTEN)}


@pytest.fixture
def jobs(sim, tmp_path, password_env):
    """Makes Jobs (each with its own configuration file) and closes them at the end."""
    made: list[Job] = []

    def make(target: str = "ex01", settings: dict | None = None) -> Job:
        config_dir = tmp_path / f"job-{len(made)}"
        config_dir.mkdir()
        job = Job(sim, config_dir, ImLogFolderCollector(), target, settings)
        made.append(job)
        return job

    yield make
    for job in made:
        job.close()


# --- remote mode ----------------------------------------------------------------------------------


def test_healthy_folder_is_present_and_its_counter_grows(sim, jobs):
    job = jobs("ex01")
    commands_before = sim.stats()["ex01.contoso.com"]["commands"]
    status = job.run()
    assert status.up, status.last_error
    first = folder_metrics(job)
    assert first[PRESENT] == 1 and first[PARENT_PRESENT] == 1 and first[FILES] == 2
    assert first[BYTES] >= EX01_LOG_BYTES
    assert first[WRITTEN] == 0  # the first listing is the baseline
    assert abs(time.time() - first[NEWEST]) < 600  # InstantMessaging_2.LOG was written seconds ago
    runs = [1]

    def run_again() -> float:
        runs[0] += 1
        assert job.run().up
        return value(job, WRITTEN)

    grown = wait_for(run_again, lambda written: written > 0, "written bytes on a growing log")
    assert 0 < grown < 1_000_000  # growth of one file, not the folder counted again
    assert value(job, BYTES) == first[BYTES] + grown
    # The install path is read from the registry once; every later run is one Get-ChildItem.
    assert sim.stats()["ex01.contoso.com"]["commands"] - commands_before == runs[0] + 1


def test_im_log_missing_is_absent_not_a_failure_and_healthy_again_is_present(sim, jobs):
    job = jobs("ex01")
    history: list[float] = []
    assert job.run().up
    history.append(value(job, WRITTEN))

    sim.set_scenario("im-log-missing")
    status = job.run()
    assert status.up, status.last_error  # a missing folder is a finding, not a failed run
    missing = folder_metrics(job)
    assert missing[PRESENT] == 0 and missing[FILES] == 0 and missing[BYTES] == 0 and missing[NEWEST] is None
    assert missing[PARENT_PRESENT] == 1  # Logging\OWA is still there
    history.append(missing[WRITTEN])

    sim.set_scenario("healthy")
    assert job.run().up
    back = folder_metrics(job)
    assert back[PRESENT] == 1 and back[FILES] == 2 and back[NEWEST] is not None
    history.append(back[WRITTEN])
    assert history == sorted(history), f"the counter went backwards: {history}"
    assert history[-1] >= history[0] + EX01_LOG_BYTES  # files that reappear count as written


def test_apppool_stopped_keeps_the_folder_but_stops_its_growth(sim, jobs):
    sim.set_scenario("apppool-stopped")
    ex01, ex02 = jobs("ex01"), jobs("ex02")
    assert ex01.run().up and ex02.run().up

    def run_both() -> float:
        assert ex01.run().up and ex02.run().up
        return value(ex02, WRITTEN)

    # ex02's log still grows: once it has grown, time enough passed for ex01's to grow too, had it.
    wait_for(run_both, lambda written: written >= 50, "ex02's written bytes")
    stopped = folder_metrics(ex01)
    assert stopped[PRESENT] == 1 and stopped[FILES] == 2
    assert stopped[WRITTEN] == 0
    assert time.time() - stopped[NEWEST] > 30 * 60  # last written when the pool stopped


def test_only_im_log_missing_removes_the_folder(sim, jobs):
    ex01, ex02 = jobs("ex01"), jobs("ex02")
    for name in scenario_names():
        sim.set_scenario(name)
        assert ex01.run().up and ex02.run().up, name
        assert value(ex01, PRESENT) == (0 if name == "im-log-missing" else 1), name
        assert value(ex01, PARENT_PRESENT) == 1, name
        assert value(ex02, PRESENT) == 1, name


def test_a_configured_path_needs_no_registry_read(sim, jobs):
    job = jobs("ex01", {"path": IM_FOLDER.lower()})
    before = sim.stats()["ex01.contoso.com"]["commands"]
    assert job.run().up and value(job, PRESENT) == 1 and value(job, FILES) == 2
    assert sim.stats()["ex01.contoso.com"]["commands"] - before == 1


def test_a_configured_path_that_is_not_there(sim, jobs):
    job = jobs("ex01", {"path": r"D:\Exchange\Logging\OWA\InstantMessaging"})
    assert job.run().up
    assert value(job, PRESENT) == 0 and value(job, PARENT_PRESENT) == 0


@pytest.mark.parametrize("fault", ["non_terminating_error", "terminating_error"])
def test_an_unexpected_error_is_a_failure_not_an_absent_folder(sim, jobs, fault):
    job = jobs("ex01")
    sim.set_fault("ex01.contoso.com", fault, cmdlet="Get-ChildItem")
    status = job.run()
    assert not status.up and status.last_error_kind == "command"
    assert value(job, PRESENT) is None


# --- local mode: watchdog on real folders ---------------------------------------------------------


def write(path: Path, size: int, mode: str = "ab") -> None:
    with open(path, mode) as handle:
        handle.write(b"x" * size)


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_watcher_follows_create_append_rotate_delete_and_recreate(tmp_path, observer):
    """Events alone keep the state current: refresh() (the per-run reconcile) is never called here."""
    parent = tmp_path / "OWA"
    parent.mkdir()
    folder = parent / "InstantMessaging"
    watch = LocalFolder(str(folder), observer, poll_interval=0.2)
    seen: list[FolderView] = []

    def expect(present: bool, files: int, size: int, written: int, what: str) -> None:
        def read() -> FolderView:
            view = watch.view()
            seen.append(view)
            return view

        wait_for(read, lambda v: (v.present, v.files, v.bytes, v.written_bytes) == (present, files, size, written),
                 f"{observer}: {what}")

    try:
        assert watch.start() == FolderView(False, True, 0, 0, None, 0)
        folder.mkdir()
        write(folder / "im.LOG", 100)
        expect(True, 1, 100, 100, "folder created with a log")
        write(folder / "im.LOG", 50)
        expect(True, 1, 150, 150, "log appended")
        (folder / "im.LOG").rename(folder / "im.1.LOG")
        write(folder / "im.LOG", 30)
        expect(True, 2, 180, 180, "log rotated by rename")
        write(folder / "im.LOG", 10, mode="wb")
        expect(True, 2, 160, 190, "log truncated and rewritten")
        (folder / "im.1.LOG").unlink()
        expect(True, 1, 10, 190, "old log deleted")
        shutil.rmtree(folder)
        expect(False, 0, 0, 190, "folder removed")
        folder.mkdir()
        write(folder / "im.LOG", 40)
        expect(True, 1, 40, 230, "folder recreated")
        write(folder / "im.LOG", 5)
        expect(True, 1, 45, 235, "new log appended")
        shutil.rmtree(folder)  # and back at once, before the watcher has seen it go
        folder.mkdir()
        write(folder / "im.LOG", 3)
        expect(True, 1, 3, 238, "folder replaced in one go")
        write(folder / "im.LOG", 4)
        expect(True, 1, 7, 242, "the replaced folder's log appended")
        assert watch.view().newest_write is not None
    finally:
        watch.stop()
    assert not watch.running
    written = [v.written_bytes for v in seen]
    assert written == sorted(written), "the written-bytes counter went backwards"


@pytest.mark.parametrize("observer", ["native", "polling"])
def test_local_mode_through_the_collector(sim, jobs, tmp_path, observer):
    folder = tmp_path / "share" / "OWA" / "InstantMessaging"
    folder.mkdir(parents=True)
    write(folder / "InstantMessaging_1.LOG", 100)
    job = jobs("ex01", {"mode": "local", "path": str(folder), "observer": observer, "poll_interval": "200ms"})
    commands_before = sim.stats()["ex01.contoso.com"]["commands"]

    def run() -> dict[str, float | None]:
        status = job.run()
        assert status.up, status.last_error
        return folder_metrics(job)

    first = run()
    assert (first[PRESENT], first[FILES], first[BYTES], first[WRITTEN]) == (1, 1, 100, 0)
    assert abs(time.time() - first[NEWEST]) < 600
    watch = job.runner.state.watch
    assert watch.running

    write(folder / "InstantMessaging_1.LOG", 20)
    wait_for(run, lambda m: m[WRITTEN] == 20 and m[BYTES] == 120, "appended bytes")
    shutil.rmtree(folder)
    gone = wait_for(run, lambda m: m[PRESENT] == 0, "folder removed")
    assert gone[PARENT_PRESENT] == 1 and gone[FILES] == 0 and gone[NEWEST] is None and gone[WRITTEN] == 20
    folder.mkdir()
    write(folder / "InstantMessaging_1.LOG", 7)
    wait_for(run, lambda m: m[PRESENT] == 1 and m[WRITTEN] == 27, "folder recreated")
    assert sim.stats()["ex01.contoso.com"]["commands"] == commands_before  # nothing asked of the server

    job.close()
    assert not watch.running and job.runner.state.watch is None
