"""Channel adapters (web widget, LINE, Slack) mounted on the API app.

Each adapter module exposes `router(settings) -> APIRouter`; a channel whose secrets
are unset is not mounted, and /readyz lists which channels are on.
"""

from __future__ import annotations

from fastapi import FastAPI

from bot.channels import web
from bot.channels.dedupe import seen_ids
from bot.config import Settings


def install_channels(app: FastAPI, settings: Settings) -> dict[str, bool]:
    """Mount every enabled channel's routes; returns {channel: enabled} for /readyz."""
    enabled: dict[str, bool] = {"api": True}
    app.include_router(web.router(settings))  # the widget needs no secrets: always on
    enabled["web"] = True
    # LINE and Slack are imported only when on: line-bot-sdk alone takes ~2 s to import.
    if settings.line_enabled:
        from bot.channels import line

        app.include_router(line.router(settings, seen_ids(settings.redis_url)))
    enabled["line"] = settings.line_enabled
    if settings.slack_enabled:
        from bot.channels import slack

        app.include_router(slack.router(settings, seen_ids(settings.redis_url)))
    enabled["slack"] = settings.slack_enabled
    return enabled
