"""The Management API's front door (contract §0.3, §8): one wrapper around every handler.

api(method, path, handler) → ApiRoute, at import: the operation's accepted scopes from
core/policy (an operation Auth0 does not have fails the import). Per request:
  1. bearer token (management/auth.py)                       401 / 400
     rate limits: subject (user tokens) → client → tenant      429 (ratelimit/wiring.py)
  2. core/policy.authorize with the path's target user        403 insufficient_scope /
                                                               403 unowned_resource
  3. handler(request, caller): never checks scopes itself
  4. errors rendered in Auth0's shape; CORS headers for the token's client (azp)
Preflight: OPTIONS on any /api/v2 path, for origins some client allows (it carries no token).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound, Route
from starlette.types import Receive, Scope, Send

from keystead.core import policy
from keystead.core.cors import (
    API_ALLOW_HEADERS,
    API_ALLOW_METHODS,
    RATE_LIMIT_HEADERS,
    VARY_ORIGIN,
    allowed_origin,
    cors_headers,
    preflight_headers,
)
from keystead.deps import AppState, get_state
from keystead.errors import ApiError, StoreError
from keystead.http.errors import on_api_error, on_store_error
from keystead.management.auth import Token, authenticate
from keystead.ratelimit.asgi import ManagementRateLimited
from keystead.ratelimit.wiring import limit_management, limit_unauthenticated

PREFIX: Final = "/api/v2"


@dataclass(frozen=True)
class Caller:
    """Who calls, and what core/policy decided about this request."""

    sub: str
    client_id: str | None  # the token's azp: the application acting
    scopes: frozenset[str]  # every scope in the token
    decision: policy.Decision
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def is_current_user(self) -> bool:
        """Only current-user scopes matched: the caller is the signed-in user in `sub`."""
        return self.decision.current_user

    @property
    def target_user_id(self) -> str | None:
        """The path's user id, in the form to act on (percent-decoded when it is `sub`)."""
        return self.decision.target_user_id

    @property
    def actor(self) -> Literal["user", "admin"]:
        return "user" if self.is_current_user else "admin"


Handler = Callable[[Request, Caller], Awaitable[Response]]


def _user_param(template: str) -> str | None:
    """`id` in /users/{id}/…, `user_id` in /users/{user_id}/…: whose data the route touches."""
    parts = template.split("/")
    if len(parts) > 2 and parts[1] == "users" and parts[2].startswith("{"):
        return parts[2].strip("{}").split(":")[0]
    return None


class ApiRoute(Route):
    """A Management API route that knows its operation and accepted scopes."""

    def __init__(self, method: str, template: str, handler: Handler) -> None:
        self.operation = policy.operation(method, template)  # KeyError: not an Auth0 operation
        self.scopes = self.operation.scopes
        self.template = template
        self.handler = handler
        self._user_param = _user_param(template)

        async def endpoint(request: Request) -> Response:
            return await self._serve(request)

        super().__init__(
            PREFIX + template, endpoint, methods=[method], name=self.operation.operation_id
        )

    async def _serve(self, request: Request) -> Response:
        state = get_state(request)
        token: Token | None = None
        limits: dict[str, str] = {}
        try:
            token = await authenticate(state, request.headers.get("authorization"))
            limits = await limit_management(
                state,
                request,
                sub=token.sub,
                client_id=token.client_id,
                current_user=not token.is_client_credentials,
            )
            target = request.path_params.get(self._user_param) if self._user_param else None
            decision = policy.authorize(
                self.operation.method,
                self.operation.path,
                token_scopes=token.scopes,
                subject=token.sub,
                target_user_id=target,
            )
            caller = Caller(token.sub, token.client_id, token.scopes, decision, token.claims)
            response = await self.handler(request, caller)
        except ApiError as exc:
            error: ApiError = exc
            if token is None:  # no valid bearer token: its IP's own bucket (ratelimit/wiring)
                try:
                    limits = await limit_unauthenticated(state, request, api="management")
                except ManagementRateLimited as refused:
                    error = refused
            response = await render_error(request, error)
        except StoreError as exc:
            response = await on_store_error(request, exc)
        response.headers.update(limits)  # §12.1: on every response, errors included
        origin = request.headers.get("origin")
        if origin:
            response.headers.update(VARY_ORIGIN)
            if await _origin_allowed(state, origin, token):
                response.headers.update(cors_headers(origin, expose=RATE_LIMIT_HEADERS))
        return response


def api(method: str, path: str, handler: Handler) -> ApiRoute:
    """One line of the route table: `api("GET", "/users/{id}", users.get_user)`."""
    return ApiRoute(method, path, handler)


async def render_error(request: Request, exc: ApiError) -> Response:
    response = await on_api_error(request, exc)
    extra: Mapping[str, str] | None = getattr(exc, "headers", None)  # 401 challenge, 429 limits
    if extra:
        response.headers.update(extra)
    return response


def json_response(body: Any, status_code: int = 200) -> Response:
    return JSONResponse(body, status_code=status_code)


# --- CORS (contract §0.3) ----------------------------------------------------------------------


async def _origin_allowed(state: AppState, origin: str, token: Token | None) -> bool:
    """The token's client decides; without a verified token, as for a preflight."""
    async with state.sessions() as session:
        clients = state.repos(session).clients
        if token is not None and token.client_id is not None:
            client = await clients.find(token.client_id)
            return client is not None and allowed_origin(origin, client)
        if token is not None:
            return False  # a verified token without azp names no client that could allow it
        return any(allowed_origin(origin, c) for c in await clients.list())


class PreflightRoute(BaseRoute):
    """OPTIONS on any /api/v2 path; matches nothing else, so its place in the table is free."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        path: str = scope.get("path", "")
        if (
            scope["type"] == "http"
            and scope["method"] == "OPTIONS"
            and (path == PREFIX or path.startswith(PREFIX + "/"))
        ):
            return Match.FULL, {}
        return Match.NONE, {}

    def url_path_for(self, name: str, /, **path_params: Any) -> Any:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        origin = request.headers.get("origin")
        headers: dict[str, str] = dict(VARY_ORIGIN)
        if origin and await _origin_allowed(get_state(request), origin, None):
            headers = preflight_headers(
                origin, methods=API_ALLOW_METHODS, headers=API_ALLOW_HEADERS
            )
        await Response(status_code=204, headers=headers)(scope, receive, send)
