"""Management API roles and their users (contract §10.5, §9.2; security case MG-16).

    /roles                       GET list (name_filter) · POST 200 (sic) · 409 on a taken name
    /roles/{id}                  GET · PATCH · DELETE 200 with no body (the OpenAPI's status)
    /roles/{id}/users            GET offset or checkpoint from/take · POST 200
    /users/{id}/roles            GET · POST 204 · DELETE 204 (JSON body)

The permissions of a role or a user are in management/assigned_permissions.py, which finds the
role or user with this module's shared steps. Writes log `sapi`.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.ports import Role
from keystead.deps import get_state
from keystead.errors import AlreadyExists, Conflict, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import read_body
from keystead.management.params import parse_page
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.query import parse_checkpoint
from keystead.management.schemas.roles import CREATE_ROLE, ROLE_USERS, UPDATE_ROLE, USER_ROLES
from keystead.storage.models import UserRoleRow, UserRow
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.users import to_user

ROLE_NOT_FOUND: Final = "The role does not exist."
USER_NOT_FOUND: Final = "The user does not exist."
CONFLICT: Final = "A role with the same name already exists."


def role_json(role: Role) -> dict[str, Any]:
    return {"id": role.id, "name": role.name, "description": role.description}


# --- roles --------------------------------------------------------------------------------------


async def list_roles(request: Request, caller: Caller) -> Response:
    page = parse_page(request.query_params, min_per_page=1)
    name_filter = request.query_params.get("name_filter") or None
    state = get_state(request)
    async with state.transaction() as session:
        found = list(await state.repos(session).roles.list(name_filter=name_filter))
    items = [role_json(r) for r in found[page.start : page.start + page.limit]]
    return json_response(page.body("roles", items, len(found), length=False))


async def create_role(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_ROLE)
    state = get_state(request)
    async with state.transaction() as session:
        try:
            role = await state.repos(session).roles.create(
                Role(id="", name=body["name"], description=body.get("description", ""))
            )
        except AlreadyExists:
            raise Conflict(CONFLICT) from None
        await record_change(
            state, session, request, caller, "Create a role", target={"role_id": role.id},
            fields=body,
        )  # fmt: skip
    return json_response(role_json(role))  # 200, not 201: Auth0's status for this operation


async def get_role(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        role = await role_in_path(state.repos(session), request)
    return json_response(role_json(role))


async def update_role(request: Request, caller: Caller) -> Response:
    body = await read_body(request, UPDATE_ROLE)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        role = await role_in_path(repos, request)
        changed = Role(
            id=role.id,
            name=body.get("name", role.name),
            description=body.get("description", role.description),
        )
        try:
            updated = await repos.roles.update(changed)
        except AlreadyExists:
            raise Conflict(CONFLICT) from None
        await record_change(
            state, session, request, caller, "Update a role", target={"role_id": role.id},
            fields=body,
        )  # fmt: skip
    return json_response(role_json(updated))


async def delete_role(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        role = await role_in_path(repos, request)
        await repos.roles.delete(role.id)  # its permissions and memberships go with it
        await record_change(
            state, session, request, caller, "Delete a role", target={"role_id": role.id}
        )
    return Response(status_code=200)


# --- a role's users -----------------------------------------------------------------------------


def _member_json(row: UserRow) -> dict[str, Any]:
    user = to_user(row)
    out = {"user_id": user.user_id, "email": user.email, "picture": user.picture, "name": user.name}
    return {k: v for k, v in out.items() if v is not None}


async def list_role_users(request: Request, caller: Caller) -> Response:
    query = request.query_params
    checkpoint = parse_checkpoint(query)
    page = None if checkpoint else parse_page(query, min_per_page=1)
    state = get_state(request)
    async with state.transaction() as session:
        role = await role_in_path(state.repos(session), request)
        members = (
            select(UserRow)
            .join(UserRoleRow, UserRoleRow.user_id == UserRow.user_id)
            .where(UserRoleRow.role_id == role.id)
            .order_by(UserRow.user_id)
        )
        if checkpoint is not None:
            if checkpoint.after is not None:
                members = members.where(UserRow.user_id > checkpoint.after)
            rows = list(await session.scalars(members.limit(checkpoint.take + 1)))
            more = len(rows) > checkpoint.take
            rows = rows[: checkpoint.take]
            next_key = rows[-1].user_id if more else None
            items = [_member_json(r) for r in rows]
            return json_response(checkpoint.body("users", items, next_key))
        assert page is not None
        rows = list(await session.scalars(members.offset(page.start).limit(page.limit)))
        total = await session.scalar(
            select(func.count()).select_from(UserRoleRow).where(UserRoleRow.role_id == role.id)
        )
    items = [_member_json(r) for r in rows]
    return json_response(page.body("users", items, total or 0, length=False))


async def assign_role_users(request: Request, caller: Caller) -> Response:
    body = await read_body(request, ROLE_USERS)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        role = await role_in_path(repos, request)
        try:
            await repos.roles.add_members(role.id, body["users"])
        except RecordNotFound:
            raise NotFound(USER_NOT_FOUND, error_code="inexistent_user") from None
        await record_change(
            state, session, request, caller, "Assign users to a role",
            target={"role_id": role.id}, changes={"users": body["users"]},
        )  # fmt: skip
    return Response(status_code=200)


# --- a user's roles -----------------------------------------------------------------------------


async def list_user_roles(request: Request, caller: Caller) -> Response:
    page = parse_page(request.query_params, min_per_page=1)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        found = list(await repos.roles.roles_of(await user_in_path(repos, caller)))
    items = [role_json(r) for r in found[page.start : page.start + page.limit]]
    return json_response(page.body("roles", items, len(found), length=False))


async def assign_user_roles(request: Request, caller: Caller) -> Response:
    return await _change_user_roles(request, caller, add=True)


async def delete_user_roles(request: Request, caller: Caller) -> Response:
    return await _change_user_roles(request, caller, add=False)


async def _change_user_roles(request: Request, caller: Caller, *, add: bool) -> Response:
    body = await read_body(request, USER_ROLES)
    role_ids = list(dict.fromkeys(body["roles"]))
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        user_id = await user_in_path(repos, caller)
        for role_id in role_ids:  # all or nothing: one transaction
            try:
                if add:
                    await repos.roles.add_members(role_id, [user_id])
                else:
                    await repos.roles.remove_members(role_id, [user_id])
            except RecordNotFound:
                raise NotFound(ROLE_NOT_FOUND, error_code="inexistent_role") from None
        await record_change(
            state, session, request, caller,
            "Assign roles to a user" if add else "Remove roles from a user",
            target={"user_id": user_id}, changes={"roles": role_ids}, user_id=user_id,
        )  # fmt: skip
    return Response(status_code=204)


# --- shared steps (assigned_permissions.py's too) -------------------------------------------------


async def role_in_path(repos: Repositories, request: Request) -> Role:
    """The role the path's {id} names, or 404 inexistent_role."""
    try:
        return await repos.roles.get(request.path_params["id"])
    except RecordNotFound:
        raise NotFound(ROLE_NOT_FOUND, error_code="inexistent_role") from None


async def user_in_path(repos: Repositories, caller: Caller) -> str:
    """The id of the user the path's {id} names, or 404 inexistent_user."""
    user_id = caller.target_user_id or ""
    if await repos.users.find(user_id) is None:
        raise NotFound(USER_NOT_FOUND, error_code="inexistent_user")
    return user_id
