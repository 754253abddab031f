"""Errors as JSON, one shape for every API: {"error": {"code", "message", "field"}}.

Domain failures (platformkit.failures.DomainError: a stable `code`, no status) get their status
from the service's table given to `install_error_handlers`; ApiError is for errors the web layer
itself raises (authentication, rate limits, bodies) and carries its status. Starlette's HTTP
errors and anything unexpected get the same shape.
"""

import logging
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from platformkit.failures import ApiError, DomainError, InvalidRequest, StoreUnavailable

__all__ = ["ApiError", "error_body", "error_response", "install_error_handlers"]

log = logging.getLogger(__name__)


def error_body(code: str, message: str, field: str | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "field": field}}


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(code, message, field), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "rate_limited",
    503: "unavailable",
}


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.message, exc.field, exc.headers)


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), None, exc.headers)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal_error", "internal error")


def domain_error_handler(statuses: Mapping[type[DomainError], int]) -> Any:
    """The handler answering each DomainError with the status of its nearest class in `statuses`
    (503 for StoreUnavailable unless the table says otherwise, with Retry-After)."""
    table: dict[type[DomainError], int] = {StoreUnavailable: 503, InvalidRequest: 422, **statuses}

    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        status = next((table[cls] for cls in type(exc).__mro__ if cls in table), 500)
        headers = {"Retry-After": "1"} if status == 503 else None
        if status == 503:  # the operator needs the cause (a deadline, a refused connection, ...)
            cause = exc.__cause__
            log.warning(
                "503 %s on %s %s: %s",
                exc.code,
                request.method,
                request.url.path,
                f"{type(cause).__name__}: {cause}" if cause is not None else exc.message,
            )
        return error_response(status, exc.code, exc.message, exc.field, headers)

    return handle


def install_error_handlers(app: Starlette, statuses: Mapping[type[DomainError], int] | None = None) -> None:
    """JSON errors for the app: its domain failures by `statuses`, ApiError by its own status,
    HTTP errors by theirs, anything else 500."""
    app.add_exception_handler(DomainError, domain_error_handler(statuses or {}))
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
