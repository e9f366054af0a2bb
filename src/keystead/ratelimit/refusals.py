"""Rate-limit refusals: the 429 raised for a dry bucket, and its log event (contract §12).

A refusal is logged (`api_limit`, or `limit_mu` for the signup throttle) at most once per
bucket per window, gated through the limiter itself so that replicas agree: a spammer must not
be able to fill the logs table with one row per refused request.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Final

from starlette.requests import Request

from keystead.core.ratelimit import Bucket, BucketSpec, Decision
from keystead.deps import AppState
from keystead.ratelimit.asgi import AuthenticationRateLimited, ManagementRateLimited, enforce
from keystead.ratelimit.headers import Api
from keystead.ratelimit.limiter import Limiter

log = logging.getLogger("keystead.ratelimit")

LOG_WINDOW_FLOOR: Final = 60.0  # seconds; a 1 s bucket must not log once a second
CURRENT_USER_LIMIT: Final = "The current_user scope limit has been reached"  # §12.2


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


async def enforce_logged(
    state: AppState,
    limiter: Limiter,
    buckets: Sequence[Bucket],
    api: Api,
    request: Request,
    event: dict[str, Any],
) -> dict[str, str]:
    try:
        return await enforce(limiter, buckets, api=api)
    except (ManagementRateLimited, AuthenticationRateLimited) as exc:
        await log_refusal(state, limiter, buckets, exc.decision, request, event)
        raise


async def log_refusal(
    state: AppState,
    limiter: Limiter,
    buckets: Sequence[Bucket],
    decision: Decision,
    request: Request | None,
    event: dict[str, Any],
) -> None:
    """One event per bucket per window (its refill time, at least a minute), across replicas."""
    refused = next((b for b in buckets if (b.name or b.key) == decision.bucket_name), None)
    if refused is None:  # the store refused (fail-closed outage): the warning log says so
        return
    window = max(LOG_WINDOW_FLOOR, refused.spec.burst / refused.spec.rate)
    gate = Bucket("log:" + refused.key, BucketSpec(1, 1, window), "log")
    if not (await limiter.check([gate])).allowed:
        return
    signup = refused.name == "suspiciousIp.signup"
    if refused.name == "management.subject":
        description = CURRENT_USER_LIMIT
    elif signup:
        description = "Too many signups from this IP address"
    else:
        description = f"Rate limit reached: {refused.name} ({refused.spec})"
    details: dict[str, Any] = {
        "bucket": refused.name,
        "limit": decision.limit,
        "reset": decision.reset_epoch,
    }
    where: dict[str, Any] = {}
    if request is not None:
        details["request"] = {"method": request.method, "path": request.url.path}
        where = {"ip": client_ip(request), "user_agent": request.headers.get("user-agent")}
        where["user_agent"] = (where["user_agent"] or "")[:255] or None
    try:
        async with state.transaction() as session:
            await state.logs(session).record(
                "limit_mu" if signup else "api_limit",
                description=description,
                details=details,
                **{k: v for k, v in {**where, **event}.items() if v},
            )
    except Exception as exc:
        log.warning("could not log a rate-limit refusal: %s", exc)
