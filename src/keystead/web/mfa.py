"""The hosted login's second step: a code from an authenticator app, POST /u/mfa-challenge
(rules: core/mfa.py; storage: keystead/mfa.py).

    POST /u/login ─ right password, a confirmed TOTP factor ─▶ the code page (no session yet)
        ─ form ─▶ POST /u/mfa-challenge ─ CSRF ─ the authorize query validated again
        ─ the challenge (signed, 300 s, bound to this browser's CSRF token) ─ attack protection
        ─ the code ─▶ new session ─▶ code ─▶ redirect_uri, as a password-only login
    GET /authorize ─ a session without the code, a factor confirmed since ─▶ the code page
        (oauth/step_up.py), then as above: the code starts a new session remembering it

Stateless like the login page: the challenge rides in a hidden field and stays usable until it
expires, so a mistyped code is simply tried again. A wrong code counts as a failed login for the
(username, IP) pair and the IP, so guessing codes is throttled and blocked as guessing passwords
is; the run of failures ends only when the code is accepted.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.mfa import MFA_AMR, browser_binding, is_code_shaped
from keystead.core.users import User
from keystead.deps import AppState
from keystead.mfa import accept_code, issue_challenge
from keystead.oauth.authorize import Requester
from keystead.oauth.authorize_request import AuthorizeRequest
from keystead.ratelimit.protection import forget_wrong_codes
from keystead.storage.repositories.authentication_methods import AuthenticationMethod
from keystead.web.hosted_forms import posted_page
from keystead.web.login import check_login_allowed, finish_login
from keystead.web.mfa_forms import (
    ENTER_CODE,
    WRONG_CODE,
    count_wrong_code,
    open_posted_challenge,
    posted_code,
    sign_in_expired,
    user_still_allowed,
)
from keystead.web.pages import render


def otp_form(
    req: AuthorizeRequest,
    token: str,
    challenge: str,
    *,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        "mfa_otp.html",
        status=status,
        client_name=req.client.name,
        query=req.query,
        csrf_token=token,
        challenge=challenge,
        error=error,
    )


async def code_page(
    state: AppState,
    req: AuthorizeRequest,
    token: str,
    user: User,
    factor: AuthenticationMethod,
    *,
    username: str,
) -> Response:
    """The code page with a new challenge bound to this browser's CSRF token `token`, for this
    application; `username` is what failed codes are counted against (AT-01)."""
    challenge = await issue_challenge(
        state,
        user_id=user.user_id,
        method_id=factor.id,
        bound_to=browser_binding(token),
        extra={
            "username": username,
            "client_id": req.client.client_id,
            "connection": req.connection.name,
        },
    )
    return otp_form(req, token, challenge)


async def mfa_submit(request: Request) -> Response:
    posted = await posted_page(request)
    if isinstance(posted, Response):
        return posted
    state, form, req, token = posted.state, posted.form, posted.req, posted.token
    # A code challenge only: an enrolment challenge names no factor (web/mfa_enrol.py).
    opened = await open_posted_challenge(state, form, req, token, purpose=None)
    if opened is None:
        return sign_in_expired()
    raw, challenge, username = opened.raw, opened.challenge, opened.username
    who = Requester.of(request)

    def again(error: str, status: int = 400) -> Response:
        return otp_form(req, token, raw, error=error, status=status)

    refusal = await check_login_allowed(state, who.ip, username, code=True)
    if refusal is not None:
        return again(refusal, status=429)
    user = await user_still_allowed(state, req, token, who, opened)
    if isinstance(user, Response):
        return user

    code = posted_code(form)
    if not is_code_shaped(code):
        return again(ENTER_CODE)
    async with state.transaction() as session:
        accepted = await accept_code(state, session, challenge, code)
        if not accepted:
            await count_wrong_code(state, session, req, who, user, username)
    if not accepted:
        return again(WRONG_CODE)

    async with state.transaction() as session:
        await forget_wrong_codes(
            session, who.ip, username, req.connection.name
        )  # the runs of failures end
    return await finish_login(
        request, state, req, user, who, events=("gd_auth_succeed", "s"), amr=MFA_AMR
    )
