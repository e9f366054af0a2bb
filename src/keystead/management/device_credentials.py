"""Device credentials (contract §10.1): GET, POST /device-credentials, DELETE …/{id}.

GET     read:device_credentials only (admin): public keys and live refresh-token families
POST    create:current_user_device_credentials only: a public key of the caller's own,
        for the application the token was issued to (owner = sub, client_id = azp)
DELETE  admin, or a current-user token for the caller's own credentials (check_owner);
        deleting a refresh-token credential revokes that refresh token's family
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import AppState, get_state
from keystead.errors import AlreadyExists, Conflict, Forbidden, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_body
from keystead.management.identities import refuse_nul, storable
from keystead.management.params import parse_page, parse_projection, query_error
from keystead.management.schemas.audit import record_change
from keystead.storage.repositories.device_credentials import (
    DUPLICATE,
    NOT_FOUND,
    REFRESH_TOKEN,
    TYPES,
    DeviceCredential,
    SqlDeviceCredentials,
)

OTHER_USER: Final = "Cannot create device credentials for that user."
OTHER_CLIENT: Final = "Cannot create device credentials for that client."
_BASE64: Final = re.compile(r"^[A-Za-z0-9+/_-]+={0,2}$")

# CreatePublicKeyDeviceCredentialRequestContent: open to other keys, as Auth0's is; `user_id`
# among them is refused below rather than ignored (MG-12).
CREATE: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": True,
    "required": ["device_name", "type", "value", "device_id"],
    "properties": {
        "device_name": {"type": "string", "minLength": 1, "maxLength": 1024},
        "type": {"type": "string", "enum": ["public_key"]},
        "value": {"type": "string", "minLength": 1, "maxLength": 16_384},
        "device_id": {"type": "string", "maxLength": 36, "pattern": "^[-A-Fa-f0-9]+$"},
        "client_id": {"type": "string", "minLength": 1, "maxLength": 64},
        "user_id": {"type": "string"},
    },
}


async def list_device_credentials(request: Request, caller: Caller) -> Response:
    query = request.query_params
    kind = query.get("type") or None
    if kind is not None and kind not in TYPES:
        raise query_error(f"No enum match for: {kind}", "type")
    if kind is None and ("page" in query or "per_page" in query):
        kind = REFRESH_TOKEN  # §10.1: the type Auth0 assumes when paging is requested
    for name in ("user_id", "client_id"):
        if "\x00" in query.get(name, ""):  # PostgreSQL cannot compare such a string: refuse
            raise query_error("String must not contain NUL characters", name)
    page = parse_page(query, min_per_page=1)
    projection = parse_projection(query)
    state = get_state(request)
    async with state.transaction() as session:
        found, total = await _store(state, session).list(
            user_id=query.get("user_id") or None,
            client_id=query.get("client_id") or None,
            types=TYPES if kind is None else {kind},
            offset=page.start,
            limit=page.limit,
        )
    items = [credential_json(c) for c in found]
    if projection is not None:
        items = [projection.apply(item) for item in items]
    return json_response(page.body("device_credentials", items, total, length=False))


async def create_device_credential(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE)
    refuse_nul(body)
    if not _is_base64(body["value"]):
        raise payload_error("value must be base64 encoded", "value")
    if body.get("user_id", caller.sub) != caller.sub:
        raise Forbidden(OTHER_USER)
    client_id = body.get("client_id", caller.client_id)
    if caller.client_id is None or client_id != caller.client_id:
        raise Forbidden(OTHER_CLIENT)  # a public key for the application holding the token only
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        if await repos.users.find(caller.sub) is None:
            raise Forbidden(OTHER_USER)  # e.g. a client-credentials token given this scope
        if await repos.clients.find(client_id) is None:
            raise Forbidden(OTHER_CLIENT)
        try:
            created = await _store(state, session).create_public_key(
                user_id=caller.sub,
                client_id=client_id,
                device_name=body["device_name"],
                device_id=body["device_id"],
                value=body["value"],
            )
        except AlreadyExists:
            raise Conflict(DUPLICATE) from None
        await _audit(state, session, request, caller, "Create device credentials", created)
    return json_response({"id": created.id}, 201)


async def delete_device_credential(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        store = _store(state, session)
        found = await store.find(storable(request.path_params["id"]))
        if found is None:
            raise NotFound(NOT_FOUND, error_code="inexistent_device_credential")
        caller.decision.check_owner(found.user_id)  # §8.3: current-user tokens, own only
        await store.delete(found.id)
        await _audit(state, session, request, caller, "Delete device credentials", found)
    return Response(status_code=204)


def credential_json(credential: DeviceCredential) -> dict[str, Any]:
    out: dict[str, Any] = {"id": credential.id}
    if credential.device_name is not None:
        out["device_name"] = credential.device_name
    if credential.device_id is not None:
        out["device_id"] = credential.device_id
    out["type"] = credential.type
    out["user_id"] = credential.user_id
    out["client_id"] = credential.client_id
    return out


def _is_base64(value: str) -> bool:
    if not _BASE64.match(value):
        return False
    text = value.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _store(state: AppState, session: AsyncSession) -> SqlDeviceCredentials:
    return SqlDeviceCredentials(session, state.clock)


async def _audit(
    state: AppState,
    session: AsyncSession,
    request: Request,
    caller: Caller,
    description: str,
    credential: DeviceCredential,
) -> None:
    """A `sapi` event: which credential, whose, by whom; never the key itself."""
    await record_change(
        state, session, request, caller, description,
        target={"id": credential.id, "type": credential.type}, user_id=credential.user_id,
    )  # fmt: skip
