"""Management API resource servers, Auth0's "APIs" (contract §10.3; security case MG-15).

    GET    /resource-servers        list: offset, include_totals; `identifiers` filter (≤ 10)
    POST   /resource-servers        201; 409 on a taken identifier
    GET    /resource-servers/{id}   {id}: the internal id or the (URL-encoded) identifier
    PATCH  /resource-servers/{id}   200 (the OpenAPI says 201; the SDKs accept any 2xx)
    DELETE /resource-servers/{id}   204 (also when it did not exist: the OpenAPI lists no 404)

The system Management API cannot be changed or deleted; no API may take its identifier or one
of its aliases, whose tokens the Management API would accept. Client grants and permissions of
a deleted API go with it. Nothing caches APIs: the next token request sees the change.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any, Final, cast

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.apis import Permission, ResourceServer, SigningAlg, TokenDialect
from keystead.deps import get_state
from keystead.errors import AlreadyExists, BadRequest, Conflict, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.auth import accepted_audiences
from keystead.management.bodies import payload_error, read_body
from keystead.management.params import parse_page, query_error
from keystead.management.schemas import refuse_unsupported
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.resource_servers import (
    CREATE_RESOURCE_SERVER,
    UNSUPPORTED,
    UPDATE_RESOURCE_SERVER,
)
from keystead.storage.repositories import Repositories

NOT_FOUND: Final = "The resource server does not exist."
CONFLICT: Final = "A resource server with the same identifier already exists."
SYSTEM: Final = "The Management API is a system resource server: it cannot be changed or deleted."
MAX_IDENTIFIERS: Final = 10
_SETTINGS: Final = (
    "allow_offline_access",
    "skip_consent_for_verifiable_first_party_clients",
    "token_lifetime",
    "token_dialect",
    "enforce_policies",
)


def resource_server_json(api: ResourceServer) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": api.id,
        "name": api.name,
        "is_system": api.is_system,
        "identifier": api.identifier,
        "scopes": [{"value": p.value, "description": p.description} for p in api.scopes],
        "signing_alg": api.signing_alg,
        "allow_offline_access": api.allow_offline_access,
        "skip_consent_for_verifiable_first_party_clients": (
            api.skip_consent_for_verifiable_first_party_clients
        ),
        "token_lifetime": api.token_lifetime,
        "token_lifetime_for_web": api.token_lifetime_for_web,
        "enforce_policies": api.enforce_policies,
        "token_dialect": api.token_dialect,
    }
    if api.signing_secret is not None:  # HS256 APIs, as Auth0 shows them
        out["signing_secret"] = api.signing_secret
    return out


# --- reads --------------------------------------------------------------------------------------


async def list_resource_servers(request: Request, caller: Caller) -> Response:
    query = request.query_params
    identifiers = query.getlist("identifiers") or None
    if identifiers is not None and len(identifiers) > MAX_IDENTIFIERS:
        raise query_error(
            f"Array is too long ({len(identifiers)}), maximum {MAX_IDENTIFIERS}", "identifiers"
        )
    page = parse_page(query, min_per_page=1)
    state = get_state(request)
    async with state.transaction() as session:
        found = list(await state.repos(session).resource_servers.list(identifiers=identifiers))
    items = [resource_server_json(api) for api in found[page.start : page.start + page.limit]]
    return json_response(page.body("resource_servers", items, len(found), length=False))


async def get_resource_server(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        api = await _find(state.repos(session), request)
    return json_response(resource_server_json(api))


# --- writes -------------------------------------------------------------------------------------


async def create_resource_server(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_RESOURCE_SERVER)
    refuse_unsupported(body, UNSUPPORTED)
    state = get_state(request)
    identifier = body["identifier"]
    if identifier in accepted_audiences(state):
        raise Conflict(CONFLICT)  # the Management API's own, or an alias of it
    draft = ResourceServer(id="", identifier=identifier, name=body.get("name", identifier))
    api = build_resource_server(draft, body)
    async with state.transaction() as session:
        try:
            created = await state.repos(session).resource_servers.create(api)
        except AlreadyExists:
            raise Conflict(CONFLICT) from None
        await record_change(
            state, session, request, caller, "Create a resource server",
            target={"id": created.id, "identifier": created.identifier}, fields=body,
        )  # fmt: skip
    return json_response(resource_server_json(created), 201)


async def update_resource_server(request: Request, caller: Caller) -> Response:
    body = await read_body(request, UPDATE_RESOURCE_SERVER)
    refuse_unsupported(body, UNSUPPORTED)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        api = await _find(repos, request)
        if api.is_system:
            raise BadRequest(SYSTEM, error_code="operation_not_supported")
        updated = await repos.resource_servers.update(build_resource_server(api, body))
        await record_change(
            state, session, request, caller, "Update a resource server",
            target={"id": api.id, "identifier": api.identifier}, fields=body,
        )  # fmt: skip
    return json_response(resource_server_json(updated))  # 200: see the module docstring


async def delete_resource_server(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        try:
            api = await repos.resource_servers.get(request.path_params["id"])
        except RecordNotFound:
            return Response(status_code=204)
        if api.is_system:
            raise BadRequest(SYSTEM, error_code="operation_not_supported")
        await repos.resource_servers.delete(api.id)  # grants and permissions cascade
        await record_change(
            state, session, request, caller, "Delete a resource server",
            target={"id": api.id, "identifier": api.identifier},
        )  # fmt: skip
    return Response(status_code=204)


# --- shared steps -------------------------------------------------------------------------------


async def _find(repos: Repositories, request: Request) -> ResourceServer:
    try:
        return await repos.resource_servers.get(request.path_params["id"])
    except RecordNotFound:
        raise NotFound(NOT_FOUND, error_code="inexistent_resource_server") from None


def build_resource_server(base: ResourceServer, body: dict[str, Any]) -> ResourceServer:
    """`base` after `body`; 400 for what Keystead cannot honour."""
    alg = body.get("signing_alg", base.signing_alg)
    if alg not in ("RS256", "HS256"):
        raise BadRequest(
            f"signing_alg {alg} is not supported; use RS256 or HS256.",
            error_code="operation_not_supported",
        )
    secret = body.get("signing_secret", base.signing_secret)
    if alg == "HS256" and secret is None:
        secret = secrets.token_urlsafe(32)  # Auth0 makes one when none is given
    if alg != "HS256":
        if "signing_secret" in body:
            raise payload_error(
                "signing_secret is only used with signing_alg HS256", "signing_secret"
            )
        secret = None
    changes: dict[str, Any] = {k: body[k] for k in _SETTINGS if k in body}
    dialect = cast(TokenDialect, changes.get("token_dialect", base.token_dialect))
    if dialect.endswith("_authz") and not changes.get("enforce_policies", base.enforce_policies):
        raise payload_error(f"{dialect} needs enforce_policies: true", "token_dialect")
    scopes = base.scopes
    if "scopes" in body:
        values = [s["value"] for s in body["scopes"]]
        twice = sorted({v for v in values if values.count(v) > 1})
        if twice:
            raise payload_error(f"Duplicate scope value: {twice[0][:100]}", "scopes")
        scopes = tuple(Permission(s["value"], s.get("description", "")) for s in body["scopes"])
    return replace(
        base,
        name=body.get("name", base.name),
        scopes=scopes,
        signing_alg=cast(SigningAlg, alg),
        signing_secret=secret,
        **changes,
    )
