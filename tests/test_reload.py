"""Live reload on a small copy of the corpus: unchanged, changed, broken, and under load."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from scripts_loader import load_script
from test_web import serve

from bot.api import create_app
from bot.config import Settings
from bot.corpus import load_corpus
from bot.embed.base import Embedder
from bot.engine import ensure_index, load_engine
from bot.text import TextProcessor

TOKEN = "reload-test-admin-token-0123456789"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def small(settings: Settings, embedder: Embedder, beside_session: Path) -> Settings:
    """Three entries, no adaptation, the session's ONNX exports: a build takes seconds."""
    tmp_path = beside_session
    folder = tmp_path / "corpus"
    shutil.copytree(settings.corpus_dir, folder)
    faq = yaml.safe_load((folder / "faq.yaml").read_text(encoding="utf-8"))
    faq["entries"] = faq["entries"][:3]
    (folder / "faq.yaml").write_text(yaml.safe_dump(faq, allow_unicode=True), encoding="utf-8")
    local = settings.model_copy(
        update={
            "corpus_dir": folder,
            "index_dir": tmp_path / "faq",
            "adapt_epochs": 0.0,
            "admin_token": SecretStr(TOKEN),
            "database_url": f"sqlite:///{tmp_path / 'log.sqlite3'}",
        }
    )
    corpus = load_corpus(folder)
    ensure_index(local, corpus, embedder, TextProcessor(corpus.synonyms))
    return local


@pytest.fixture()
def app(small: Settings, embedder: Embedder) -> FastAPI:
    return create_app(small, load_engine(small, embedder))


@pytest.fixture()
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def edit_first_entry(small: Settings, alternate: str) -> None:
    path = small.corpus_dir / "faq.yaml"
    faq = yaml.safe_load(path.read_text(encoding="utf-8"))
    faq["entries"][0].setdefault("alternates", []).append(alternate)
    path.write_text(yaml.safe_dump(faq, allow_unicode=True), encoding="utf-8")


def test_an_unchanged_corpus_is_200_unchanged(client: TestClient) -> None:
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200 and response.json()["state"] == "unchanged"


def test_reload_needs_the_token(client: TestClient) -> None:
    assert client.post("/admin/reload").status_code == 401
    assert client.get("/admin/reload", headers={"authorization": "Bearer wrong-token-0123456789"}).status_code == 401


def test_an_edit_is_built_in_the_background_and_swapped_in(client: TestClient, app: FastAPI, small: Settings) -> None:
    old = app.state.engine
    time.sleep(1.1)  # built_at has whole seconds
    edit_first_entry(small, "ぜんぜん別の言い方で聞いてみる質問")
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 202 and response.json()["state"] == "building"
    again = client.post("/admin/reload", headers=AUTH)  # one at a time: the running one comes back
    assert again.status_code == 202 and again.json()["started_at"] == response.json()["started_at"]
    status = app.state.reloader.wait(120)
    assert status.state == "live" and status.error is None and status.duration_seconds is not None
    assert app.state.engine is not old
    assert "ぜんぜん別の言い方で聞いてみる質問" in app.state.engine.corpus.entries[0].alternates
    shown = client.get("/admin/reload", headers=AUTH).json()
    assert shown["state"] == "live" and shown["index_built_at"] == client.get("/readyz").json()["index_built_at"]
    assert shown["index_built_at"] != old.index_built_at


def test_a_broken_corpus_fails_with_the_message_and_the_old_engine_stays(
    client: TestClient, app: FastAPI, small: Settings
) -> None:
    old = app.state.engine
    path = small.corpus_dir / "faq.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("answer:", "answr:", 1), encoding="utf-8")
    response = client.post("/admin/reload", headers=AUTH)
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == "failed" and "faq.yaml" in body["error"]
    assert app.state.engine is old
    assert client.post("/v1/ask", json={"query": "カスハラって何ですか"}).status_code == 200


def test_a_forced_reload_under_load_fails_no_request(app: FastAPI) -> None:
    """scripts/loadtest.py in a short mode: 8 clients for 8 s, a forced reload after 1 s."""
    loadtest = load_script("loadtest")
    with serve(app) as base:
        figures = asyncio.run(loadtest.run(base, 8, 8.0, 1.0, TOKEN))  # type: ignore[attr-defined]
    assert figures["errors"] == 0, figures["error_examples"]
    assert figures["requests"] > 20
    assert figures["reload"]["state"] == "live"


def test_the_cli_reload_calls_the_endpoint_and_waits(app: FastAPI, small: Settings) -> None:
    from typer.testing import CliRunner

    from bot.cli import app as cli

    edit_first_entry(small, "コマンドから反映する言い方")
    with serve(app) as base:
        result = CliRunner().invoke(cli, ["reload", "--url", base], env={"FAQBOT_ADMIN_TOKEN": TOKEN, "FAQBOT_LOG_LEVEL": "WARNING"})
        refused = CliRunner().invoke(cli, ["reload", "--url", base], env={"FAQBOT_ADMIN_TOKEN": "a-wrong-token-0123456789"})
    assert result.exit_code == 0, result.output
    assert '"state": "live"' in result.stdout
    assert "コマンドから反映する言い方" in app.state.engine.corpus.entries[0].alternates
    assert refused.exit_code != 0
