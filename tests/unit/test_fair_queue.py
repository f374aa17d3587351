"""Fair queues between clients (exporter.fair_queue) and the bcrypt checks of basic authentication
that use them (exporter.basic_auth): a flood from one client delays another by one turn, not by the
flood. Real threads and real bcrypt at the lowest cost; orders are asserted, never times."""

from __future__ import annotations

import threading

import bcrypt
import pytest

from exporter.basic_auth import BasicAuth
from exporter.fair_queue import FairLimiter, RoundRobinQueue

WAIT = 20.0


def test_items_come_out_round_robin_between_keys_and_in_order_within_one():
    queue: RoundRobinQueue[str] = RoundRobinQueue()
    for n in range(4):
        queue.put("flood", f"flood-{n}")
    queue.put("prometheus", "scrape")
    queue.put("person", "page")
    taken = [queue.get(timeout=0) for _ in range(6)]
    assert taken == ["flood-0", "scrape", "page", "flood-1", "flood-2", "flood-3"]
    assert len(queue) == 0 and queue.get(timeout=0) is None and queue.take_nowait() is None


def test_close_wakes_a_waiting_get_with_none():
    queue: RoundRobinQueue[int] = RoundRobinQueue()
    got: list[object] = []
    waiter = threading.Thread(target=lambda: got.append(queue.get()))
    waiter.start()
    queue.close()
    waiter.join(WAIT)
    assert not waiter.is_alive() and got == [None]


def test_a_limiter_admits_waiters_round_robin_by_key_and_passes_each_slot_on():
    limiter = FairLimiter(1)
    order: list[str] = []
    holder_in, release_holder = threading.Event(), threading.Event()

    def hold() -> None:
        with limiter.slot("first"):
            holder_in.set()
            release_holder.wait(WAIT)

    def take(key: str, name: str) -> None:
        with limiter.slot(key):
            order.append(name)

    threads = [threading.Thread(target=hold)]
    threads[0].start()
    assert holder_in.wait(WAIT)
    # Queue them one at a time, so their arrival order is known: four from the flood, then one good login.
    for key, name in [("flood", "f1"), ("flood", "f2"), ("flood", "f3"), ("flood", "f4"), ("prometheus", "good")]:
        before = limiter.waiting
        thread = threading.Thread(target=take, args=(key, name))
        thread.start()
        threads.append(thread)
        while limiter.waiting == before:  # queued: the slot is held, so it cannot have run
            threading.Event().wait(0.001)
    release_holder.set()
    for thread in threads:
        thread.join(WAIT)
    assert order == ["f1", "good", "f2", "f3", "f4"]  # second, not last behind the flood
    assert limiter.waiting == 0


def test_a_limiter_needs_a_slot():
    with pytest.raises(ValueError):
        FairLimiter(0)


# --- basic authentication ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hashes() -> dict[str, bytes]:
    return {"prometheus": bcrypt.hashpw(b"right", bcrypt.gensalt(rounds=4))}


def test_a_limiter_lets_in_at_most_its_slots():
    limiter = FairLimiter(2)
    inside, most = 0, 0
    lock, go = threading.Lock(), threading.Event()

    def work(n: int) -> None:
        nonlocal inside, most
        with limiter.slot(f"client-{n}"):
            with lock:
                inside += 1
                most = max(most, inside)
            go.wait(WAIT)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    while limiter.waiting < 4:  # two inside, holding their slots until go; four queued
        threading.Event().wait(0.001)
    with lock:
        assert inside == 2
    go.set()
    for thread in threads:
        thread.join(WAIT)
    assert most == 2 and inside == 0 and limiter.waiting == 0


def test_concurrent_wrong_guesses_all_fail_and_a_right_password_still_passes(hashes):
    auth = BasicAuth(hashes, bcrypt_slots=2)
    results: list[bool] = []
    guessers = [threading.Thread(target=lambda n=n: results.append(auth.verify("prometheus", f"wrong-{n}", f"10.0.0.{n}")))
                for n in range(12)]
    for thread in guessers:
        thread.start()
    for thread in guessers:
        thread.join(WAIT)
    assert results == [False] * 12
    assert auth.verify("prometheus", "right", "10.1.1.1") is True
    assert auth.verify("nobody", "right", "10.1.1.1") is False  # checked against the dummy hash, as slow as a real one


def test_a_good_login_is_cached_and_a_wrong_one_never_is(hashes):
    auth = BasicAuth(hashes, bcrypt_slots=1)
    assert auth.verify("prometheus", "right") is True
    held = threading.Event()
    release = threading.Event()

    def hold_the_only_slot() -> None:
        with auth._bcrypt_slots.slot("other"):
            held.set()
            release.wait(WAIT)

    holder = threading.Thread(target=hold_the_only_slot)
    holder.start()
    assert held.wait(WAIT)
    assert auth.verify("prometheus", "right") is True  # from the cache: no bcrypt slot needed
    release.set()
    holder.join(WAIT)
    assert auth.verify("prometheus", "wrong") is False
    assert auth.check_header("Basic cHJvbWV0aGV1czpyaWdodA==", client="10.0.0.1") is True  # prometheus:right
