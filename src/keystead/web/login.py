"""Hosted login page, GET|POST /u/login (contract §2; security cases SE-02, SE-03, SE-10).

    /authorize ─302─▶ GET /u/login?<authorize query> ─ form ─▶ POST /u/login
        ─ CSRF ─ the authorize query validated again ─ credentials ─▶ new session ─▶ code
        ─▶ redirect_uri (or form_post / web_message), never anywhere else
    A user with a confirmed TOTP factor gets the code page instead of a session (web/mfa.py);
    under the tenant's MFA policy a user without one gets the enrolment page (web/mfa_enrol.py).

The page is stateless (web/hosted_forms.py: the /authorize query rides in a hidden field and is
validated again on POST, after the CSRF check). A wrong password and an unknown email get the
same page, and about the same time (the unknown email still pays for one password hash).
"""

from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.bruteforce import ACCOUNT_BLOCKED_PAGE
from keystead.core.login_success import (
    Credential,
    check_password,
    find_credential,
    password_checked,
    password_login_succeeded,
)
from keystead.core.mfa import MFA
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.oauth.authorize import Requester, complete_authorization
from keystead.oauth.authorize_request import (
    AuthorizeError,
    AuthorizeParams,
    AuthorizeRequest,
)
from keystead.oauth.responses import error_response
from keystead.oauth.step_up import second_factor_step
from keystead.ratelimit.protection import (
    forget_login_failures,
    login_verdict,
    note_login_failure,
)
from keystead.ratelimit.wiring import login_rate_allowed
from keystead.storage.login_records import SqlLoginRecords
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.web.csrf import (
    csrf_token,
    new_csrf_token,
    session_cookie,
    set_csrf_cookie,
    set_session_cookie,
)
from keystead.web.hosted_forms import (
    form_text,
    page_request,
    posted_page,
    signup_allowed,
    with_csrf_cookie,
)
from keystead.web.pages import render

log = logging.getLogger("keystead")

MAX_IDENTIFIER = 320  # characters: the longest email address
WRONG_CREDENTIALS = "Wrong email or password."
BLOCKED = "Your account is blocked (user is blocked). Contact the application's administrator."
TOO_MANY_ATTEMPTS = "Too many attempts. Try again later."


async def check_login_allowed(
    state: AppState, ip: str | None, username: str, *, code: bool = False
) -> str | None:
    """May this (ip, username) try a password (or, `code`, a second factor's code) now? None if
    so, else the page's message (429). Called before any check: a blocked pair (AT-01) is told
    how to unblock, a throttled IP (AT-03) and the (IP, user) rate limit (§12.2) to wait. Codes
    are also refused once the identifier's wrong codes from every address reach the limit."""
    verdict = await login_verdict(state, ip, username, code=code)
    if verdict.reason == "blocked":
        return ACCOUNT_BLOCKED_PAGE
    if not verdict.allowed or not await login_rate_allowed(state, ip, username):
        return TOO_MANY_ATTEMPTS
    return None


# --- after any way of proving who one is -------------------------------------------------------


async def finish_login(
    request: Request,
    state: AppState,
    req: AuthorizeRequest,
    user: User,
    who: Requester,
    *,
    password: tuple[Credential, str] | None = None,
    username: str | None = None,
    events: tuple[str, ...] = ("s",),
    amr: tuple[str, ...] = (),
) -> Response:
    """The user proved who they are: record it, start a new session, complete /authorize.

    `password` is the credential and password of a password login (core/login_success.py);
    without it (signup) the login is recorded alone. The session id is always new (never the
    pre-login cookie's: no fixation), and the CSRF token is replaced, so the form that logged
    in cannot be replayed. `amr` is what the session remembers of the login beyond the
    password (("mfa",) after a code) and hands on to the codes and tokens it leads to.

    No session starts while a factor is owed, or wanted by the tenant's policy: the code or
    enrolment page instead (oauth/step_up.py), with no login recorded and the run of failures of
    `username` (what was typed) going on until a code is accepted; an imported password hash is
    replaced meanwhile, while the password is known.
    """
    settings = state.settings
    if MFA not in amr:
        try:
            async with state.transaction() as session:
                page = await second_factor_step(
                    request, state, session, req, amr, user, username=username
                )
                if page is not None and password is not None:
                    await password_checked(SqlLoginRecords(session), *password)
        except AuthorizeError as exc:  # a carried prompt=none: login_required, as /authorize
            return error_response(exc, after_post=True)
        if page is not None:
            return page
    previous = session_cookie(request, settings)
    async with state.transaction() as session:
        repos = state.repos(session)
        records = SqlLoginRecords(session)
        now = state.clock.now()
        if password is not None:
            credential, secret = password
            await password_login_succeeded(records, credential, secret, at=now, ip=who.ip)
            if username is not None:  # the run of failures ends
                await forget_login_failures(session, who.ip, username, req.connection.name)
        else:
            await records.record_login(user.user_id, at=now, ip=who.ip)
        current = await repos.users.get(user.user_id)
        sessions = SqlLoginSessions(session, state.clock)
        await sessions.delete(previous)
        started = await sessions.create(
            current.user_id, ip=who.ip, user_agent=who.user_agent, amr=amr
        )
        logs = state.logs(session)
        for event in events:
            await logs.record(
                event,
                user_id=current.user_id,
                client_id=req.client.client_id,
                ip=who.ip,
                user_agent=who.user_agent,
                connection=req.connection.name,
            )
        try:
            response = await complete_authorization(
                state, session, repos, req, started.session, current, after_post=True
            )
        except AuthorizeError as exc:
            response = error_response(exc, after_post=True)
    set_session_cookie(response, started.cookie, settings)
    set_csrf_cookie(response, new_csrf_token(), settings)
    return response


# --- the page -----------------------------------------------------------------------------------


def login_form(
    req: AuthorizeRequest,
    token: str,
    *,
    username: str = "",
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        "login.html",
        status=status,
        client_name=req.client.name,
        query=req.query,
        csrf_token=token,
        username=username,
        error=error,
        signup_allowed=signup_allowed(req),
    )


async def login_page(request: Request) -> Response:
    state = get_state(request)
    found = await page_request(state, AuthorizeParams.parse(request.query_params.multi_items()))
    if isinstance(found, AuthorizeError):
        return error_response(found)
    token, is_new = csrf_token(request, state.settings)
    page = login_form(found, token, username=found.login_hint or "")
    return with_csrf_cookie(page, token, is_new, state)


async def login_submit(request: Request) -> Response:
    posted = await posted_page(request)
    if isinstance(posted, Response):
        return posted
    state, form, req, token = posted.state, posted.form, posted.req, posted.token
    who = Requester.of(request)
    username = form_text(form, "username", MAX_IDENTIFIER + 1).strip()
    password = form_text(form, "password", 4096)

    def again(error: str, status: int = 400) -> Response:
        return login_form(req, token, username=username, error=error, status=status)

    if not username or not password:
        return again("Enter your email address and password.")
    refusal = await check_login_allowed(state, who.ip, username)
    if refusal is not None:
        return again(refusal, status=429)

    credential: Credential | None = None
    if len(username) <= MAX_IDENTIFIER:
        async with state.transaction() as session:
            credential = await find_credential(
                state.repos(session).users, SqlLoginRecords(session), req.connection.name, username
            )
    ok = await check_password(credential, password)  # a dummy hash when unknown: same time
    user = credential.user if credential is not None else None

    if credential is None or not ok:
        async with state.transaction() as session:
            await state.logs(session).record(
                "fp" if user is not None else "fu",
                description=WRONG_CREDENTIALS,
                user_id=user.user_id if user is not None else None,
                client_id=req.client.client_id,
                ip=who.ip,
                user_agent=who.user_agent,
                connection=req.connection.name,
                user_name=username[:MAX_IDENTIFIER],
            )
            await note_login_failure(  # AT-01, AT-03: counted alike for unknown users
                state,
                session,
                ip=who.ip,
                username=username,
                connection=req.connection,
                user=user,
                client_id=req.client.client_id,
                user_agent=who.user_agent,
            )
        return again(WRONG_CREDENTIALS)
    user = credential.user
    if user.blocked:  # SE-10: the right password, and still no session
        async with state.transaction() as session:
            await state.logs(session).record(
                "f",
                description="user is blocked",
                user_id=user.user_id,
                client_id=req.client.client_id,
                ip=who.ip,
                user_agent=who.user_agent,
                connection=req.connection.name,
            )
        return again(BLOCKED, status=403)

    return await finish_login(
        request, state, req, user, who, password=(credential, password), username=username
    )
