"""The question endpoint and the FAQ listing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Depends

from bot.answer import Reply
from bot.api.deps import EngineDep, QueryLogDep, SettingsDep
from bot.api.errors import ApiError
from bot.api.observability import observe_decision
from bot.api.protection import limit_client
from bot.api.schemas import AskRequest, ErrorResponse, FaqEntryOut, FaqList, FieldProblem
from bot.querylog import timed_answer

router = APIRouter(prefix="/v1", tags=["faq"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    429: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


def validate_query(query: str, max_chars: int) -> str:
    """The query stripped, or an ApiError naming the field."""
    stripped = query.strip()
    if not stripped:
        raise ApiError(422, "invalid_request", "query: must not be empty", [FieldProblem(field="query", problem="must not be empty")])
    if len(stripped) > max_chars:
        problem = f"is {len(stripped)} characters; at most {max_chars} are accepted"
        raise ApiError(422, "invalid_request", f"query: {problem}", [FieldProblem(field="query", problem=problem)])
    return stripped


@router.post("/ask", response_model=Reply, responses=_ERRORS, dependencies=[Depends(limit_client)])
async def ask(
    body: AskRequest, engine: EngineDep, settings: SettingsDep, query_log: QueryLogDep, background: BackgroundTasks
) -> Reply:
    """Answer a question with the best FAQ entry and a confidence, or route to the desk."""
    query = validate_query(body.query, settings.max_query_chars)
    # Embedding is CPU-bound; keep the event loop free for other requests.
    reply, latency_ms = await asyncio.to_thread(timed_answer, engine, query)
    observe_decision(body.channel, reply.decision)
    # Logged once the response is out, so masking and the writer never delay it; feedback
    # may come back before the record is queued, so the ask is known at once.
    query_log.remember(reply.ask_id)
    background.add_task(
        query_log.record_ask,
        reply,
        query=query,
        channel=body.channel,
        latency_ms=latency_ms,
        index_built_at=engine.index_built_at,
        user=body.session_id,
    )
    return reply


@router.get("/faq", response_model=FaqList, responses=_ERRORS)
async def list_faq(engine: EngineDep) -> FaqList:
    """List every FAQ entry with its category and alternate phrasings."""
    return FaqList(
        categories=list(engine.corpus.categories),
        entries=[
            FaqEntryOut(id=e.id, category=e.category, question=e.question, answer=e.answer, alternates=list(e.alternates))
            for e in engine.corpus.entries
        ],
    )
