"""Every error Keystead raises on purpose, modeled once.

OAuthError      {"error", "error_description"}: RFC 6749 §5.2, OIDC Core §3.1.2.6 (contract §0.5.1)
  InvalidRequest  InvalidClient(401)  InvalidGrant(403)  UnauthorizedClient(403)
  UnsupportedGrantType  UnsupportedResponseType  InvalidScope  AccessDenied(403)
  LoginRequired  ConsentRequired  InteractionRequired  TooManyRequests(429)
  InvalidToken(401)  InsufficientScope(403): bearer errors, with WWW-Authenticate
SignupError     contract §7.2: both {"error","error_description"} and {"code","description"}
ApiError        {"statusCode", "error", "message", "errorCode"}: Management API, Auth0's shape
  BadRequest  Unauthorized  Forbidden  NotFound  Conflict  PayloadTooLarge  ApiTooManyRequests
StoreError      raised by repositories and mapped once: NotFound→404, AlreadyExists→409
  RecordNotFound  AlreadyExists  ProtectedRecord(→403)
ConfigError     bad settings, tenant file or CLI input: one line on stderr, exit code 2

`description`/`message` is sent to the client; `detail` is only ever logged.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any, ClassVar


class KeysteadError(Exception):
    """Root of every error raised on purpose."""


class ConfigError(KeysteadError):
    """Settings, CLI or tenant-file input that cannot be used."""


# --- OAuth / Authentication API --------------------------------------------------------------


class OAuthError(KeysteadError):
    error: ClassVar[str] = "invalid_request"
    status: ClassVar[int] = 400

    def __init__(
        self, description: str = "", *, detail: str = "", extra: dict[str, Any] | None = None
    ) -> None:
        super().__init__(description or self.error)
        self.description = description
        self.detail = detail
        self.extra = extra or {}

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.description, **self.extra}


class InvalidRequest(OAuthError):
    error = "invalid_request"


class InvalidClient(OAuthError):
    error = "invalid_client"
    status = 401

    def __init__(self, description: str = "Unauthorized", *, basic: bool = False, **kw: Any):
        super().__init__(description, **kw)
        self.basic = basic  # RFC 6749 §5.2: Basic auth failures answer WWW-Authenticate


class InvalidGrant(OAuthError):
    error = "invalid_grant"
    status = 403  # Auth0 answers 403 (contract §3.9)


class UnauthorizedClient(OAuthError):
    error = "unauthorized_client"
    status = 403


class UnsupportedGrantType(OAuthError):
    error = "unsupported_grant_type"


class UnsupportedResponseType(OAuthError):
    error = "unsupported_response_type"


class InvalidScope(OAuthError):
    error = "invalid_scope"


class AccessDenied(OAuthError):
    error = "access_denied"
    status = 403


class MfaRequired(OAuthError):
    error = "mfa_required"
    status = 403


class LoginRequired(OAuthError):
    error = "login_required"


class ConsentRequired(OAuthError):
    error = "consent_required"


class InteractionRequired(OAuthError):
    error = "interaction_required"


class TooManyAttempts(OAuthError):
    error = "too_many_attempts"
    status = 429


class TooManyRequests(OAuthError):
    error = "too_many_requests"
    status = 429

    def __init__(self, description: str = "", **kw: Any) -> None:
        super().__init__(
            description
            or "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
            "X-RateLimit-Reset headers.",
            **kw,
        )


class InvalidToken(OAuthError):
    error = "invalid_token"
    status = 401


class InsufficientScope(OAuthError):
    error = "insufficient_scope"
    status = 403


class ServerError(OAuthError):
    error = "server_error"
    status = 500


# --- /dbconnections ----------------------------------------------------------------------------


class SignupError(KeysteadError):
    """Signup errors carry both error families so every SDK parser finds its fields."""

    def __init__(
        self,
        code: str,
        description: str | dict[str, Any],
        *,
        status: int = 400,
        name: str = "BadRequestError",
        message: str | None = None,
    ) -> None:
        super().__init__(code)
        self.code = code
        self.description = description
        self.status = status
        self.name = name
        self.message = message

    def body(self) -> dict[str, Any]:
        text = self.description if isinstance(self.description, str) else self.message or ""
        out: dict[str, Any] = {
            "name": self.name,
            "code": self.code,
            "description": self.description,
            "error": self.code,
            "error_description": text,
            "statusCode": self.status,
        }
        if self.message:
            out["message"] = self.message
        return out


# --- Management API ----------------------------------------------------------------------------


class ApiError(KeysteadError):
    status: ClassVar[int] = 400
    default_code: ClassVar[str | None] = None

    def __init__(self, message: str, *, error_code: str | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.error_code = error_code if error_code is not None else self.default_code
        self.detail = detail

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "statusCode": self.status,
            "error": HTTPStatus(self.status).phrase,
            "message": self.message,
        }
        if self.error_code:
            out["errorCode"] = self.error_code
        return out


class BadRequest(ApiError):
    status = 400
    default_code = "invalid_body"


class Unauthorized(ApiError):
    status = 401


class Forbidden(ApiError):
    status = 403
    default_code = "insufficient_scope"


class NotFound(ApiError):
    status = 404
    default_code = "inexistent_resource"


class Conflict(ApiError):
    status = 409
    default_code = "already_exists"


class PayloadTooLarge(ApiError):
    status = 413
    default_code = "payload_too_large"


class ApiTooManyRequests(ApiError):
    status = 429
    default_code = "too_many_requests"


# --- Storage -----------------------------------------------------------------------------------


class StoreError(KeysteadError):
    """Raised by repositories instead of driver errors."""


class RecordNotFound(StoreError):
    pass


class AlreadyExists(StoreError):
    pass


class ProtectedRecord(StoreError):
    """A system record (the Management API, the default connection) that cannot be changed."""
