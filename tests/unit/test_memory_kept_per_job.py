"""What the runtime keeps per job between runs, which a thousand hosts multiply (issue 16, memory).

A finished run's thread is not kept (an abandoned one is: the next firing must see it running), fresh
jobs share one "no errors" tuple, and targets whose collector sections are equal share one frozen
settings model, while a target's own override and every target's own error stay its own.
"""

from __future__ import annotations

import threading
import time

from collectors.contract import Collector as CollectorBase
from collectors.contract import CollectorSettings, MetricSpec, NoState, Sample
from exporter.config import JobSpec, Target
from exporter.config.model import Credential
from exporter.scheduler import JobRunner
from exporter.state import SnapshotStore
from tests.unit.test_config import BASE, assert_problem, line_of, load, problems

UP = MetricSpec("lync_owa_test_up", "gauge", "1 when the test collector ran.", ())


class Sleepy(CollectorBase[CollectorSettings, NoState]):
    """Returns one sample after ``delay`` seconds; ``release`` ends a run early."""

    name = "sleepy"
    roles = frozenset({"lync_frontend"})
    metrics = (UP,)

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.release = threading.Event()

    def collect(self, ctx):
        self.release.wait(self.delay)
        return [Sample(UP, (), 1.0)]


def runner(collector: Sleepy, timeout: float, store: SnapshotStore | None = None) -> JobRunner:
    target = Target("fe01", "fe01.contoso.com", frozenset({"lync_frontend"}), Credential("c", "u", password=None))
    spec = JobSpec(collector.name, target, CollectorSettings(interval=60, timeout=timeout))
    return JobRunner(collector, spec, store or SnapshotStore(), sessions=None)  # type: ignore[arg-type]


def test_a_finished_run_leaves_no_thread_behind():
    store = SnapshotStore()
    job = runner(Sleepy(0.0), timeout=5, store=store)
    job()
    assert job._thread is None
    (status,) = store.jobs()
    assert status.up and status.runs == 1


def test_an_abandoned_run_keeps_its_thread_so_the_next_firing_is_skipped():
    store = SnapshotStore()
    collector = Sleepy(30.0)
    job = runner(collector, timeout=0.2, store=store)
    job()  # waits its deadline plus the handover grace, then abandons the run
    try:
        assert job._thread is not None and job._thread.is_alive()
        job()
        (status,) = store.jobs()
        assert status.runs == 2 and not status.up
        assert status.last_error == "previous run is still running past its deadline; run skipped"
        assert status.error_count("timeout") == 2
    finally:
        collector.release.set()
    job._thread.join(5)
    collector.release.clear()
    collector.delay = 0.0
    job()  # the abandoned run ended: the next one runs, and its thread is let go
    assert job._thread is None
    assert store.jobs()[0].up


def test_fresh_jobs_share_one_errors_tuple_and_count_their_own_failures():
    store = SnapshotStore()
    store.register("a", "t1", 60)
    store.register("a", "t2", 60)
    first, second = store.jobs()
    assert first.errors is second.errors
    assert all(count == 0 for _, count in first.errors)
    store.record_failure("a", "t1", "timeout", "slow", 1.0)
    failed, untouched = store.jobs()
    assert failed.error_count("timeout") == 1
    assert untouched.error_count("timeout") == 0 and untouched.errors is second.errors


def _edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, old
    return text.replace(old, new)


THREE_FRONT_ENDS = _edit(BASE, "  - name: ex01\n", """\
  - name: fe02
    host: fe02.contoso.com
    roles: [lync_frontend]
    credential: monitoring
  - name: fe03
    host: fe03.contoso.com
    roles: [lync_frontend]
    credential: monitoring
    collectors:
      cms_replication:
        interval: 60s
  - name: ex01
""")


def test_targets_with_equal_sections_share_one_settings_model(tmp_path):
    config = load(tmp_path, THREE_FRONT_ENDS)
    settings = {job.target.name: job.settings for job in config.jobs() if job.collector == "cms_replication"}
    assert settings["fe01"].interval == 30.0  # its own override
    assert settings["fe02"].interval == 60.0 and settings["fe02"].timeout == 20.0  # the shared section
    # fe03 writes the shared section's value out: the same settings, the same object.
    assert settings["fe03"] is settings["fe02"]
    assert settings["fe01"] is not settings["fe02"]
    by_collector = {}
    for job in config.jobs():
        if job.target.name in ("fe02", "fe03"):
            by_collector.setdefault(job.collector, set()).add(id(job.settings))
    assert all(len(ids) == 1 for ids in by_collector.values()), by_collector


def test_every_target_still_reports_its_own_bad_override(tmp_path):
    text = _edit(THREE_FRONT_ENDS, """\
    host: fe02.contoso.com
    roles: [lync_frontend]
    credential: monitoring
""", """\
    host: fe02.contoso.com
    roles: [lync_frontend]
    credential: monitoring
    collectors:
      cms_replication:
        interval: 10s
""")
    text = _edit(text, "        interval: 60s\n  - name: ex01", "        interval: 10s\n  - name: ex01")
    found = problems(tmp_path, text)
    assert len(found) == 2
    for index in (1, 2):  # fe02, fe03: each at its own section (fe01's is the first with this indent)
        assert_problem(found, f"targets[{index}].collectors.cms_replication.timeout",
                       line_of(text, "      cms_replication:", index + 1),
                       "timeout (20s) must be shorter than interval (10s)")


def test_a_slow_run_is_not_cut_short_by_letting_go_of_threads():
    # The thread is dropped only after the run ended: a run inside its deadline is recorded as before.
    store = SnapshotStore()
    job = runner(Sleepy(0.3), timeout=5, store=store)
    started = time.monotonic()
    job()
    assert time.monotonic() - started >= 0.3
    assert store.jobs()[0].up and job._thread is None
