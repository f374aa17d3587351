"""The per-target cap on runs and the backoff of targets whose runs keep running out their deadline.

Times are passed in explicitly (``now``), so every expectation below is exact and nothing sleeps.
"""

from __future__ import annotations

from exporter.host_guard import (
    BACKOFF_AFTER,
    MAX_BACKOFF_SECONDS,
    MAX_RUNS_PER_TARGET,
    Admission,
    TargetGuard,
    TargetGuards,
)


def hang(guard: TargetGuard, now: float, interval: float = 20.0) -> None:
    assert guard.admit(now) is Admission.RUN
    guard.finished(succeeded=False, hogged=True, interval=interval, now=now + 10)


def test_at_most_four_runs_of_one_target_at_once():
    guard = TargetGuard("fe01")
    assert MAX_RUNS_PER_TARGET == 4
    assert [guard.admit(0.0) for _ in range(5)] == [Admission.RUN] * 4 + [Admission.BUSY]
    guard.finished(succeeded=True, hogged=False, interval=20, now=1.0)
    assert guard.in_flight == 3
    assert guard.admit(1.0) is Admission.RUN


def test_two_timeouts_in_a_row_back_off_for_one_interval_then_one_probe():
    guard = TargetGuard("fe01")
    hang(guard, 0.0)
    assert guard.backoff_seconds == 0 and guard.timeouts_in_a_row == 1  # one could be a blip
    hang(guard, 10.0)  # ends at 20.0
    assert BACKOFF_AFTER == 2 and guard.backoff_seconds == 20.0
    assert guard.admit(39.9) is Admission.BACKED_OFF
    assert guard.next_attempt_in(30.0) == 10.0
    assert guard.admit(40.0) is Admission.RUN  # the probe
    assert guard.admit(40.0) is Admission.BUSY  # one probe at a time


def test_runs_already_in_flight_when_the_backoff_starts_do_not_double_it():
    # Four runs of a hung target at once: the first two to hit their deadline start the backoff; the two
    # still in flight hit theirs inside it and prove nothing new. Only the probe after the period may.
    guard = TargetGuard("ex01")
    assert [guard.admit(0.0) for _ in range(4)] == [Admission.RUN] * 4
    for ended in (10.0, 10.1, 10.2, 10.3):
        guard.finished(succeeded=False, hogged=True, interval=20, now=ended)
    assert guard.backoff_seconds == 20.0 and guard.next_attempt_in(10.3) == 19.8
    assert guard.admit(30.1) is Admission.RUN  # the probe, once the period has passed
    guard.finished(succeeded=False, hogged=True, interval=20, now=40.1)
    assert guard.backoff_seconds == 40.0


def backoffs(interval: float, attempts: int = 12) -> list[float]:
    guard = TargetGuard("fe01")
    now = 0.0
    seen = []
    for _ in range(attempts):
        now += guard.next_attempt_in(now)
        assert guard.admit(now) is Admission.RUN
        guard.finished(succeeded=False, hogged=True, interval=interval, now=now + 10)
        now += 10
        seen.append(guard.backoff_seconds)
    return seen


def test_each_further_timeout_doubles_the_backoff_up_to_five_minutes():
    assert MAX_BACKOFF_SECONDS == 300
    seen = backoffs(20.0)
    assert seen[:7] == [0.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0] and set(seen[5:]) == {300.0}
    assert backoffs(60.0)[:5] == [0.0, 60.0, 120.0, 240.0, 300.0]


def test_a_success_ends_the_backoff_and_quick_failures_change_nothing():
    guard = TargetGuard("fe01")
    hang(guard, 0.0)
    hang(guard, 10.0)
    assert guard.admit(40.0) is Admission.RUN
    guard.finished(succeeded=False, hogged=False, interval=20, now=40.1)  # refused at once: not a hang
    assert guard.backoff_seconds == 20.0 and guard.timeouts_in_a_row == 2
    assert guard.admit(40.2) is Admission.RUN  # the backoff has passed: the next firing probes again
    guard.finished(succeeded=True, hogged=False, interval=20, now=40.5)
    assert (guard.backoff_seconds, guard.timeouts_in_a_row, guard.in_flight) == (0.0, 0, 0)
    assert guard.admit(40.6) is Admission.RUN


def test_a_backoff_is_never_shorter_than_the_interval_of_the_job_that_timed_out():
    guard = TargetGuard("ex01")
    hang(guard, 0.0, interval=2.0)
    hang(guard, 1.0, interval=600.0)
    assert guard.backoff_seconds == 600.0  # longer than the bound: one interval, never a run skipped twice


def test_the_gauge_lists_every_target_with_its_backoff():
    guards = TargetGuards()
    hang(guards.for_target("fe01"), 0.0)
    hang(guards.for_target("fe01"), 10.0)
    guards.for_target("ex01")
    (family,) = guards.collect()
    assert family.name == "lync_owa_target_backoff_seconds"
    assert [(s.labels["target"], s.value) for s in family.samples] == [("ex01", 0.0), ("fe01", 20.0)]
    assert guards.for_target("fe01") is guards.for_target("fe01")


def test_a_job_refused_as_busy_is_woken_when_a_run_of_its_target_ends():
    guard = TargetGuard("ex01", max_runs=2)
    woken: list[str] = []
    assert guard.admit(0.0) is Admission.RUN and guard.admit(0.0) is Admission.RUN
    assert guard.admit(0.1, wake=lambda: woken.append("a")) is Admission.BUSY
    wake_b = lambda: woken.append("b")  # noqa: E731
    assert guard.admit(0.2, wake=wake_b) is Admission.BUSY
    assert guard.admit(0.3, wake=wake_b) is Admission.BUSY  # one entry per job however often it fires
    guard.finished(succeeded=True, hogged=False, interval=20, now=1.0)
    assert woken == ["a"]  # the longest-waiting first, one per freed slot
    guard.finished(succeeded=True, hogged=False, interval=20, now=1.1)
    assert woken == ["a", "b"]
    assert guard.in_flight == 0
    assert guard.admit(1.3, wake=wake_b) is Admission.RUN and guard.admit(1.3) is Admission.RUN
    guard.finished(succeeded=True, hogged=False, interval=20, now=1.4)
    assert woken == ["a", "b"]  # b ran on its own schedule meanwhile: not woken for nothing
