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

from keystead.core.login_success import Credential, password_checked
from keystead.core.mfa import MFA_AMR, browser_binding, is_code_shaped
from keystead.core.users import User
from keystead.deps import AppState
from keystead.errors import InvalidToken
from keystead.mfa import accept_code, issue_challenge, open_challenge
from keystead.oauth.authorize import Requester
from keystead.oauth.authorize_request import AuthorizeRequest
from keystead.ratelimit.protection import forget_login_failures, note_login_failure
from keystead.storage.login_records import SqlLoginRecords
from keystead.storage.repositories.authentication_methods import AuthenticationMethod
from keystead.web.hosted_forms import (
    form_text,
    posted_page,
)
from keystead.web.login import (
    BLOCKED,
    check_login_allowed,
    finish_login,
    login_form,
)
from keystead.web.pages import error_page, render

CHALLENGE_FIELD = "challenge"
MAX_CHALLENGE = 4096  # characters: a challenge is about 700; anything longer is not one
ENTER_CODE = "Enter the 6-digit code from your authenticator app."
WRONG_CODE = "Wrong or already used code. Try again."
EXPIRED = "Your sign-in has expired or did not start in this browser. Start again."


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


def sign_in_expired() -> Response:
    """Any challenge that does not open (expired, forged, another browser's, missing)."""
    return error_page("invalid_request", EXPIRED, status=400, title="Sign-in expired")


async def ask_for_code(
    state: AppState,
    req: AuthorizeRequest,
    token: str,
    *,
    credential: Credential,
    password: str,
    factor: AuthenticationMethod,
    username: str,
) -> Response:
    """The password was right and a factor is owed: no login is recorded and no session is
    started; an imported hash is replaced while the password is known; the code page."""
    async with state.transaction() as session:
        await password_checked(SqlLoginRecords(session), credential, password)
    return await code_page(state, req, token, credential.user, factor, username=username)


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
        extra={"username": username, "client_id": req.client.client_id},
    )
    return otp_form(req, token, challenge)


async def mfa_submit(request: Request) -> Response:
    posted = await posted_page(request)
    if isinstance(posted, Response):
        return posted
    state, form, req, token = posted.state, posted.form, posted.req, posted.token
    raw = form_text(form, CHALLENGE_FIELD, MAX_CHALLENGE + 1)
    if not raw or len(raw) > MAX_CHALLENGE:
        return sign_in_expired()
    try:
        challenge = await open_challenge(state, raw, bound_to=browser_binding(token))
    except InvalidToken:
        return sign_in_expired()
    username = challenge.extra.get("username")
    # The password was checked for this application's request; not a door into another one.
    if not isinstance(username, str) or challenge.extra.get("client_id") != req.client.client_id:
        return sign_in_expired()
    who = Requester.of(request)

    def again(error: str, status: int = 400) -> Response:
        return otp_form(req, token, raw, error=error, status=status)

    refusal = await check_login_allowed(state, who.ip, username)
    if refusal is not None:
        return again(refusal, status=429)
    event = {
        "client_id": req.client.client_id,
        "ip": who.ip,
        "user_agent": who.user_agent,
        "connection": req.connection.name,
    }
    async with state.transaction() as session:
        user = await state.repos(session).users.find(challenge.user_id)
        if user is None or user.blocked:  # SE-10: deleted or blocked since the password
            await state.logs(session).record(
                "f",
                description="user is blocked" if user is not None else "user does not exist",
                user_id=challenge.user_id,
                **event,
            )
    if user is None or user.blocked:
        return login_form(req, token, username=username, error=BLOCKED, status=403)

    code = "".join(form_text(form, "code", 64).split())  # "123 456" as the app shows it
    if not is_code_shaped(code):
        return again(ENTER_CODE)
    async with state.transaction() as session:
        accepted = await accept_code(state, session, challenge, code)
        if not accepted:  # the code itself is never logged
            await state.logs(session).record(
                "gd_auth_failed", description=WRONG_CODE, user_id=user.user_id, **event
            )
            await note_login_failure(
                state,
                session,
                ip=who.ip,
                username=username,
                connection=req.connection,
                user=user,
                client_id=req.client.client_id,
                user_agent=who.user_agent,
            )
    if not accepted:
        return again(WRONG_CODE)

    async with state.transaction() as session:
        await forget_login_failures(session, who.ip, username)  # the run of failures ends
    return await finish_login(
        request, state, req, user, who, events=("gd_auth_succeed", "s"), amr=MFA_AMR
    )
