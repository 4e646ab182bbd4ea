"""Staff-only routes behind a bearer token: the report on what people asked, live reload."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response

from bot.api.deps import EngineDep, QueryLogDep, SettingsDep
from bot.api.errors import ApiError
from bot.api.schemas import ErrorResponse, FieldProblem
from bot.desk import TOKYO
from bot.reload import Reloader, ReloadStatus


def require_admin(request: Request, settings: SettingsDep) -> None:
    """404 while no admin token is set (the routes do not exist); 401 without the right one.
    The token is compared in constant time."""
    if settings.admin_token is None:
        raise ApiError(404, "not_found", "Not Found")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = settings.admin_token.get_secret_value()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        raise ApiError(
            401,
            "unauthorized",
            "send the admin token as 'Authorization: Bearer <FAQBOT_ADMIN_TOKEN>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


router = APIRouter(prefix="/admin", tags=["admin"], dependencies=[Depends(require_admin)])
_ERRORS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}
_MEDIA = {"html": "text/html; charset=utf-8", "md": "text/markdown; charset=utf-8", "csv": "text/csv; charset=utf-8"}


@router.get(
    "/report",
    response_class=Response,
    responses={200: {"content": {m.split(";")[0]: {"schema": {"type": "string"}} for m in _MEDIA.values()}}, **_ERRORS},
)
async def report(
    engine: EngineDep,
    query_log: QueryLogDep,
    since: Annotated[str, Query(description="how far back: 7d, 24h, 2w, …")] = "7d",
    format: Annotated[Literal["html", "md", "csv"], Query(description="html (default), md or csv")] = "html",
) -> Response:
    """The staff report: unanswered queries grouped, suggested alternates, per-entry votes, daily shares."""
    from bot import report as staff_report

    try:
        window = staff_report.parse_since(since)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"since: {exc}", [FieldProblem(field="since", problem=str(exc))]) from None
    options = staff_report.ReportOptions(since=dt.datetime.now(TOKYO) - window)
    try:
        built = await asyncio.to_thread(
            staff_report.build_report, query_log.store, engine.embedder, engine.corpus, options
        )
    except Exception:
        raise ApiError(503, "unavailable", "the query log cannot be read; try again shortly") from None
    text = staff_report.RENDERERS[format](built)
    if format == "html":
        return HTMLResponse(text)
    return PlainTextResponse(text, media_type=_MEDIA[format])


@router.post("/reload", response_model=ReloadStatus, status_code=202, responses={200: {"model": ReloadStatus}, **_ERRORS})
async def post_reload(
    request: Request,
    force: Annotated[bool, Query(description="rebuild even when the corpus did not change")] = False,
) -> JSONResponse:
    """Re-read the corpus and, when it changed (or with force), build a new engine in the background."""
    reloader: Reloader = request.app.state.reloader
    started, status = await asyncio.to_thread(reloader.start, force)
    code = 202 if started or status.state == "building" else 200
    return JSONResponse(status_code=code, content=status.model_dump())


@router.get("/reload", response_model=ReloadStatus, responses=_ERRORS)
async def get_reload(request: Request) -> ReloadStatus:
    """The last reload's state: building, live, failed or unchanged, with its times and error."""
    reloader: Reloader = request.app.state.reloader
    return reloader.status
