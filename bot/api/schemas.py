"""Request and response bodies of the HTTP API (the staff contract)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

Channel = Literal["api", "web", "line", "slack"]


class AskRequest(BaseModel):
    """A question from a person, through one of the channels."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"query": "カスハラって何ですか", "channel": "api"}]})

    query: StrictStr = Field(description="the question as the person typed it (1 to 1,000 characters)")
    channel: Channel = "api"
    session_id: StrictStr | None = Field(None, max_length=200)


class FaqEntryOut(BaseModel):
    id: str
    category: str
    question: str
    answer: str
    alternates: list[str]


class FaqList(BaseModel):
    categories: list[str]
    entries: list[FaqEntryOut]


class FieldProblem(BaseModel):
    field: str
    problem: str


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: list[FieldProblem] = []


class ErrorResponse(BaseModel):
    error: ErrorBody


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    ready: bool
    detail: str
    entries: int = 0
    model: str | None = None
    index_built_at: str | None = None
    channels: dict[str, bool] = {}
    query_log: dict[str, int] = Field(
        default_factory=dict, description="records written, failed write attempts, dropped, waiting, purged"
    )
