"""Hosted email verification, GET /u/email-verification?ticket=… (contract §10.9).

    ticket (from POST /api/v2/tickets/email-verification or the mail of
            POST /api/v2/jobs/verification-email)
      ─ RS256, its own audience, unexpired (storage/keys.verify_token)
      ─ same user, same address as when issued (core/email_tickets.py)
      ─▶ email_verified = true ─▶ 302 to the ticket's result_url when it is still a registered
         URL (keystead/email_verification.py), else the "verified" page
    anything else (forged, expired, a reset ticket or access token, address changed) ─▶ 400 page

Verifying twice is harmless: the second visit finds the address verified and says so again.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from keystead.core.email_tickets import (
    check_verification_ticket,
    ticket_result_url,
    verification_audience,
    verification_subject,
)
from keystead.deps import get_state
from keystead.email_verification import result_url_allowed
from keystead.errors import InvalidToken
from keystead.storage.keys import verify_token
from keystead.web.pages import BASE_HEADERS, render

MAX_TICKET: Final = 4096  # our tickets are under 1000 characters; longer input is not ours
LINK_DEAD: Final = (
    "This verification link is invalid, has expired, or was made for another email address. "
    "Ask the application for a new one."
)


async def verify_email_page(request: Request) -> Response:
    state = get_state(request)
    ticket = request.query_params.get("ticket")
    if not ticket or len(ticket) > MAX_TICKET:
        return _dead()
    try:
        claims = await verify_token(
            state, ticket, audience=verification_audience(state.settings.issuer)
        )
        sub = verification_subject(claims)
        async with state.transaction() as session:
            users = state.repos(session).users
            user = check_verification_ticket(claims, await users.find(sub))
            if not user.email_verified:
                user = await users.update(replace(user, email_verified=True))
            await state.logs(session).record("sv", user_id=user.user_id, ip=_ip(request))
    except InvalidToken as refused:
        async with state.transaction() as session:  # never the ticket itself: it is a credential
            await state.logs(session).record("fv", description=refused.description, ip=_ip(request))
        return _dead()
    result_url = ticket_result_url(claims)
    if result_url is not None and await result_url_allowed(state, result_url):
        return RedirectResponse(result_url, status_code=302, headers=dict(BASE_HEADERS))
    return render("email_verified.html", email=user.email)


def _ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def _dead() -> Response:
    return render("email_verification_failed.html", status=400, description=LINK_DEAD)
