"""Micro-batching: requests that wait together share one pass, and nothing is lost."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from bot.embed.batching import MAX_BATCH_TEXTS, MicroBatcher
from bot.types import Matrix


class SlowModel:
    """Rows that name their text, a pass that takes a while, and a record of each pass."""

    def __init__(self, seconds: float = 0.05) -> None:
        self.passes: list[list[str]] = []
        self.seconds = seconds

    def __call__(self, texts: list[str]) -> Matrix:
        self.passes.append(list(texts))
        time.sleep(self.seconds)
        if "boom" in texts:
            raise RuntimeError("model failed")
        return np.array([[float(len(t)), float(sum(map(ord, t)))] for t in texts], dtype=np.float32)


def row(text: str) -> list[float]:
    return [float(len(text)), float(sum(map(ord, text)))]


def test_a_request_alone_runs_at_once() -> None:
    model = SlowModel(0.0)
    batcher = MicroBatcher(model)
    started = time.perf_counter()
    assert batcher.encode(["a", "bb"]).tolist() == [row("a"), row("bb")]
    assert time.perf_counter() - started < 1.0
    assert model.passes == [["a", "bb"]]


def test_requests_that_queue_during_a_pass_share_the_next_one() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model)
    first = batcher.submit(["first"])
    time.sleep(0.01)  # the first pass is running
    waiting = [batcher.submit([f"q{i}", f"q{i}-respelled"]) for i in range(10)]
    assert first.result(timeout=5).tolist() == [row("first")]
    for i, pending in enumerate(waiting):
        assert pending.result(timeout=5).tolist() == [row(f"q{i}"), row(f"q{i}-respelled")]
    assert [len(p) for p in model.passes] == [1, 20]


def test_the_same_text_from_several_requests_is_embedded_once() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model)
    blocker = batcher.submit(["blocker"])
    time.sleep(0.01)
    same = [batcher.submit(["カスハラって何ですか"]) for _ in range(5)]
    blocker.result(timeout=5)
    assert all(p.result(timeout=5).tolist() == [row("カスハラって何ですか")] for p in same)
    assert model.passes[1] == ["カスハラって何ですか"]


def test_a_window_gathers_requests_that_arrive_within_it() -> None:
    model = SlowModel(0.0)
    batcher = MicroBatcher(model, window_ms=200)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: batcher.encode([f"t{i}"]), range(4)))
    assert [r.tolist() for r in results] == [[row(f"t{i}")] for i in range(4)]
    assert len(model.passes) < 4


def test_batches_stop_growing_at_the_limit() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model)
    blocker = batcher.submit(["blocker"])
    time.sleep(0.01)
    pending = [batcher.submit([f"t{i}"]) for i in range(MAX_BATCH_TEXTS + 10)]
    blocker.result(timeout=5)
    assert all(p.result(timeout=5).shape == (1, 2) for p in pending)
    assert max(len(p) for p in model.passes) <= MAX_BATCH_TEXTS


def test_a_failed_pass_fails_every_request_in_it_and_the_next_pass_runs() -> None:
    model = SlowModel()
    batcher = MicroBatcher(model)
    blocker = batcher.submit(["blocker"])
    time.sleep(0.01)
    doomed = [batcher.submit(["boom"]), batcher.submit(["fine"])]
    blocker.result(timeout=5)
    for pending in doomed:
        with pytest.raises(RuntimeError, match="model failed"):
            pending.result(timeout=5)
    assert batcher.encode(["after"]).tolist() == [row("after")]


def test_the_worker_stops_when_the_batcher_is_dropped() -> None:
    """A reload replaces the engine; the old model's thread must not live on."""
    before = {t.name for t in threading.enumerate()}
    batcher = MicroBatcher(SlowModel(0.0), name="dropped-model")
    assert batcher.encode(["x"]).shape == (1, 2)
    assert "faqbot-dropped-model" in {t.name for t in threading.enumerate()} - before
    del batcher
    gc.collect()
    deadline = time.monotonic() + 5
    while "faqbot-dropped-model" in {t.name for t in threading.enumerate()} and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "faqbot-dropped-model" not in {t.name for t in threading.enumerate()}
