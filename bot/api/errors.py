"""One place that turns every failure into a JSON error body: never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from bot.api.schemas import ErrorBody, ErrorResponse, FieldProblem
from bot.errors import FaqbotError

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error a route raises on purpose, with its status and the field at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: list[FieldProblem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields or []
        self.headers = headers


def error_response(
    status: int,
    code: str,
    message: str,
    fields: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorBody(code=code, message=message, fields=fields or []))
    return JSONResponse(status_code=status, content=body.model_dump(), headers=headers)


def _field_name(loc: tuple[object, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts) or "body"


def _problem(err: dict[str, object]) -> str:
    kind = str(err.get("type", ""))
    if kind == "json_invalid":
        return "malformed JSON"
    if kind == "missing":
        return "is required"
    if kind == "literal_error":
        ctx = err.get("ctx") or {}
        return f"must be one of {ctx.get('expected', '')}" if isinstance(ctx, dict) else str(err.get("msg"))
    if kind.endswith("_type"):
        return f"wrong type: {err.get('msg')}"
    return str(err.get("msg"))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [FieldProblem(field=_field_name(tuple(e["loc"])), problem=_problem(e)) for e in exc.errors()]
        if any(e.get("type") == "json_invalid" for e in exc.errors()):
            return error_response(400, "malformed_json", "the request body is not valid JSON", fields)
        summary = "; ".join(f"{f.field}: {f.problem}" for f in fields)
        return error_response(422, "invalid_request", f"invalid request: {summary}", fields)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.fields, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(FaqbotError)
    async def _faqbot(_: Request, exc: FaqbotError) -> JSONResponse:
        log.error("service unavailable: %s", exc)
        return error_response(503, "unavailable", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error")
        return error_response(500, "internal_error", "an unexpected error occurred; it has been logged")
