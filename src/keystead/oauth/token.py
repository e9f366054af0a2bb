"""Token endpoint, POST /oauth/token (RFC 6749 §3.2; contract §3, §4).

    0. rate limits: (IP, username) → IP → client  ratelimit/wiring.py (429, never logged)
    1. parse the body once (JSON or form)         oauth/params.py
    2. grant_type → GRANTS                        unsupported_grant_type
    3. authenticate the client                    oauth/client_auth.py
    4. may the client use the grant?              core/grants.check_grant_allowed
    5. the grant's own part, in one transaction   oauth/grants/<grant>.py → TokenPlan
    6. commit, then sign                          oauth/issue.TokenPlan.response
    7. log the outcome (Auth0 event codes), answer JSON with no-store (+ CORS)

A refusal rolls the transaction back and is logged in a short one of its own; FailAfterCommit
refusals (reuse detected) commit their revocations and log with them.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keystead.core.clients import Client
from keystead.core.grants import check_grant_allowed
from keystead.deps import AppState, get_state
from keystead.errors import OAuthError, TooManyAttempts, UnsupportedGrantType
from keystead.http.errors import NO_STORE, oauth_error_response
from keystead.oauth.client_auth import (
    MAX_CLIENT_ID,
    assertion_check,
    authenticate_client,
    presented_client,
)
from keystead.oauth.cors import preflight, response_cors
from keystead.oauth.grants import GRANTS
from keystead.oauth.issue import FailAfterCommit, Grant, TokenContext, TokenPlan
from keystead.oauth.params import printable, read_params
from keystead.ratelimit.wiring import expose_rate_limits, limit_token_request

log = logging.getLogger("keystead")

MAX_USER_AGENT = 255


async def token(request: Request) -> Response:
    if request.method == "OPTIONS":
        return await preflight(request)
    state = get_state(request)
    origin = request.headers.get("origin")
    attempt = _Attempt(request)
    limits: dict[str, str] = {}
    try:
        limits = await limit_token_request(state, request)  # §12: before anything is logged
        plan = await _run(state, request, attempt)
        body = (await plan.response(state)).body()
    except OAuthError as exc:
        # A blocked pair or throttled IP is logged once (limit_wc, limit_mu), not per attempt.
        if (
            attempt.grant is not None
            and not attempt.logged
            and not isinstance(exc, TooManyAttempts)
        ):
            await _record_failure(state, attempt, exc)
        response = oauth_error_response(exc)
        response.headers.update(response_cors(origin, attempt.client))
        return expose_rate_limits(response, limits)
    response = JSONResponse(body, headers={**NO_STORE, **response_cors(origin, attempt.client)})
    return expose_rate_limits(response, limits)


class _Attempt:
    """What is known about a request as it goes, for the log event and the CORS headers."""

    def __init__(self, request: Request) -> None:
        self.ip = request.client.host if request.client else None
        agent = request.headers.get("user-agent")
        self.user_agent = printable(agent, MAX_USER_AGENT) if agent else None
        self.forwarded_for = request.headers.get("auth0-forwarded-for")
        self.grant: Grant | None = None
        self.client: Client | None = None
        self.ctx: TokenContext | None = None
        self.logged = False

    def event(self, error: OAuthError | None = None) -> dict[str, Any]:
        found = self.ctx.event if self.ctx is not None else {}
        audience = found.get("audience")
        return {
            "description": error.description if error is not None else None,
            "user_id": found.get("user_id"),
            "client_id": self.client.client_id if self.client is not None else None,
            "ip": self.ctx.ip if self.ctx is not None else self.ip,
            "user_agent": self.user_agent,
            "audience": printable(audience, 300) if isinstance(audience, str) else None,
            "scope": found.get("scope") or None,
            "connection": found.get("connection"),
        }


async def _run(state: AppState, request: Request, attempt: _Attempt) -> TokenPlan:
    params = await read_params(request)
    grant_type = params.required("grant_type")
    grant = GRANTS.get(grant_type)
    if grant is None:
        raise UnsupportedGrantType(f"Unsupported grant type: {printable(grant_type)}")
    attempt.grant = grant
    presented = presented_client(params, request.headers.get("authorization"))
    refused: FailAfterCommit | None = None
    async with state.transaction() as session:
        repos = state.repos(session)
        if len(presented.client_id) <= MAX_CLIENT_ID:
            attempt.client = await repos.clients.find(presented.client_id)
        check = assertion_check(state)
        client = await authenticate_client(presented, attempt.client, repos.clients, check)
        check_grant_allowed(client, grant_type)
        ctx = attempt.ctx = TokenContext(
            state=state,
            session=session,
            params=params,
            client=client,
            grant_type=grant_type,
            now=state.clock.now(),
            ip=attempt.ip,
            user_agent=attempt.user_agent,
            forwarded_for=attempt.forwarded_for,
        )
        try:
            plan = await grant.issue(ctx)
        except FailAfterCommit as exc:
            refused = exc
            await state.logs(session).record(
                exc.event or grant.failure_event, **attempt.event(exc.error)
            )
        else:
            await state.logs(session).record(grant.success_event, **attempt.event())
        attempt.logged = True
    if refused is not None:
        raise refused.error
    return plan


async def _record_failure(state: AppState, attempt: _Attempt, error: OAuthError) -> None:
    """Log a refused exchange (feacft, fertft, feccft, fepft) outside the rolled-back work."""
    assert attempt.grant is not None
    try:
        async with state.transaction() as session:
            await state.logs(session).record(attempt.grant.failure_event, **attempt.event(error))
    except SQLAlchemyError as exc:  # the refusal still goes out; only its log line is lost
        log.warning("could not record a failed token exchange: %s", exc)
