"""Management API tickets: links an administrator hands to a user (contract §10.9).

    POST /tickets/password-change     create:user_tickets  201 {"ticket": …/u/reset-password?…}
         user_id, or email + connection_id; ttl_sec; client_id; result_url (as below),
         includeEmailInRedirect, mark_email_as_verified
    POST /tickets/email-verification  create:user_tickets  201 {"ticket": …/u/email-verification?…}
         user_id; ttl_sec; result_url (a registered callback or logout URL); client_id

A password-change ticket is the very ticket the hosted "forgot password" flow mails
(core/tickets.py), so it dies once the password changes; the verification ticket is
core/email_tickets.py. Both check `result_url` the same way here, and their pages check it again
before redirecting. Once the password is set, the reset page (web/reset.py) redirects to
result_url with `success=true&message=…`, and `email` when includeEmailInRedirect is true, as
Auth0 documents for its change-password redirect; mark_email_as_verified also sets
email_verified, but only for the address the ticket was made for. Properties Keystead cannot
honour (organizations, identities) are refused with a 400 unless they ask for nothing.
`ttl_sec` absent or 0 is Auth0's five days (the hosted form's own links last an hour); more than
30 days is refused. Tickets are never logged; the `sapi` event names only the user.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.accounts import DATABASE_STRATEGY, canonical_email
from keystead.core.email_tickets import MAX_TICKET_LIFETIME, VERIFICATION_TICKET_LIFETIME
from keystead.core.redirects import callback_url_problem
from keystead.core.tickets import new_reset_ticket, reset_url
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.email_verification import issue_link, result_url_allowed
from keystead.errors import BadRequest, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import read_body
from keystead.management.schemas import ANY, boolean, refuse_unsupported, string
from keystead.management.schemas.audit import record_change

USER_NOT_FOUND: Final = "User not found."
NO_EMAIL: Final = "The user does not have an email address."
NOT_DATABASE: Final = "The user's main connection does not support this operation."
NO_CLIENT: Final = "The client does not exist"
RESET_TICKET_TTL: Final = 432_000  # Auth0's default when ttl_sec is absent or 0: five days
TTL: Final = {"type": "integer", "minimum": 0, "maximum": MAX_TICKET_LIFETIME}

RESULT_URL_NOT_ALLOWED: Final = (
    "result_url must be a callback or logout URL an application registered, "
    "or one of the tenant's allowed logout URLs."
)

PASSWORD_CHANGE_UNSUPPORTED: Final = frozenset({"organization_id", "identity"})
CREATE_PASSWORD_CHANGE_TICKET: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "user_id": string(1, 512),
        "email": string(1, 512),
        "connection_id": {"type": "string", "pattern": "^con_[A-Za-z0-9]{16}$"},
        "client_id": string(1, 64),
        "ttl_sec": TTL,
        # null as "not asked": these were accepted as null while Keystead refused them
        "result_url": string(1, 2048, null=True),
        "includeEmailInRedirect": boolean(null=True),
        "mark_email_as_verified": boolean(null=True),
        **dict.fromkeys(sorted(PASSWORD_CHANGE_UNSUPPORTED), ANY),
    },
}

EMAIL_VERIFICATION_UNSUPPORTED: Final = frozenset(
    {"includeEmailInRedirect", "organization_id", "identity"}
)
CREATE_EMAIL_VERIFICATION_TICKET: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["user_id"],
    "properties": {
        "user_id": string(1, 512),
        "result_url": string(1, 2048),
        "client_id": string(1, 64),
        "ttl_sec": TTL,
        **dict.fromkeys(sorted(EMAIL_VERIFICATION_UNSUPPORTED), ANY),
    },
}


async def create_password_change_ticket(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    body = await read_body(request, CREATE_PASSWORD_CHANGE_TICKET)
    refuse_unsupported(body, PASSWORD_CHANGE_UNSUPPORTED)
    result_url = body.get("result_url")
    await check_result_url(state, result_url)
    has_user_id = "user_id" in body
    if has_user_id == ("email" in body) or ("email" in body) != ("connection_id" in body):
        raise BadRequest("Send either user_id, or email together with connection_id.")
    client_id = body.get("client_id")
    await check_client(state, client_id)
    if has_user_id:
        user = await find_user(state, body["user_id"])
    else:
        user = await _user_by_email(state, body["connection_id"], body["email"])
    # The reset page only sets passwords of database users (web/reset.py): refuse here already.
    async with state.sessions() as session:
        connection = await state.repos(session).connections.by_name(_main_connection(user))
    if connection is None or connection.strategy != DATABASE_STRATEGY:
        raise BadRequest(NOT_DATABASE, error_code="operation_not_supported")
    if not user.email:
        raise BadRequest(NO_EMAIL)
    ticket = new_reset_ticket(
        state.keys,
        issuer=state.settings.issuer,
        user=user,
        now=state.clock.now(),
        lifetime=body.get("ttl_sec") or RESET_TICKET_TTL,
        client_id=client_id,
        result_url=result_url,
        include_email=body.get("includeEmailInRedirect") is True,
        mark_email_verified=body.get("mark_email_as_verified") is True,
    )
    async with state.transaction() as session:
        await record_change(
            state,
            session,
            request,
            caller,
            "Create a password change ticket",
            target={"user_id": user.user_id},
            user_id=user.user_id,
        )
    return json_response({"ticket": reset_url(state.settings.issuer, ticket)}, 201)


async def create_email_verification_ticket(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    body = await read_body(request, CREATE_EMAIL_VERIFICATION_TICKET)
    refuse_unsupported(body, EMAIL_VERIFICATION_UNSUPPORTED)
    result_url = body.get("result_url")
    await check_result_url(state, result_url)
    client_id = body.get("client_id")
    await check_client(state, client_id)
    user = await find_user(state, body["user_id"])
    if not user.email:
        raise BadRequest(NO_EMAIL)
    url = issue_link(
        state,
        user,
        lifetime=body.get("ttl_sec") or VERIFICATION_TICKET_LIFETIME,
        result_url=result_url,
        client_id=client_id,
    )
    async with state.transaction() as session:
        await record_change(
            state,
            session,
            request,
            caller,
            "Create an email verification ticket",
            target={"user_id": user.user_id},
            user_id=user.user_id,
        )
    return json_response({"ticket": url}, 201)


async def check_result_url(state: AppState, result_url: str | None) -> None:
    """A ticket's result_url must be a URL the page may redirect to (result_url_allowed), and one
    that could be registered at all (callback_url_problem)."""
    if result_url is None:
        return
    problem = callback_url_problem(result_url)
    if problem is not None:
        raise BadRequest(f"result_url {problem}.")
    if not await result_url_allowed(state, result_url):
        raise BadRequest(RESULT_URL_NOT_ALLOWED)


# --- shared with management/jobs.py -------------------------------------------------------------


async def check_client(state: AppState, client_id: str | None) -> None:
    if client_id is None:
        return
    async with state.sessions() as session:
        if await state.repos(session).clients.find(client_id) is None:
            raise BadRequest(NO_CLIENT, error_code="inexistent_client")


async def find_user(state: AppState, user_id: str) -> User:
    user = None
    if "\x00" not in user_id:  # PostgreSQL cannot compare such a string
        async with state.sessions() as session:
            user = await state.repos(session).users.find(user_id)
    if user is None:
        raise NotFound(USER_NOT_FOUND, error_code="inexistent_user")
    return user


async def _user_by_email(state: AppState, connection_id: str, raw_email: str) -> User:
    email = canonical_email(raw_email)
    if email is None:
        raise BadRequest("email must be a valid email address.")
    async with state.sessions() as session:
        repos = state.repos(session)
        try:
            connection = await repos.connections.get(connection_id)
        except RecordNotFound:
            raise BadRequest(
                f"The connection with id {connection_id} does not exist.",
                error_code="inexistent_connection",
            ) from None
        user = await repos.users.by_email(connection.name, email)
    if user is None:
        raise NotFound(USER_NOT_FOUND, error_code="inexistent_user")
    return user


def _main_connection(user: User) -> str:
    return user.identities[0].connection if user.identities else ""
