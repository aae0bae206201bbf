"""One error body for every failure: ``{"error": {"status", "code", "message", "details"}}``.

User input never causes a 500: validation errors are 422 with the field paths, unknown ids
404, bad values 400. A 500 says only that it is the server's fault (details are logged,
never sent: they may hold connection strings).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from driftline.errors import ConfigurationError, InvalidInputError, StorageUnavailableError
from schemas.validation_messages import field_path
from storage.catalog import UnknownModelError

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    details: list[dict[str, Any]] = []


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> JSONResponse:
    body = ErrorBody(
        error=ErrorDetail(status=status, code=code, message=message, details=details or [])
    )
    return JSONResponse(body.model_dump(), status_code=status)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in (
        (400, "Bad input"),
        (401, "No or unknown API key"),
        (403, "The key's scope does not allow this"),
        (404, "Unknown model, window or id"),
        (422, "Invalid parameters or body"),
    )
}


CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
}


def install(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        code = CODES.get(error.status_code, "error")
        details = getattr(error, "details", None)
        response = error_response(error.status_code, code, str(error.detail), details)
        # An authentication challenge (the dashboard's Basic prompt) must reach the client.
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        details = [
            {"field": field_path(tuple(item["loc"])), "message": item["msg"]}
            for item in error.errors()
        ]
        first = details[0] if details else {"field": "", "message": "invalid request"}
        message = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
        return error_response(422, "invalid", message, details)

    @app.exception_handler(UnknownModelError)
    async def unknown_model(request: Request, error: UnknownModelError) -> JSONResponse:
        return error_response(404, "not_found", str(error))

    @app.exception_handler(InvalidInputError)
    async def bad_input(request: Request, error: InvalidInputError) -> JSONResponse:
        return error_response(400, "bad_request", str(error))

    @app.exception_handler(ConfigurationError)
    async def bad_config(request: Request, error: ConfigurationError) -> JSONResponse:
        return error_response(422, "invalid", str(error))

    @app.exception_handler(StorageUnavailableError)
    async def unavailable(request: Request, error: StorageUnavailableError) -> JSONResponse:
        return error_response(503, "unavailable", "the database is unreachable; try again")

    @app.exception_handler(Exception)
    async def bug(request: Request, error: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "internal", "the server failed; the error is in its log")
