"""The hosted login's enrolment of a second factor, POST /u/mfa-enroll: the tenant's MFA policy
is ["all-applications"] (keystead/mfa_policy.py) and the user has no confirmed TOTP factor.

    POST /u/login ─ right password, no factor, the policy on ─▶ the enrolment page (no session):
        a new secret as text, as an otpauth:// link and as a QR code (inline SVG, segno)
        ─ form ─▶ POST /u/mfa-enroll ─ CSRF ─ the authorize query validated again
        ─ the enrolment challenge (signed, 300 s, bound to this browser, `purpose: enrol`,
          carrying the secret) ─ attack protection ─ a code of that secret
        ─▶ the confirmed totp method, its step spent ─ gd_enrollment_complete
        ─▶ new session with amr ["mfa"] ─▶ code ─▶ redirect_uri
    GET /authorize ─ a session without "mfa", no factor, the policy on ─▶ the enrolment page
        (oauth/step_up.py), then as above

The secret lives only in the page and its challenge until a code proves the app holds it; a wrong
code shows the same page (same secret) again and counts as a failed login, as at the code page.
A factor confirmed meanwhile (another tab, an administrator, a replayed form) wins: no second
factor is created and that factor's code is asked for instead.
"""

from __future__ import annotations

from typing import Final

import pyotp
import segno
from markupsafe import Markup
from sqlalchemy import update
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.mfa import (
    DIGITS,
    MFA_AMR,
    STEP_SECONDS,
    TOTP_SECRET,
    TOTP_TYPE,
    browser_binding,
    is_code_shaped,
    matching_step,
    spent_mark,
    step_start,
)
from keystead.core.users import User
from keystead.deps import AppState
from keystead.mfa import issue_challenge, owed_factor
from keystead.oauth.authorize import Requester
from keystead.oauth.authorize_request import AuthorizeRequest
from keystead.ratelimit.protection import forget_wrong_codes
from keystead.storage.models import UserRow
from keystead.storage.repositories.authentication_methods import SqlAuthenticationMethods
from keystead.web.hosted_forms import posted_page
from keystead.web.login import check_login_allowed, finish_login
from keystead.web.mfa_forms import (
    ENROL,
    ENTER_CODE,
    PURPOSE,
    WRONG_CODE,
    count_wrong_code,
    login_event,
    open_posted_challenge,
    posted_code,
    sign_in_expired,
    user_still_allowed,
)
from keystead.web.pages import render

ENROL_METHOD: Final = "totp-enrolment"  # the challenge's factor: none exists yet
SECRET_KEY: Final = "secret"  # the challenge's `extra` key of the new secret
DEFAULT_ISSUER: Final = "Keystead"
ENROLLED: Final = "Guardian enrollment complete"
ENROLMENT_EVENT: Final = "gd_enrollment_complete"


async def enrol_page(
    state: AppState,
    req: AuthorizeRequest,
    token: str,
    user: User,
    *,
    username: str,
    secret: str | None = None,
    challenge: str | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    """The enrolment page for this browser's CSRF token `token`: a new secret and challenge,
    or (a wrong code) the posted ones again."""
    if secret is None or challenge is None:
        secret = pyotp.random_base32()
        challenge = await issue_challenge(
            state,
            user_id=user.user_id,
            method_id=ENROL_METHOD,
            bound_to=browser_binding(token),
            extra={
                PURPOSE: ENROL,
                SECRET_KEY: secret,
                "username": username,
                "client_id": req.client.client_id,
                "connection": req.connection.name,
            },
        )
    uri = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=user.email or user.username or user.user_id,
        issuer_name=await _issuer_name(state),
    )
    qr = segno.make(uri, error="m").svg_inline(scale=4, title="QR code of the key")
    return render(
        "mfa_enrol.html",
        status=status,
        client_name=req.client.name,
        query=req.query,
        csrf_token=token,
        challenge=challenge,
        error=error,
        qr_svg=Markup(qr),  # segno's SVG: made here from the URI, no user markup in it
        grouped_secret=" ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        otpauth_uri=uri,
    )


async def _issuer_name(state: AppState) -> str:
    """What the authenticator app shows the account under: the tenant's friendly name."""
    async with state.transaction() as session:
        name = await state.repos(session).tenant_settings.get("friendly_name")
    found = name.get("friendly_name", name.get("value")) if isinstance(name, dict) else name
    return found.strip() if isinstance(found, str) and found.strip() else DEFAULT_ISSUER


async def mfa_enrol_submit(request: Request) -> Response:
    posted = await posted_page(request)
    if isinstance(posted, Response):
        return posted
    state, form, req, token = posted.state, posted.form, posted.req, posted.token
    # An enrolment challenge only: a code challenge's factor is enrolled already (web/mfa.py).
    opened = await open_posted_challenge(state, form, req, token, purpose=ENROL)
    secret = opened.challenge.extra.get(SECRET_KEY) if opened is not None else None
    if opened is None or not isinstance(secret, str) or not secret:
        return sign_in_expired()
    username = opened.username
    who = Requester.of(request)

    refusal = await check_login_allowed(state, who.ip, username, code=True)
    user = await user_still_allowed(state, req, token, who, opened)
    if isinstance(user, Response):
        return user

    async def again(error: str, status: int = 400) -> Response:
        """The same page, secret and challenge, with `error`."""
        return await enrol_page(
            state, req, token, user, username=username, secret=secret, challenge=opened.raw,
            error=error, status=status,
        )  # fmt: skip

    if refusal is not None:
        return await again(refusal, status=429)
    code = posted_code(form)
    if not is_code_shaped(code):
        return await again(ENTER_CODE)
    now = state.clock.now()
    step = matching_step(secret, code, now)
    if step is None:
        async with state.transaction() as session:
            await count_wrong_code(state, session, req, who, user, username)
        return await again(WRONG_CODE)

    async with state.transaction() as session:
        # The user's row locked first: two enrolments of one user do not both create a factor.
        await session.execute(
            update(UserRow)
            .where(UserRow.user_id == user.user_id)
            .values(updated_at=UserRow.updated_at)
        )
        existing = await owed_factor(state, session, user.user_id)
        if existing is None:
            methods = SqlAuthenticationMethods(session, state.clock, state.sealer)
            method = await methods.create(user.user_id, TOTP_TYPE, secrets={TOTP_SECRET: secret})
            await methods.spend(  # the code that enrolled cannot log in again
                user.user_id, method.id, fresh_before=step_start(step), mark=spent_mark(step, now)
            )
            await state.logs(session).record(
                ENROLMENT_EVENT,
                description=ENROLLED,
                user_id=user.user_id,
                details={"authenticator": TOTP_TYPE, "method_id": method.id},
                **login_event(req, who),
            )
            await forget_wrong_codes(
                session, who.ip, username, req.connection.name
            )  # the runs of failures end
    if existing is not None:  # enrolled meanwhile: that factor's code, not a second factor
        from keystead.web.mfa import code_page  # web/mfa.py builds on web/login.py too

        return await code_page(state, req, token, user, existing, username=username)
    return await finish_login(request, state, req, user, who, amr=MFA_AMR)
