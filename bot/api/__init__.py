"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware

from bot.api.errors import install_error_handlers
from bot.api.observability import install_observability, observe_reload
from bot.api.protection import BodySizeLimit, SecurityHeaders
from bot.ratelimit import RateLimiter
from bot.reload import Reloader
from bot.api.routes import admin, ask, entry, feedback, health
from bot.channels import install_channels
from bot.config import Settings
from bot.engine import Engine, load_engine
from bot.errors import FaqbotError
from bot.querylog import open_query_log
from bot.store import LogStore

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, engine: Engine | None = None, store: LogStore | None = None) -> FastAPI:
    """Build the app. Without an engine, the lifespan loads one from settings in the
    background, so /healthz answers at once and /readyz says 503 until it is ready.
    Without a store, the query log and feedback go to settings.database_url. The log's
    writer runs while the app does; shutdown flushes it."""
    settings = settings or Settings()
    query_log = open_query_log(settings, store)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = None
        if app.state.engine is None:
            task = asyncio.create_task(_load(app, settings))
        query_log.start()
        yield
        if task is not None and not task.done():
            task.cancel()
        await asyncio.to_thread(query_log.close)
        if store is None:
            query_log.store.close()

    app = FastAPI(
        title="faqbot",
        summary="Answers questions about customer-harassment prevention from the desk's FAQ.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.load_error = None
    app.state.query_log = query_log
    app.state.reloader = Reloader(
        settings, lambda: app.state.engine, lambda new: setattr(app.state, "engine", new), on_finish=observe_reload
    )
    if settings.cors_origins:
        # Only the listed sites may call the API from a browser (the web widget).
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["content-type"],
            max_age=600,
        )
    app.state.rate_limiter = RateLimiter(settings.rate_limit, settings.redis_url or "memory://")
    app.state.trusted_proxies = settings.proxy_networks
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    install_error_handlers(app)
    app.include_router(ask.router)
    app.include_router(entry.router)
    app.include_router(feedback.router)
    app.include_router(health.router)
    app.include_router(admin.router)
    app.state.channels = install_channels(app, settings)
    install_observability(app)
    return app


async def _load(app: FastAPI, settings: Settings) -> None:
    try:
        app.state.engine = await asyncio.to_thread(load_engine, settings)
        log.info("ready: %d entries", len(app.state.engine.corpus.entries))
    except FaqbotError as exc:
        app.state.load_error = str(exc)
        log.error("cannot serve: %s", exc)
