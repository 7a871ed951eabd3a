"""Errors in OpenAI's JSON shape: ``{"error": {"message", "type", "param", "code"}}``.

Every failure a client can see goes through :class:`APIError`, so the official clients raise
their usual exception classes (``BadRequestError``, ``AuthenticationError``, ...) on it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from quintet.core.errors import ModelNotFoundError, QuintetError

log = logging.getLogger(__name__)


class APIError(Exception):
    """An error answered with ``status`` and OpenAI's error body.

    Args:
        status: the HTTP status.
        message: one readable line for the client.
        type: OpenAI's error type (``invalid_request_error``, ``authentication_error`` ...).
        param: the request field at fault, if any.
        code: a short machine-readable code (``model_not_found``, ``queue_full`` ...).
        headers: extra response headers (``Retry-After`` for 429 and 503).
    """

    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body: OpenAI's error object."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
    """400: the request is malformed or asks for something impossible."""
    return APIError(400, message, "invalid_request_error", param, code)


def model_not_found(name: str) -> APIError:
    """404: the request names a model this server does not serve."""
    return APIError(
        404,
        f"the model {name!r} is not served here: GET /v1/models lists the served models",
        "invalid_request_error",
        "model",
        "model_not_found",
    )


def queue_full(model: str, retry_after: int = 1) -> APIError:
    """429: the model's queue is full; the client should retry after ``retry_after`` s."""
    return APIError(
        429,
        f"too many requests queued for {model}: retry after {retry_after} s",
        "rate_limit_error",
        None,
        "queue_full",
        {"Retry-After": str(retry_after)},
    )


def unavailable(message: str, code: str, retry_after: int = 5) -> APIError:
    """503: the server is loading its models or shutting down."""
    return APIError(
        503, message, "service_unavailable_error", None, code, {"Retry-After": str(retry_after)}
    )


def from_quintet(exc: QuintetError) -> APIError:
    """A core error (bad input, unknown model, ...) as the matching API error."""
    if isinstance(exc, ModelNotFoundError):
        return APIError(404, str(exc), "invalid_request_error", "model", "model_not_found")
    return bad_request(str(exc))


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """One line naming the first bad field, and that field's name for ``param``."""
    errors = exc.errors()
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return "the request body is not valid JSON", None
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    param = ".".join(location) or None
    where = f"{param}: " if param else ""
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    message = first.get("msg", "invalid value")
    if first.get("type") == "value_error" and "error" in first.get("ctx", {}):
        message = str(first["ctx"]["error"])  # our validators' own words, without "Value error, "
    return f"{where}{message}{more}", param


def install(app: FastAPI) -> None:
    """Answer every error in OpenAI's shape: ours, validation (400, not FastAPI's 422),
    routing (404/405) and anything unexpected (500, without internals)."""

    @app.exception_handler(APIError)
    async def _api_error(request: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(QuintetError)
    async def _quintet_error(request: Request, exc: QuintetError) -> JSONResponse:
        return from_quintet(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return bad_request(message, param).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return APIError(exc.status_code, str(exc.detail), kind).response()

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log; the client gets one line, no internals.
        log.exception("unhandled error on %s", request.url.path)
        return APIError(500, "internal server error", "server_error").response()
