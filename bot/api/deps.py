"""Named dependencies, so a route's signature says what it needs."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from bot.api.errors import ApiError
from bot.config import Settings
from bot.engine import Engine
from bot.querylog import QueryLog


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_engine(request: Request) -> Engine:
    engine = request.app.state.engine
    if engine is None:
        detail = request.app.state.load_error or "the model and index are still loading; try again shortly"
        raise ApiError(503, "not_ready", detail)
    return engine


def get_query_log(request: Request) -> QueryLog:
    query_log: QueryLog = request.app.state.query_log
    return query_log


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
QueryLogDep = Annotated[QueryLog, Depends(get_query_log)]
