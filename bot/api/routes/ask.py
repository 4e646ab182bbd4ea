"""The question endpoint and the FAQ listing."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter

from bot.answer import Reply
from bot.api.deps import EngineDep, QueryLogDep, SettingsDep
from bot.api.errors import ApiError
from bot.api.schemas import AskRequest, ErrorResponse, FaqEntryOut, FaqList, FieldProblem
from bot.querylog import ask_recorded

router = APIRouter(prefix="/v1", tags=["faq"])
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
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


@router.post("/ask", response_model=Reply, responses=_ERRORS)
async def ask(body: AskRequest, engine: EngineDep, settings: SettingsDep, query_log: QueryLogDep) -> Reply:
    """Answer a question with the best FAQ entry and a confidence, or route to the desk."""
    query = validate_query(body.query, settings.max_query_chars)
    # Embedding is CPU-bound; keep the event loop free for other requests.
    return await asyncio.to_thread(ask_recorded, engine, query_log, query, channel=body.channel, user=body.session_id)


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
