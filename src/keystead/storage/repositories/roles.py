"""Roles, their permissions and members, and users' direct permissions (contract §10.5)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.ports import AssignedPermission, PermissionRef, Role
from keystead.core.users import User
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.models import (
    ResourceServerRow,
    RolePermissionRow,
    RoleRow,
    UserPermissionRow,
    UserRoleRow,
    UserRow,
)
from keystead.storage.repositories._common import delete_row, flush, paged
from keystead.storage.repositories.ids import new_role_id
from keystead.storage.repositories.users import to_user

NOT_FOUND = "The role does not exist."
CONFLICT = "A role with the same name already exists"

Pair = tuple[str, str]  # (resource_server_identifier, permission_name)


def to_role(row: RoleRow) -> Role:
    return Role(id=row.id, name=row.name, description=row.description)


def _pairs(permissions: Iterable[PermissionRef]) -> Sequence[Pair]:
    return list(
        dict.fromkeys((p.resource_server_identifier, p.permission_name) for p in permissions)
    )


@dataclass
class SqlRoles:
    session: AsyncSession

    async def _row(self, id: str) -> RoleRow:
        row = await self.session.get(RoleRow, id)
        if row is None:
            raise RecordNotFound(NOT_FOUND)
        return row

    async def _user_exists(self, user_id: str) -> None:
        if await self.session.get(UserRow, user_id) is None:
            raise RecordNotFound("The user does not exist.")

    async def get(self, id: str) -> Role:
        return to_role(await self._row(id))

    async def by_name(self, name: str) -> Role | None:
        row = await self.session.scalar(select(RoleRow).where(RoleRow.name == name))
        return to_role(row) if row else None

    async def list(
        self, *, name_filter: str | None = None, offset: int = 0, limit: int | None = None
    ) -> Sequence[Role]:
        stmt = select(RoleRow).order_by(RoleRow.name, RoleRow.id)
        if name_filter:
            pattern = name_filter.lower().replace("\\", "\\\\").replace("%", r"\%")
            pattern = pattern.replace("_", r"\_")
            stmt = stmt.where(func.lower(RoleRow.name).like(f"%{pattern}%", escape="\\"))
        return [to_role(row) for row in await self.session.scalars(paged(stmt, offset, limit))]

    async def create(self, role: Role) -> Role:
        if await self.by_name(role.name) is not None:
            raise AlreadyExists(CONFLICT)
        if role.id and await self.session.get(RoleRow, role.id) is not None:
            raise AlreadyExists("A role with this id already exists")
        row = RoleRow(id=role.id or new_role_id(), name=role.name, description=role.description)
        self.session.add(row)
        await flush(self.session, CONFLICT)
        return to_role(row)

    async def update(self, role: Role) -> Role:
        row = await self._row(role.id)
        other = await self.by_name(role.name)
        if other is not None and other.id != role.id:
            raise AlreadyExists(CONFLICT)
        row.name = role.name
        row.description = role.description
        await flush(self.session, CONFLICT)
        return to_role(row)

    async def delete(self, id: str) -> None:
        await delete_row(self.session, await self._row(id))

    # --- permissions (a role's, or a user's own) --------------------------------------------

    async def _described(self, rows: Iterable[Any]) -> Sequence[AssignedPermission]:
        """Attach the API's name and the scope's description, as Auth0 lists permissions."""
        pairs = [(r.resource_server_identifier, r.permission_name) for r in rows]
        identifiers = {identifier for identifier, _ in pairs}
        apis = await self.session.scalars(
            select(ResourceServerRow).where(ResourceServerRow.identifier.in_(identifiers))
        )
        names: dict[str, str] = {}
        descriptions: dict[Pair, str] = {}
        for api in apis:
            names[api.identifier] = api.name
            for scope in api.config.get("scopes", ()):
                descriptions[(api.identifier, scope["value"])] = scope.get("description", "")
        return [
            AssignedPermission(i, p, names.get(i, ""), descriptions.get((i, p), ""))
            for i, p in sorted(pairs)
        ]

    async def _check_apis(self, pairs: Sequence[Pair]) -> None:
        wanted = {identifier for identifier, _ in pairs}
        found = set(
            await self.session.scalars(
                select(ResourceServerRow.identifier).where(ResourceServerRow.identifier.in_(wanted))
            )
        )
        if wanted - found:
            raise RecordNotFound("The resource server does not exist")

    async def _add(self, model: Any, owner: Any, owner_id: str, pairs: Sequence[Pair]) -> None:
        await self._check_apis(pairs)
        held = select(model.resource_server_identifier, model.permission_name).where(
            owner == owner_id
        )
        have = {(row[0], row[1]) for row in await self.session.execute(held)}
        for identifier, name in pairs:
            if (identifier, name) not in have:
                self.session.add(
                    model(
                        **{owner.key: owner_id},
                        resource_server_identifier=identifier,
                        permission_name=name,
                    )
                )
        await flush(self.session, "The permission is already assigned")

    async def _remove(self, model: Any, owner: Any, owner_id: str, pairs: Sequence[Pair]) -> None:
        if pairs:
            await self.session.execute(
                delete(model).where(
                    owner == owner_id,
                    tuple_(model.resource_server_identifier, model.permission_name).in_(pairs),
                )
            )

    async def permissions(self, role_id: str) -> Sequence[AssignedPermission]:
        await self._row(role_id)
        rows = await self.session.scalars(
            select(RolePermissionRow).where(RolePermissionRow.role_id == role_id)
        )
        return await self._described(rows)

    async def add_permissions(self, role_id: str, permissions: Iterable[PermissionRef]) -> None:
        await self._row(role_id)
        model = RolePermissionRow
        await self._add(model, model.role_id, role_id, _pairs(permissions))

    async def remove_permissions(self, role_id: str, permissions: Iterable[PermissionRef]) -> None:
        await self._row(role_id)
        model = RolePermissionRow
        await self._remove(model, model.role_id, role_id, _pairs(permissions))

    async def user_permissions(self, user_id: str) -> Sequence[AssignedPermission]:
        await self._user_exists(user_id)
        rows = await self.session.scalars(
            select(UserPermissionRow).where(UserPermissionRow.user_id == user_id)
        )
        return await self._described(rows)

    async def add_user_permissions(
        self, user_id: str, permissions: Iterable[PermissionRef]
    ) -> None:
        await self._user_exists(user_id)
        model = UserPermissionRow
        await self._add(model, model.user_id, user_id, _pairs(permissions))

    async def remove_user_permissions(
        self, user_id: str, permissions: Iterable[PermissionRef]
    ) -> None:
        await self._user_exists(user_id)
        model = UserPermissionRow
        await self._remove(model, model.user_id, user_id, _pairs(permissions))

    async def effective_permissions(self, user_id: str, audience: str) -> frozenset[str]:
        direct = select(UserPermissionRow.permission_name).where(
            UserPermissionRow.user_id == user_id,
            UserPermissionRow.resource_server_identifier == audience,
        )
        through_roles = (
            select(RolePermissionRow.permission_name)
            .join(UserRoleRow, UserRoleRow.role_id == RolePermissionRow.role_id)
            .where(
                UserRoleRow.user_id == user_id,
                RolePermissionRow.resource_server_identifier == audience,
            )
        )
        return frozenset(await self.session.scalars(direct.union(through_roles)))

    # --- members ------------------------------------------------------------------------------

    async def members(
        self, role_id: str, *, offset: int = 0, limit: int | None = None
    ) -> Sequence[User]:
        await self._row(role_id)
        stmt = (
            select(UserRow)
            .join(UserRoleRow, UserRoleRow.user_id == UserRow.user_id)
            .where(UserRoleRow.role_id == role_id)
            .order_by(UserRow.user_id)
        )
        return [to_user(row) for row in await self.session.scalars(paged(stmt, offset, limit))]

    async def add_members(self, role_id: str, user_ids: Iterable[str]) -> None:
        await self._row(role_id)
        wanted = list(dict.fromkeys(user_ids))
        found = set(
            await self.session.scalars(select(UserRow.user_id).where(UserRow.user_id.in_(wanted)))
        )
        if set(wanted) - found:
            raise RecordNotFound("The user does not exist.")
        have = set(
            await self.session.scalars(
                select(UserRoleRow.user_id).where(UserRoleRow.role_id == role_id)
            )
        )
        for user_id in wanted:
            if user_id not in have:
                self.session.add(UserRoleRow(user_id=user_id, role_id=role_id))
        await flush(self.session, "The user already has the role")

    async def remove_members(self, role_id: str, user_ids: Iterable[str]) -> None:
        await self._row(role_id)
        await self.session.execute(
            delete(UserRoleRow).where(
                UserRoleRow.role_id == role_id, UserRoleRow.user_id.in_(list(user_ids))
            )
        )

    async def roles_of(self, user_id: str) -> Sequence[Role]:
        stmt = (
            select(RoleRow)
            .join(UserRoleRow, UserRoleRow.role_id == RoleRow.id)
            .where(UserRoleRow.user_id == user_id)
            .order_by(RoleRow.name)
        )
        return [to_role(row) for row in await self.session.scalars(stmt)]
