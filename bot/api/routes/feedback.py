"""The 👍/👎 endpoint: what people thought of a reply, kept for the desk to review."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from bot.api.schemas import ErrorResponse
from bot.store import FeedbackStore

router = APIRouter(prefix="/v1", tags=["feedback"])


def get_store(request: Request) -> FeedbackStore:
    store: FeedbackStore = request.app.state.store
    return store


StoreDep = Annotated[FeedbackStore, Depends(get_store)]


class FeedbackRequest(BaseModel):
    """A person's verdict on one reply."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"ask_id": "3f2a9c0d1e", "helpful": True}]})

    ask_id: StrictStr = Field(min_length=1, max_length=64, description="the reply's ask_id")
    helpful: StrictBool = Field(description="true for 👍, false for 👎")
    faq_id: StrictStr | None = Field(
        None, min_length=1, max_length=64, description="the entry shown, when the person opened one from the suggestions"
    )

    @field_validator("ask_id", "faq_id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise PydanticCustomError("blank", "must not be blank")
        return value


class FeedbackRecorded(BaseModel):
    ask_id: str
    helpful: bool
    faq_id: str | None
    recorded_at: str


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackRecorded,
    responses={400: {"model": ErrorResponse}, 422: {"model": ErrorResponse}},
)
def post_feedback(body: FeedbackRequest, store: StoreDep) -> FeedbackRecorded:
    """Record whether a reply helped (a plain def: the SQLite write runs in the thread pool)."""
    saved = store.record(body.ask_id, body.helpful, body.faq_id)
    return FeedbackRecorded(
        ask_id=saved.ask_id, helpful=saved.helpful, faq_id=saved.faq_id, recorded_at=saved.created_at.isoformat()
    )
