"""What people made of a reply: 👍/👎, and which suggestion they picked, tied to the ask."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from bot.api.deps import EngineDep, QueryLogDep
from bot.api.errors import ApiError
from bot.api.protection import limit_client
from bot.api.schemas import Channel, ErrorResponse, FieldProblem
from bot.querylog import QueryLog

router = APIRouter(prefix="/v1", tags=["feedback"])
_ERRORS: dict[int | str, dict[str, object]] = {
    400: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    429: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}
_IdField = Field(min_length=1, max_length=64)


def _not_blank(value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise PydanticCustomError("blank", "must not be blank")
    return value


class FeedbackRequest(BaseModel):
    """A person's verdict on one reply."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ask_id": "3f2a9c0d1e", "helpful": True}]})

    ask_id: StrictStr = Field(min_length=1, max_length=64, description="the reply's ask_id")
    helpful: StrictBool = Field(description="true for 👍, false for 👎")
    faq_id: StrictStr | None = Field(
        None, min_length=1, max_length=64, description="the entry shown, when the person opened one from the suggestions"
    )

    _blank = field_validator("ask_id", "faq_id")(_not_blank)


class FeedbackRecorded(BaseModel):
    ask_id: str
    helpful: bool
    faq_id: str | None
    recorded_at: str


class PickRequest(BaseModel):
    """A person chose one of the suggestions that came with a reply."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"ask_id": "3f2a9c0d1e", "faq_id": "seminar-format", "channel": "web"}]}
    )

    ask_id: StrictStr = Field(min_length=1, max_length=64, description="the reply's ask_id")
    faq_id: StrictStr = Field(min_length=1, max_length=64, description="the suggested entry the person picked")
    channel: Channel = "web"

    _blank = field_validator("ask_id", "faq_id")(_not_blank)


class PickRecorded(BaseModel):
    ask_id: str
    faq_id: str
    recorded_at: str


async def require_known_ask(query_log: QueryLog, ask_id: str) -> None:
    """404 unless the ask was answered (by this replica lately, or by any in the database)."""
    try:
        known = await asyncio.to_thread(query_log.knows, ask_id)
    except Exception:
        raise ApiError(503, "unavailable", "the feedback store cannot be reached; try again shortly") from None
    if not known:
        problem = "no answered question has this id"
        raise ApiError(404, "not_found", f"ask_id: {problem}", [FieldProblem(field="ask_id", problem=problem)])


@router.post("/feedback", status_code=201, response_model=FeedbackRecorded, responses=_ERRORS, dependencies=[Depends(limit_client)])
async def post_feedback(body: FeedbackRequest, query_log: QueryLogDep) -> FeedbackRecorded:
    """Record whether a reply helped; 404 when no reply had this ask_id."""
    await require_known_ask(query_log, body.ask_id)
    saved = query_log.record_feedback(body.ask_id, body.helpful, body.faq_id)
    return FeedbackRecorded(
        ask_id=saved.ask_id, helpful=saved.helpful, faq_id=saved.faq_id, recorded_at=saved.created_at.isoformat()
    )


@router.post("/pick", status_code=201, response_model=PickRecorded, responses=_ERRORS, dependencies=[Depends(limit_client)])
async def post_pick(body: PickRequest, engine: EngineDep, query_log: QueryLogDep) -> PickRecorded:
    """Record which suggested entry a person opened after a reply; 404 for an unknown ask or entry."""
    try:
        engine.corpus.entry(body.faq_id)
    except KeyError:
        problem = "no FAQ entry has this id (GET /v1/faq lists them)"
        raise ApiError(404, "not_found", f"faq_id: {problem}", [FieldProblem(field="faq_id", problem=problem)]) from None
    await require_known_ask(query_log, body.ask_id)
    saved = query_log.record_pick(body.ask_id, body.faq_id, body.channel)
    return PickRecorded(ask_id=saved.ask_id, faq_id=saved.faq_id, recorded_at=saved.created_at.isoformat())
