"""What the hosted second-factor forms share: the code page (web/mfa.py, POST /u/mfa-challenge)
and the enrolment page (web/mfa_enrol.py, POST /u/mfa-enroll).

Both carry a challenge (core/mfa.py) bound to this browser's CSRF token and to the application
whose /authorize request it continues. An enrolment challenge carries `purpose: enrol` and the
new secret; a code challenge carries no purpose and names a confirmed factor. Each form opens only
its own kind (`open_posted_challenge`), so neither is a door into the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.responses import Response

from keystead.core.mfa import Challenge, browser_binding
from keystead.core.users import User
from keystead.deps import AppState
from keystead.errors import InvalidToken
from keystead.mfa import open_challenge
from keystead.oauth.authorize import Requester
from keystead.oauth.authorize_request import AuthorizeRequest
from keystead.ratelimit.protection import note_wrong_code
from keystead.web.hosted_forms import form_text
from keystead.web.login import BLOCKED, login_form
from keystead.web.pages import error_page

CHALLENGE_FIELD: Final = "challenge"
MAX_CHALLENGE: Final = 4096  # characters: a challenge is about 700; anything longer is not one
PURPOSE: Final = "purpose"  # the challenge's `extra` key telling an enrolment from a code
ENROL: Final = "enrol"
ENTER_CODE: Final = "Enter the 6-digit code from your authenticator app."
WRONG_CODE: Final = "Wrong or already used code. Try again."
EXPIRED: Final = "Your sign-in has expired or did not start in this browser. Start again."


def sign_in_expired() -> Response:
    """Any challenge that does not open (expired, forged, another browser's, missing, or of
    the other form's kind)."""
    return error_page("invalid_request", EXPIRED, status=400, title="Sign-in expired")


@dataclass(frozen=True)
class PostedChallenge:
    raw: str  # as posted: a page shown again carries the same challenge
    challenge: Challenge
    username: str  # what failed codes are counted against (AT-01)


async def open_posted_challenge(
    state: AppState, form: Any, req: AuthorizeRequest, token: str, *, purpose: str | None
) -> PostedChallenge | None:
    """The form's challenge when it opens for this browser and application and is of the
    `purpose` asked for (None: a code challenge); None otherwise."""
    raw = form_text(form, CHALLENGE_FIELD, MAX_CHALLENGE + 1)
    if not raw or len(raw) > MAX_CHALLENGE:
        return None
    try:
        challenge = await open_challenge(state, raw, bound_to=browser_binding(token))
    except InvalidToken:
        return None
    extra = challenge.extra
    username = extra.get("username")
    # The password was checked for this application's request and connection; not a door into
    # another one (whose attack protection might be off).
    if not isinstance(username, str) or extra.get("client_id") != req.client.client_id:
        return None
    if extra.get("connection") != req.connection.name:
        return None
    if extra.get(PURPOSE) != purpose:
        return None
    return PostedChallenge(raw, challenge, username)


def login_event(req: AuthorizeRequest, who: Requester) -> dict[str, Any]:
    return {
        "client_id": req.client.client_id,
        "ip": who.ip,
        "user_agent": who.user_agent,
        "connection": req.connection.name,
    }


async def user_still_allowed(
    state: AppState, req: AuthorizeRequest, token: str, who: Requester, posted: PostedChallenge
) -> User | Response:
    """The challenge's user, reloaded; the login page's refusal when deleted or blocked since
    the password (SE-10), logged as a failed login."""
    user_id = posted.challenge.user_id
    async with state.transaction() as session:
        user = await state.repos(session).users.find(user_id)
        if user is None or user.blocked:
            await state.logs(session).record(
                "f",
                description="user is blocked" if user is not None else "user does not exist",
                user_id=user_id,
                **login_event(req, who),
            )
    if user is None or user.blocked:
        return login_form(req, token, username=posted.username, error=BLOCKED, status=403)
    return user


def posted_code(form: Any) -> str:
    return "".join(form_text(form, "code", 64).split())  # "123 456" as the app shows it


async def count_wrong_code(
    state: AppState,
    session: AsyncSession,
    req: AuthorizeRequest,
    who: Requester,
    user: User,
    username: str,
) -> None:
    """A wrong code, in the caller's transaction: logged (the code itself never is) and counted
    as a failed login for the (username, IP) pair and the IP, so guessing codes is throttled and
    blocked as guessing passwords is, and for the username from every address."""
    await state.logs(session).record(
        "gd_auth_failed", description=WRONG_CODE, user_id=user.user_id, **login_event(req, who)
    )
    await note_wrong_code(
        state,
        session,
        ip=who.ip,
        username=username,
        connection=req.connection,
        user=user,
        client_id=req.client.client_id,
        user_agent=who.user_agent,
    )
