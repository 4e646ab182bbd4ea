"""The log store on SQLite and on a real PostgreSQL server: the same tests, both back-ends."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import running_postgres

from bot.desk import TOKYO
from bot.store import AskRecord, Feedback, Pick, SqlLogStore, StoreError, SuggestionLog, open_store

NOW = dt.datetime(2026, 11, 30, 10, 15, 30, 123000, tzinfo=TOKYO)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with running_postgres() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlLogStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.sqlite3'}"
    else:
        url = request.getfixturevalue("postgres_url")
    log_store = open_store(url)
    yield log_store
    if request.param == "postgresql":
        from bot.store import metadata

        metadata.drop_all(log_store._db())  # each test starts from an empty database
    log_store.close()


def an_ask(ask_id: str, when: dt.datetime = NOW, **extra: object) -> AskRecord:
    fields: dict[str, object] = {
        "ask_id": ask_id,
        "created_at": when,
        "channel": "web",
        "query": "〔氏名〕と申します。セミナーの資料はもらえますか",
        "decision": "ambiguous",
        "faq_id": None,
        "confidence": 0.41,
        "suggestions": (SuggestionLog("seminar-materials", 0.41), SuggestionLog("seminar-format", 0.22)),
        "latency_ms": 61.5,
        "index_built_at": "2026-11-30T09:00:00+09:00",
        "user_hash": "ab" * 16,
        "masked": frozenset({"name"}),
    }
    fields.update(extra)
    return AskRecord(**fields)  # type: ignore[arg-type]


def test_an_ask_is_read_back_exactly_in_tokyo_time(store: SqlLogStore) -> None:
    record = an_ask("a1")
    store.write([record])
    (back,) = list(store.asks_since())
    assert back == record
    assert back.created_at.utcoffset() == dt.timedelta(hours=9)
    assert store.ask("a1") == record and store.ask("nope") is None
    assert store.ask_exists("a1") and not store.ask_exists("a2")


def test_feedback_and_picks_in_one_batch(store: SqlLogStore) -> None:
    store.write(
        [
            an_ask("a1"),
            Feedback("a1", True, "seminar-materials", NOW),
            Feedback("a1", False, None, NOW + dt.timedelta(seconds=1)),
            Pick("a1", "seminar-materials", "web", NOW),
        ]
    )
    assert [(f.helpful, f.faq_id) for f in store.for_ask("a1")] == [(True, "seminar-materials"), (False, None)]
    assert store.feedback_since()[0].created_at == NOW
    assert store.picks_since() == [Pick("a1", "seminar-materials", "web", NOW)]


def test_since_filters_by_time(store: SqlLogStore) -> None:
    old, new = NOW - dt.timedelta(days=8), NOW - dt.timedelta(hours=1)
    store.write([an_ask("old", old), an_ask("new", new), Feedback("old", True, None, old), Pick("new", "x", "line", new)])
    since = NOW - dt.timedelta(days=7)
    assert [a.ask_id for a in store.asks_since(since)] == ["new"]
    assert [a.ask_id for a in store.asks_since()] == ["old", "new"]
    assert store.feedback_since(since) == [] and len(store.feedback_since()) == 1
    assert len(store.picks_since(since)) == 1


def test_purge_deletes_only_rows_older_than_the_cut_in_every_table(store: SqlLogStore) -> None:
    cut = NOW - dt.timedelta(days=90)
    before, after = cut - dt.timedelta(minutes=1), cut + dt.timedelta(minutes=1)
    store.write(
        [
            an_ask("gone", before),
            an_ask("kept", after),
            Feedback("gone", True, None, before),
            Feedback("kept", False, None, after),
            Pick("gone", "a", "web", before),
            Pick("kept", "b", "web", after),
        ]
    )
    assert store.purge(cut) == 3
    assert [a.ask_id for a in store.asks_since()] == ["kept"]
    assert [f.ask_id for f in store.feedback_since()] == ["kept"]
    assert [p.ask_id for p in store.picks_since()] == ["kept"]
    assert store.purge(cut) == 0


def test_concurrent_writers(store: SqlLogStore) -> None:
    store.write([an_ask("first")])  # the schema exists before the threads race

    def write(n: int) -> None:
        for i in range(10):
            store.write([an_ask(f"t{n}-{i}"), Feedback(f"t{n}-{i}", i % 2 == 0, None, NOW)])

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert len(list(store.asks_since())) == 61 and len(store.feedback_since()) == 60


def test_sqlite_store_creates_its_folder_on_first_use_and_keeps_rows_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "folder" / "log.sqlite3"
    store = open_store(f"sqlite:///{path}")
    assert not path.parent.exists()  # building an app must not touch the disk
    store.write([an_ask("a1")])
    store.close()
    reopened = open_store(f"sqlite:///{path}")
    assert reopened.ask_exists("a1")
    reopened.close()


@pytest.mark.parametrize(
    ("url", "hint"),
    [
        ("var/x.sqlite3", "not a database URL"),
        ("nosuchdb://host/faqbot", "cannot be used"),
        ("postgresql+nosuchdriver://db/faqbot", "cannot be used"),
    ],
)
def test_unusable_database_urls_say_what_to_write(url: str, hint: str) -> None:
    with pytest.raises(StoreError, match=hint) as raised:
        open_store(url)
    assert "sqlite:///" in str(raised.value) or "cannot be used" in str(raised.value)


def test_a_password_in_the_url_is_not_repeated_in_errors() -> None:
    with pytest.raises(StoreError) as raised:
        open_store("postgresql+nosuchdriver://faqbot:hunter2-secret@db/faqbot")
    assert "hunter2-secret" not in str(raised.value)


def test_the_first_uses_from_two_threads_create_the_schema_once(tmp_path: Path) -> None:
    """The writer thread's first purge and a request's first read race at start-up."""
    for attempt in range(5):
        store = open_store(f"sqlite:///{tmp_path / f'race{attempt}.sqlite3'}")
        errors: list[BaseException] = []
        barrier = threading.Barrier(4)

        def first_use() -> None:
            barrier.wait()
            try:
                store.ask_exists("x")
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)

        threads = [threading.Thread(target=first_use) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        store.close()
        assert errors == []
