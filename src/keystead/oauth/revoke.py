"""Refresh-token revocation, POST /oauth/revoke (RFC 7009; contract §7.1, security RT-07).

    parse (JSON or form) → authenticate the client as /oauth/token does (secret or
    private_key_jwt assertion) → `token` required →
    unknown token: 200 all the same (RFC 7009 §2.2) → another client's: 403 invalid_grant,
    unchanged → ours: revoke it and its whole rotation family → 200, empty body

The family is one login's chain of rotated tokens, so revoking the presented token also ends
the copies a rotation just replaced; other logins of the same user and client keep theirs.
Access tokens are JWTs and are not revoked (contract §7.1).
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.clients import Client
from keystead.deps import get_state
from keystead.errors import InvalidGrant, OAuthError
from keystead.http.errors import NO_STORE, oauth_error_response
from keystead.oauth.client_auth import (
    MAX_CLIENT_ID,
    assertion_check,
    authenticate_client,
    presented_client,
)
from keystead.oauth.cors import preflight, response_cors
from keystead.oauth.params import printable, read_params
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens

MAX_TOKEN = 512


async def revoke(request: Request) -> Response:
    if request.method == "OPTIONS":
        return await preflight(request)
    state = get_state(request)
    origin = request.headers.get("origin")
    found: Client | None = None
    try:
        params = await read_params(request)
        presented = presented_client(params, request.headers.get("authorization"))
        async with state.transaction() as session:
            repos = state.repos(session)
            if len(presented.client_id) <= MAX_CLIENT_ID:
                found = await repos.clients.find(presented.client_id)
            check = assertion_check(state)
            client = await authenticate_client(presented, found, repos.clients, check)
            token = params.required("token")
            store = SqlRefreshTokens(session, state.clock, state.sealer)
            stored = await store.find(token) if len(token) <= MAX_TOKEN else None
            if stored is not None:
                if stored.client_id != client.client_id:
                    raise InvalidGrant(
                        "The refresh token was not issued to this client",
                        detail="revocation by another client",
                    )
                if await store.revoke_family(stored.family_id, now=state.clock.now()):
                    agent = request.headers.get("user-agent")
                    await state.logs(session).record(
                        "srrt",
                        user_id=stored.user_id,
                        client_id=client.client_id,
                        ip=request.client.host if request.client else None,
                        user_agent=printable(agent, 255) if agent else None,
                    )
    except OAuthError as exc:
        response = oauth_error_response(exc)
        response.headers.update(response_cors(origin, found))
        return response
    return Response(status_code=200, headers={**NO_STORE, **response_cors(origin, found)})
