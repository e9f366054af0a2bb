"""Hosted signup page, GET|POST /u/signup (opened by /authorize?screen_hint=signup; SE-11).

GET /u/signup?<authorize query> ─ form ─▶ POST /u/signup ─ CSRF ─ request validated again
    ─ password policy ─▶ user in the database connection ─▶ logged in ─▶ code ─▶ redirect_uri
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.accounts import connection_password_policy
from keystead.core.passwords import PasswordPolicy, hash_password
from keystead.core.users import User
from keystead.deps import get_state
from keystead.errors import AlreadyExists
from keystead.oauth.authorize import Requester
from keystead.oauth.authorize_request import AuthorizeError, AuthorizeParams, AuthorizeRequest
from keystead.oauth.responses import error_response
from keystead.ratelimit.asgi import AuthenticationRateLimited
from keystead.ratelimit.protection import signup_buckets
from keystead.ratelimit.wiring import limit_authentication, policy_of
from keystead.storage.login_records import SqlLoginRecords
from keystead.web.csrf import csrf_token
from keystead.web.hosted_forms import (
    form_text,
    page_request,
    posted_page,
    signup_allowed,
    with_csrf_cookie,
)
from keystead.web.login import (
    MAX_IDENTIFIER,
    finish_login,
)
from keystead.web.pages import render

# Deliberately plain: one @, no spaces, a dot in the domain. Deliverability is the verification
# email's job, not a regular expression's.
_EMAIL: Final = re.compile(r"[^@\s]{1,64}@[^@\s.]+(\.[^@\s.]+)+")
SIGNUP_DISABLED = "Sign up is not available for this application."
TOO_MANY_SIGNUPS = "Too many sign-ups from your network. Try again later."
USER_EXISTS = "The user already exists."


def password_policy(req: AuthorizeRequest) -> PasswordPolicy:
    """The connection's minimum length (Auth0's `password_complexity_options`), else 8."""
    return connection_password_policy(req.connection)


def normal_email(raw: str) -> str | None:
    """NFKC-folded, trimmed, lower-cased (IN-05: fullwidth letters fold to their ASCII twins);
    None if it does not look like an email address."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if len(email) > MAX_IDENTIFIER or not _EMAIL.fullmatch(email):
        return None
    return email


def _signup_form(
    req: AuthorizeRequest,
    token: str,
    *,
    email: str = "",
    errors: list[str] | None = None,
    status: int = 200,
) -> Response:
    allowed = signup_allowed(req)
    return render(
        "signup.html",
        status=status if allowed else 403,
        client_name=req.client.name,
        query=req.query,
        csrf_token=token,
        email=email,
        errors=errors if allowed else [SIGNUP_DISABLED],
        signup_allowed=allowed,
        min_length=password_policy(req).min_length,
    )


async def signup_page(request: Request) -> Response:
    state = get_state(request)
    found = await page_request(state, AuthorizeParams.parse(request.query_params.multi_items()))
    if isinstance(found, AuthorizeError):
        return error_response(found)
    token, is_new = csrf_token(request, state.settings)
    page = _signup_form(found, token, email=found.login_hint or "")
    return with_csrf_cookie(page, token, is_new, state)


async def signup_submit(request: Request) -> Response:
    posted = await posted_page(request)
    if isinstance(posted, Response):
        return posted
    state, form, req, token = posted.state, posted.form, posted.req, posted.token
    who = Requester.of(request)
    raw_email = form_text(form, "email", MAX_IDENTIFIER + 1)
    password = form_text(form, "password", 4096)

    def again(errors: list[str], status: int = 400) -> Response:
        return _signup_form(req, token, email=raw_email.strip(), errors=errors, status=status)

    if not signup_allowed(req):
        return again([SIGNUP_DISABLED], status=403)
    try:  # AT-03: the same per-IP signup throttle as /dbconnections/signup
        await limit_authentication(
            state,
            request,
            client_id=req.client.client_id,
            extra=signup_buckets(policy_of(state), who.ip),
        )
    except AuthenticationRateLimited as limited:
        response = again([TOO_MANY_SIGNUPS], status=429)
        response.headers.update(limited.headers)
        return response
    email = normal_email(raw_email)
    problems = [] if email else ["Enter a valid email address."]
    problems += password_policy(req).check(password, email)
    if problems:
        return again(problems)
    assert email is not None
    password_hash = await run_in_threadpool(hash_password, password)
    try:
        async with state.transaction() as session:
            # A linked secondary identity still logs in with its address (§9.6): it stays taken.
            if await SqlLoginRecords(session).linked_login(req.connection.name, email):
                raise AlreadyExists("address held by a linked identity")
            user = await state.repos(session).users.create(
                User(
                    user_id="",
                    email=email,
                    name=email,
                    nickname=email.split("@", 1)[0],
                    password_hash=password_hash,
                ),
                connection=req.connection.name,
            )
            await state.logs(session).record(
                "ss",
                user_id=user.user_id,
                client_id=req.client.client_id,
                ip=who.ip,
                user_agent=who.user_agent,
                connection=req.connection.name,
            )
    except AlreadyExists:  # also a concurrent signup with the same email (RE-13)
        async with state.transaction() as session:
            await state.logs(session).record(
                "fs",
                description=USER_EXISTS,
                client_id=req.client.client_id,
                ip=who.ip,
                user_agent=who.user_agent,
                connection=req.connection.name,
            )
        return again([USER_EXISTS])
    # With the tenant's MFA policy on, the new user enrols a factor before any session starts.
    return await finish_login(request, state, req, user, who)
