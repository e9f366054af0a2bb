"""Client credentials for private_key_jwt, /api/v2/clients/{client_id}/credentials (§10.2).

    GET    …/credentials                   200 [credential]          read:client_credentials
    POST   …/credentials                   201 credential            create:client_credentials
    GET    …/credentials/{credential_id}   200 / 404                 read:client_credentials
    PATCH  …/credentials/{credential_id}   201 credential (expires_at only, as Auth0)
    DELETE …/credentials/{credential_id}   204, also when it does not exist; it is disabled too

A credential is a public key (credential_type `public_key`; the mTLS types are refused) stored
in the client's config (core/client_credentials.py). Registering one does not enable it: the
client's `client_authentication_methods.private_key_jwt.credentials` lists those that
authenticate. The PEM is never sent back.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.client_credentials import (
    ALGORITHMS,
    KID,
    Credential,
    CredentialError,
    algorithm_for,
    credentials_of,
    load_public_key,
    spki_pem,
    thumbprint,
    with_credentials,
    with_enabled,
)
from keystead.core.clients import Client
from keystead.deps import get_state
from keystead.errors import BadRequest, Conflict, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_body
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import iso
from keystead.storage.models import ClientRow

NO_CLIENT: Final = "The client does not exist."
NO_CREDENTIAL: Final = "The credential does not exist."
SYSTEM: Final = "This is a system client: it cannot be changed or deleted through the API."
MAX_CREDENTIALS: Final = 10  # per client; rotation needs two, a handful covers every use
_ID_ALPHABET: Final = string.ascii_letters + string.digits
CREDENTIAL_TYPES: Final = ("public_key", "cert_subject_dn", "x509_cert")

CREATE_CREDENTIAL: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["credential_type"],
    "properties": {
        "credential_type": {"type": "string", "enum": list(CREDENTIAL_TYPES)},
        "name": {"type": "string", "maxLength": 128},
        "subject_dn": {"type": "string", "minLength": 1, "maxLength": 256},
        "pem": {"type": "string", "minLength": 1, "maxLength": 8192},
        "alg": {"type": "string", "enum": sorted(ALGORITHMS)},  # ES256: Keystead's addition
        "parse_expiry_from_cert": {"type": "boolean"},
        "expires_at": {"type": "string", "maxLength": 40},
        "kid": {"type": "string", "minLength": 10, "maxLength": 64, "pattern": KID.pattern},
    },
}  # fmt: skip
UPDATE_CREDENTIAL: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {"expires_at": {"type": ["string", "null"], "maxLength": 40}},
}


def credential_json(credential: Credential) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": credential.id,
        "name": credential.name,
        "kid": credential.kid,
        "alg": credential.alg,
        "credential_type": credential.credential_type,
        "created_at": iso(credential.created_at),
        "updated_at": iso(credential.updated_at),
    }
    if credential.expires_at is not None:
        out["expires_at"] = iso(credential.expires_at)
    return out


# --- handlers -----------------------------------------------------------------------------------


async def list_client_credentials(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        client = await _client(state.repos(session), request)
    return json_response([credential_json(c) for c in credentials_of(client)])


async def get_client_credential(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        client = await _client(state.repos(session), request)
    return json_response(credential_json(_one(client, request)))


async def create_client_credential(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_CREDENTIAL)
    state = get_state(request)
    now = state.clock.now()
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        client = await _client(repos, request)
        existing = credentials_of(client)
        credential = _new_credential(body, now)
        if len(existing) >= MAX_CREDENTIALS:
            raise BadRequest(f"A client may have at most {MAX_CREDENTIALS} credentials.")
        if any(c.kid == credential.kid for c in existing):
            raise Conflict(f"A credential with kid {credential.kid} already exists.")
        await repos.clients.update(with_credentials(client, [*existing, credential]))
        await _audit(request, caller, session, "Create a client credential", client, credential)
    return json_response(credential_json(credential), 201)


async def update_client_credential(request: Request, caller: Caller) -> Response:
    body = await read_body(request, UPDATE_CREDENTIAL)
    state = get_state(request)
    now = state.clock.now()
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        client = await _client(repos, request)
        old = _one(client, request)
        expires = _expiry(body["expires_at"], now) if body.get("expires_at") is not None else None
        new = Credential(**{**old.__dict__, "expires_at": expires, "updated_at": now})
        kept = [new if c.id == old.id else c for c in credentials_of(client)]
        await repos.clients.update(with_credentials(client, kept))
        await _audit(request, caller, session, "Update a client credential", client, new)
    return json_response(credential_json(new), 201)  # 201, as the OpenAPI document says


async def delete_client_credential(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        client = await _client(repos, request)
        gone = request.path_params["credential_id"]
        existing = credentials_of(client)
        if any(c.id == gone for c in existing):
            kept = [c for c in existing if c.id != gone]
            await repos.clients.update(with_credentials(client, kept))
            await _audit(request, caller, session, "Delete a client credential", client, None)
    return Response(status_code=204)


# --- for PATCH /clients/{id} (management/clients.py) -------------------------------------------


def apply_authentication_methods(client: Client, value: Any) -> Client:
    """`client_authentication_methods` of a client body: {"private_key_jwt": {"credentials":
    [{"id": …}]}} enables those of the client's credentials (its secret stops working);
    null turns private_key_jwt off again."""
    where = "client_authentication_methods"
    if value is None:
        return with_enabled(client, None)
    pkjwt = value.get("private_key_jwt") if isinstance(value, dict) else None
    listed = pkjwt.get("credentials") if isinstance(pkjwt, dict) else None
    if set(value) != {"private_key_jwt"} or not isinstance(listed, list):
        raise payload_error("Only private_key_jwt with a credentials list is supported", where)
    ids = [c.get("id") for c in listed if isinstance(c, dict)]
    if len(ids) != len(listed) or not all(isinstance(i, str) for i in ids):
        raise payload_error("Each credential must be an object with a string id", where)
    try:
        return with_enabled(client, [str(i) for i in ids])
    except CredentialError as exc:
        raise payload_error(str(exc), where) from None


# --- shared steps -------------------------------------------------------------------------------


def _new_credential(body: dict[str, Any], now: float) -> Credential:
    if body["credential_type"] != "public_key":
        raise BadRequest(
            f"credential_type {body['credential_type']} (mutual TLS) is not supported; "
            "use public_key.",
            error_code="operation_not_supported",
        )
    if "pem" not in body:
        raise payload_error("Missing required property: pem")
    try:
        key, cert = load_public_key(body["pem"])
        alg = algorithm_for(key, body.get("alg"))
    except CredentialError as exc:
        raise payload_error(str(exc), "pem") from None
    expires = _expiry(body["expires_at"], now) if "expires_at" in body else None
    if body.get("parse_expiry_from_cert") and cert is not None:
        expires = cert.not_valid_after_utc.timestamp()
        if expires <= now:
            raise payload_error("The certificate has expired", "pem")
    return Credential(
        id="cred_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(22)),
        kid=body.get("kid") or thumbprint(key),
        alg=alg,
        pem=spki_pem(key),
        name=body.get("name", ""),
        created_at=now,
        updated_at=now,
        expires_at=expires,
    )


def _expiry(raw: str, now: float) -> float:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise payload_error(f"Object didn't pass validation for format date-time: {raw}",
                            "expires_at") from None  # fmt: skip
    at = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    if at <= now:
        raise payload_error("expires_at must be in the future", "expires_at")
    return at


async def _client(repos: Any, request: Request) -> Client:
    try:
        client: Client = await repos.clients.get(request.path_params["client_id"])
    except RecordNotFound:
        raise NotFound(NO_CLIENT, error_code="inexistent_client") from None
    return client


def _one(client: Client, request: Request) -> Credential:
    wanted = request.path_params["credential_id"]
    found = next((c for c in credentials_of(client) if c.id == wanted), None)
    if found is None:
        raise NotFound(NO_CREDENTIAL, error_code="inexistent_credential")
    return found


async def _check_changeable(session: AsyncSession, request: Request) -> None:
    row = await session.get(ClientRow, request.path_params["client_id"])
    if row is None:
        raise NotFound(NO_CLIENT, error_code="inexistent_client")
    if row.is_system:
        raise BadRequest(SYSTEM, error_code="operation_not_supported")


async def _audit(
    request: Request,
    caller: Caller,
    session: AsyncSession,
    description: str,
    client: Client,
    credential: Credential | None,
) -> None:
    credential_id = credential.id if credential else request.path_params["credential_id"]
    await record_change(
        get_state(request), session, request, caller, description,
        target={"client_id": client.client_id, "credential_id": credential_id},
        fields=["expires_at"] if request.method == "PATCH" else [],
    )  # fmt: skip
