"""Where feedback is kept: a small contract and its SQLite implementation.

The API only sees the `FeedbackStore` protocol, so another back-end (a server database,
a fake in tests) can be passed to the app factory without touching the routes. The
SQLite store opens its file on first use, so building an app never touches the disk.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.desk import TOKYO
from bot.errors import FaqbotError
from bot.types import EntryId

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ask_id TEXT NOT NULL,
    helpful INTEGER NOT NULL CHECK (helpful IN (0, 1)),
    faq_id TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS feedback_ask_id ON feedback (ask_id);
"""


class StoreError(FaqbotError):
    """The database URL cannot be used."""


@dataclass(frozen=True)
class Feedback:
    """One 👍/👎 on a reply; `faq_id` says which entry was shown, when one was."""

    ask_id: str
    helpful: bool
    faq_id: EntryId | None
    created_at: dt.datetime


class FeedbackStore(Protocol):
    """What the API needs from storage."""

    def record(self, ask_id: str, helpful: bool, faq_id: EntryId | None = None) -> Feedback: ...

    def for_ask(self, ask_id: str) -> list[Feedback]: ...

    def close(self) -> None: ...


class SQLiteFeedbackStore:
    """Feedback in one SQLite file; one connection shared by threads behind a lock."""

    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        # Called with the lock held.
        if self._conn is None:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, check_same_thread=False)
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def record(self, ask_id: str, helpful: bool, faq_id: EntryId | None = None) -> Feedback:
        feedback = Feedback(ask_id, helpful, faq_id, dt.datetime.now(TOKYO))
        with self._lock:
            conn = self._connection()
            with conn:
                conn.execute(
                    "INSERT INTO feedback (ask_id, helpful, faq_id, created_at) VALUES (?, ?, ?, ?)",
                    (ask_id, int(helpful), faq_id, feedback.created_at.isoformat()),
                )
        return feedback

    def for_ask(self, ask_id: str) -> list[Feedback]:
        with self._lock:
            rows = self._connection().execute(
                "SELECT ask_id, helpful, faq_id, created_at FROM feedback WHERE ask_id = ? ORDER BY id",
                (ask_id,),
            ).fetchall()
        return [Feedback(a, bool(h), f, dt.datetime.fromisoformat(c)) for a, h, f, c in rows]

    def close(self) -> None:
        """Close the file; a later call opens it again."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def sqlite_path(database_url: str) -> str:
    """The file of a `sqlite:///relative` or `sqlite:////absolute` URL (`sqlite://` is in memory)."""
    prefix = "sqlite://"
    if not database_url.startswith(prefix):
        raise StoreError(
            f"FAQBOT_DATABASE_URL={database_url!r} is not supported; use a SQLite URL such as "
            "'sqlite:///var/faqbot.sqlite3' (relative) or 'sqlite:////srv/faqbot/faqbot.sqlite3' (absolute)"
        )
    rest = database_url[len(prefix) :]
    if rest in ("", "/", "/:memory:"):
        return ":memory:"
    if not rest.startswith("/"):
        raise StoreError(f"FAQBOT_DATABASE_URL={database_url!r}: a SQLite URL needs three slashes, e.g. 'sqlite:///var/faqbot.sqlite3'")
    return rest[1:].split("?", 1)[0]


def open_store(database_url: str) -> FeedbackStore:
    """The store for a database URL from settings."""
    return SQLiteFeedbackStore(sqlite_path(database_url))
