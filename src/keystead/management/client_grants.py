"""Management API client grants (contract §10.4; security case MG-15).

    GET    /client-grants        list: offset, include_totals, or checkpoint from/take (the
                                 SDKs' default: auth0-python v6 and node v7 follow `next`)
    POST   /client-grants        201; 404 unknown client or API; 409 the pair exists;
                                 400 a scope the API does not define
    GET    /client-grants/{id}   200 / 404
    PATCH  /client-grants/{id}   200
    DELETE /client-grants/{id}   204 (also when it did not exist: the OpenAPI lists no 404)

Nothing caches grants: the next client_credentials request sees the change, and a deleted
grant refuses new tokens at once (tokens already issued live until `exp`, as documented).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final, Literal, cast

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.apis import ClientGrant
from keystead.deps import get_state
from keystead.errors import AlreadyExists, BadRequest, Conflict, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_body
from keystead.management.params import parse_bool, parse_page, query_error
from keystead.management.schemas import read_patch, refuse_unsupported
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.client_grants import (
    CREATE_CLIENT_GRANT,
    UNSUPPORTED,
    UPDATE_CLIENT_GRANT,
)
from keystead.management.schemas.query import parse_checkpoint
from keystead.storage.repositories import Repositories

NOT_FOUND: Final = "The client grant does not exist."
CONFLICT: Final = "A client grant for this client and audience already exists."
NO_ORGANIZATIONS: Final = (
    "Keystead has no organizations: organization_usage may only be deny and "
    "allow_any_organization only false."
)


def client_grant_json(grant: ClientGrant) -> dict[str, Any]:
    return {
        "id": grant.id,
        "client_id": grant.client_id,
        "audience": grant.audience,
        "scope": list(grant.scope),
        "organization_usage": "deny",
        "allow_any_organization": False,
        "is_system": False,
        "subject_type": grant.subject_type,
        "allow_all_scopes": grant.allow_all_scopes,
    }


# --- reads --------------------------------------------------------------------------------------


async def list_client_grants(request: Request, caller: Caller) -> Response:
    query = request.query_params
    subject_type = query.get("subject_type") or None
    if subject_type not in (None, "client", "user"):
        raise query_error(f"No enum match for: {subject_type[:100]}", "subject_type")
    any_organization = parse_bool(query, "allow_any_organization", False)
    checkpoint = parse_checkpoint(query)
    page = None if checkpoint else parse_page(query, min_per_page=1)
    state = get_state(request)
    async with state.transaction() as session:
        found = list(
            await state.repos(session).client_grants.list(
                client_id=query.get("client_id") or None,
                audience=query.get("audience") or None,
                subject_type=subject_type,
            )
        )
    if any_organization or query.get("default_for"):
        found = []  # no organizations, no default grants in Keystead
    if checkpoint is not None:
        chosen, next_key = checkpoint.slice(found, key=lambda g: g.id)  # the repository's order
        items = [client_grant_json(g) for g in chosen]
        return json_response(checkpoint.body("client_grants", items, next_key))
    assert page is not None
    items = [client_grant_json(g) for g in found[page.start : page.start + page.limit]]
    return json_response(page.body("client_grants", items, len(found), length=False))


async def get_client_grant(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        grant = await _find(state.repos(session), request)
    return json_response(client_grant_json(grant))


# --- writes -------------------------------------------------------------------------------------


async def create_client_grant(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_CLIENT_GRANT)
    refuse_unsupported(body, UNSUPPORTED)
    _check_no_organizations(body)
    grant = ClientGrant(
        id="",
        client_id=body["client_id"],
        audience=body["audience"],
        scope=tuple(dict.fromkeys(body.get("scope", ()))),
        allow_all_scopes=body.get("allow_all_scopes", False),
        subject_type=cast(Literal["client", "user"], body.get("subject_type", "client")),
    )
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        if await repos.clients.find(grant.client_id) is None:
            raise NotFound("The client does not exist.", error_code="inexistent_client")
        await _check_scopes(repos, grant)
        try:
            created = await repos.client_grants.create(grant)
        except AlreadyExists:
            raise Conflict(CONFLICT) from None
        await record_change(
            state, session, request, caller, "Create a client grant",
            target={"id": created.id, "client_id": created.client_id,
                    "audience": created.audience},
            fields=body, changes={"scope": list(created.scope)},
        )  # fmt: skip
    return json_response(client_grant_json(created), 201)


async def update_client_grant(request: Request, caller: Caller) -> Response:
    body = await read_patch(request, UPDATE_CLIENT_GRANT)
    refuse_unsupported(body, {"authorization_details_types"})
    _check_no_organizations(body)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        grant = await _find(repos, request)
        changed = grant
        if "scope" in body:
            changed = replace(changed, scope=tuple(dict.fromkeys(body["scope"] or ())))
        if "allow_all_scopes" in body:
            changed = replace(changed, allow_all_scopes=bool(body["allow_all_scopes"]))
        await _check_scopes(repos, changed)
        updated = await repos.client_grants.update(changed)
        await record_change(
            state, session, request, caller, "Update a client grant",
            target={"id": grant.id, "client_id": grant.client_id, "audience": grant.audience},
            fields=body, changes={"scope": list(updated.scope)},
        )  # fmt: skip
    return json_response(client_grant_json(updated))


async def delete_client_grant(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        try:
            grant = await repos.client_grants.get(request.path_params["id"])
        except RecordNotFound:
            return Response(status_code=204)
        await repos.client_grants.delete(grant.id)
        await record_change(
            state, session, request, caller, "Delete a client grant",
            target={"id": grant.id, "client_id": grant.client_id, "audience": grant.audience},
        )  # fmt: skip
    return Response(status_code=204)


# --- shared steps -------------------------------------------------------------------------------


async def _find(repos: Repositories, request: Request) -> ClientGrant:
    try:
        return await repos.client_grants.get(request.path_params["id"])
    except RecordNotFound:
        raise NotFound(NOT_FOUND, error_code="inexistent_client_grant") from None


async def _check_scopes(repos: Repositories, grant: ClientGrant) -> None:
    """The audience names an API (404 otherwise), and every scope is one it defines (400)."""
    api = await repos.resource_servers.by_identifier(grant.audience)
    if api is None:
        raise NotFound(
            "The resource server does not exist.", error_code="inexistent_resource_server"
        )
    undefined = [s for s in grant.scope if s not in api.scope_values]
    if undefined:
        raise payload_error(
            f"The scope must be a subset of the resource server's scopes; not defined: "
            f"{', '.join(s[:100] for s in undefined[:5])}",
            "scope",
        )


def _check_no_organizations(body: dict[str, Any]) -> None:
    if body.get("organization_usage") not in (None, "deny") or body.get("allow_any_organization"):
        raise BadRequest(NO_ORGANIZATIONS, error_code="operation_not_supported")
