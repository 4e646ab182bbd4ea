"""Apps built for one test from the session's engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from bot.api import create_app
from bot.config import Settings
from bot.engine import Engine, assemble


@contextmanager
def undecided_client(settings: Settings, engine: Engine) -> Iterator[TestClient]:
    """The same index and model behind an answer threshold no query reaches, so every
    reply comes back as suggestions (or the fallback), never as a guess."""
    strict = settings.model_copy(update={"answer_threshold": 0.999, "suggest_threshold": 0.01})
    with TestClient(create_app(strict, assemble(strict, engine.corpus, engine.faq_index, engine.text))) as client:
        yield client
