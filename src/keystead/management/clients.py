"""Management API clients (contract §10.2, §8.3 item 4; security case AZ-05).

    GET    /clients                    list: offset, include_totals, or checkpoint from/take
    POST   /clients                    201, the new secret shown once
    GET    /clients/{id}               secrets only with read:client_keys / read:client_credentials
    PATCH  /clients/{id}               200; client_secret needs update:client_keys
    DELETE /clients/{id}               204 (also when it did not exist: the OpenAPI lists no 404)
    POST   /clients/{id}/rotate-secret 200, the new secret shown once

Every URL a browser may be sent to is checked on write (core/redirects); a bad one answers 400
naming the field and the client stays as it was. Nothing caches clients: the next /authorize or
/oauth/token reads the new version. Every write logs `sapi`, never a secret.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core import policy_fields
from keystead.core.client_credentials import METHODS_KEY
from keystead.core.clients import Client
from keystead.deps import get_state
from keystead.errors import BadRequest, Forbidden, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import read_body
from keystead.management.client_credentials import apply_authentication_methods
from keystead.management.params import Projection, parse_bool, parse_page, parse_projection
from keystead.management.schemas import read_patch, refuse_unsupported
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.client_body import build_client
from keystead.management.schemas.clients import (
    CREATE_CLIENT_BODY,
    CREATE_ONLY_UNSUPPORTED,
    STORED,
    UNSUPPORTED,
    UPDATE_CLIENT_BODY,
)
from keystead.management.schemas.query import parse_checkpoint
from keystead.management.tenant_settings import check_self_service
from keystead.storage.models import ClientRow
from keystead.storage.repositories import Repositories

NOT_FOUND: Final = "The client does not exist."
SYSTEM: Final = "This is a system client: it cannot be changed or deleted through the API."
PUBLIC_HAS_NO_SECRET: Final = (
    "A public client (token_endpoint_auth_method none) has no secret to rotate or set."
)
# §8.3 item 4: fields that need their own scope on PATCH; every other field needs update:clients.
FIELD_SCOPES: Final = {
    "client_secret": "update:client_keys",
    "encryption_key": "update:client_keys",
    "client_authentication_methods": "update:client_credentials",
    "token_vault_privileged_access": "update:client_token_vault_privileged_access",
}


# --- JSON ---------------------------------------------------------------------------------------


def client_json(client: Client) -> dict[str, Any]:
    """The client as Auth0 sends it; `client_secret` only when the Client carries it."""
    jwt = {"alg": "RS256", "secret_encoded": False, **client.extra.get("jwt_configuration", {})}
    jwt["lifetime_in_seconds"] = client.jwt_lifetime_in_seconds
    out: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "description": client.description,
        "global": False,
        "app_type": client.app_type,
        "is_first_party": client.is_first_party,
        "oidc_conformant": True,  # Keystead only speaks OIDC-conformant flows
        "callbacks": list(client.callbacks),
        "allowed_origins": list(client.allowed_origins),
        "web_origins": list(client.web_origins),
        "allowed_logout_urls": list(client.allowed_logout_urls),
        "grant_types": list(client.grant_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "jwt_configuration": jwt,
        "refresh_token": asdict(client.refresh_token),
        "client_metadata": dict(client.client_metadata),
    }
    for name in sorted(STORED | {"self_service"}):  # self_service: Keystead's (issue 6)
        if name in client.extra:
            out[name] = client.extra[name]
    if METHODS_KEY in client.extra:  # private_key_jwt: no secret method to show
        out[METHODS_KEY] = client.extra[METHODS_KEY]
        del out["token_endpoint_auth_method"]
    if client.client_secret is not None:
        out["client_secret"] = client.client_secret
    return out


def _show(client: Client, caller: Caller, projection: Projection | None = None) -> dict[str, Any]:
    doc = policy_fields.visible_client_fields(caller.scopes).apply(client_json(client))
    return projection.apply(doc) if projection else doc


def _reveals(caller: Caller) -> bool:
    return bool(caller.scopes & policy_fields.CLIENT_KEY_SCOPES)


# --- reads --------------------------------------------------------------------------------------


async def list_clients(request: Request, caller: Caller) -> Response:
    query = request.query_params
    projection = parse_projection(query)
    if query.get("q"):
        raise BadRequest(
            "Client search (q) is not supported; filter with app_type and is_first_party.",
            error_code="operation_not_supported",
        )
    first_party = parse_bool(query, "is_first_party", True) if query.get("is_first_party") else None
    only_global = parse_bool(query, "is_global", False)
    app_types = [t.strip() for t in query["app_type"].split(",")] if query.get("app_type") else None
    checkpoint = parse_checkpoint(query)
    page = None if checkpoint else parse_page(query, min_per_page=0)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        found = list(await repos.clients.list(app_types=app_types, is_first_party=first_party))
        if only_global or query.get("external_client_id"):
            found = []  # Keystead has no global client and no metadata-document clients
        next_key = None
        if checkpoint is not None:
            ordered = sorted(found, key=lambda c: c.client_id)
            chosen, next_key = checkpoint.slice(ordered, key=lambda c: c.client_id)
        else:
            assert page is not None
            chosen = found[page.start : page.start + page.limit]
        if _reveals(caller):
            chosen = [await repos.clients.get(c.client_id, reveal_secret=True) for c in chosen]
    items = [_show(c, caller, projection) for c in chosen]
    if checkpoint is not None:
        return json_response(checkpoint.body("clients", items, next_key))
    assert page is not None
    return json_response(page.body("clients", items, len(found), length=False))


async def get_client(request: Request, caller: Caller) -> Response:
    projection = parse_projection(request.query_params)
    state = get_state(request)
    async with state.transaction() as session:
        client = await _find(state.repos(session), request, reveal=_reveals(caller))
    return json_response(_show(client, caller, projection))


# --- writes -------------------------------------------------------------------------------------


async def create_client(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_CLIENT_BODY)
    refuse_unsupported(body, UNSUPPORTED | CREATE_ONLY_UNSUPPORTED)
    client = _with_self_service(build_client(None, body), body)
    state = get_state(request)
    async with state.transaction() as session:
        created = await state.repos(session).clients.create(client)
        await record_change(
            state, session, request, caller, "Create a client",
            target={"client_id": created.client_id}, fields=body,
        )  # fmt: skip
    return json_response(client_json(created), 201)  # the secret, shown this once


async def update_client(request: Request, caller: Caller) -> Response:
    body = await read_patch(request, UPDATE_CLIENT_BODY)
    _check_field_scopes(body, caller)
    refuse_unsupported(body, UNSUPPORTED - {METHODS_KEY})  # PATCH enables private_key_jwt
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        base = await _find(repos, request, reveal=True)
        changed = _with_self_service(build_client(base, body), body)
        if METHODS_KEY in body:
            changed = apply_authentication_methods(changed, body[METHODS_KEY])
        secret = body.get("client_secret")
        if secret is not None and changed.is_public:
            raise BadRequest(PUBLIC_HAS_NO_SECRET)
        updated = await repos.clients.update(changed)
        # A public client turned confidential needs a secret: rotate_secret(None) makes one.
        if secret is not None or (not changed.is_public and base.client_secret is None):
            updated = await repos.clients.rotate_secret(base.client_id, secret)
        await record_change(
            state, session, request, caller, "Update a client",
            target={"client_id": base.client_id}, fields=body,
        )  # fmt: skip
    shown = _show(updated, caller)
    if updated.client_secret is not None:
        shown["client_secret"] = updated.client_secret  # set or made by this request
    return json_response(shown)


async def delete_client(request: Request, caller: Caller) -> Response:
    client_id = request.path_params["id"]
    state = get_state(request)
    async with state.transaction() as session:
        row = await session.get(ClientRow, client_id)
        if row is None:
            return Response(status_code=204)
        if row.is_system:
            raise BadRequest(SYSTEM, error_code="operation_not_supported")
        await state.repos(session).clients.delete(client_id)  # its grants go with it (cascade)
        await record_change(
            state, session, request, caller, "Delete a client", target={"client_id": client_id}
        )
    return Response(status_code=204)


async def rotate_client_secret(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        client = await _find(repos, request)
        if client.is_public:
            raise BadRequest(PUBLIC_HAS_NO_SECRET, error_code="operation_not_supported")
        rotated = await repos.clients.rotate_secret(client.client_id)
        await record_change(
            state, session, request, caller, "Rotate a client secret",
            target={"client_id": client.client_id}, fields=["client_secret"],
        )  # fmt: skip
    return json_response(client_json(rotated))  # the new secret, shown this once


# --- shared steps -------------------------------------------------------------------------------


async def _find(repos: Repositories, request: Request, *, reveal: bool = False) -> Client:
    try:
        return await repos.clients.get(request.path_params["id"], reveal_secret=reveal)
    except RecordNotFound:
        raise NotFound(NOT_FOUND, error_code="inexistent_client") from None


async def _check_changeable(session: AsyncSession, request: Request) -> None:
    row = await session.get(ClientRow, request.path_params["id"])
    if row is None:
        raise NotFound(NOT_FOUND, error_code="inexistent_client")
    if row.is_system:
        raise BadRequest(SYSTEM, error_code="operation_not_supported")


def _with_self_service(client: Client, body: dict[str, Any]) -> Client:
    """Keystead's per-client `self_service` override (issue 6): checked as the tenant file's is;
    null removes it, and the tenant's policy applies again."""
    if "self_service" not in body:
        return client
    check_self_service(body["self_service"])
    extra = {k: v for k, v in client.extra.items() if k != "self_service"}
    if body["self_service"] is not None:
        extra["self_service"] = body["self_service"]
    return replace(client, extra=extra)


def _check_field_scopes(body: dict[str, Any], caller: Caller) -> None:
    matched = caller.decision.matched
    refused = sorted(
        name for name in body if FIELD_SCOPES.get(name, "update:clients") not in matched
    )
    if refused:
        raise Forbidden(
            "You cannot update the following fields: " + ", ".join(refused),
            error_code="insufficient_scope",
        )
