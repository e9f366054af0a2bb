"""POST /dbconnections/change_password (contract §7.3): the same 200 text whether or not the
user exists; a reset ticket (core/tickets.py) is mailed when it does. The hosted "forgot password"
form (web/reset.py) sends the same link through send_reset_link."""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from keystead.core.accounts import DATABASE_STRATEGY, canonical_email
from keystead.core.tickets import new_reset_ticket, reset_url
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.errors import InvalidRequest
from keystead.mail import send_reset_mail
from keystead.oauth.authorize import Requester
from keystead.oauth.params import read_params
from keystead.ratelimit.wiring import limit_authentication

CHANGE_PASSWORD_SENT: Final = "We've just sent you an email to reset your password."


async def change_password(request: Request) -> Response:
    state = get_state(request)
    params = await read_params(request)
    email = canonical_email(params.required("email"))
    if email is None:
        raise InvalidRequest("email is not a valid email address")
    connection_name = params.required("connection")
    client_id = params.get("client_id")
    async with state.transaction() as session:
        repos = state.repos(session)
        connection = await repos.connections.by_name(connection_name)
        client = await repos.clients.find(client_id) if client_id else None
    if connection is None or connection.strategy != DATABASE_STRATEGY:
        raise InvalidRequest("Unknown database connection")
    if client_id and client is None:
        raise InvalidRequest("Unknown client")
    # §12.2: per (IP, email), burst 10 and 1 per minute, then the IP, client and tenant.
    limits = await limit_authentication(
        state, request, endpoint="changePassword", email=email, client_id=client_id
    )
    who = Requester.of(request)
    await send_reset_link(
        state,
        email=email,
        connection=connection.name,
        client_id=client_id,
        ip=who.ip,
        user_agent=who.user_agent,
    )
    return PlainTextResponse(CHANGE_PASSWORD_SENT, headers={"Cache-Control": "no-store", **limits})


async def send_reset_link(
    state: AppState,
    *,
    email: str,
    connection: str,
    client_id: str | None,
    ip: str | None,
    user_agent: str | None,
) -> None:
    """Create a reset ticket and deliver it if `email` has an account in `connection`.

    The caller answers alike either way. A ticket is signed either way too, so that both paths
    cost about the same time. The log events (`scpr`, `fcpr`) never hold the ticket.
    """
    settings = state.settings
    async with state.transaction() as session:
        user = await state.repos(session).users.by_email(connection, email)
        ticket = new_reset_ticket(
            state.keys,
            issuer=settings.issuer,
            user=user or User(user_id="auth0|" + "0" * 24),
            now=state.clock.now(),
            client_id=client_id,
        )
        await state.logs(session).record(
            "scpr" if user is not None else "fcpr",
            description=None if user is not None else "The user does not exist.",
            user_id=user.user_id if user is not None else None,
            client_id=client_id,
            ip=ip,
            user_agent=user_agent,
            connection=connection,
            user_name=email,
        )
    if user is not None and user.email:
        await deliver_reset_link(state, user.email, reset_url(settings.issuer, ticket))


async def deliver_reset_link(state: AppState, email: str, url: str) -> None:
    """Send the reset link to `email` (keystead/mail.py: SMTP in the background, or the log on
    a development issuer)."""
    await send_reset_mail(state.settings, email, url)
