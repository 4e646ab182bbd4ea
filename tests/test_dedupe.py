"""The seen-event-id set shared by LINE (redeliveries) and Slack (retries)."""

from __future__ import annotations

import threading

import pytest

from bot.channels.dedupe import MemorySeenIds, SeenIds


def test_an_id_is_new_only_once() -> None:
    seen: SeenIds = MemorySeenIds()
    assert seen.first_time("a") is True
    assert seen.first_time("a") is False
    assert seen.first_time("b") is True


def test_bounded_the_oldest_id_is_forgotten_first() -> None:
    seen = MemorySeenIds(max_ids=3)
    for key in "abcd":
        assert seen.first_time(key)
    assert len(seen) == 3
    assert seen.first_time("a") is True  # evicted, so new again
    assert seen.first_time("d") is False


def test_ids_expire_after_the_ttl() -> None:
    now = [0.0]
    seen = MemorySeenIds(ttl_seconds=60, clock=lambda: now[0])
    assert seen.first_time("a")
    now[0] = 59.0
    assert not seen.first_time("a")
    now[0] = 61.0
    assert seen.first_time("a")


def test_concurrent_callers_get_exactly_one_first_time() -> None:
    seen = MemorySeenIds()
    results: list[bool] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def call() -> None:
        barrier.wait()
        outcome = seen.first_time("same-event")
        with lock:
            results.append(outcome)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=5)
    assert sorted(results) == [False] * 15 + [True]


def test_a_size_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="max_ids"):
        MemorySeenIds(max_ids=0)
