"""Request rate limits, shared by the HTTP API and the chat channels.

The `limits` library keeps the counters: in memory for one process, or in Redis
(`FAQBOT_REDIS_URL`) when replicas share them, so one client is limited across all of
them. LINE and Slack webhooks come from the platforms' servers, so those channels limit
per user id rather than per address.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

RATE_LIMITED_MESSAGE = "ただいまご質問が集中しています。恐れ入りますが、{seconds}秒ほどおいてから、もう一度お送りください。"


class RateLimiter:
    """Every limit in `FAQBOT_RATE_LIMIT` ("30/minute;500/day"), per key, shared through
    the storage URL (memory:// or redis://)."""

    def __init__(self, spec: str, storage_url: str = "memory://") -> None:
        self.items: list[RateLimitItem] = [] if spec.strip().lower() == "off" else list(parse_many(spec))
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_url))

    def retry_after(self, key: str) -> int | None:
        """Count one request for `key`; None when allowed, else seconds until it would be."""
        for item in self.items:
            if not self._limiter.hit(item, key):
                reset = self._limiter.get_window_stats(item, key).reset_time
                return max(1, math.ceil(reset - time.time()))
        return None

    def allow(self, key: str) -> bool:
        return self.retry_after(key) is None


def parse_spec(spec: str) -> str:
    """The spec unchanged when `limits` can read it; ValueError naming the notation otherwise."""
    if spec.strip().lower() == "off":
        return spec
    try:
        if not parse_many(spec):
            raise ValueError("no limit")
    except ValueError:
        raise ValueError(
            f"FAQBOT_RATE_LIMIT={spec!r} is not a rate limit; write e.g. '30/minute;500/day', or 'off'"
        ) from None
    return spec
