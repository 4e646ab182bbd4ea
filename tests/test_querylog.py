"""The query log behind the request path: masking, the background writer, a database that
is down or slow, flushing at shutdown, retention, and the salted hash of a person."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.answer import FaqRef, Reply, Suggestion
from bot.querylog import QueryLog, _Throttled
from bot.store import AskRecord, LogRecord, SqlLogStore, now_tokyo, open_store


def a_reply(ask_id: str = "a1", decision: str = "answered") -> Reply:
    answered = decision == "answered"
    return Reply(
        ask_id=ask_id,
        answered=answered,
        decision=decision,  # type: ignore[arg-type]
        answer="…",
        faq=FaqRef(id="general-definition", question="q", category="総合相談窓口") if answered else None,
        confidence=0.93 if answered else 0.3,
        suggestions=[Suggestion(id="general-scope", question="q2", category="総合相談窓口", confidence=0.31)],
        route=None,
    )


@pytest.fixture()
def store(tmp_path: Path) -> SqlLogStore:
    return open_store(f"sqlite:///{tmp_path / 'log.sqlite3'}")


def record(log: QueryLog, reply: Reply, query: str = "カスハラって何", **extra: object) -> None:
    log.record_ask(reply, query=query, channel="web", latency_ms=12.345, index_built_at="2026-11-30T09:00:00+09:00", **extra)  # type: ignore[arg-type]


def test_an_ask_is_stored_masked_with_its_decision(store: SqlLogStore) -> None:
    log = QueryLog(store, salt=None)
    log.start()
    record(log, a_reply(), "山田と申します。090-1234-5678に電話ください。カスハラって何？")
    assert log.flush()
    (row,) = list(store.asks_since())
    assert "山田" not in row.query and "090" not in row.query
    assert row.query == "〔氏名〕と申します。〔電話番号〕に電話ください。カスハラって何？"
    assert row.masked == {"name", "phone"}
    assert (row.decision, row.faq_id, row.confidence, row.latency_ms) == ("answered", "general-definition", 0.93, 12.35)
    assert [(s.id, s.confidence) for s in row.suggestions] == [("general-scope", 0.31)]
    assert row.index_built_at == "2026-11-30T09:00:00+09:00" and row.channel == "web"
    assert row.created_at.utcoffset() == dt.timedelta(hours=9)
    log.close()


def test_a_person_is_kept_only_as_a_salted_hash(store: SqlLogStore) -> None:
    salted = QueryLog(store, salt="a-long-random-salt-value")
    other = QueryLog(store, salt="another-long-random-salt")
    user = "U0123456789abcdef"
    digest = salted.user_hash("line", user)
    assert digest and user not in digest and len(digest) == 32
    assert digest == salted.user_hash("line", user), "repeat visits can be counted"
    assert digest != salted.user_hash("slack", user) and digest != other.user_hash("line", user)
    assert QueryLog(store, salt=None).user_hash("line", user) is None, "without a salt, nothing is kept"
    salted.start()
    record(salted, a_reply(), user=user)
    salted.close()
    assert next(iter(store.asks_since())).user_hash == salted.user_hash("web", user)


def test_feedback_on_a_queued_ask_is_known_before_it_is_written(store: SqlLogStore) -> None:
    log = QueryLog(store, salt=None)  # writer not started: everything stays queued
    record(log, a_reply("queued"))
    assert log.knows("queued") and not log.knows("never-asked")
    assert list(store.asks_since()) == []


def test_shutdown_flushes_what_is_queued(store: SqlLogStore) -> None:
    log = QueryLog(store, salt=None)
    for i in range(1200):
        record(log, a_reply(f"a{i}"))
    log.record_feedback("a1", True)
    log.record_pick("a2", "general-scope", "web")
    log.start()
    log.close()
    assert len(list(store.asks_since())) == 1200
    assert len(store.feedback_since()) == 1 and len(store.picks_since()) == 1
    assert log.stats.written == 1202 and log.stats.dropped == 0


class FlakyStore:
    """The real store behind a switch that makes writes fail like a database that is down,
    or block like one that hangs."""

    def __init__(self, inner: SqlLogStore, failures: int = 0) -> None:
        self.inner = inner
        self.failures = failures
        self.attempts = 0
        self.gate = threading.Event()
        self.gate.set()

    def write(self, records: Sequence[LogRecord]) -> None:
        self.attempts += 1
        self.gate.wait(30)
        if self.failures > 0:
            self.failures -= 1
            raise ConnectionError("database is down")
        self.inner.write(records)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


def test_a_failed_write_is_counted_and_retried_until_it_lands(store: SqlLogStore) -> None:
    flaky = FlakyStore(store, failures=2)
    log = QueryLog(flaky, salt=None)  # type: ignore[arg-type]
    log.start()
    record(log, a_reply("a1"))
    assert log.flush(timeout=20)
    assert log.stats.failed_writes == 2 and log.stats.written == 1 and log.stats.dropped == 0
    assert store.ask_exists("a1")
    log.close()


def test_a_hanging_database_never_blocks_the_caller_and_overflow_is_counted(store: SqlLogStore) -> None:
    hanging = FlakyStore(store)
    hanging.gate.clear()
    log = QueryLog(hanging, salt=None, capacity=10)  # type: ignore[arg-type]
    log.start()
    done = threading.Event()

    def ask_many() -> None:
        for i in range(50):
            record(log, a_reply(f"a{i}"))
        done.set()

    threading.Thread(target=ask_many, daemon=True).start()
    assert done.wait(10), "recording blocked while the database hangs"
    assert log.stats.dropped >= 50 - 10 - 1  # one batch is in the writer's hands
    hanging.gate.set()
    assert log.flush(timeout=20)
    assert log.stats.written + log.stats.dropped == 50
    log.close()


def test_failures_are_logged_at_most_once_a_minute(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    throttled = _Throttled(60.0, clock=lambda: now[0])
    with caplog.at_level(logging.ERROR, logger="bot.querylog"):
        for t in (0.0, 1.0, 30.0, 59.0, 61.0, 62.0):
            now[0] = t
            throttled("write failed")
    assert [r.getMessage() for r in caplog.records] == ["write failed", "write failed (3 more since the last report)"]


def test_the_writer_purges_old_rows_when_it_starts(store: SqlLogStore) -> None:
    old = now_tokyo() - dt.timedelta(days=91)
    keep = now_tokyo() - dt.timedelta(days=89)
    rows = [AskRecord(f"{n}", when, "api", "q", "fallback", None, 0.1, (), 5.0) for n, when in (("old", old), ("keep", keep))]
    store.write(rows)
    log = QueryLog(store, salt=None, retention_days=90)
    log.start()
    assert log.flush()
    log.close()
    assert [a.ask_id for a in store.asks_since()] == ["keep"] and log.stats.purged == 1


def test_logging_off_keeps_no_asks_but_still_knows_them_for_feedback(store: SqlLogStore) -> None:
    log = QueryLog(store, salt=None, record_asks=False)
    log.start()
    record(log, a_reply("a1"))
    log.record_feedback("a1", False)
    log.close()
    assert list(store.asks_since()) == [] and len(store.feedback_since()) == 1
    assert log.knows("a1")
