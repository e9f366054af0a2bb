"""Turns the errors of `keystead.errors` into responses, one handler per family."""

from __future__ import annotations

import logging
from http import HTTPStatus

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keystead.errors import (
    AlreadyExists,
    ApiError,
    Conflict,
    Forbidden,
    InvalidClient,
    InvalidToken,
    NotFound,
    OAuthError,
    ProtectedRecord,
    RecordNotFound,
    SignupError,
    StoreError,
)

log = logging.getLogger("keystead")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def oauth_error_response(exc: OAuthError) -> Response:
    headers = dict(NO_STORE)
    if isinstance(exc, InvalidClient) and exc.basic:
        headers["WWW-Authenticate"] = 'Basic realm="keystead"'
    elif isinstance(exc, InvalidToken):
        headers["WWW-Authenticate"] = (
            f'Bearer error="invalid_token", error_description="{_quoted(exc.description)}"'
        )
    headers.update(getattr(exc, "headers", None) or {})
    if exc.detail:
        log.info("oauth error %s: %s", exc.error, exc.detail)
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _quoted(text: str) -> str:
    """RFC 7235 quoted-string content: no quotes, backslashes or control characters."""
    return "".join(c for c in text if c not in '"\\' and c.isprintable())


async def on_oauth_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, OAuthError)
    return oauth_error_response(exc)


async def on_api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    if exc.detail:
        log.info("management error %s: %s", exc.status, exc.detail)
    return JSONResponse(
        exc.body(), status_code=exc.status, headers=getattr(exc, "headers", None) or None
    )


async def on_signup_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, SignupError)
    return JSONResponse(exc.body(), status_code=exc.status)


async def on_store_error(request: Request, exc: Exception) -> Response:
    """Repositories raise StoreError; mapped once here into the Management API shape."""
    if isinstance(exc, RecordNotFound):
        return await on_api_error(request, NotFound(str(exc) or "Not found."))
    if isinstance(exc, ProtectedRecord):
        return await on_api_error(
            request, Forbidden(str(exc), error_code="operation_not_supported")
        )
    if isinstance(exc, AlreadyExists):
        return await on_api_error(request, Conflict(str(exc) or "The resource already exists."))
    return await on_unexpected(request, exc)


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    if request.url.path.startswith("/api/v2"):
        body = {"statusCode": 500, "error": "Internal Server Error", "message": "Internal error"}
        return JSONResponse(body, status_code=500)
    return JSONResponse(
        {"error": "server_error", "error_description": "Internal error"},
        status_code=500,
        headers=NO_STORE,
    )


async def on_http_exception(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods, in the error shape of the API that was asked."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if request.url.path.startswith("/api/v2"):
        phrase = HTTPStatus(status).phrase
        body = {"statusCode": status, "error": phrase, "message": _http_message(status)}
        if status == 404:
            body["errorCode"] = "inexistent_resource"
        return JSONResponse(body, status_code=status, headers=exc.headers)
    return JSONResponse(
        {
            "error": "not_found" if status == 404 else "invalid_request",
            "error_description": _http_message(status),
        },
        status_code=status,
        headers=exc.headers,
    )


def _http_message(status: int) -> str:
    if status == 404:
        return "Not Found"
    if status == 405:
        return "Method Not Allowed"
    return HTTPStatus(status).phrase


async def on_database_unavailable(request: Request, exc: Exception) -> Response:
    """The database is down, locked or out of connections: 503 with Retry-After, never a 500
    (security invariant G1). Only driver errors reach here; constraint violations are mapped
    to StoreError by the repositories."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, exc)
    headers = {"Retry-After": "1", **NO_STORE}
    if request.url.path.startswith("/api/v2"):
        body = {
            "statusCode": 503,
            "error": "Service Unavailable",
            "message": "The service is temporarily unavailable. Try again later.",
        }
        return JSONResponse(body, status_code=503, headers=headers)
    return JSONResponse(
        {
            "error": "temporarily_unavailable",
            "error_description": "The service is temporarily unavailable. Try again later.",
        },
        status_code=503,
        headers=headers,
    )


HANDLERS = {
    DBAPIError: on_database_unavailable,
    PoolTimeout: on_database_unavailable,
    HTTPException: on_http_exception,
    OAuthError: on_oauth_error,
    ApiError: on_api_error,
    SignupError: on_signup_error,
    StoreError: on_store_error,
    Exception: on_unexpected,
}
