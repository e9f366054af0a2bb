"""What a POST or PATCH /users body may do to a user (contract §9.4, §9.5), for users.py.

Field rules by connection strategy; users.py keeps the handlers, transactions and audit.

    apply_update         the user after a PATCH body: root fields, email, username, password,
                         user_metadata (core/profile.py) and app_metadata
    connection_of        the connection a PATCH applies to (the primary identity's only)
    check_create_fields  what each kind of connection needs at POST, and what it cannot take
    check_password       the connection's password policy, refused in Auth0's words
    default_picture      Auth0's default picture, also for /dbconnections/signup
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any, Final
from urllib.parse import quote

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool

from keystead.core.passwords import PasswordPolicy, hash_password
from keystead.core.ports import Connection
from keystead.core.profile import check_metadata_write, merge_metadata
from keystead.core.users import User
from keystead.deps import AppState
from keystead.errors import BadRequest, Conflict
from keystead.management.api import Caller
from keystead.management.bodies import check_app_metadata, payload_error
from keystead.self_service import profile_policy
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.users import normal_email

# Strategies whose users the API may create (§9.4) and the provider prefix of their ids.
PROVIDERS: Final = {"auth0": "auth0", "email": "email", "sms": "sms"}
NO_USERNAME: Final = "Cannot set username for connection without requires_username."


# --- the update, step by step -----------------------------------------------------------------

_ROOT_TEXT: Final = ("given_name", "family_name", "name", "nickname", "picture", "phone_number")
_ROOT_FLAGS: Final = ("blocked", "email_verified", "phone_verified")
# Fields a user of each provider cannot be without.
_REQUIRED: Final = {"auth0": ("email",), "email": ("email",), "sms": ("phone_number",)}


async def apply_update(
    state: AppState,
    repos: Repositories,
    session: AsyncSession,
    caller: Caller,
    user: User,
    connection: Connection | None,
    body: dict[str, Any],
) -> tuple[User, dict[str, Any] | None]:
    """The user after `body` (§9.5), and the user_metadata audit record if it changed."""
    provider = user.identities[0].provider if user.identities else ""
    database = provider in PROVIDERS
    for name in ("email", "password", "username"):
        if name in body and not database:
            raise BadRequest(f"Cannot update {name} for non-database user.")
    for name in _REQUIRED.get(provider, ()):
        if name in body and body[name] is None:
            raise payload_error("Expected type string but found type null", name)
    changes: dict[str, Any] = {}
    for name in _ROOT_TEXT:
        if name in body:
            changes[name] = body[name]  # null removes the field (§9.5)
    for name in _ROOT_FLAGS:
        if name in body:
            changes[name] = body[name]
    if "email" in body and normal_email(body["email"]) != user.email:
        changes["email"] = normal_email(body["email"])
        changes.setdefault("email_verified", False)  # a new address is unverified until said so
    if "username" in body:
        changes["username"] = await _new_username(repos, user, connection, body["username"])
    if body.get("password") is not None:
        check_password(body["password"], changes.get("email", user.email), connection)
        changes["password_hash"] = await run_in_threadpool(hash_password, body["password"])
        changes["last_password_reset"] = state.clock.now()
    audit = None
    if "user_metadata" in body:
        profile = await profile_policy(repos, caller.client_id)
        change = check_metadata_write(
            profile, user.user_metadata, body["user_metadata"], actor=caller.actor
        )
        changes["user_metadata"] = change.result
        audit = change.audit_details()
    if "app_metadata" in body:
        merged = merge_metadata(user.app_metadata, body["app_metadata"])
        changes["app_metadata"] = check_app_metadata(merged)
    return replace(user, **changes), audit


async def _new_username(
    repos: Repositories, user: User, connection: Connection | None, username: str | None
) -> str | None:
    requires = bool(connection and connection.options.get("requires_username"))
    if not requires:
        raise BadRequest(NO_USERNAME)
    if username is None:
        raise payload_error("Expected type string but found type null", "username")
    name = username.lower()
    if (
        name != user.username
        and connection
        and await repos.users.username_taken(connection.name, name)
    ):
        raise Conflict("The username provided is in use already.", error_code="auth0_idp_error")
    return name


# --- connections, creation and passwords ------------------------------------------------------


async def connection_of(repos: Repositories, user: User, named: str | None) -> Connection | None:
    primary = user.identities[0].connection if user.identities else None
    if named is not None and named != primary:
        if any(i.connection == named for i in user.identities[1:]):
            raise BadRequest(
                "Updating a linked identity is not supported.", error_code="operation_not_supported"
            )
        raise BadRequest(f"The user has no identity in connection {named}.")
    return await repos.connections.by_name(primary) if primary else None


def check_create_fields(body: dict[str, Any], connection: Connection) -> None:
    """§9.4: what each kind of connection needs, and what it cannot take."""
    strategy = connection.strategy
    needed = {"auth0": ("email", "password"), "email": ("email",), "sms": ("phone_number",)}
    for name in needed[strategy]:
        if name not in body:
            raise payload_error(f"Missing required property: {name}")
    if "password" in body and strategy != "auth0":
        raise BadRequest("Cannot set password for a passwordless connection.")
    requires_username = bool(connection.options.get("requires_username"))
    if "username" in body and not requires_username:
        raise BadRequest(NO_USERNAME)
    if requires_username and "username" not in body:
        raise payload_error("Missing required property: username")


def check_password(password: str, email: str | None, connection: Connection | None) -> None:
    options = connection.options if connection else {}
    complexity = options.get("password_complexity_options") or {}
    min_length = complexity.get("min_length", 8)
    rules = PasswordPolicy(min_length=min_length if isinstance(min_length, int) else 8)
    codes = {v.code for v in rules.violations(password, email)}
    for code, message in _PASSWORD_ERRORS:
        if code in codes:
            raise BadRequest(message)


# Auth0's messages for each kind of refused password.
_PASSWORD_ERRORS: Final = (
    ("password_too_short", "PasswordStrengthError: Password is too weak"),
    ("password_too_long", "PasswordStrengthError: Password is too weak"),
    (
        "password_no_user_info_error",
        "PasswordNoUserInfoError: Password is based on user information.",
    ),
    ("password_dictionary_error", "PasswordDictionaryError: Password is too common."),
)


def default_picture(email: str | None) -> str | None:
    """Auth0's default: a Gravatar for the address, falling back to the initials' avatar."""
    if not email:
        return None
    digest = hashlib.md5(email.encode(), usedforsecurity=False).hexdigest()  # Gravatar's key
    fallback = quote(f"https://cdn.auth0.com/avatars/{email.split('@')[0][:2]}.png", safe="")
    return f"https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d={fallback}"
