"""Database connections: POST /dbconnections/signup (contract §7.2; security cases SE-11,
IN-05, IN-09, RE-13).

signup:
    1. body (JSON or form) → fields, typed and bounded
    2. client, connection (a database connection, signup enabled, enabled for the client)
    3. email, profile fields, user_metadata (core/profile, actor="signup"), password policy
    4. hash (worker thread) → user row; a duplicate is the generic `invalid_signup` (no
       enumeration); every outcome logged as `ss` / `fs`

change_password: oauth/change_password.py. Addresses and password rules: core/accounts.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Final

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from keystead.core.accounts import (
    DATABASE_STRATEGY,
    canonical_email,
    connection_password_policy,
    password_error,
)
from keystead.core.clients import Client
from keystead.core.passwords import hash_password
from keystead.core.ports import Connection
from keystead.core.profile import MetadataRejected, check_metadata_write
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.errors import AlreadyExists, InvalidRequest, SignupError
from keystead.management.user_writes import default_picture
from keystead.oauth.authorize import Requester
from keystead.oauth.params import Params, printable, read_params
from keystead.ratelimit.protection import signup_buckets
from keystead.ratelimit.wiring import limit_authentication, policy_of
from keystead.self_service import profile_policy
from keystead.storage.login_records import SqlLoginRecords

INVALID_SIGNUP: Final = "Invalid sign up"  # Auth0's body for a duplicate (contract §7.2)
# Column sizes of storage/models.UserRow: longer values are refused, never truncated.
PROFILE_LIMITS: Final = {
    "given_name": 150,
    "family_name": 150,
    "name": 300,
    "nickname": 300,
    "picture": 2048,
}
# Auth0's default username rule: 1-15 of these characters (connection `validation.username`).
_USERNAME: Final = re.compile(r"[A-Za-z0-9_+\-.!#$'^`~@]+")
_PHONE: Final = re.compile(r"\+[1-9][0-9]{1,14}")  # E.164


# --- POST /dbconnections/signup ----------------------------------------------------------------


@dataclass(frozen=True)
class _Signup:
    """A signup that passed every check but the duplicate one."""

    client: Client
    connection: Connection
    user: User  # without a password hash yet
    password: str
    supplied: frozenset[str]  # optional fields the request sent, echoed in the answer
    metadata_audit: dict[str, Any] | None = None  # keys and sizes written (issue 6 audit)


async def signup(request: Request) -> Response:
    state = get_state(request)
    who = Requester.of(request)
    client: Client | None = None
    connection_name: str | None = None
    try:
        params = await _signup_params(request)
        client_id = _required(params, "client_id")
        connection_name = _required(params, "connection")
        checked = await _validate(state, params, client_id, connection_name)
        client = checked.client
        # AT-03: suspicious-IP signup throttling (50 a day per IP), with the IP and client limits.
        await limit_authentication(
            state,
            request,
            client_id=client.client_id,
            extra=signup_buckets(policy_of(state), who.ip),
        )
        user = await _create(state, checked, who)
    except SignupError as exc:
        await _log_failure(state, exc, client, connection_name, who)
        raise
    return JSONResponse(_signup_body(user, checked.supplied), headers={"Cache-Control": "no-store"})


async def _signup_params(request: Request) -> Params:
    try:
        return await read_params(request)
    except InvalidRequest as exc:
        raise SignupError("invalid_body", exc.description) from None


def _required(params: Params, name: str) -> str:
    value = _text(params, name)
    if value is None:
        raise SignupError("invalid_body", f"Missing required property: {name}")
    return value


def _text(params: Params, name: str, limit: int | None = None) -> str | None:
    try:
        value = params.get(name)
    except InvalidRequest:
        raise SignupError("invalid_body", f"{name} must be a string") from None
    if value is not None and limit is not None and len(value) > limit:
        raise SignupError("invalid_body", f"{name} must be at most {limit} characters")
    return value


async def _validate(
    state: AppState, params: Params, client_id: str, connection_name: str
) -> _Signup:
    async with state.transaction() as session:
        repos = state.repos(session)
        client = await repos.clients.find(client_id)
        connection = await repos.connections.by_name(connection_name)
        policy = await profile_policy(repos, client_id) if client is not None else None
    if client is None or policy is None:
        raise SignupError("invalid_client", "Unknown client", status=400)
    if connection is None or connection.strategy != DATABASE_STRATEGY:
        raise SignupError("invalid_connection", "Unknown database connection")
    enabled = connection.extra.get("enabled_clients")
    if isinstance(enabled, list) and client_id not in enabled:
        raise SignupError("invalid_connection", "The connection is not enabled for this client")
    if connection.options.get("disable_signup"):
        raise SignupError("unauthorized", "Public signup is disabled", status=403)

    email = canonical_email(_required(params, "email"))
    if email is None:
        raise SignupError("invalid_body", "email is not a valid email address")
    password = _required(params, "password")
    username = _username(params, connection)
    profile = {name: _text(params, name, limit) for name, limit in PROFILE_LIMITS.items()}
    picture = profile.pop("picture")
    if picture is not None and not picture.lower().startswith(("https://", "http://")):
        raise SignupError("invalid_body", "picture must be an http(s) URL")
    phone = _text(params, "phone_number", 20)
    if phone is not None and not _PHONE.fullmatch(phone):
        raise SignupError("invalid_body", "phone_number must be in E.164 format, e.g. +15555550100")

    metadata = params.raw("user_metadata")
    try:
        change = check_metadata_write(policy, {}, metadata or {}, actor="signup")
    except MetadataRejected as exc:
        raise SignupError("invalid_body", exc.message) from None

    refused = password_error(connection_password_policy(connection), password, email)
    if refused is not None:
        raise refused
    user = User(
        user_id="",
        email=email,
        username=username,
        phone_number=phone,
        name=profile["name"] or email,
        nickname=profile["nickname"] or email.split("@", 1)[0],
        given_name=profile["given_name"],
        family_name=profile["family_name"],
        picture=picture or default_picture(email),
        user_metadata=change.result,
    )
    supplied = {name for name, value in profile.items() if value is not None}
    supplied |= {name for name, value in (("username", username), ("picture", picture)) if value}
    if phone is not None:
        supplied.add("phone_number")
    if metadata is not None:
        supplied.add("user_metadata")
    audit = change.audit_details() if metadata else None
    return _Signup(client, connection, user, password, frozenset(supplied), audit)


def _username(params: Params, connection: Connection) -> str | None:
    if not connection.options.get("requires_username"):
        return None  # Auth0 ignores a username the connection does not use
    username = _required(params, "username")
    rule = connection.options.get("validation", {}) or {}
    limits = rule.get("username", {}) if isinstance(rule, dict) else {}
    low = limits.get("min", 1) if isinstance(limits, dict) else 1
    high = limits.get("max", 15) if isinstance(limits, dict) else 15
    if not (isinstance(low, int) and isinstance(high, int)):
        low, high = 1, 15
    if not low <= len(username) <= high or not _USERNAME.fullmatch(username):
        raise SignupError(
            "invalid_body",
            f"username must be {low} to {high} letters, digits or _+-.!#$'^`~@ characters",
        )
    return username.lower()


async def _create(state: AppState, checked: _Signup, who: Requester) -> User:
    user, connection, client = checked.user, checked.connection, checked.client
    # Hashed before the duplicate check, so that a taken address costs the same time (no
    # enumeration by timing), and outside the transaction, so no write lock waits on argon2.
    password_hash = await run_in_threadpool(hash_password, checked.password)
    try:
        async with state.transaction() as session:
            if user.username and await state.repos(session).users.username_taken(
                connection.name, user.username
            ):
                raise AlreadyExists("username taken")
            # A linked secondary identity still logs in with its address (§9.6): it stays taken.
            linked = SqlLoginRecords(session).linked_login
            if user.email and await linked(connection.name, user.email) is not None:
                raise AlreadyExists("address held by a linked identity")
            created = await state.repos(session).users.create(
                replace(user, password_hash=password_hash), connection=connection.name
            )
            await state.logs(session).record(
                "ss",
                user_id=created.user_id,
                client_id=client.client_id,
                ip=who.ip,
                user_agent=who.user_agent,
                connection=connection.name,
                user_name=created.email,
                details={"user_metadata": checked.metadata_audit}
                if checked.metadata_audit
                else None,
            )
    except AlreadyExists:  # also a concurrent signup with the same address (RE-13)
        raise SignupError("invalid_signup", INVALID_SIGNUP) from None
    return created


def _metadata_details(audit: dict[str, Any] | None) -> dict[str, Any] | None:
    return {"user_metadata": audit} if audit else None


_ECHOED: Final = (
    "username", "phone_number", "given_name", "family_name", "name", "nickname", "picture",
    "user_metadata",
)  # fmt: skip


def _signup_body(user: User, supplied: frozenset[str]) -> dict[str, Any]:
    """`_id` without the `auth0|` prefix, the email, and the optional fields the request sent,
    as stored (contract §7.2)."""
    body: dict[str, Any] = {
        "_id": user.user_id.partition("|")[2],
        "email": user.email,
        "email_verified": user.email_verified,
    }
    body.update({name: getattr(user, name) for name in _ECHOED if name in supplied})
    return body


async def _log_failure(
    state: AppState,
    exc: SignupError,
    client: Client | None,
    connection: str | None,
    who: Requester,
) -> None:
    reason = exc.description if isinstance(exc.description, str) else exc.message or exc.code
    async with state.transaction() as session:
        await state.logs(session).record(
            "fs",
            description=printable(reason, 300),
            client_id=client.client_id if client else None,
            ip=who.ip,
            user_agent=who.user_agent,
            connection=connection,
            details={"code": exc.code},
        )
