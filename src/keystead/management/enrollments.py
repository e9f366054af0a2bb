"""A user's MFA factors (contract §9.2): Guardian enrollments, legacy multifactor providers and
the authentication-methods resource, all over storage/repositories/authentication_methods.py.

    GET    /users/{id}/enrollments                              Guardian's view of the factors
    DELETE /users/{id}/multifactor/{provider}                   google-authenticator → totp
    GET|POST|PUT|DELETE /users/{id}/authentication-methods      list, add, replace all, remove all
    GET|PATCH|DELETE    /users/{id}/authentication-methods/{authentication_method_id}

Secrets (totp_secret) go in sealed and never come out, not even in the 201 that created them.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import AppState, get_state
from keystead.errors import BadRequest, Conflict, Forbidden, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_body, read_json, validate
from keystead.management.identities import refuse_nul, storable
from keystead.management.params import parse_page
from keystead.management.serialize import iso
from keystead.storage.repositories.authentication_methods import (
    NOT_FOUND as METHOD_NOT_FOUND,
)
from keystead.storage.repositories.authentication_methods import (
    AuthenticationMethod,
    SqlAuthenticationMethods,
)

USER_NOT_FOUND: Final = "The user does not exist."
USER_NOT_FOUND_GUARDIAN: Final = "User not found."  # the OpenAPI's 404 for the Guardian paths
EXISTS: Final = "Authentication method already exists."
LIMIT: Final = "You reached the limit of entities of this type for this user."
PASSKEY_LOCK: Final = "Operation not permitted when the user has registered at least 1 passkey"
MAX_PER_TYPE: Final = 20
MAX_REPLACE: Final = 50
MFA_PROVIDERS: Final = frozenset({"duo", "google-authenticator"})

# Guardian enrollment (type, auth_method) of each MFA method type.
ENROLLMENT_KINDS: Final = {
    "totp": ("authenticator", "authenticator"),
    "phone": ("sms", "sms"),
    "push": ("pn", "guardian"),
    "guardian": ("pn", "guardian"),
    "webauthn-roaming": ("webauthn-roaming", "webauthn-roaming"),
    "webauthn-platform": ("webauthn-platform", "webauthn-platform"),
}

# --- bodies -------------------------------------------------------------------------------------

_NAME: Final = {"type": "string", "minLength": 1, "maxLength": 20}  # GET answers ≤ 20 chars
_PREFERRED: Final = {"type": "string", "enum": ["voice", "sms"]}
_PHONE: Final = {"type": "string", "minLength": 2, "maxLength": 30}
_EMAIL: Final = {"type": "string", "minLength": 1, "maxLength": 320, "format": "email"}
_TEXT: Final = {"type": "string", "minLength": 1, "maxLength": 2048}
# Which body fields each type takes (the first ones required), public ones and secrets.
FIELDS: Final[dict[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "phone": (("phone_number",), ("preferred_authentication_method",)),
    "email": (("email",), ()),
    "totp": (("totp_secret",), ()),
    "webauthn-roaming": (("key_id", "public_key"), ("relying_party_identifier",)),
    "passkey": (
        ("key_id", "public_key"),
        ("aaguid", "relying_party_identifier", "credential_device_type", "credential_backed_up",
         "identity_user_id", "user_agent", "user_handle", "transports"),
    ),
}  # fmt: skip
SECRETS: Final = frozenset({"totp_secret"})

CREATE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": sorted(FIELDS)},
        "name": _NAME,
        "totp_secret": _TEXT,
        "phone_number": _PHONE,
        "email": _EMAIL,
        "preferred_authentication_method": _PREFERRED,
        "key_id": _TEXT,
        "public_key": {"type": "string", "minLength": 1, "maxLength": 8192},
        "aaguid": {"type": "string", "format": "uuid"},
        "relying_party_identifier": {"type": "string", "minLength": 1, "maxLength": 253},
        "credential_device_type": {"type": "string", "enum": ["single_device", "multi_device"]},
        "credential_backed_up": {"type": "boolean"},
        "identity_user_id": _TEXT,
        "user_agent": _TEXT,
        "user_handle": _TEXT,
        "transports": {
            "type": "array",
            "maxItems": 10,
            "items": {"type": "string", "maxLength": 32},
        },
    },
}
REPLACE_ITEM: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["type"],
    "properties": {
        "type": {"type": "string", "enum": ["phone", "email", "totp"]},
        "preferred_authentication_method": _PREFERRED,
        "name": _NAME,
        "phone_number": _PHONE,
        "email": _EMAIL,
        "totp_secret": _TEXT,
    },
}
UPDATE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": _NAME, "preferred_authentication_method": _PREFERRED},
}

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


# --- enrollments and multifactor ----------------------------------------------------------------


async def get_enrollments(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        methods = _methods(state, session)
        await _check_user(state, session, caller, USER_NOT_FOUND_GUARDIAN)
        found = await methods.list(caller.target_user_id or "", types=ENROLLMENT_KINDS)
    return json_response([enrollment_json(m) for m in found])


def enrollment_json(method: AuthenticationMethod) -> dict[str, Any]:
    kind, auth_method = ENROLLMENT_KINDS[method.type]
    out: dict[str, Any] = {
        "id": method.id.partition("|")[2] or method.id,  # Guardian's `dev_…` form
        "status": "confirmed" if method.confirmed else "pending",
        "type": kind,
        "auth_method": auth_method,
    }
    if method.name:
        out["name"] = method.name
    phone = method.properties.get("phone_number")
    if isinstance(phone, str):
        out["phone_number"] = phone
    if method.confirmed:
        out["enrolled_at"] = iso(method.created_at)
    if method.last_auth_at is not None:
        out["last_auth"] = iso(method.last_auth_at)
    return out


async def delete_multifactor_provider(request: Request, caller: Caller) -> Response:
    provider = request.path_params["provider"]
    if provider not in MFA_PROVIDERS:
        raise BadRequest(
            f"Path validation error: 'No enum match for: {provider}' on property provider.",
            error_code="invalid_uri",
        )
    state = get_state(request)
    async with state.transaction() as session:
        await _check_user(state, session, caller, USER_NOT_FOUND_GUARDIAN)
        if provider == "google-authenticator":  # Duo enrollments live at Duo: nothing here
            await _methods(state, session).delete_all(caller.target_user_id or "", types=["totp"])
            await _audit(state, session, request, caller, "Delete a multifactor provider")
    return Response(status_code=204)


# --- authentication methods ---------------------------------------------------------------------


async def list_authentication_methods(request: Request, caller: Caller) -> Response:
    page = parse_page(request.query_params, min_per_page=0, window=False)
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        methods = _methods(state, session)
        await _check_user(state, session, caller)
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
        await _check_user(state, session, caller)
        methods = _methods(state, session)
        existing = await methods.list(user_id)
        created = await _add(methods, user_id, body, existing)
        await _audit(state, session, request, caller, "Create an authentication method")
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
        await _check_user(state, session, caller)
        methods = _methods(state, session)
        await _check_no_passkey(methods, user_id)
        await methods.delete_all(user_id)
        created: list[AuthenticationMethod] = []
        for item in items:
            created.append(await _add(methods, user_id, item, created))
        await _audit(state, session, request, caller, "Replace authentication methods")
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
        updated = await _methods(state, session).update(
            method.user_id, method.id, name=body.get("name"), properties=props
        )
        await _audit(state, session, request, caller, "Update an authentication method")
    return json_response(method_json(updated, _UPDATED))


async def delete_authentication_method(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        method = await _find(state, session, caller, request)
        await _methods(state, session).delete(method.user_id, method.id)
        await _audit(state, session, request, caller, "Delete an authentication method")
    return Response(status_code=204)


async def delete_authentication_methods(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    user_id = caller.target_user_id or ""
    async with state.transaction() as session:
        await _check_user(state, session, caller)
        methods = _methods(state, session)
        await _check_no_passkey(methods, user_id)
        await methods.delete_all(user_id)
        await _audit(state, session, request, caller, "Delete all authentication methods")
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


async def _add(
    methods: SqlAuthenticationMethods,
    user_id: str,
    body: dict[str, Any],
    existing: Sequence[AuthenticationMethod],
) -> AuthenticationMethod:
    kind = body["type"]
    required, optional = FIELDS[kind]
    for name in required:
        if name not in body:
            raise payload_error(f"Missing required property: {name}")
    allowed = {"type", "name", *required, *optional}
    extra = sorted(set(body) - allowed)
    if extra:
        raise BadRequest(f"{extra[0]} does not apply to {kind} authentication methods.")
    if "totp_secret" in body:
        _check_base32(body["totp_secret"])
    same_type = [m for m in existing if m.type == kind]
    if kind == "totp" and same_type:
        raise Conflict(EXISTS)
    identifying = required[0]
    if any(m.properties.get(identifying) == body.get(identifying) for m in same_type):
        raise Conflict(EXISTS)
    if len(same_type) >= MAX_PER_TYPE:
        raise Forbidden(LIMIT, error_code="too_many_entities")
    props = {k: v for k, v in body.items() if k not in SECRETS and k not in ("type", "name")}
    if kind == "phone":
        props.setdefault("preferred_authentication_method", "sms")
    secrets = {k: body[k] for k in SECRETS if k in body}
    return await methods.create(
        user_id, kind, name=body.get("name"), properties=props, secrets=secrets
    )


def _check_base32(secret: str) -> None:
    text = secret.strip().replace(" ", "").upper()
    try:
        decoded = base64.b32decode(text + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) < 10 or len(text) > 128:  # RFC 4226 §4: at least 128 bits, 160 advised
        raise payload_error("totp_secret must be a base32 encoded secret of 16 to 128 characters")


async def _check_no_passkey(methods: SqlAuthenticationMethods, user_id: str) -> None:
    if await methods.list(user_id, types=["passkey"], limit=1):
        raise Forbidden(PASSKEY_LOCK, error_code="operation_not_supported")


def _methods(state: AppState, session: AsyncSession) -> SqlAuthenticationMethods:
    return SqlAuthenticationMethods(session, state.clock, state.sealer)


async def _check_user(
    state: AppState, session: AsyncSession, caller: Caller, message: str = USER_NOT_FOUND
) -> None:
    if await state.repos(session).users.find(storable(caller.target_user_id)) is None:
        raise NotFound(message, error_code="inexistent_user")


async def _find(
    state: AppState, session: AsyncSession, caller: Caller, request: Request
) -> AuthenticationMethod:
    await _check_user(state, session, caller)
    method_id = storable(request.path_params["authentication_method_id"])
    method = await _methods(state, session).find(caller.target_user_id or "", method_id)
    if method is None:
        raise NotFound(METHOD_NOT_FOUND, error_code="inexistent_authentication_method")
    return method


async def _audit(
    state: AppState, session: AsyncSession, request: Request, caller: Caller, description: str
) -> None:
    """A `sapi` event: who changed whose factors; never a secret or a phone number."""
    await state.logs(session).record(
        "sapi",
        description=description,
        user_id=caller.target_user_id,
        client_id=caller.client_id,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        details={
            "request": {"method": request.method, "path": request.url.path},
            "actor": {"sub": caller.sub, "scopes": sorted(caller.decision.matched)},
        },
    )
