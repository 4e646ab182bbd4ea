"""The query log through the HTTP API: rows for asks, feedback tied to real asks, picks,
a database that goes down under a live service, the admin report and the CLI."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from servers import running_postgres
from typer.testing import CliRunner

from bot.api import create_app
from bot.cli import app as cli
from bot.config import Settings
from bot.engine import Engine
from bot.querylog import QueryLog
from bot.store import AskRecord, Feedback, SqlLogStore, now_tokyo, open_store

ADMIN_TOKEN = "admin-token-for-the-tests-0123456789"
SALT = "salt-for-the-tests-0123456789"


def logged_settings(settings: Settings, tmp: Path, **extra: object) -> Settings:
    update: dict[str, object] = {
        "database_url": f"sqlite:///{tmp / 'log.sqlite3'}",
        "log_salt": SecretStr(SALT),
        "admin_token": SecretStr(ADMIN_TOKEN),
        **extra,
    }
    return settings.model_copy(update=update)


@pytest.fixture()
def app(settings: Settings, engine: Engine, tmp_path: Path) -> FastAPI:
    return create_app(logged_settings(settings, tmp_path), engine)


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def query_log(app: FastAPI) -> QueryLog:
    log: QueryLog = app.state.query_log
    assert log.flush(timeout=10)
    return log


def store(app: FastAPI) -> SqlLogStore:
    log_store: SqlLogStore = query_log(app).store  # type: ignore[assignment]
    return log_store


def test_an_api_ask_is_logged_masked(client: TestClient, app: FastAPI) -> None:
    reply = client.post("/v1/ask", json={"query": "田中です。カスハラって何ですか"}).json()
    row = store(app).ask(reply["ask_id"])
    assert row is not None
    assert row.channel == "api" and row.query == "〔氏名〕です。カスハラって何ですか" and row.masked == {"name"}
    assert row.decision == reply["decision"] and row.faq_id == reply["faq"]["id"]
    assert row.confidence == reply["confidence"] and row.latency_ms > 0
    assert row.index_built_at == client.get("/readyz").json()["index_built_at"]
    assert row.user_hash is None  # no session on the staff API


def test_a_widget_session_is_logged_as_a_salted_hash(client: TestClient, app: FastAPI) -> None:
    first = client.post("/v1/ask", json={"query": "夜しか時間がない", "channel": "web", "session_id": "s-123"}).json()
    again = client.post("/v1/ask", json={"query": "明日の天気は？", "channel": "web", "session_id": "s-123"}).json()
    a, b = store(app).ask(first["ask_id"]), store(app).ask(again["ask_id"])
    assert a is not None and b is not None and a.channel == "web"
    assert a.user_hash and a.user_hash == b.user_hash and "s-123" not in a.user_hash
    assert b.decision == "fallback" and b.faq_id is None


def test_feedback_for_an_unknown_ask_is_a_json_404(client: TestClient, app: FastAPI) -> None:
    response = client.post("/v1/feedback", json={"ask_id": "never-asked", "helpful": True})
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found" and error["fields"][0]["field"] == "ask_id"
    assert store(app).feedback_since() == []


def test_feedback_on_a_logged_ask_is_stored(client: TestClient, app: FastAPI) -> None:
    ask_id = client.post("/v1/ask", json={"query": "カスハラって何ですか", "channel": "web"}).json()["ask_id"]
    response = client.post("/v1/feedback", json={"ask_id": ask_id, "helpful": False})
    assert response.status_code == 201 and response.json()["recorded_at"].endswith("+09:00")
    (saved,) = store(app).for_ask(ask_id)
    assert saved.helpful is False and saved.faq_id is None


def test_feedback_is_checked_against_the_database_shared_by_replicas(
    settings: Settings, engine: Engine, tmp_path: Path
) -> None:
    """An ask answered by another replica is known through the shared database."""
    shared = logged_settings(settings, tmp_path)
    with TestClient(create_app(shared, engine)) as replica_a, TestClient(create_app(shared, engine)) as replica_b:
        ask_id = replica_a.post("/v1/ask", json={"query": "カスハラって何ですか"}).json()["ask_id"]
        assert query_log(replica_a.app).flush()  # type: ignore[arg-type]
        assert replica_b.post("/v1/feedback", json={"ask_id": ask_id, "helpful": True}).status_code == 201


def test_a_pick_after_an_uncertain_reply_is_recorded(client: TestClient, app: FastAPI) -> None:
    ask_id = client.post("/v1/ask", json={"query": "セミナーのメールについて", "channel": "web"}).json()["ask_id"]
    response = client.post("/v1/pick", json={"ask_id": ask_id, "faq_id": "seminar-format"})
    assert response.status_code == 201
    (pick,) = store(app).picks_since()
    assert (pick.ask_id, pick.faq_id, pick.channel) == (ask_id, "seminar-format", "web")
    unknown_entry = client.post("/v1/pick", json={"ask_id": ask_id, "faq_id": "no-such-entry"})
    assert unknown_entry.status_code == 404 and unknown_entry.json()["error"]["fields"][0]["field"] == "faq_id"
    unknown_ask = client.post("/v1/pick", json={"ask_id": "never-asked", "faq_id": "seminar-format"})
    assert unknown_ask.status_code == 404 and unknown_ask.json()["error"]["fields"][0]["field"] == "ask_id"
    bad = client.post("/v1/pick", json={"ask_id": ask_id})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "faq_id"


def test_answers_still_go_out_while_the_database_is_down(settings: Settings, engine: Engine) -> None:
    """A real PostgreSQL server that stops under a live service: asks are answered as
    before, the failed writes are counted and shown by /readyz, and nothing raises."""
    server = running_postgres()
    url = server.__enter__()
    try:
        with TestClient(create_app(settings.model_copy(update={"database_url": url}), engine)) as client:
            log: QueryLog = client.app.state.query_log  # type: ignore[attr-defined]
            first = client.post("/v1/ask", json={"query": "カスハラって何ですか"}).json()
            assert log.flush() and log.store.ask_exists(first["ask_id"])
            server.__exit__(None, None, None)  # the database goes down
            server = None
            for _ in range(3):
                response = client.post("/v1/ask", json={"query": "夜しか時間がない"})
                assert response.status_code == 200 and response.json()["answered"] is True
            deadline = time.monotonic() + 20
            while log.stats.failed_writes == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            counts = client.get("/readyz").json()["query_log"]
            assert counts["failed_writes"] >= 1 and counts["written"] == 1
            feedback = client.post("/v1/feedback", json={"ask_id": "answered-before-a-restart", "helpful": True})
            assert feedback.status_code == 503 and feedback.json()["error"]["code"] == "unavailable"
    finally:
        if server is not None:
            server.__exit__(None, None, None)


# ---- the admin report ----------------------------------------------------------------


def test_admin_routes_are_404_without_a_token_configured(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    plain = settings.model_copy(update={"database_url": f"sqlite:///{tmp_path / 'l.sqlite3'}"})
    with TestClient(create_app(plain, engine)) as client:
        response = client.get("/admin/report", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", f"Basic {ADMIN_TOKEN}", "Bearer"])
def test_admin_report_needs_the_right_bearer_token(client: TestClient, header: str | None) -> None:
    headers = {"authorization": header} if header else {}
    response = client.get("/admin/report", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "unauthorized"


def test_admin_report_shows_what_people_asked(client: TestClient, app: FastAPI) -> None:
    for query in ("駐車場はありますか", "駐車場はありますか？", "カスハラって何ですか"):
        client.post("/v1/ask", json={"query": query, "channel": "web"})
    query_log(app)
    auth = {"authorization": f"Bearer {ADMIN_TOKEN}"}
    page = client.get("/admin/report", headers=auth)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "駐車場はありますか" in page.text and "<svg" in page.text
    markdown = client.get("/admin/report?format=md&since=1d", headers=auth)
    assert markdown.status_code == 200 and "駐車場" in markdown.text
    bad = client.get("/admin/report?since=soon", headers=auth)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "since"


# ---- the CLI -------------------------------------------------------------------------


def cli_env(settings: Settings, database: Path) -> dict[str, str]:
    return {
        "FAQBOT_CORPUS_DIR": str(settings.corpus_dir),
        "FAQBOT_INDEX_DIR": str(settings.index_dir),
        "FAQBOT_MODEL": settings.model,
        "FAQBOT_LOG_LEVEL": "WARNING",
        "FAQBOT_DATABASE_URL": f"sqlite:///{database}",
    }


def fill(database: Path) -> None:
    log_store = open_store(f"sqlite:///{database}")
    now = now_tokyo()
    log_store.write(
        [
            AskRecord("old", now - dt.timedelta(days=100), "line", "駐車場はありますか", "fallback", None, 0.05, (), 40.0),
            AskRecord("new", now - dt.timedelta(hours=2), "web", "駐車場はありますか", "fallback", None, 0.05, (), 40.0),
            Feedback("old", False, None, now - dt.timedelta(days=100)),
        ]
    )
    log_store.close()


def test_cli_purge_logs_deletes_rows_past_retention(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    database = tmp_path / "log.sqlite3"
    fill(database)
    result = CliRunner().invoke(cli, ["purge-logs"], env=cli_env(settings, database))
    assert result.exit_code == 0, result.output
    assert "deleted 2 rows older than 90 days" in result.stdout
    log_store = open_store(f"sqlite:///{database}")
    assert [a.ask_id for a in log_store.asks_since()] == ["new"] and log_store.feedback_since() == []
    log_store.close()


@pytest.mark.parametrize("form", ["md", "csv", "html"])
def test_cli_report_in_each_format(settings: Settings, engine: Engine, tmp_path: Path, form: str) -> None:
    database = tmp_path / "log.sqlite3"
    fill(database)
    output, alternates = tmp_path / f"report.{form}", tmp_path / "alternates.yaml"
    args = ["report", "--since", "7d", "--format", form, "--output", str(output), "--suggest-alternates", str(alternates)]
    result = CliRunner().invoke(cli, args, env=cli_env(settings, database))
    assert result.exit_code == 0, result.output
    text = output.read_text(encoding="utf-8")
    assert "駐車場はありますか" in text
    assert alternates.exists()


def test_cli_report_refuses_a_bad_since(settings: Settings, engine: Engine, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["report", "--since", "soon"], env=cli_env(settings, tmp_path / "l.sqlite3"))
    assert result.exit_code != 0
