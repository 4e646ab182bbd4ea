"""The query log on the request path: mask, queue, and write in the background.

A request only masks the query and puts a record on a bounded queue; one writer thread
drains it in batches into the `LogStore`. A database that is down or slow therefore
never costs an answer: a failed batch is retried while the queue holds what arrives
meanwhile, records that find the queue full are dropped, and both are counted and
logged at most once a minute. Shutdown flushes what is queued, within a time bound.
The writer also purges rows past the retention period, once a day.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import hmac
import logging
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.answer import Reply
from bot.config import Settings
from bot.privacy import mask
from bot.store import AskRecord, Feedback, LogRecord, LogStore, Pick, SuggestionLog, now_tokyo, open_store
from bot.types import EntryId

if TYPE_CHECKING:
    from bot.engine import Engine

log = logging.getLogger(__name__)

BATCH_SIZE = 500
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
PURGE_EVERY_SECONDS = 24 * 3600.0
RECENT_ASK_IDS = 100_000


class _Throttled:
    """Log a recurring problem at most once per `every` seconds, with how often it happened."""

    def __init__(self, every: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._every = every
        self._clock = clock
        self._last: float | None = None
        self._suppressed = 0

    def __call__(self, message: str, *args: object) -> None:
        now = self._clock()
        if self._last is not None and now - self._last < self._every:
            self._suppressed += 1
            return
        extra = f" ({self._suppressed} more since the last report)" if self._suppressed else ""
        log.error(message + extra, *args)
        self._last, self._suppressed = now, 0


@dataclass
class LogStats:
    """Counters for /readyz and the metrics: what was written, failed and dropped."""

    written: int = 0
    failed_writes: int = 0
    dropped: int = 0
    purged: int = 0


class QueryLog:
    """Records asks, feedback and picks without ever blocking the request path."""

    def __init__(
        self,
        store: LogStore,
        *,
        salt: str | None,
        record_asks: bool = True,
        retention_days: int = 90,
        capacity: int = 10_000,
        purge_every: float = PURGE_EVERY_SECONDS,
    ) -> None:
        self.store = store
        self.record_asks = record_asks
        self.retention = dt.timedelta(days=retention_days)
        self.stats = LogStats()
        self._salt = salt.encode() if salt else None
        self._queue: queue.Queue[LogRecord | None] = queue.Queue(maxsize=capacity)
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._purge_every = purge_every
        self._report_failure = _Throttled()
        self._report_drop = _Throttled()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # ---- the request path --------------------------------------------------------------

    def user_hash(self, channel: str, user: str | None) -> str | None:
        """A keyed hash of a person's platform id: repeat visits can be counted, the id not
        recovered. Without a salt nothing about the person is kept."""
        if not user or self._salt is None:
            return None
        return hmac.new(self._salt, f"{channel}:{user}".encode(), hashlib.sha256).hexdigest()[:32]

    def record_ask(
        self,
        reply: Reply,
        *,
        query: str,
        channel: str,
        latency_ms: float,
        index_built_at: str | None,
        user: str | None = None,
    ) -> None:
        self.remember(reply.ask_id)
        if not self.record_asks:
            return
        masked = mask(query)
        self._put(
            AskRecord(
                ask_id=reply.ask_id,
                created_at=now_tokyo(),
                channel=channel,
                query=masked.text,
                decision=reply.decision,
                faq_id=reply.faq.id if reply.faq else None,
                confidence=reply.confidence,
                suggestions=tuple(SuggestionLog(s.id, s.confidence) for s in reply.suggestions),
                latency_ms=round(latency_ms, 2),
                index_built_at=index_built_at,
                user_hash=self.user_hash(channel, user),
                masked=frozenset(masked.kinds),
            )
        )

    def record_feedback(self, ask_id: str, helpful: bool, faq_id: EntryId | None = None) -> Feedback:
        record = Feedback(ask_id, helpful, faq_id, now_tokyo())
        self._put(record)
        return record

    def record_pick(self, ask_id: str, faq_id: EntryId, channel: str) -> Pick:
        record = Pick(ask_id, faq_id, channel, now_tokyo())
        self._put(record)
        return record

    def knows(self, ask_id: str) -> bool:
        """Whether an ask with this id was answered: by this process lately (it may still be
        queued), or by any replica sharing the database. May raise the store's errors."""
        with self._recent_lock:
            if ask_id in self._recent:
                return True
        return self.record_asks and self.store.ask_exists(ask_id)

    def remember(self, ask_id: str) -> None:
        """Know this ask for feedback at once, before its record is even queued."""
        with self._recent_lock:
            self._recent[ask_id] = None
            if len(self._recent) > RECENT_ASK_IDS:
                self._recent.popitem(last=False)

    def _put(self, record: LogRecord) -> None:
        try:
            self._queue.put_nowait(record)
        except queue.Full:
            self.stats.dropped += 1
            self._report_drop("query log queue is full (database down or slow): %d records dropped so far", self.stats.dropped)

    # ---- the writer thread -------------------------------------------------------------

    @property
    def queued(self) -> int:
        return self._queue.qsize()

    def counts(self) -> dict[str, int]:
        return {**dataclasses.asdict(self.stats), "queued": self.queued}

    def start(self) -> None:
        if self._thread is None:
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="query-log-writer", daemon=True)
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Flush what is queued (for at most `timeout` seconds) and stop the writer."""
        if self._thread is None:
            return
        self._stopping.set()
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:
            pass
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("query log: %d records not written at shutdown (database unreachable)", self.queued)
        self._thread = None

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything queued so far is written (or given up); False on time-out."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    def _run(self) -> None:
        next_purge = time.monotonic()
        while True:
            if time.monotonic() >= next_purge:
                self.purge_old()
                next_purge = time.monotonic() + self._purge_every
            try:
                first = self._queue.get(timeout=min(60.0, max(0.1, next_purge - time.monotonic())))
            except queue.Empty:
                continue
            batch, done = self._drain(first)
            if batch:
                self._write(batch)
            for _ in range(len(batch) + done):
                self._queue.task_done()
            if done:
                return

    def _drain(self, first: LogRecord | None) -> tuple[list[LogRecord], bool]:
        """The first record and whatever else is queued, up to a batch; True at the stop mark."""
        if first is None:
            return [], True
        batch = [first]
        while len(batch) < BATCH_SIZE:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                return batch, True
            batch.append(item)
        return batch, False

    def _write(self, batch: list[LogRecord]) -> None:
        """Write one batch, retrying with back-off; given up only when stopping."""
        for attempt in range(len(RETRY_SECONDS) + 1):
            try:
                self.store.write(batch)
                self.stats.written += len(batch)
                return
            except Exception as exc:  # noqa: BLE001 (any driver error: count it, never crash the writer)
                self.stats.failed_writes += 1
                self._report_failure("query log write failed (%s); %d records waiting", type(exc).__name__, len(batch) + self.queued)
                if self._stopping.is_set() or attempt == len(RETRY_SECONDS):
                    break
                if self._stopping.wait(RETRY_SECONDS[attempt]):
                    continue
        self.stats.dropped += len(batch)

    def purge_old(self, now: dt.datetime | None = None) -> int:
        """Delete rows older than the retention period; failures are counted, not raised."""
        before = (now or now_tokyo()) - self.retention
        try:
            deleted = self.store.purge(before)
        except Exception as exc:  # noqa: BLE001
            self.stats.failed_writes += 1
            self._report_failure("query log purge failed (%s)", type(exc).__name__)
            return 0
        self.stats.purged += deleted
        if deleted:
            log.info("query log: purged %d rows older than %s", deleted, before.date())
        return deleted


def timed_answer(engine: Engine, query: str) -> tuple[Reply, float]:
    """The reply and how long it took, in milliseconds."""
    started = time.perf_counter()
    reply = engine.answerer.ask(query)
    return reply, (time.perf_counter() - started) * 1000


def ask_recorded(
    engine: Engine, query_log: QueryLog | None, query: str, *, channel: str, user: str | None = None
) -> Reply:
    """Answer a query and log it, for the chat channels (the HTTP route logs after its
    response is sent, see bot.api.routes.ask)."""
    reply, latency_ms = timed_answer(engine, query)
    if query_log is not None:
        query_log.record_ask(
            reply, query=query, channel=channel, latency_ms=latency_ms, index_built_at=engine.index_built_at, user=user
        )
    return reply


def open_query_log(settings: Settings, store: LogStore | None = None) -> QueryLog:
    """The query log the settings ask for (its store from FAQBOT_DATABASE_URL unless given)."""
    return QueryLog(
        store if store is not None else open_store(settings.database_url),
        salt=settings.log_salt.get_secret_value() if settings.log_salt else None,
        record_asks=settings.query_log,
        retention_days=settings.log_retention_days,
        capacity=settings.log_queue_size,
    )
