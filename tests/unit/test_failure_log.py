"""A job's failures reach the log once when they start, on a change of kind, as a rare reminder, and once
when they end; never once per run."""

from __future__ import annotations

import logging

import pytest

from exporter.failure_log import FailureLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def logged(caplog):
    caplog.set_level(logging.DEBUG, logger="test.failures")
    return lambda: [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "test.failures"]


def test_a_failure_that_lasts_is_logged_when_it_starts_as_a_reminder_and_when_it_ends(logged):
    clock = Clock()
    failures = FailureLog(logging.getLogger("test.failures"), remind_every=600, clock=clock)
    for _ in range(60):  # ten minutes of runs every 10 s, the last one just short of the reminder
        failures.failed("unreachable", "connection refused")
        clock.now += 9.9
    clock.now += 0.1 + 6.0  # 600 s after the first line (plus a run)
    failures.failed("unreachable", "connection refused")
    clock.now += 10
    failures.succeeded()
    failures.succeeded()  # a second success says nothing
    assert logged() == [
        ("WARNING", "collector run failed: kind=unreachable connection refused"),
        ("WARNING", "collector still failing: kind=unreachable, 61 failed runs in 600s (59 not logged): "
                    "connection refused"),
        ("INFO", "collector recovered after 61 failed runs in 610s (last failure kind=unreachable)"),
    ]


def test_a_change_of_kind_is_news_and_a_new_failure_after_recovery_starts_again(logged):
    clock = Clock()
    failures = FailureLog(logging.getLogger("test.failures"), remind_every=600, clock=clock)
    failures.failed("timeout", "run exceeded its 8s deadline")
    clock.now += 10
    failures.failed("timeout", "run exceeded its 8s deadline")
    clock.now += 10
    failures.failed("auth", "401 from ex01:5985/wsman")
    clock.now += 10
    failures.succeeded()
    clock.now += 10
    failures.failed("timeout", "run exceeded its 8s deadline")
    assert [message for _, message in logged()] == [
        "collector run failed: kind=timeout run exceeded its 8s deadline",
        "collector run failed: kind=auth (was timeout) 401 from ex01:5985/wsman",
        "collector recovered after 3 failed runs in 30s (last failure kind=auth)",
        "collector run failed: kind=timeout run exceeded its 8s deadline",
    ]
    assert failures.failing


def test_healthy_runs_log_nothing(logged):
    failures = FailureLog(logging.getLogger("test.failures"))
    for _ in range(100):
        failures.succeeded()
    assert logged() == [] and not failures.failing
