"""Micro-batching: concurrent requests share one model pass.

A model pass over 16 short texts costs little more than over one, so under load the
texts of every request that queued while the last pass ran are embedded together, on
the one thread that owns the model (as text-embeddings-inference does). A request alone
pays nothing: its pass starts at once, unless a window is set to wait for company.
Identical texts in a batch (the same question from several people) are embedded once.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

from bot.types import Matrix

# Larger batches only add padding; a request over the limit still runs whole.
MAX_BATCH_TEXTS = 64


@dataclass
class _Job:
    texts: list[str]
    done: Future[Matrix] = field(default_factory=Future)


class MicroBatcher:
    """One worker thread that runs `encode` on the texts of all waiting jobs at once.

    The thread stops when the batcher is garbage collected (an engine replaced by a
    reload), after the jobs already queued.
    """

    def __init__(self, encode: Callable[[list[str]], Matrix], *, window_ms: float = 0.0, name: str = "embed") -> None:
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        thread = threading.Thread(
            target=_work, args=(self._queue, encode, window_ms / 1000.0), name=f"faqbot-{name}", daemon=True
        )
        thread.start()
        weakref.finalize(self, self._queue.put, None)

    def submit(self, texts: Sequence[str]) -> Future[Matrix]:
        job = _Job(list(texts))
        if not job.texts:
            job.done.set_result(np.zeros((0, 0), dtype=np.float32))
        else:
            self._queue.put(job)
        return job.done

    def encode(self, texts: Sequence[str]) -> Matrix:
        return self.submit(texts).result()


def _work(jobs: queue.SimpleQueue[_Job | None], encode: Callable[[list[str]], Matrix], window: float) -> None:
    while True:
        first = jobs.get()
        if first is None:
            return
        batch, stop = _gather(jobs, first, window)
        _run(encode, batch)
        if stop:
            return


def _gather(jobs: queue.SimpleQueue[_Job | None], first: _Job, window: float) -> tuple[list[_Job], bool]:
    """The first job and whatever else is waiting (or arrives within `window` seconds)."""
    batch = [first]
    count = len(first.texts)
    deadline = time.monotonic() + window
    while count < MAX_BATCH_TEXTS:
        try:
            remaining = deadline - time.monotonic()
            job = jobs.get(timeout=remaining) if remaining > 0 else jobs.get_nowait()
        except queue.Empty:
            break
        if job is None:
            return batch, True
        batch.append(job)
        count += len(job.texts)
    return batch, False


def _run(encode: Callable[[list[str]], Matrix], batch: list[_Job]) -> None:
    distinct = list(dict.fromkeys(text for job in batch for text in job.texts))
    try:
        vectors = encode(distinct)
    except BaseException as exc:  # every waiting request gets the error, none hangs
        for job in batch:
            job.done.set_exception(exc)
        return
    row = {text: i for i, text in enumerate(distinct)}
    for job in batch:
        job.done.set_result(vectors[[row[text] for text in job.texts]])
