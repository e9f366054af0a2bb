"""Management API permissions of a role or a user (contract §10.5, §9.2; security case MG-16).

    /roles/{id}/permissions      GET · POST 201 · DELETE 200 (JSON body)
    /users/{id}/permissions      GET (direct and through roles, with `sources`) · POST 201 ·
                                 DELETE 204

A user's permissions are their own plus their roles' (core/ports.Roles.effective_permissions);
the next token request reads them, nothing is cached. An added permission names an API and one of
its scopes. Writes log `sapi`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.ports import AssignedPermission
from keystead.core.tenant import RolePermission
from keystead.deps import get_state
from keystead.errors import BadRequest, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import read_body
from keystead.management.params import parse_page
from keystead.management.roles import role_in_path, user_in_path
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.roles import PERMISSIONS
from keystead.storage.repositories import Repositories


def permission_json(p: AssignedPermission) -> dict[str, Any]:
    return {
        "permission_name": p.permission_name,
        "description": p.description,
        "resource_server_name": p.resource_server_name,
        "resource_server_identifier": p.resource_server_identifier,
    }


# --- a role's permissions -----------------------------------------------------------------------


async def list_role_permissions(request: Request, caller: Caller) -> Response:
    page = parse_page(request.query_params, min_per_page=1)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        found = list(await repos.roles.permissions((await role_in_path(repos, request)).id))
    items = [permission_json(p) for p in found[page.start : page.start + page.limit]]
    return json_response(page.body("permissions", items, len(found), length=False))


async def add_role_permissions(request: Request, caller: Caller) -> Response:
    return await _change_role_permissions(request, caller, add=True)


async def delete_role_permissions(request: Request, caller: Caller) -> Response:
    return await _change_role_permissions(request, caller, add=False)


async def _change_role_permissions(request: Request, caller: Caller, *, add: bool) -> Response:
    body = await read_body(request, PERMISSIONS)
    refs = _refs(body)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        role = await role_in_path(repos, request)
        if add:
            await _check_defined(repos, refs)
            await repos.roles.add_permissions(role.id, refs)
        else:
            await repos.roles.remove_permissions(role.id, refs)
        await record_change(
            state, session, request, caller,
            "Add permissions to a role" if add else "Remove permissions from a role",
            target={"role_id": role.id}, changes={"permissions": _names(refs)},
        )  # fmt: skip
    return Response(status_code=201 if add else 200)


# --- a user's permissions -----------------------------------------------------------------------


async def list_user_permissions(request: Request, caller: Caller) -> Response:
    """Direct permissions and those of the user's roles, each with where it comes from."""
    page = parse_page(request.query_params, min_per_page=1)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        user_id = await user_in_path(repos, caller)
        merged: dict[tuple[str, str], dict[str, Any]] = {}

        def add(p: AssignedPermission, source: dict[str, str]) -> None:
            key = (p.resource_server_identifier, p.permission_name)
            entry = merged.setdefault(key, {**permission_json(p), "sources": []})
            entry["sources"].append(source)

        for p in await repos.roles.user_permissions(user_id):
            add(p, {"source_id": "", "source_name": "", "source_type": "DIRECT"})
        for role in await repos.roles.roles_of(user_id):
            source = {"source_id": role.id, "source_name": role.name, "source_type": "ROLE"}
            for p in await repos.roles.permissions(role.id):
                add(p, source)
    found = [merged[key] for key in sorted(merged)]
    items = found[page.start : page.start + page.limit]
    return json_response(page.body("permissions", items, len(found), length=False))


async def create_user_permissions(request: Request, caller: Caller) -> Response:
    return await _change_user_permissions(request, caller, add=True)


async def delete_user_permissions(request: Request, caller: Caller) -> Response:
    return await _change_user_permissions(request, caller, add=False)


async def _change_user_permissions(request: Request, caller: Caller, *, add: bool) -> Response:
    body = await read_body(request, PERMISSIONS)
    refs = _refs(body)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        user_id = await user_in_path(repos, caller)
        if add:
            await _check_defined(repos, refs)
            await repos.roles.add_user_permissions(user_id, refs)
        else:
            await repos.roles.remove_user_permissions(user_id, refs)
        await record_change(
            state, session, request, caller,
            "Assign permissions to a user" if add else "Remove permissions from a user",
            target={"user_id": user_id}, changes={"permissions": _names(refs)}, user_id=user_id,
        )  # fmt: skip
    return Response(status_code=201 if add else 204)


# --- shared steps -------------------------------------------------------------------------------


def _refs(body: dict[str, Any]) -> list[RolePermission]:
    return [
        RolePermission(p["resource_server_identifier"], p["permission_name"])
        for p in body["permissions"]
    ]


def _names(refs: list[RolePermission]) -> list[str]:
    return [f"{r.resource_server_identifier} {r.permission_name}" for r in refs]


async def _check_defined(repos: Repositories, refs: list[RolePermission]) -> None:
    """Each permission names an API (404) and a scope that API defines (400)."""
    for ref in refs:
        api = await repos.resource_servers.by_identifier(ref.resource_server_identifier)
        if api is None:
            raise NotFound(
                "The resource server does not exist.", error_code="inexistent_resource_server"
            )
        if ref.permission_name not in api.scope_values:
            raise BadRequest(
                f"Permission {ref.permission_name[:100]} is not defined by the resource server "
                f"{ref.resource_server_identifier[:200]}."
            )
