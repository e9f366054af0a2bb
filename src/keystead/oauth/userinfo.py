"""UserInfo endpoint, GET|POST /userinfo (contract §5, §0.3; OIDC Core §5.3; RFC 6750).

    1. the bearer token: Authorization header, or form `access_token` on POST (RFC 6750 §2.2)
    2. verify: our RS256 key, our issuer, aud ∋ {issuer}userinfo, not expired
    3. scope ∋ openid, else 403 insufficient_scope (security case OI-07)
    4. the user, as stored now: deleted or blocked → 401; then the rate limits (per user id)
    5. userinfo_claims(user, scopes), no-store, CORS for the origins of the token's client

Failures keep the OAuth JSON shape with a `WWW-Authenticate` challenge; a request that sent no
token at all gets the bare `Bearer` challenge, without an error code (RFC 6750 §3.1).
"""

from __future__ import annotations

import logging
import re
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keystead.core.cors import (
    RATE_LIMIT_HEADERS,
    USERINFO_ALLOW_HEADERS,
    USERINFO_ALLOW_METHODS,
    VARY_ORIGIN,
    allowed_origin,
    client_origins,
    cors_headers,
    origin_matches,
    preflight_headers,
)
from keystead.core.id_tokens import userinfo_claims
from keystead.core.scopes import OPENID
from keystead.core.tokens import userinfo_audience
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.errors import InsufficientScope, InvalidRequest, InvalidToken, OAuthError
from keystead.http.errors import NO_STORE, oauth_error_response
from keystead.oauth.params import FORM, JSON, read_params
from keystead.ratelimit.asgi import AuthenticationRateLimited
from keystead.ratelimit.wiring import (
    expose_rate_limits,
    limit_authentication,
    limit_unauthenticated,
)
from keystead.storage.keys import verify_token
from keystead.storage.user_reads import find_user

log = logging.getLogger("keystead")

# Clock skew tolerated on exp/iat/nbf (security case RE-07: 59 s accepted, 61 s refused).
LEEWAY: Final = 60
# RFC 6750 §2.1: `Bearer 1*SP b64token`; the scheme is case-insensitive (JW-12).
_BEARER: Final = re.compile(r"[Bb][Ee][Aa][Rr][Ee][Rr] ([A-Za-z0-9\-._~+/]+=*)")
MISSING: Final = "Missing access token"


class _NoToken(InvalidToken):
    """No credentials at all: the challenge carries no error code (RFC 6750 §3.1)."""


async def userinfo(request: Request) -> Response:
    state = get_state(request)
    origin = request.headers.get("origin")
    if request.method == "OPTIONS":
        return await _preflight(state, origin)
    verified = False
    try:
        token = await _bearer_token(request)
        claims = await _verify(state, token)
        verified = True
        scopes = _scopes(claims)
        if OPENID not in scopes:
            raise InsufficientScope("The access token was not granted the openid scope")
        user = await _current_user(state, claims)
        # §12.2: per user id, burst 10 and 5/min in every preset; `rateLimits.authentication.
        # endpoints.userinfo` changes it (contract §14 #3: apps calling it on every page load).
        limits = await limit_authentication(
            state, request, endpoint="userinfo", user_id=user.user_id, client_id=_azp(claims)
        )
    except OAuthError as exc:
        error: OAuthError = exc
        anonymous: dict[str, str] = {}
        if not verified:  # no valid bearer token: its IP's own bucket (ratelimit/wiring)
            try:
                anonymous = await limit_unauthenticated(state, request, api="authentication")
            except AuthenticationRateLimited as refused:
                error = refused
        return expose_rate_limits(await _error(state, error, origin), anonymous)
    headers = {**NO_STORE, **limits}
    if origin:
        headers.update(VARY_ORIGIN)
        client_id = _azp(claims)
        if client_id is not None and await _client_allows(state, client_id, origin):
            headers.update(cors_headers(origin, expose=RATE_LIMIT_HEADERS))
    return JSONResponse(userinfo_claims(user, scopes), headers=headers)


def _azp(claims: dict[str, Any]) -> str | None:
    client_id = claims.get("azp") or claims.get("client_id")
    return client_id if isinstance(client_id, str) else None


# --- 1. the token ------------------------------------------------------------------------------


async def _bearer_token(request: Request) -> str:
    header = request.headers.get("authorization")
    body_token: str | None = None
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if request.method == "POST" and media_type in (FORM, JSON):
        body_token = (await read_params(request)).get("access_token")
    if header is not None and body_token is not None:
        # RFC 6750 §2: a client MUST NOT use more than one method per request.
        raise InvalidRequest("The access token must be sent in one place only")
    if body_token is not None:
        return body_token
    if header is None or not header.strip():
        raise _NoToken(MISSING)
    match = _BEARER.fullmatch(header)
    if match is None:
        raise InvalidToken("Malformed Authorization header; expected: Bearer <token>")
    return match.group(1)


async def _verify(state: AppState, token: str) -> dict[str, Any]:
    try:
        return await verify_token(
            state, token, audience=userinfo_audience(state.settings.issuer), leeway=LEEWAY
        )
    except InvalidToken as exc:
        # Quotes would break the WWW-Authenticate quoted-string the handler builds.
        raise InvalidToken(exc.description.replace('"', "'"), detail=exc.detail) from None


def _scopes(claims: dict[str, Any]) -> tuple[str, ...]:
    scope = claims.get("scope")
    return tuple(scope.split()) if isinstance(scope, str) else ()


# --- 4. the user -------------------------------------------------------------------------------


async def _current_user(state: AppState, claims: dict[str, Any]) -> User:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InvalidToken("The access token has no subject")
    user = await find_user(state.engine, sub)
    if user is None:
        raise InvalidToken("Invalid token", detail=f"user {sub} no longer exists")
    if user.blocked:
        raise InvalidToken("user is blocked", detail=f"user {sub} is blocked")
    return user


# --- CORS and errors ---------------------------------------------------------------------------


async def _client_allows(state: AppState, client_id: str, origin: str) -> bool:
    async with state.transaction() as session:
        client = await state.repos(session).clients.find(client_id)
    return client is not None and allowed_origin(origin, client)


async def _any_client_allows(state: AppState, origin: str | None) -> bool:
    """Before a token is verified no client is known: an origin of any client's may ask."""
    if not origin:
        return False
    async with state.transaction() as session:
        clients = await state.repos(session).clients.list()
    return any(origin_matches(origin, client_origins(client)) for client in clients)


async def _preflight(state: AppState, origin: str | None) -> Response:
    if await _any_client_allows(state, origin):
        assert origin is not None
        headers = preflight_headers(
            origin, methods=USERINFO_ALLOW_METHODS, headers=USERINFO_ALLOW_HEADERS
        )
        return Response(status_code=204, headers=headers)
    return Response(status_code=204, headers=dict(VARY_ORIGIN))


async def _error(state: AppState, exc: OAuthError, origin: str | None) -> Response:
    response = oauth_error_response(exc)
    if isinstance(exc, _NoToken):
        response.headers["WWW-Authenticate"] = "Bearer"
    elif isinstance(exc, InsufficientScope):
        response.headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_scope", scope="{OPENID}"'
        )
    if origin:
        # So that a browser app can read why it failed; only for origins some client allows.
        response.headers.update(VARY_ORIGIN)
        if await _any_client_allows(state, origin):
            response.headers.update(cors_headers(origin))
    return response
