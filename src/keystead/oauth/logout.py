"""Logout: GET /v2/logout (Auth0, contract §6.1) and GET|POST /oidc/logout (OIDC RP-Initiated
Logout 1.0, contract §6.2); security cases SE-05, SE-07, SE-08.

    /v2/logout     end the session ─┬─ returnTo allowed ───────────────▶ 302 returnTo
                                    ├─ client_id, no returnTo ─────────▶ 302 first logout URL
                                    ├─ returnTo not allowed ───────────▶ 400 page
                                    └─ nothing to go to ───────────────▶ 200 page
    /oidc/logout   post_logout_redirect_uri only with a valid id_token_hint for a client that
                   registered it exactly (query included) ▶ 302 uri?state=…; otherwise a page
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.clients import Client
from keystead.core.redirects import append_params, logout_url_allowed
from keystead.deps import AppState, get_state
from keystead.errors import InvalidToken
from keystead.oauth.authorize import Requester
from keystead.storage.keys import verify_token
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.web.csrf import clear_session_cookie, session_cookie
from keystead.web.pages import BASE_HEADERS, error_page, render

# An ID token used as a logout hint may have expired long ago (OIDC RP-Initiated Logout §2:
# the OP should accept it); its signature, issuer and audience are still checked.
ID_TOKEN_HINT_LEEWAY = 365 * 86_400


def _redirect(location: str) -> Response:
    return Response(status_code=302, headers={**BASE_HEADERS, "Location": location})


def _logged_out() -> Response:
    return render("logged_out.html", title="Logged out")


async def _end_session(
    request: Request, state: AppState, session: AsyncSession, client_id: str | None
) -> None:
    """Delete the session row (the cookie is cleared on the response) and log `slo`."""
    ended = await SqlLoginSessions(session, state.clock).delete(
        session_cookie(request, state.settings)
    )
    if ended is not None:
        who = Requester.of(request)
        await state.logs(session).record(
            "slo",
            user_id=ended.user_id,
            client_id=client_id,
            ip=who.ip,
            user_agent=who.user_agent,
            sid=ended.sid,
        )


def _clearing(response: Response, state: AppState) -> Response:
    clear_session_cookie(response, state.settings)
    return response


def _urls(value: Any) -> Sequence[str]:
    """Tenant settings are stored as given: a list of strings, or a mapping holding one."""
    if isinstance(value, Mapping):
        value = value.get("allowed_logout_urls", value.get("value"))
    return [u for u in value if isinstance(u, str)] if isinstance(value, list) else []


async def v2_logout(request: Request) -> Response:
    state = get_state(request)
    query = request.query_params
    client_id = query.get("client_id") or None
    return_to = query.get("returnTo") or None
    async with state.transaction() as session:
        repos = state.repos(session)
        client = await repos.clients.find(client_id) if client_id and len(client_id) <= 64 else None
        # Always end the session first: whatever else is wrong, the user asked to log out.
        await _end_session(request, state, session, client.client_id if client else None)
        if client_id is not None and client is None:
            return _clearing(error_page("invalid_request", "Unknown client"), state)
        if client is not None:
            allowed: Sequence[str] = client.allowed_logout_urls
        else:
            allowed = _urls(await repos.tenant_settings.get("allowed_logout_urls"))
    if return_to is not None:
        if logout_url_allowed(return_to, allowed):
            return _clearing(_redirect(return_to), state)
        # SE-05: never to a URL that is not on the list; the session is already gone.
        where = "the application's" if client is not None else "the tenant's"
        return _clearing(
            error_page(
                "invalid_request",
                f"The returnTo URL is not in {where} Allowed Logout URLs. You have been logged "
                "out.",
            ),
            state,
        )
    if client is not None and client.allowed_logout_urls:
        first = client.allowed_logout_urls[0]
        if logout_url_allowed(first, allowed):  # a well-formed URL, not a pattern
            return _clearing(_redirect(first), state)
    return _clearing(_logged_out(), state)


async def _hinted_client(
    state: AppState, repos: Repositories, hint: str, client_id: str | None
) -> Client | None:
    """The client an id_token_hint was issued to, if the hint is one of our ID tokens (SE-08)."""
    try:
        claims = await verify_token(state, hint, leeway=ID_TOKEN_HINT_LEEWAY)
    except InvalidToken:
        return None
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    azp = claims.get("azp")
    issued_to = azp if isinstance(azp, str) else audiences[0] if len(audiences) == 1 else None
    if not isinstance(issued_to, str) or issued_to not in audiences:
        return None
    if client_id is not None and client_id != issued_to:
        return None
    return await repos.clients.find(issued_to)


async def oidc_logout(request: Request) -> Response:
    state = get_state(request)
    if request.method == "POST":
        params: Mapping[str, Any] = await request.form()
    else:
        params = request.query_params

    def param(name: str) -> str | None:
        value = params.get(name)
        return value if isinstance(value, str) and value else None

    hint, client_id = param("id_token_hint"), param("client_id")
    target, logout_state = param("post_logout_redirect_uri"), param("state")
    async with state.transaction() as session:
        repos = state.repos(session)
        client = await _hinted_client(state, repos, hint, client_id) if hint else None
        if hint is not None and client is None:
            # A forged, altered or foreign hint is refused outright, session untouched (SE-08).
            return error_page("invalid_request", "The id_token_hint is not valid")
        if target is not None and client is None:
            return error_page(
                "invalid_request", "post_logout_redirect_uri requires a valid id_token_hint"
            )
        if (
            target is not None
            and client is not None
            and (
                "#" in target
                or not logout_url_allowed(target, client.allowed_logout_urls, ignore_query=False)
            )
        ):
            return error_page(
                "invalid_request",
                "The post_logout_redirect_uri is not in the application's Allowed Logout URLs",
            )
        if client is None and client_id is not None:
            client = await repos.clients.find(client_id) if len(client_id) <= 64 else None
        await _end_session(request, state, session, client.client_id if client else None)
    if target is not None:
        return _clearing(_redirect(append_params(target, {"state": logout_state})), state)
    return _clearing(_logged_out(), state)
