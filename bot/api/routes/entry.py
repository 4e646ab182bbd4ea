"""One FAQ entry by id, so a client can show the entry a person picked from the suggestions."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from bot.api.deps import EngineDep
from bot.api.errors import ApiError
from bot.api.protection import limit_client
from bot.api.schemas import ErrorResponse, FaqEntryOut, FieldProblem

router = APIRouter(prefix="/v1", tags=["faq"])


@router.get(
    "/faq/{faq_id}",
    response_model=FaqEntryOut,
    responses={404: {"model": ErrorResponse}, 429: {"model": ErrorResponse}, 503: {"model": ErrorResponse}},
    dependencies=[Depends(limit_client)],
)
async def get_entry(faq_id: str, engine: EngineDep) -> FaqEntryOut:
    """Return one FAQ entry (question, answer, category) by its stable id."""
    try:
        entry = engine.corpus.entry(faq_id)
    except KeyError:
        problem = "no FAQ entry has this id (GET /v1/faq lists them)"
        raise ApiError(404, "not_found", f"faq_id: {problem}", [FieldProblem(field="faq_id", problem=problem)]) from None
    return FaqEntryOut.model_validate(entry, from_attributes=True)
