"""GET|POST /authorize (contract §2): the start of every browser login.

    /authorize ─ steps 1-5 (authorize_request.py) ─┬─ usable session ─────────▶ code ▶ redirect_uri
                                                   ├─ session, code owed ─▶ the code page
                                                   ├─ prompt=none ─▶ login_required ▶ redirect_uri
                                                   └─ /u/login or /u/signup ─▶ code ▶ redirect_uri

Steps 6-9 of contract §2.2 (session, consent, MFA, code): the session check is here;
`complete_authorization` does the rest, for a signed-in browser and for the login and signup
pages once the user has given credentials.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.clients import Client
from keystead.core.codes import AuthorizationCode, code_expiry, new_family_id
from keystead.core.grants import client_may_get_refresh_tokens
from keystead.core.scopes import GrantedScopes, grant_user_scopes
from keystead.core.sessions import LoginSession
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.errors import AccessDenied, ConsentRequired, LoginRequired
from keystead.oauth.authorize_checks import is_management_api
from keystead.oauth.authorize_request import (
    AuthorizeError,
    AuthorizeParams,
    AuthorizeRequest,
    UserBlocked,
    validate_authorize,
)
from keystead.oauth.responses import deliver, error_response
from keystead.oauth.step_up import second_factor_step
from keystead.self_service import current_user_tokens_enabled
from keystead.settings import Settings
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.codes import SqlCodes
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.web.csrf import session_cookie
from keystead.web.pages import BASE_HEADERS

log = logging.getLogger("keystead")

LOGIN_PATH = "/u/login"
SIGNUP_PATH = "/u/signup"


@dataclass(frozen=True)
class Requester:
    """Where a request came from, for the log."""

    ip: str | None
    user_agent: str | None

    @classmethod
    def of(cls, request: Request) -> Requester:
        agent = request.headers.get("user-agent")
        return cls(request.client.host if request.client else None, agent[:512] if agent else None)


async def authorize_params(request: Request) -> AuthorizeParams:
    """The query of a GET, or the form of a POST (AZ-11: both are served alike)."""
    if request.method == "POST":
        form = await request.form()
        return AuthorizeParams.parse(form.multi_items())
    return AuthorizeParams.parse(request.query_params.multi_items())


async def authorize(request: Request) -> Response:
    state = get_state(request)
    params = await authorize_params(request)
    who = Requester.of(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        try:
            req = await validate_authorize(params, repos, state.settings)
            return await _authorize(request, state, session, repos, req, who)
        except AuthorizeError as exc:
            await log_failure(state, session, exc, who, silent=params.get("prompt") == "none")
            return error_response(exc)


async def _authorize(
    request: Request,
    state: AppState,
    session: AsyncSession,
    repos: Repositories,
    req: AuthorizeRequest,
    who: Requester,
) -> Response:
    # 6. The SSO session.
    sessions = SqlLoginSessions(session, state.clock)
    cookie = session_cookie(request, state.settings)
    login = await sessions.get_by_cookie(cookie)
    user = await repos.users.find(login.user_id) if login else None
    if login is not None and user is not None and user.blocked:
        await sessions.delete(cookie)
        raise req.fail(UserBlocked())
    if login is None or user is None or must_authenticate(req, login, state.clock.now()):
        if req.silent:
            raise req.fail(LoginRequired("Login required"))
        return redirect_to_login(req)
    check_consent(req)  # step 7 comes before step 8 (and again in complete_authorization)
    code_page = await second_factor_step(request, state, session, req, login.amr, user)
    if code_page is not None:
        return code_page
    await sessions.touch(cookie)
    response = await complete_authorization(state, session, repos, req, login, user)
    if req.silent:
        await state.logs(session).record(
            "ssa",
            user_id=user.user_id,
            client_id=req.client.client_id,
            ip=who.ip,
            user_agent=who.user_agent,
        )
    return response


def must_authenticate(req: AuthorizeRequest, login: LoginSession, now: float) -> bool:
    """prompt=login, or a session older than max_age: credentials again (AZ-16)."""
    if "login" in req.prompt:
        return True
    return req.max_age is not None and login.is_older_than(req.max_age, now)


def redirect_to_login(req: AuthorizeRequest) -> Response:
    """The hosted page, carrying the whole request in its query (validated again there)."""
    path = SIGNUP_PATH if req.screen_hint == "signup" else LOGIN_PATH
    return Response(status_code=302, headers={**BASE_HEADERS, "Location": f"{path}?{req.query}"})


async def complete_authorization(
    state: AppState,
    session: AsyncSession,
    repos: Repositories,
    req: AuthorizeRequest,
    login: LoginSession,
    user: User,
    *,
    after_post: bool = False,
) -> Response:
    """Contract §2.2 steps 7-9 for an authenticated user: consent, MFA, then the code.

    Raises AuthorizeError (with the request's target) when the app must get an error instead.
    """
    # 7. Consent.
    check_consent(req)
    # 8. MFA: oauth/step_up.py, before any session starts (web/login.finish_login) and for an
    # existing session without the factor (_authorize). The session's amr goes into the code.

    # 9. The code.
    granted = await granted_scopes(repos, state.settings, req, user)
    code = AuthorizationCode(
        client_id=req.client.client_id,
        user_id=user.user_id,
        redirect_uri=req.redirect_uri,
        scope=granted.scopes,
        audience=req.api.identifier if req.api else None,
        nonce=req.nonce,
        code_challenge=req.pkce.challenge if req.pkce else None,
        code_challenge_method=req.pkce.method if req.pkce else None,
        auth_time=login.auth_time,
        sid=login.sid,
        family_id=new_family_id(),
        expires_at=code_expiry(state.clock.now()),
        amr=login.amr,
    )
    value = await SqlCodes(session, state.clock).create(code)
    return deliver(req.target, {"code": value, "state": req.target.state}, after_post=after_post)


def check_consent(req: AuthorizeRequest) -> None:
    """Step 7: raises the AuthorizeError a request without consent gets."""
    if needs_consent(req.client):
        if req.silent:
            raise req.fail(ConsentRequired("Consent required"))
        raise req.fail(
            AccessDenied("Third-party applications need a consent screen, which is not available")
        )


def needs_consent(client: Client) -> bool:
    """First-party applications skip consent, as Auth0's do by default (contract §2.2 step 7).

    TODO(when the consent page lands): third-party clients and newly requested scopes.
    """
    return not client.is_first_party


async def granted_scopes(
    repos: Repositories, settings: Settings, req: AuthorizeRequest, user: User
) -> GrantedScopes:
    """Contract §3.8: what this user may get from this API through this client."""
    api = req.api
    management = is_management_api(api, settings)
    permissions: frozenset[str] = frozenset()
    if api is not None and api.enforce_policies and not management:
        permissions = await repos.roles.effective_permissions(user.user_id, api.identifier)
    return grant_user_scopes(
        req.scope,
        api,
        is_management_api=management,
        user_permissions=permissions,
        offline_allowed=client_may_get_refresh_tokens(req.client),
        implied_trust=False,
        current_user_scopes_enabled=await current_user_tokens_enabled(repos, req.client),
    )


async def log_failure(
    state: AppState,
    session: AsyncSession,
    exc: AuthorizeError,
    who: Requester,
    *,
    silent: bool = False,
) -> None:
    """A failed /authorize is an `f` event (`fsa` for silent auth); unknown clients only reach
    the process log, so that made-up client ids cannot fill the log table."""
    error = exc.error
    if not exc.client_id:
        log.info("authorize refused: %s: %s", error.error, error.description)
        return
    await state.logs(session).record(
        "fsa" if silent else "f",
        description=error.description or error.error,
        client_id=exc.client_id,
        ip=who.ip,
        user_agent=who.user_agent,
        error=error.error,
    )
