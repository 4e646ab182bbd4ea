"""Where the query log and feedback are kept: one small contract, any SQLAlchemy database.

The service only sees `LogStore`; the URL in `FAQBOT_DATABASE_URL` picks the database
(a SQLite file on one machine, PostgreSQL when replicas share one log). Everything that
reaches these tables has been masked by `bot.privacy` already. Times are written in
Asia/Tokyo; SQLite keeps them without an offset, so they are read back as Tokyo time.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from bot.desk import TOKYO
from bot.errors import FaqbotError
from bot.types import EntryId

metadata = sa.MetaData()

asks = sa.Table(
    "asks",
    metadata,
    sa.Column("ask_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("query", sa.Text, nullable=False, comment="masked by bot.privacy"),
    sa.Column("masked", sa.String(64), nullable=False, comment="kinds of personal data masked, comma-separated"),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("faq_id", sa.String(64)),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("suggestions", sa.JSON, nullable=False, comment='[{"id": ..., "confidence": ...}]'),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("index_built_at", sa.String(40)),
    sa.Column("user_hash", sa.String(64), comment="salted hash of the LINE/Slack user or widget session"),
)

feedback = sa.Table(
    "feedback",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ask_id", sa.String(64), nullable=False, index=True),
    sa.Column("helpful", sa.Boolean, nullable=False),
    sa.Column("faq_id", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

picks = sa.Table(
    "picks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("ask_id", sa.String(64), nullable=False, index=True),
    sa.Column("faq_id", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)


class StoreError(FaqbotError):
    """The database URL cannot be used, or the database cannot be reached."""


def now_tokyo() -> dt.datetime:
    return dt.datetime.now(TOKYO)


@dataclass(frozen=True)
class SuggestionLog:
    id: EntryId
    confidence: float


@dataclass(frozen=True)
class AskRecord:
    """One ask as the log keeps it: the query already masked, the person only as a hash."""

    ask_id: str
    created_at: dt.datetime
    channel: str
    query: str
    decision: str
    faq_id: EntryId | None
    confidence: float
    suggestions: tuple[SuggestionLog, ...]
    latency_ms: float
    index_built_at: str | None = None
    user_hash: str | None = None
    masked: frozenset[str] = field(default_factory=frozenset)


@dataclass(frozen=True)
class Feedback:
    """One 👍/👎 on a reply; `faq_id` says which entry was shown, when one was."""

    ask_id: str
    helpful: bool
    faq_id: EntryId | None
    created_at: dt.datetime


@dataclass(frozen=True)
class Pick:
    """A person chose one of the suggestions offered with an ask's reply."""

    ask_id: str
    faq_id: EntryId
    channel: str
    created_at: dt.datetime


LogRecord = AskRecord | Feedback | Pick


class LogStore(Protocol):
    """What the service and the report need from storage."""

    def write(self, records: Sequence[LogRecord]) -> None:
        """Write the records in one transaction (the background writer's batches)."""
        ...

    def ask_exists(self, ask_id: str) -> bool: ...

    def asks_since(self, since: dt.datetime | None = None) -> Iterator[AskRecord]:
        """Asks from `since` on (all without it), oldest first, streamed."""
        ...

    def feedback_since(self, since: dt.datetime | None = None) -> list[Feedback]: ...

    def picks_since(self, since: dt.datetime | None = None) -> list[Pick]: ...

    def purge(self, before: dt.datetime) -> int:
        """Delete asks, feedback and picks older than `before`; the number of rows deleted."""
        ...

    def close(self) -> None: ...


def _tokyo(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=TOKYO) if value.tzinfo is None else value.astimezone(TOKYO)


class SqlLogStore:
    """`LogStore` on any SQLAlchemy URL; the schema is created on first use, so building an
    app never touches the database and a database that is down at start-up is not fatal."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: DbEngine = _create_engine(url)
        self._ready = False
        self._schema_lock = threading.Lock()

    def _db(self) -> DbEngine:
        if not self._ready:
            with self._schema_lock:  # the writer thread and a request may both be first
                if not self._ready:
                    url = self._engine.url
                    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
                        Path(str(url.database)).parent.mkdir(parents=True, exist_ok=True)
                    metadata.create_all(self._engine)
                    self._ready = True
        return self._engine

    def write(self, records: Sequence[LogRecord]) -> None:
        rows: dict[sa.Table, list[dict[str, Any]]] = {asks: [], feedback: [], picks: []}
        for record in records:
            if isinstance(record, AskRecord):
                rows[asks].append(
                    {
                        "ask_id": record.ask_id,
                        "created_at": record.created_at,
                        "channel": record.channel,
                        "query": record.query,
                        "masked": ",".join(sorted(record.masked)),
                        "decision": record.decision,
                        "faq_id": record.faq_id,
                        "confidence": record.confidence,
                        "suggestions": [{"id": s.id, "confidence": s.confidence} for s in record.suggestions],
                        "latency_ms": record.latency_ms,
                        "index_built_at": record.index_built_at,
                        "user_hash": record.user_hash,
                    }
                )
            elif isinstance(record, Feedback):
                rows[feedback].append(
                    {"ask_id": record.ask_id, "helpful": record.helpful, "faq_id": record.faq_id, "created_at": record.created_at}
                )
            else:
                rows[picks].append(
                    {"ask_id": record.ask_id, "faq_id": record.faq_id, "channel": record.channel, "created_at": record.created_at}
                )
        with self._db().begin() as conn:
            for table, values in rows.items():
                if values:
                    conn.execute(table.insert(), values)

    def ask_exists(self, ask_id: str) -> bool:
        with self._db().connect() as conn:
            return conn.execute(sa.select(asks.c.ask_id).where(asks.c.ask_id == ask_id)).first() is not None

    def asks_since(self, since: dt.datetime | None = None) -> Iterator[AskRecord]:
        query = sa.select(asks).order_by(asks.c.created_at)
        if since is not None:
            query = query.where(asks.c.created_at >= since)
        with self._db().connect() as conn:
            for row in conn.execution_options(yield_per=5000).execute(query):
                yield _ask_record(row)

    def feedback_since(self, since: dt.datetime | None = None) -> list[Feedback]:
        rows = self._select(feedback, since)
        return [Feedback(r.ask_id, bool(r.helpful), r.faq_id, _tokyo(r.created_at)) for r in rows]

    def picks_since(self, since: dt.datetime | None = None) -> list[Pick]:
        rows = self._select(picks, since)
        return [Pick(r.ask_id, r.faq_id, r.channel, _tokyo(r.created_at)) for r in rows]

    def for_ask(self, ask_id: str) -> list[Feedback]:
        """The feedback on one ask, oldest first."""
        with self._db().connect() as conn:
            rows = conn.execute(sa.select(feedback).where(feedback.c.ask_id == ask_id).order_by(feedback.c.id)).all()
        return [Feedback(r.ask_id, bool(r.helpful), r.faq_id, _tokyo(r.created_at)) for r in rows]

    def ask(self, ask_id: str) -> AskRecord | None:
        """One logged ask by id (for tests and support)."""
        with self._db().connect() as conn:
            row = conn.execute(sa.select(asks).where(asks.c.ask_id == ask_id)).first()
        return None if row is None else _ask_record(row)

    def _select(self, table: sa.Table, since: dt.datetime | None) -> Sequence[sa.Row[Any]]:
        query = sa.select(table).order_by(table.c.created_at, table.c.id)
        if since is not None:
            query = query.where(table.c.created_at >= since)
        with self._db().connect() as conn:
            return conn.execute(query).all()

    def purge(self, before: dt.datetime) -> int:
        deleted = 0
        with self._db().begin() as conn:
            for table in (asks, feedback, picks):
                deleted += conn.execute(table.delete().where(table.c.created_at < before)).rowcount or 0
        return deleted

    def close(self) -> None:
        """Close pooled connections; a later call opens new ones."""
        self._engine.dispose()


def _ask_record(row: sa.Row[Any]) -> AskRecord:
    return AskRecord(
        ask_id=row.ask_id,
        created_at=_tokyo(row.created_at),
        channel=row.channel,
        query=row.query,
        decision=row.decision,
        faq_id=row.faq_id,
        confidence=row.confidence,
        suggestions=tuple(SuggestionLog(s["id"], s["confidence"]) for s in row.suggestions),
        latency_ms=row.latency_ms,
        index_built_at=row.index_built_at,
        user_hash=row.user_hash,
        masked=frozenset(k for k in row.masked.split(",") if k),
    )


def _create_engine(url: str) -> DbEngine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(
            f"FAQBOT_DATABASE_URL={url!r} is not a database URL; use e.g. 'sqlite:///var/faqbot.sqlite3' "
            "or 'postgresql+psycopg://user:password@host/faqbot'"
        ) from None
    options: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        # One file shared by the writer thread and the request threads.
        options["connect_args"] = {"check_same_thread": False, "timeout": 5}
    else:
        options["pool_pre_ping"] = True
        if parsed.get_backend_name() == "postgresql":
            options["connect_args"] = {"connect_timeout": 5}
    try:
        return sa.create_engine(parsed, **options)
    except (NoSuchModuleError, ImportError, SQLAlchemyError) as exc:
        raise StoreError(f"FAQBOT_DATABASE_URL={parsed.render_as_string(hide_password=True)!r} cannot be used: {exc}") from None


def open_store(database_url: str) -> SqlLogStore:
    """The store for a database URL from settings."""
    return SqlLogStore(database_url)
