"""Rate limits in the HTTP layer (contract §12): the Limiter built at start, the checks endpoints
call, and their headers and log events.

    start(state)            lifespan: preset (KEYSTEAD_RATE_LIMIT_PRESET, else the tenant's
                            `rateLimits.preset`, else self-hosted) ← tenant `rateLimits:` ←
                            KEYSTEAD_RATE_LIMITS; in-process, or Redis with KEYSTEAD_REDIS_URL
    limit_management        /api/v2: subject (current-user tokens only) → client → endpoint
                            group → tenant
    limit_token_request     /oauth/token: (IP, username) on password grants → endpoint → IP →
                            client → tenant
    limit_authentication    /userinfo (per user id), change_password (per IP and email), signup
    limit_unauthenticated   /api/v2 and /userinfo with no or an invalid bearer token: per IP
    expose_rate_limits      the X-RateLimit headers on a response, readable cross-origin

A refusal raises ManagementRateLimited / AuthenticationRateLimited carrying the headers, which
the error handlers add; ratelimit/refusals.py logs it, at most once per bucket per window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.bruteforce import BruteForcePolicy
from keystead.core.clock import Clock
from keystead.core.cors import RATE_LIMIT_HEADERS, allowed_origin, cors_headers
from keystead.core.grants import PASSWORD, PASSWORD_REALM
from keystead.core.ratelimit import (
    Bucket,
    management_endpoint,
    parse_rate_limits,
)
from keystead.deps import AppState
from keystead.errors import OAuthError
from keystead.oauth.client_auth import MAX_CLIENT_ID, presented_client
from keystead.oauth.params import read_params
from keystead.ratelimit.asgi import AuthenticationRateLimited
from keystead.ratelimit.headers import Api
from keystead.ratelimit.limiter import Limiter
from keystead.ratelimit.refusals import client_ip, enforce_logged, log_refusal
from keystead.settings import Settings

LIMITER: Final = "limiter"  # AppState.extras keys
PROTECTION: Final = "attack_protection"
TENANT_SETTING: Final = "rateLimits"  # the tenant file's `settings.rateLimits`, one row
REDIS_PREFIX: Final = "keystead:rl:"
# A request without a valid bearer token has no subject or client to draw from, and must not
# draw from the tenant's shared buckets (a flood of bad tokens would starve everyone): it draws
# from its IP's own bucket, one per API, under this rule (on in every preset but `off`).
UNAUTHENTICATED_RULE: Final = "unauthenticated.ip"


# --- building ------------------------------------------------------------------------------------


def build_limiter(
    settings: Settings,
    tenant_config: Mapping[str, Any] | None,
    clock: Clock,
    *,
    redis_prefix: str = REDIS_PREFIX,
) -> Limiter:
    limits = parse_rate_limits(
        tenant_config, preset_name=settings.rate_limit_preset, overrides=settings.rate_limits
    )
    return Limiter.create(
        limits,
        redis_url=settings.redis_url,
        fail_closed=settings.rate_limit_fail_closed,
        redis_prefix=redis_prefix,
        clock=clock,
    )


def protection_policy(settings: Settings) -> BruteForcePolicy:
    return BruteForcePolicy.from_settings(
        max_attempts=settings.bruteforce_max_attempts,
        block_seconds=settings.bruteforce_block_seconds,
        login_ip=settings.suspicious_ip_login_limit,
        signup_ip=settings.suspicious_ip_signup_limit,
        allowlist=settings.attack_protection_allowlist,
    )


async def start(state: AppState) -> None:
    """Build the limiter and the attack-protection policy; the tenant's limits are read once."""
    async with state.transaction() as session:
        config = await state.repos(session).tenant_settings.get(TENANT_SETTING)
    state.extras[PROTECTION] = protection_policy(state.settings)
    state.extras[LIMITER] = build_limiter(state.settings, config, state.clock)


async def stop(state: AppState) -> None:
    limiter = state.extras.pop(LIMITER, None)
    if isinstance(limiter, Limiter):
        await limiter.aclose()


def limiter_of(state: AppState) -> Limiter | None:
    """None when the lifespan did not run (nothing is limited then)."""
    found = state.extras.get(LIMITER)
    return found if isinstance(found, Limiter) else None


def policy_of(state: AppState) -> BruteForcePolicy:
    found = state.extras.get(PROTECTION)
    if not isinstance(found, BruteForcePolicy):
        found = state.extras[PROTECTION] = protection_policy(state.settings)
    return found


# --- checks --------------------------------------------------------------------------------------


async def limit_management(
    state: AppState, request: Request, *, sub: str, client_id: str | None, current_user: bool
) -> dict[str, str]:
    """The X-RateLimit headers for a Management API request, or ManagementRateLimited.

    `current_user`: a token from a user flow (not client credentials); only those draw from a
    bucket of their own, keyed by `sub`, so one user cannot drain the tenant (§14 #1).
    """
    limiter = limiter_of(state)
    if limiter is None:
        return {}
    buckets = limiter.management(
        client_id=client_id or sub,
        subject=sub if current_user else None,
        endpoint=management_endpoint(request.method, request.url.path),
    )
    event = {"client_id": client_id, "user_id": sub if current_user else None}
    return await enforce_logged(state, limiter, buckets, "management", request, event)


async def limit_authentication(
    state: AppState,
    request: Request,
    *,
    endpoint: str | None = None,
    client_id: str | None = None,
    username: str | None = None,
    user_id: str | None = None,
    email: str | None = None,
    extra: Sequence[Bucket] = (),
) -> dict[str, str]:
    """The X-RateLimit headers for an Authentication API request, or AuthenticationRateLimited.
    `extra` buckets (the suspicious-IP signup bucket) are checked with the others, first."""
    limiter = limiter_of(state)
    if limiter is None:
        return {}
    buckets = [
        *extra,
        *limiter.authentication(
            ip=client_ip(request),
            client_id=client_id,
            username=username,
            endpoint=endpoint,
            user_id=user_id,
            email=email,
        ),
    ]
    event = {"client_id": client_id, "user_id": user_id, "user_name": username or email}
    return await enforce_logged(state, limiter, buckets, "authentication", request, event)


async def limit_unauthenticated(state: AppState, request: Request, *, api: Api) -> dict[str, str]:
    """The X-RateLimit headers for a request whose bearer token was missing or refused, or the
    API's 429 (ManagementRateLimited / AuthenticationRateLimited) once its IP's bucket is dry.
    Called where the 401 is answered; the 401 is still sent while the bucket holds. The rule is
    `unauthenticated.ip` (off in the `off` preset, or set to `off` on its own)."""
    limiter = limiter_of(state)
    if limiter is None:
        return {}
    spec = limiter.limits[UNAUTHENTICATED_RULE]
    if spec is None:
        return {}
    ip = client_ip(request)
    bucket = Bucket(f"anon:{api}:{quote(ip[:64], safe='.')}", spec, UNAUTHENTICATED_RULE)
    return await enforce_logged(state, limiter, [bucket], api, request, {})


async def limit_token_request(state: AppState, request: Request) -> dict[str, str]:
    """/oauth/token, before anything else (nothing is logged per refused request). Keys come from
    the body as presented: the password grant's username, the client_id (Basic or body)."""
    params: Any = None
    try:
        params = await read_params(request)
        client_id: str | None = presented_client(
            params, request.headers.get("authorization")
        ).client_id
    except OAuthError:
        client_id = None  # the endpoint reports the malformed request; IP and tenant still count
    username = None
    try:
        if params is not None and params.get("grant_type") in (PASSWORD, PASSWORD_REALM):
            username = params.get("username") or None
    except OAuthError:
        username = None
    try:
        return await limit_authentication(
            state, request, endpoint="token", client_id=client_id, username=username
        )
    except AuthenticationRateLimited as exc:
        # The refusal comes before the client is looked up; the SPA must still read it.
        exc.headers.update(await _token_cors(state, request, client_id))
        raise


async def login_rate_allowed(state: AppState, ip: str | None, username: str) -> bool:
    """The hosted login page's password check: (IP, username) → IP → tenant, as /oauth/token."""
    limiter = limiter_of(state)
    if limiter is None:
        return True
    buckets = limiter.authentication(ip=ip or "", username=username)
    decision = await limiter.check(buckets)
    if not decision.allowed:
        event = {"user_name": username, "ip": ip}
        await log_refusal(state, limiter, buckets, decision, None, event)
    return decision.allowed


def expose_rate_limits(response: Response, headers: Mapping[str, str] | None = None) -> Response:
    """Add `headers`; when the response is readable cross-origin, let scripts read them too."""
    response.headers.update(headers or {})
    if "access-control-allow-origin" in response.headers and "x-ratelimit-limit" in (
        response.headers
    ):
        exposed = response.headers.get("access-control-expose-headers", "")
        names = [n.strip() for n in exposed.split(",") if n.strip()]
        for name in (*RATE_LIMIT_HEADERS, "Retry-After"):
            if name.lower() not in {n.lower() for n in names}:
                names.append(name)
        response.headers["access-control-expose-headers"] = ", ".join(names)
    return response


# --- refusals ------------------------------------------------------------------------------------


async def _token_cors(state: AppState, request: Request, client_id: str | None) -> dict[str, str]:
    origin = request.headers.get("origin")
    if not origin or not client_id or len(client_id) > MAX_CLIENT_ID:
        return {}
    async with state.transaction() as session:
        client = await state.repos(session).clients.find(client_id)
    if client is None or not allowed_origin(origin, client):
        return {}
    return cors_headers(origin, expose=(*RATE_LIMIT_HEADERS, "Retry-After"))
