"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from bot.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """The process is alive (it may still be loading)."""
    return Health()


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
async def readyz(request: Request) -> JSONResponse:
    """Model and index are loaded and queries can be answered; 503 until then."""
    engine = request.app.state.engine
    channels = dict(request.app.state.channels)
    query_log = request.app.state.query_log.counts()
    if engine is None:
        detail = request.app.state.load_error or "loading model and index"
        body = Readiness(ready=False, detail=detail, channels=channels, query_log=query_log)
        return JSONResponse(status_code=503, content=body.model_dump())
    body = Readiness(
        ready=True,
        detail="ok",
        entries=len(engine.corpus.entries),
        model=engine.embedder.model_id,
        index_built_at=engine.index_built_at,
        channels=channels,
        query_log=query_log,
    )
    return JSONResponse(content=body.model_dump())
