"""Applying a tenant file (tenant.py), steps 4-5: users and roles.

Users are matched by email in the database connection and change only the fields the file
states; a role's permissions are set to the file's list and its `users` are added.
"""

from __future__ import annotations

import asyncio
import copy

from sqlalchemy import select

from keystead.core.passwords import hash_password, needs_rehash, verify_password
from keystead.core.tenant import RoleSpec, UserSpec
from keystead.core.users import DATABASE_CONNECTION
from keystead.storage.models import RolePermissionRow, RoleRow, UserRoleRow, UserRow
from keystead.storage.repositories.ids import new_role_id, new_user_id
from keystead.storage.tenant_run import TenantRun, api_scopes, assign


class UserSteps(TenantRun):
    # 4. Users: matched by email in the database connection.
    async def users(self) -> None:
        for u in self.spec.users:
            row = await self._user_by_email(u.email)
            if u.user_id is not None:
                if row is not None and row.user_id != u.user_id:
                    raise self.error(
                        f"{u.at}.user_id",
                        f"{u.email} already exists as {row.user_id}; a user's id cannot change",
                    )
                if row is None and await self.session.get(UserRow, u.user_id) is not None:
                    raise self.error(f"{u.at}.user_id", f"{u.user_id} belongs to another user")
            values = u.given()
            password_hash = await _password_hash(u, row)
            if password_hash is not None:
                values["password_hash"] = password_hash
            if row is None:
                local = u.email.split("@")[0]
                defaults = {"name": u.email, "nickname": local, "email_verified": False}
                self.session.add(
                    UserRow(
                        user_id=u.user_id or new_user_id(),
                        connection=DATABASE_CONNECTION,
                        email=u.email,
                        created_at=self.now,
                        updated_at=self.now,
                        **{**defaults, **copy.deepcopy(values)},
                    )
                )
                self._saved("users", True, False)
                continue
            changed = assign(row, values)
            if changed:
                row.updated_at = self.now
            self._saved("users", False, changed)

    # 5. Roles: permissions set to the file's list, listed users added.
    async def roles(self) -> None:
        for r in self.spec.roles:
            row = await self.session.scalar(select(RoleRow).where(RoleRow.name == r.name))
            created = row is None
            if row is None:
                row = RoleRow(id=new_role_id(), name=r.name, description=r.description)
                self.session.add(row)
                await self.session.flush()
                changed = False
            else:
                changed = assign(row, {"description": r.description})
            changed = await self._set_permissions(r, row.id) or changed
            changed = await self._add_members(r, row.id) or changed
            self._saved("roles", created, changed)

    async def _set_permissions(self, r: RoleSpec, role_id: str) -> bool:
        wanted: set[tuple[str, str]] = set()
        for i, p in enumerate(r.permissions):
            at = f"{r.at}.permissions[{i}]"
            api = await self._api(p.resource_server_identifier)
            if api is None:
                raise self.error(
                    f"{at}.resource_server_identifier",
                    f"no API with identifier {p.resource_server_identifier}",
                )
            if p.permission_name not in api_scopes(api):
                raise self.error(
                    f"{at}.permission_name",
                    f"{p.permission_name!r} is not a scope of {p.resource_server_identifier}",
                )
            wanted.add((p.resource_server_identifier, p.permission_name))
        rows = await self.session.scalars(
            select(RolePermissionRow).where(RolePermissionRow.role_id == role_id)
        )
        have = {(x.resource_server_identifier, x.permission_name): x for x in rows}
        for pair, extra in have.items():
            if pair not in wanted:
                await self.session.delete(extra)
        for identifier, name in sorted(wanted - have.keys()):
            self.session.add(
                RolePermissionRow(
                    role_id=role_id, resource_server_identifier=identifier, permission_name=name
                )
            )
        return wanted != have.keys()

    async def _add_members(self, r: RoleSpec, role_id: str) -> bool:
        added = False
        for i, member in enumerate(r.users):
            if "|" in member:
                user = await self.session.get(UserRow, member)
            else:
                user = await self._user_by_email(member)
            if user is None:
                raise self.error(
                    f"{r.at}.users[{i}]", f"no user {member} in the file or the database"
                )
            if await self.session.get(UserRoleRow, (user.user_id, role_id)) is None:
                self.session.add(UserRoleRow(user_id=user.user_id, role_id=role_id))
                added = True
        return added


async def _password_hash(u: UserSpec, row: UserRow | None) -> str | None:
    """The hash to store, or None to keep the stored one. Hashing takes tens of milliseconds, so
    it runs in a thread; an unchanged password keeps its hash (and its salt)."""
    if u.password_hash is not None:
        return u.password_hash
    if u.password is None:
        return None
    stored = row.password_hash if row is not None else None
    if (
        stored
        and not needs_rehash(stored)
        and await asyncio.to_thread(verify_password, stored, u.password)
    ):
        return None
    return await asyncio.to_thread(hash_password, u.password)
