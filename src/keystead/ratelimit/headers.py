"""Rate-limit response headers and the two 429 bodies (contract §12.1)."""

from __future__ import annotations

from typing import Any, Final, Literal

from keystead.core.ratelimit import Decision

Api = Literal["management", "authentication"]

DETAIL: Final = (
    "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
    "X-RateLimit-Reset headers."
)
GLOBAL_LIMIT: Final = "Global limit has been reached"  # Auth0's text for the tenant-wide bucket


def rate_limit_headers(decision: Decision) -> dict[str, str]:
    """The three X-RateLimit headers (Reset in integer epoch seconds), plus Retry-After on 429.

    Nothing when no bucket applies to the request (every rule switched off).
    """
    if decision.limit == 0:
        return {}
    headers = {
        "x-ratelimit-limit": str(decision.limit),
        "x-ratelimit-remaining": str(decision.remaining),
        "x-ratelimit-reset": str(decision.reset_epoch),
    }
    if not decision.allowed:
        headers["retry-after"] = str(decision.retry_after)
    return headers


def management_message(decision: Decision) -> str:
    return GLOBAL_LIMIT if decision.bucket_name == "management.tenant" else DETAIL


def too_many_requests_body(api: Api, decision: Decision) -> dict[str, Any]:
    """The 429 body in the API's own error shape (§0.5)."""
    if api == "management":
        return {
            "statusCode": 429,
            "error": "Too Many Requests",
            "message": management_message(decision),
            "errorCode": "too_many_requests",
        }
    return {"error": "too_many_requests", "error_description": DETAIL}
