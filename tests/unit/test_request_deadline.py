"""HTTP timeouts bounded by the deadline of the run on the calling thread (collectors.sources.request_deadline)."""

from __future__ import annotations

import threading
import time

import pytest
from urllib3.util.timeout import Timeout

from collectors.contract import Deadline
from collectors.sources.request_deadline import (
    DeadlinePassed,
    bounded,
    requests_end_by,
    requests_end_within,
)


def test_outside_a_run_the_timeout_is_left_as_given():
    assert bounded((30, 30)) == (30, 30)
    assert bounded(None) is None


def test_inside_a_run_connect_read_and_total_are_cut_to_what_is_left():
    with requests_end_by(Deadline(2.0)):
        cut = bounded((30, 22))
    assert isinstance(cut, Timeout)
    assert 1.5 < cut.total <= 2.0
    assert cut.connect_timeout == cut.total and cut.read_timeout == cut.total
    with requests_end_by(Deadline(60)):
        kept = bounded(3)  # pypsrp's Receive: its OperationTimeout + 2 s, shorter than what is left
    assert kept.connect_timeout == 3 and kept.read_timeout == 3 and 59 < kept.total <= 60
    with requests_end_by(Deadline(5)):
        unset = bounded(None)
    assert 4.5 < unset.read_timeout <= 5


def test_a_request_after_the_deadline_is_refused_as_a_timeout():
    with requests_end_by(Deadline(0.01)):
        time.sleep(0.02)
        with pytest.raises(DeadlinePassed) as refused:
            bounded((30, 30))
    assert isinstance(refused.value, TimeoutError)
    # The stop of a pipeline past its deadline gets a moment of its own, then the run's bound is back.
    with requests_end_by(Deadline(-1)):
        with requests_end_within(1.0):
            assert 0.5 < bounded((30, 30)).total <= 1.0
        with pytest.raises(DeadlinePassed):
            bounded((30, 30))
    assert bounded((30, 30)) == (30, 30)


def test_the_deadline_belongs_to_the_thread_that_set_it():
    seen = []
    with requests_end_by(Deadline(1.0)):
        other = threading.Thread(target=lambda: seen.append(bounded((30, 30))))
        other.start()
        other.join()
        assert bounded((30, 30)).total <= 1.0
    assert seen == [(30, 30)]  # another lane's request is not cut by this run's deadline
