"""A user's authentication methods (contract §9.2), over the repository of the same name.

    GET|POST|PUT|DELETE /users/{id}/authentication-methods      list, add, replace all, remove all
    GET|PATCH|DELETE    /users/{id}/authentication-methods/{authentication_method_id}

The bodies and what each method type takes are in management/authentication_method_bodies.py;
management/enrollments.py answers Guardian's view of the same factors with the pieces here.
Secrets (totp_secret) go in sealed and never come out, not even in the 201 that created them.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import AppState, get_state
from keystead.errors import BadRequest, Forbidden, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.authentication_method_bodies import (
    CREATE,
    REPLACE_ITEM,
    SECRETS,
    UPDATE,
    add_method,
)
from keystead.management.bodies import payload_error, read_body, read_json, validate
from keystead.management.identities import refuse_nul, storable
from keystead.management.params import parse_page
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import iso
from keystead.storage.repositories.authentication_methods import (
    NOT_FOUND as METHOD_NOT_FOUND,
)
from keystead.storage.repositories.authentication_methods import (
    AuthenticationMethod,
    SqlAuthenticationMethods,
)

USER_NOT_FOUND: Final = "The user does not exist."
PASSKEY_LOCK: Final = "Operation not permitted when the user has registered at least 1 passkey"
MAX_REPLACE: Final = 50

# Keys each response schema allows (all have additionalProperties: false).
_LISTED: Final = frozenset(
    {"id", "type", "confirmed", "name", "created_at", "enrolled_at", "last_auth_at",
     "phone_number", "email", "preferred_authentication_method", "key_id", "public_key", "aaguid",
     "relying_party_identifier", "credential_device_type", "credential_backed_up",
     "identity_user_id", "user_agent", "user_handle", "transports", "link_id"}
)  # fmt: skip
_CREATED: Final = _LISTED - {"confirmed", "enrolled_at", "last_auth_at", "link_id"}
_REPLACED: Final = frozenset(
    {"id", "type", "name", "created_at", "phone_number", "email",
     "preferred_authentication_method", "key_id", "public_key", "aaguid",
     "relying_party_identifier"}
)  # fmt: skip
_UPDATED: Final = _REPLACED | {"confirmed"}


# --- authentication methods ---------------------------------------------------------------------


async def list_authentication_methods(request: Request, caller: Caller) -> Response:
    page = parse_page(request.query_params, min_per_page=0, window=False)
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        methods = methods_repository(state, session)
        await check_user(state, session, caller)
        found = await methods.list(user_id, offset=page.start, limit=page.per_page)
        total = await methods.count(user_id) if page.include_totals else 0
    items = [method_json(m, _LISTED) for m in found]
    return json_response(page.body("authenticators", items, total, length=False))


async def get_authentication_method(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        method = await _find(state, session, caller, request)
    return json_response(method_json(method, _LISTED))


async def create_authentication_method(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE)
    refuse_nul(body)
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        await check_user(state, session, caller)
        methods = methods_repository(state, session)
        existing = await methods.list(user_id)
        created = await add_method(methods, user_id, body, existing)
        await audit(state, session, request, caller, "Create an authentication method")
    return json_response(method_json(created, _CREATED), 201)


async def replace_authentication_methods(request: Request, caller: Caller) -> Response:
    raw = await read_json(request)
    if not isinstance(raw, list):
        found = "object" if isinstance(raw, dict) else "string" if isinstance(raw, str) else "value"
        raise payload_error(f"Expected type array but found type {found}")
    if len(raw) > MAX_REPLACE:
        raise payload_error(f"Array is too long ({len(raw)}), maximum {MAX_REPLACE}")
    items = [validate(item, REPLACE_ITEM) for item in raw]
    refuse_nul(items)
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        await check_user(state, session, caller)
        methods = methods_repository(state, session)
        await _check_no_passkey(methods, user_id)
        await methods.delete_all(user_id)
        created: list[AuthenticationMethod] = []
        for item in items:
            created.append(await add_method(methods, user_id, item, created))
        await audit(state, session, request, caller, "Replace authentication methods")
    return json_response([method_json(m, _REPLACED) for m in created])


async def update_authentication_method(request: Request, caller: Caller) -> Response:
    body = await read_body(request, UPDATE)
    refuse_nul(body)
    state = get_state(request)
    async with state.transaction() as session:
        method = await _find(state, session, caller, request)
        preferred = body.get("preferred_authentication_method")
        if preferred is not None and method.type != "phone":
            raise BadRequest(
                "preferred_authentication_method applies to phone authentication methods only."
            )
        props = {"preferred_authentication_method": preferred} if preferred else None
        updated = await methods_repository(state, session).update(
            method.user_id, method.id, name=body.get("name"), properties=props
        )
        await audit(state, session, request, caller, "Update an authentication method")
    return json_response(method_json(updated, _UPDATED))


async def delete_authentication_method(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        method = await _find(state, session, caller, request)
        await methods_repository(state, session).delete(method.user_id, method.id)
        await audit(state, session, request, caller, "Delete an authentication method")
    return Response(status_code=204)


async def delete_authentication_methods(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        await check_user(state, session, caller)
        methods = methods_repository(state, session)
        await _check_no_passkey(methods, user_id)
        await methods.delete_all(user_id)
        await audit(state, session, request, caller, "Delete all authentication methods")
    return Response(status_code=204)


# --- pieces -------------------------------------------------------------------------------------


def method_json(method: AuthenticationMethod, allowed: frozenset[str]) -> dict[str, Any]:
    """The method in Auth0's shape, cut to what the answering schema allows; never a secret."""
    out: dict[str, Any] = {"id": method.id, "type": method.type, "confirmed": method.confirmed}
    if method.name:
        out["name"] = method.name
    out["created_at"] = iso(method.created_at)
    if method.confirmed:
        out["enrolled_at"] = iso(method.created_at)
    if method.last_auth_at is not None:
        out["last_auth_at"] = iso(method.last_auth_at)
    for key, value in method.properties.items():
        if key not in SECRETS:
            out.setdefault(key, value)
    return {k: v for k, v in out.items() if k in allowed}


async def _check_no_passkey(methods: SqlAuthenticationMethods, user_id: str) -> None:
    if await methods.list(user_id, types=["passkey"], limit=1):
        raise Forbidden(PASSKEY_LOCK, error_code="operation_not_supported")


def methods_repository(state: AppState, session: AsyncSession) -> SqlAuthenticationMethods:
    return SqlAuthenticationMethods(session, state.clock, state.sealer)


async def check_user(
    state: AppState, session: AsyncSession, caller: Caller, message: str = USER_NOT_FOUND
) -> None:
    if await state.repos(session).users.find(storable(caller.target_user_id)) is None:
        raise NotFound(message, error_code="inexistent_user")


async def _find(
    state: AppState, session: AsyncSession, caller: Caller, request: Request
) -> AuthenticationMethod:
    await check_user(state, session, caller)
    method_id = storable(request.path_params["authentication_method_id"])
    method = await methods_repository(state, session).find(caller.target_user_id or "", method_id)
    if method is None:
        raise NotFound(METHOD_NOT_FOUND, error_code="inexistent_authentication_method")
    return method


async def audit(
    state: AppState, session: AsyncSession, request: Request, caller: Caller, description: str
) -> None:
    """A `sapi` event: who changed whose factors; never a secret or a phone number."""
    await record_change(state, session, request, caller, description, user_id=caller.target_user_id)
