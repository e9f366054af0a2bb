"""Management API users (contract §9.2, §9.4, §9.5): list, read, create, update, delete.

    GET    /users                    list_users: the listing or a `q` search (§9.3), paged
    GET    /users-by-email           get_users_by_email: exact match on the stored email
    POST   /users                    create_user
    GET|PATCH|DELETE /users/{id}     get_user, update_user, delete_user

Scopes and ownership were settled by management/api.py before any handler here runs; a
handler acts on `caller.target_user_id` and applies only the field-level rules (§8.3 item 4)
and the self-service profile policy (core/profile.py) to what is written. What a body may
change, per connection, is in management/user_writes.py.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from keystead.core import policy_fields
from keystead.core.passwords import hash_password
from keystead.core.profile import check_metadata_write, merge_metadata
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.errors import AlreadyExists, BadRequest, Conflict, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import (
    CREATE_USER,
    UPDATE_USER,
    check_app_metadata,
    check_update_combinations,
    read_body,
)
from keystead.management.params import (
    InvalidQuery,
    parse_page,
    parse_projection,
    parse_sort,
    query_error,
)
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import user_json, users_json
from keystead.management.user_writes import (
    PROVIDERS,
    apply_update,
    check_create_fields,
    check_password,
    connection_of,
    default_picture,
)
from keystead.self_service import profile_policy
from keystead.storage.login_records import SqlLoginRecords
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.storage.repositories.users import normal_email
from keystead.storage.user_reads import find_user
from keystead.storage.user_search import search_users

NOT_FOUND: Final = "The user does not exist."
NOT_CREATABLE: Final = (
    "Connection does not support user creation through the API. "
    "It must either be a database or passwordless connection."
)
SORTABLE: Final = frozenset(
    {
        "user_id", "email", "email_verified", "username", "phone_number", "name", "nickname",
        "given_name", "family_name", "created_at", "updated_at", "last_login", "logins_count",
        "blocked",
    }
)  # fmt: skip


# --- reads ------------------------------------------------------------------------------------


async def get_user(request: Request, caller: Caller) -> Response:
    projection = parse_projection(request.query_params)
    user = await find_user(get_state(request).engine, caller.target_user_id or "")
    if user is None:
        raise NotFound(NOT_FOUND, error_code="inexistent_user")
    return json_response(_show(user, caller, projection))


async def get_users_by_email(request: Request, caller: Caller) -> Response:
    """Exact match on the stored (lower-cased) email, across connections (§9.2)."""
    query = request.query_params
    projection = parse_projection(query)
    email = query.get("email")
    if not email:
        raise query_error("Missing required property: email")
    state = get_state(request)
    async with state.transaction() as session:
        users = await state.repos(session).users.all_with_email(email)
    return json_response(users_json(users, idp_tokens=_idp(caller), projection=projection))


async def list_users(request: Request, caller: Caller) -> Response:
    """GET /users (§9.3): the listing or a `q` search (storage/user_search.py), paged."""
    query = request.query_params
    engine = query.get("search_engine", "v3")
    if engine == "v1":
        raise InvalidQuery("You are not allowed to use search_engine=v1.")
    if engine == "v2":
        raise InvalidQuery(
            "You are not allowed to use search_engine=v2. Use search_engine=v3 instead."
        )
    if engine != "v3":
        raise query_error(f"No enum match for: {engine}", "search_engine")
    page = parse_page(query)
    projection = parse_projection(query)
    sort = parse_sort(query, SORTABLE)
    async with get_state(request).transaction() as session:
        users, total = await search_users(
            session,
            query.get("q") or None,
            sort=sort,
            offset=page.start,
            limit=page.limit,
            include_total=page.include_totals,
        )
    items = users_json(users, idp_tokens=_idp(caller), projection=projection)
    return json_response(page.body("users", items, total or 0))


# --- writes -----------------------------------------------------------------------------------


async def create_user(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_USER)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        connection = await repos.connections.by_name(body["connection"])
        if connection is None:
            raise BadRequest("Connection does not exist.", error_code="inexistent_connection")
        provider = PROVIDERS.get(connection.strategy)
        if provider is None:
            raise BadRequest(NOT_CREATABLE, error_code="operation_not_supported")
        check_create_fields(body, connection)
        profile = await profile_policy(repos, caller.client_id)
        metadata_change = check_metadata_write(
            profile, {}, body.get("user_metadata", {}), actor="admin"
        )
        user_metadata = metadata_change.result
        app_metadata = check_app_metadata(merge_metadata({}, body.get("app_metadata", {})))
        password_hash = None
        if "password" in body:
            check_password(body["password"], body.get("email"), connection)
            password_hash = await run_in_threadpool(hash_password, body["password"])
        email = normal_email(body.get("email"))
        if body.get("username") and await repos.users.username_taken(
            connection.name, body["username"]
        ):
            raise Conflict("The username provided is in use already.", error_code="auth0_idp_error")
        user = User(
            user_id=f"{provider}|{body['user_id']}" if body.get("user_id") else "",
            email=email,
            email_verified=body.get("email_verified", False),
            username=body["username"].lower() if body.get("username") else None,
            phone_number=body.get("phone_number"),
            phone_verified=body.get("phone_verified", False),
            name=body.get("name", email or body.get("phone_number")),
            nickname=body.get("nickname", email.split("@")[0] if email else None),
            given_name=body.get("given_name"),
            family_name=body.get("family_name"),
            picture=body.get("picture", default_picture(email)),
            user_metadata=user_metadata,
            app_metadata=app_metadata,
            blocked=body.get("blocked", False),
            password_hash=password_hash,
        )
        try:
            # A linked secondary identity still logs in with its address (§9.6): it stays taken.
            if email and await SqlLoginRecords(session).linked_login(connection.name, email):
                raise AlreadyExists("address held by a linked identity")
            created = await repos.users.create(user, connection=connection.name)
        except AlreadyExists:
            raise Conflict("The user already exists.", error_code="auth0_idp_error") from None
        audit = metadata_change.audit_details() if "user_metadata" in body else None
        await _audit(state, session, request, caller, "Create a User", created.user_id, body, audit)
    return json_response(_show(created, caller), 201)


async def update_user(request: Request, caller: Caller) -> Response:
    body = await read_body(request, UPDATE_USER)
    policy_fields.check_update_fields(body.keys(), caller.decision)  # 403 for limited scopes (§8.3)
    check_update_combinations(body)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        user = await _find(repos, caller)
        connection = await connection_of(repos, user, body.get("connection"))
        changed, audit = await apply_update(state, repos, session, caller, user, connection, body)
        updated = await repos.users.update(changed)
        if _ends_sessions(user, updated):
            await SqlLoginSessions(session, state.clock).delete_for_user(user.user_id)
        await _audit(state, session, request, caller, "Update a User", user.user_id, body, audit)
    return json_response(_show(updated, caller))


def _ends_sessions(before: User, after: User) -> bool:
    """A block or a new password signs the user out everywhere (their SSO sessions end)."""
    return (after.blocked and not before.blocked) or after.password_hash != before.password_hash


async def delete_user(request: Request, caller: Caller) -> Response:
    """204 whether or not the user existed, as Auth0 answers (§9.2)."""
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        try:
            await state.repos(session).users.delete(user_id)
        except RecordNotFound:
            return Response(status_code=204)
        await _audit(state, session, request, caller, "Delete a User", user_id, {})
    return Response(status_code=204)


# --- shared pieces ----------------------------------------------------------------------------


def _idp(caller: Caller) -> bool:
    return policy_fields.shows_idp_tokens(caller.scopes)


def _show(user: User, caller: Caller, projection: Any = None) -> dict[str, Any]:
    return user_json(user, idp_tokens=_idp(caller), projection=projection)


async def _find(repos: Repositories, caller: Caller) -> User:
    user = await repos.users.find(caller.target_user_id or "")
    if user is None:
        raise NotFound(NOT_FOUND, error_code="inexistent_user")
    return user


async def _audit(
    state: AppState,
    session: AsyncSession,
    request: Request,
    caller: Caller,
    description: str,
    user_id: str,
    body: dict[str, Any],
    metadata: dict[str, Any] | None = None,
) -> None:
    """A `sapi` event: who, what and which fields, never values (no passwords; metadata only
    as the self-service policy's audit of it, when given)."""
    await record_change(
        state, session, request, caller, description, fields=body, user_id=user_id,
        extra={"user_metadata": metadata} if metadata is not None else None,
    )  # fmt: skip
