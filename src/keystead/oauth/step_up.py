"""Contract §2.2 step 8: a login that has not given the second factor does not skip it, whether
the browser is already signed in (/authorize) or has just proved who it is (web/login.py
finish_login: a password or a signup).

    session amr has "mfa"           nothing to ask (no query: the common path stays as it was)
    else a confirmed factor owed?   (keystead/mfa.owed_factor, e.g. enrolled after that login)
        prompt=none                 login_required "Multifactor authentication required"
        interactive                 the code page (web/mfa.py) right away: its POST is the
                                    hosted login's /u/mfa-challenge, whose code starts a new
                                    session remembering the factor
    else the tenant's MFA policy    (keystead/mfa_policy.py, e.g. turned on after that login)
        prompt=none                 login_required "Multifactor authentication required"
        interactive                 the enrolment page (web/mfa_enrol.py): its POST is
                                    /u/mfa-enroll, whose code starts a new session likewise
    else                            nothing to ask

The first case answers the login page's password too; signups meet only the policy.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.mfa import MFA
from keystead.core.users import User
from keystead.deps import AppState
from keystead.errors import LoginRequired
from keystead.mfa import owed_factor
from keystead.mfa_policy import enrolment_required
from keystead.oauth.authorize_request import AuthorizeRequest
from keystead.web.csrf import csrf_token
from keystead.web.hosted_forms import with_csrf_cookie

# spa-js compares the whole string to open its step-up popup (contract §2.2 step 8, §2.4).
MFA_REQUIRED: Final = "Multifactor authentication required"


async def second_factor_step(
    request: Request,
    state: AppState,
    session: AsyncSession,
    req: AuthorizeRequest,
    amr: tuple[str, ...],
    user: User,
    *,
    username: str | None = None,
) -> Response | None:
    """None when a login whose `amr` is this may go on to the code; the code page when a factor
    is owed, the enrolment page when the policy wants one the user has not got; raises the
    login_required AuthorizeError for silent authentication. `username` is what failed codes
    count against: what was typed at the login page, else the user's email."""
    if MFA in amr:
        return None
    factor = await owed_factor(state, session, user.user_id)
    if factor is None and not await enrolment_required(state.repos(session)):
        return None
    if req.silent:
        raise req.fail(LoginRequired(MFA_REQUIRED))
    # web/mfa.py and web/mfa_enrol.py build on oauth/authorize.py
    from keystead.web.mfa import code_page
    from keystead.web.mfa_enrol import enrol_page

    token, is_new = csrf_token(request, state.settings)
    username = username or user.email or user.username or user.user_id
    if factor is None:
        page = await enrol_page(state, req, token, user, username=username)
    else:
        page = await code_page(state, req, token, user, factor, username=username)
    return with_csrf_cookie(page, token, is_new, state)
