"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from bot.api.errors import install_error_handlers
from bot.api.routes import ask, health
from bot.channels import install_channels
from bot.config import Settings
from bot.engine import Engine, load_engine
from bot.errors import FaqbotError

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. Without an engine, the lifespan loads one from settings in the
    background, so /healthz answers at once and /readyz says 503 until it is ready."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if app.state.engine is None:
            task = asyncio.create_task(_load(app, settings))
        yield
        if task is not None and not task.done():
            task.cancel()

    app = FastAPI(
        title="faqbot",
        summary="Answers questions about customer-harassment prevention from the desk's FAQ.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.load_error = None
    install_error_handlers(app)
    app.include_router(ask.router)
    app.include_router(health.router)
    app.state.channels = install_channels(app, settings)
    return app


async def _load(app: FastAPI, settings: Settings) -> None:
    try:
        app.state.engine = await asyncio.to_thread(load_engine, settings)
        log.info("ready: %d entries", len(app.state.engine.corpus.entries))
    except FaqbotError as exc:
        app.state.load_error = str(exc)
        log.error("cannot serve: %s", exc)
