"""CORS for /oauth/token and /oauth/revoke (contract §0.3): the browser SPA's preflight and POST.

OPTIONS   an origin some client allows (a preflight names no client) → 204 with the grant
POST      an origin the request's own client allows → Access-Control-Allow-Origin, on the
          answer and on its errors (spa-js must read error bodies to handle them)
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.clients import Client
from keystead.core.cors import (
    TOKEN_ALLOW_HEADERS,
    TOKEN_ALLOW_METHODS,
    VARY_ORIGIN,
    allowed_origin,
    cors_headers,
    preflight_headers,
)
from keystead.deps import get_state


async def preflight(request: Request) -> Response:
    """Answer the preflight; an origin no client allows gets no CORS headers (browser refuses)."""
    origin = request.headers.get("origin")
    headers: dict[str, str] = dict(VARY_ORIGIN)
    if origin:
        state = get_state(request)
        async with state.transaction() as session:
            clients = await state.repos(session).clients.list()
        if any(allowed_origin(origin, client) for client in clients):
            headers = preflight_headers(
                origin, methods=TOKEN_ALLOW_METHODS, headers=TOKEN_ALLOW_HEADERS
            )
    return Response(status_code=204, headers=headers)


def response_cors(origin: str | None, client: Client | None) -> dict[str, str]:
    """Headers for the actual POST's answer, success or error."""
    if not origin:
        return {}
    if client is not None and allowed_origin(origin, client):
        return cors_headers(origin)
    return dict(VARY_ORIGIN)
