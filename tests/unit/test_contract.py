"""The collector contract: the facts board jobs share, and the typed state every job starts with."""

from __future__ import annotations

import threading

from collectors.contract import Collector, CollectorSettings, Fact, FactsBoard, NoState
from collectors.registry import ALL_COLLECTORS

ANSWER: Fact[tuple[str, ...]] = Fact("answer")


def test_a_fact_counts_only_while_fresh():
    board = FactsBoard()
    assert board.fresh(ANSWER) is None and board.wait_for_fresh(ANSWER, 0) is None
    board.post(ANSWER, ("old",), lifetime=-1)
    assert board.fresh(ANSWER) is None
    board.post(ANSWER, ("ex01.contoso.com",), lifetime=600)
    posted = board.fresh(ANSWER)
    assert posted is not None and posted.value == ("ex01.contoso.com",)
    assert board.wait_for_fresh(ANSWER, 5) == posted


def test_a_fact_of_none_is_a_fact():
    # "The CMS has no hosting provider" is news an Edge job must act on, not the absence of news.
    board = FactsBoard()
    board.post(Fact[None]("nothing"), None, lifetime=600)
    posted = board.fresh(Fact[None]("nothing"))
    assert posted is not None and posted.value is None


def test_a_waiting_reader_wakes_when_the_fact_is_posted():
    board = FactsBoard()
    timer = threading.Timer(0.2, board.post, args=(ANSWER, ("late",), 600))
    timer.start()
    try:
        posted = board.wait_for_fresh(ANSWER, 30)
    finally:
        timer.cancel()
    assert posted is not None and posted.value == ("late",)


def test_boards_share_nothing():
    one, other = FactsBoard(), FactsBoard()
    one.post(ANSWER, ("x",), lifetime=600)
    assert other.fresh(ANSWER) is None


def test_every_collector_starts_each_job_with_its_own_typed_state():
    for cls in ALL_COLLECTORS:
        collector = cls()
        first, second = collector.new_state(), collector.new_state()
        assert isinstance(first, cls.state_model) and first is not second, cls.name
        assert issubclass(cls.settings_model, CollectorSettings), cls.name


def test_a_collector_without_state_gets_no_state():
    class Plain(Collector[CollectorSettings, NoState]):
        name = "plain"
        roles = frozenset({"lync_edge"})

    assert isinstance(Plain().new_state(), NoState)
