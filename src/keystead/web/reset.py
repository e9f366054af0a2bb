"""Hosted password reset, GET|POST /u/reset-password (contract §7.3; ASVS 6.4, 7.4.3).

    GET  /u/reset-password[?<authorize query>]        email form (linked from the login page)
    POST   email ─ CSRF ─▶ send_reset_link ─▶ "check your email", whether or not it has an account
    GET  /u/reset-password?ticket=… (or /u/reset-password/{ticket})
           ticket verified (RS256, its own audience, unexpired, password unchanged) ─▶ new password
           form, with the connection's password rules
    POST   ticket, password, confirm ─ CSRF ─ ticket again ─ rules ─▶ argon2id hash ─▶ stored with
           last_password_reset (and email_verified when a Management API ticket asks for it
           and the address is still the one it was made for), every SSO session of the user
           ended, brute-force blocks lifted, `scp` logged ─▶ 302 to the ticket's result_url with
           success=true, message (and email when asked) if it is still a registered URL
           (keystead/email_verification.py), else the done page

The ticket is single-use without a table: storing the new hash changes the fingerprint the
ticket is bound to (core/tickets.py).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keystead.core.accounts import (
    DATABASE_STRATEGY,
    canonical_email,
    connection_password_policy,
)
from keystead.core.email_tickets import ticket_result_url
from keystead.core.passwords import PasswordPolicy, hash_password
from keystead.core.redirects import append_params
from keystead.core.tickets import (
    RESET_TICKET_LIFETIME,
    InvalidTicket,
    check_reset_ticket,
    includes_email,
    marks_email_verified,
    reset_audience,
    ticket_subject,
)
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState, get_state
from keystead.email_verification import result_url_allowed
from keystead.errors import InvalidToken
from keystead.oauth.authorize import Requester
from keystead.oauth.change_password import send_reset_link
from keystead.ratelimit.asgi import AuthenticationRateLimited
from keystead.ratelimit.protection import clear_user_blocks
from keystead.ratelimit.wiring import limit_authentication
from keystead.storage.keys import verify_token
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.web.csrf import csrf_token, csrf_valid, set_csrf_cookie
from keystead.web.hosted_forms import (
    QUERY_FIELD,
    csrf_failure,
    form_text,
)
from keystead.web.login import (
    MAX_IDENTIFIER,
)
from keystead.web.pages import BASE_HEADERS, render

MAX_TICKET: Final = 4096  # our tickets are about 700 characters; longer input is not ours
MAX_PASSWORD_FIELD: Final = 4096
LINK_DEAD: Final = (
    "This password reset link is invalid, has expired or was already used. "
    "Enter your email address to get a new one."
)
NOT_AN_EMAIL: Final = "Enter a valid email address."
MISMATCH: Final = "The two passwords do not match."
# Auth0's `message` on the redirect to a password-change ticket's result_url
PASSWORD_CHANGED: Final = "You can now login to the application with the new password."


@dataclass(frozen=True)
class _Opened:
    """A usable ticket: whose it is, and the rules a new password must meet."""

    user: User
    claims: dict[str, Any]
    policy: PasswordPolicy
    connection: str


async def reset_page(request: Request) -> Response:
    state = get_state(request)
    token, is_new = csrf_token(request, state.settings)
    ticket = _ticket(request.path_params.get("ticket") or request.query_params.get("ticket"))
    if ticket is None and ("ticket" in request.path_params or "ticket" in request.query_params):
        page = _request_form(token, request.url.query, error=LINK_DEAD, status=400)
    elif ticket is None:
        page = _request_form(token, request.url.query)
    else:
        opened = await _open(state, ticket)
        if opened is None:
            page = _request_form(token, "", error=LINK_DEAD, status=400)
        else:
            page = _password_form(token, ticket, opened)
    if is_new:
        set_csrf_cookie(page, token, state.settings)
    return page


async def reset_submit(request: Request) -> Response:
    state = get_state(request)
    form = await request.form()
    if not csrf_valid(request, form, state.settings):
        return csrf_failure()
    token, _ = csrf_token(request, state.settings)
    raw_ticket = request.path_params.get("ticket") or form.get("ticket")
    if raw_ticket is None:
        return await _request_link(request, state, form, token)
    ticket = _ticket(raw_ticket)
    opened = await _open(state, ticket) if ticket is not None else None
    if ticket is None or opened is None:
        return _request_form(token, "", error=LINK_DEAD, status=400)
    return await _set_password(request, state, form, token, ticket, opened)


TOO_MANY_REQUESTS = "Too many requests for this address. Wait a minute and try again."


def _ticket(value: object) -> str | None:
    if not isinstance(value, str) or not value or len(value) > MAX_TICKET:
        return None
    return value


# --- asking for a link --------------------------------------------------------------------------


async def _request_link(request: Request, state: AppState, form: Any, token: str) -> Response:
    query = form_text(form, QUERY_FIELD, 8192)
    raw_email = form_text(form, "email", MAX_IDENTIFIER + 1)
    email = canonical_email(raw_email)
    if email is None:
        return _request_form(token, query, email=raw_email, error=NOT_AN_EMAIL, status=400)
    carried = dict(parse_qsl(query, keep_blank_values=True))
    client_id = carried.get("client_id") or None
    connection = await _database_connection(state, carried.get("connection"))
    try:  # per (IP, email), as /dbconnections/change_password (contract §7.3)
        await limit_authentication(
            state, request, endpoint="changePassword", email=email, client_id=client_id
        )
    except AuthenticationRateLimited as limited:
        response = _request_form(token, query, email=raw_email, error=TOO_MANY_REQUESTS, status=429)
        response.headers.update(limited.headers)
        return response
    who = Requester.of(request)
    await send_reset_link(
        state,
        email=email,
        connection=connection,
        client_id=client_id,
        ip=who.ip,
        user_agent=who.user_agent,
    )
    return render(
        "reset_sent.html",
        email=email,
        query=query if client_id else "",
        minutes=RESET_TICKET_LIFETIME // 60,
    )


async def _database_connection(state: AppState, name: str | None) -> str:
    """The carried `connection` when it names a database connection, else the default one."""
    if not name:
        return DATABASE_CONNECTION
    async with state.transaction() as session:
        found = await state.repos(session).connections.by_name(name)
    return (
        name if found is not None and found.strategy == DATABASE_STRATEGY else DATABASE_CONNECTION
    )


# --- using the link -----------------------------------------------------------------------------


async def _open(state: AppState, ticket: str) -> _Opened | None:
    """The ticket's user and password rules, or None when the ticket cannot be used."""
    try:
        claims = await verify_token(state, ticket, audience=reset_audience(state.settings.issuer))
        sub = ticket_subject(claims)
        async with state.transaction() as session:
            repos = state.repos(session)
            user = check_reset_ticket(claims, await repos.users.find(sub))
            connection_name = user.identities[0].connection if user.identities else ""
            connection = await repos.connections.by_name(connection_name)
    except InvalidToken:
        return None
    if connection is None or connection.strategy != DATABASE_STRATEGY:
        return None
    return _Opened(user, claims, connection_password_policy(connection), connection.name)


async def _set_password(
    request: Request, state: AppState, form: Any, token: str, ticket: str, opened: _Opened
) -> Response:
    password = form_text(form, "password", MAX_PASSWORD_FIELD)
    confirm = form_text(form, "confirm", MAX_PASSWORD_FIELD)
    errors = opened.policy.check(password, opened.user.email)
    if password != confirm:
        errors.append(MISMATCH)
    if errors:
        return _password_form(token, ticket, opened, errors=errors, status=400)
    password_hash = await run_in_threadpool(hash_password, password)
    who = Requester.of(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        try:
            # Again inside the transaction: a second submission of the same form loses here.
            user = check_reset_ticket(opened.claims, await repos.users.find(opened.user.user_id))
        except InvalidTicket:
            user = None
        if user is not None:
            now = state.clock.now()
            changed = replace(user, password_hash=password_hash, last_password_reset=now)
            if marks_email_verified(opened.claims, user):
                changed = replace(changed, email_verified=True)
            await repos.users.update(changed)
            # ASVS 7.4.3: a new password ends every session the old one may have opened.
            ended = await SqlLoginSessions(session, state.clock).delete_for_user(user.user_id)
            await clear_user_blocks(session, user)  # AT-01: a reset also lifts brute-force blocks
            await state.logs(session).record(
                "scp",
                user_id=user.user_id,
                client_id=opened.claims.get("azp"),
                ip=who.ip,
                user_agent=who.user_agent,
                connection=opened.connection,
                user_name=user.email,
                details={"sessions_ended": ended},
            )
    if user is None:
        return _request_form(token, "", error=LINK_DEAD, status=400)
    result_url = ticket_result_url(opened.claims)
    if result_url is not None and await result_url_allowed(state, result_url):
        params = {"success": "true", "message": PASSWORD_CHANGED}
        if includes_email(opened.claims) and user.email:
            params = {"email": user.email, **params}
        return RedirectResponse(
            append_params(result_url, params), status_code=302, headers=dict(BASE_HEADERS)
        )
    return render("reset_done.html")


# --- pages --------------------------------------------------------------------------------------


def _request_form(
    token: str, query: str, *, email: str = "", error: str | None = None, status: int = 200
) -> Response:
    carried = dict(parse_qsl(query, keep_blank_values=True))
    return render(
        "reset_request.html",
        status=status,
        csrf_token=token,
        query=query,
        back_to_login=bool(carried.get("client_id")),
        email=email.strip(),
        error=error,
    )


def _password_form(
    token: str,
    ticket: str,
    opened: _Opened,
    *,
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    return render(
        "reset_password.html",
        status=status,
        csrf_token=token,
        ticket=ticket,
        email=opened.user.email,
        min_length=opened.policy.min_length,
        errors=errors or [],
    )
