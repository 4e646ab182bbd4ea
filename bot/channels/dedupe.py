"""Remember which platform event ids were already handled, so each is answered once.

LINE redelivers webhook events and Slack retries events it thinks failed; both resend
the same id (`webhookEventId`, `event_id`). The channels depend only on the `SeenIds`
protocol, so the in-memory default can be swapped for a shared store (a database) when
the service runs in more than one process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol

DEFAULT_MAX_IDS = 10_000
DEFAULT_TTL_SECONDS = 24 * 3600.0  # LINE may redeliver for hours; Slack retries within minutes


class SeenIds(Protocol):
    """A set of handled event ids with one atomic operation."""

    def first_time(self, event_id: str) -> bool:
        """Record the id; True only for the first caller that presents it."""
        ...


class MemorySeenIds:
    """Bounded, thread-safe, in-process `SeenIds`: the oldest ids are forgotten first.

    Bounded by count (memory) and age (an id older than `ttl_seconds` counts as new),
    which is enough for one process; several workers need a shared implementation.
    """

    def __init__(
        self,
        max_ids: int = DEFAULT_MAX_IDS,
        ttl_seconds: float = DEFAULT_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_ids < 1:
            raise ValueError(f"max_ids must be at least 1, got {max_ids}")
        self._max_ids = max_ids
        self._ttl = ttl_seconds
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, event_id: str) -> bool:
        now = self._clock()
        with self._lock:
            self._expire(now)
            if event_id in self._seen:
                return False
            self._seen[event_id] = now
            while len(self._seen) > self._max_ids:
                self._seen.popitem(last=False)
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def _expire(self, now: float) -> None:
        # Insertion order is time order, so expired ids are at the front.
        while self._seen:
            oldest, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl:
                return
            del self._seen[oldest]


class RedisSeenIds:
    """`SeenIds` in Redis, so replicas behind a load balancer answer each event once:
    SET with NX is one atomic step on the server, whichever replica gets there first."""

    def __init__(self, url: str, ttl_seconds: float = DEFAULT_TTL_SECONDS, prefix: str = "faqbot:event:") -> None:
        import redis

        self._redis = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        self._ttl = max(1, int(ttl_seconds))
        self._prefix = prefix

    def first_time(self, event_id: str) -> bool:
        return bool(self._redis.set(self._prefix + event_id, 1, nx=True, ex=self._ttl))


def seen_ids(redis_url: str | None) -> SeenIds:
    """Redis when replicas share state, memory for one process."""
    return RedisSeenIds(redis_url) if redis_url else MemorySeenIds()
