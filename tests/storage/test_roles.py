"""Roles repository: CRUD, permissions, members, users' direct and effective permissions."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from keystead.core.apis import Permission, ResourceServer
from keystead.core.ports import AssignedPermission, Role
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.repositories import Repositories

API = "https://api.example/"


def perm(name: str, identifier: str = API) -> AssignedPermission:
    return AssignedPermission(resource_server_identifier=identifier, permission_name=name)


@pytest.fixture
async def api(repos: Repositories) -> ResourceServer:
    return await repos.resource_servers.create(
        ResourceServer(
            id="",
            identifier=API,
            name="Example",
            scopes=(Permission("read:a", "Read A"), Permission("write:a", "Write A")),
        )
    )


async def _user(repos: Repositories, email: str) -> str:
    user = await repos.users.create(User(user_id="", email=email), connection=DATABASE_CONNECTION)
    return user.user_id


async def test_create_get_update_delete(repos: Repositories) -> None:
    role = await repos.roles.create(Role(id="", name="admin", description="Admins"))
    assert re.fullmatch(r"rol_[A-Za-z0-9]{16}", role.id)
    assert await repos.roles.get(role.id) == role
    assert await repos.roles.by_name("admin") == role
    updated = await repos.roles.update(replace(role, name="administrators", description=""))
    assert await repos.roles.get(role.id) == updated
    await repos.roles.delete(role.id)
    with pytest.raises(RecordNotFound):
        await repos.roles.get(role.id)


async def test_duplicate_name_is_already_exists(repos: Repositories) -> None:
    await repos.roles.create(Role(id="", name="admin"))
    other = await repos.roles.create(Role(id="", name="viewer"))
    with pytest.raises(AlreadyExists):
        await repos.roles.create(Role(id="", name="admin"))
    with pytest.raises(AlreadyExists):
        await repos.roles.update(replace(other, name="admin"))


async def test_list_name_filter_is_case_insensitive_substring(repos: Repositories) -> None:
    for name in ["Admin", "Billing admins", "viewer", "100%_literal"]:
        await repos.roles.create(Role(id="", name=name))
    assert [r.name for r in await repos.roles.list(name_filter="ADMIN")] == [
        "Admin",
        "Billing admins",
    ]
    assert [r.name for r in await repos.roles.list(name_filter="%_")] == ["100%_literal"]
    assert len(await repos.roles.list(offset=1, limit=2)) == 2


async def test_missing_role(repos: Repositories) -> None:
    missing = "rol_0000000000000000"
    with pytest.raises(RecordNotFound):
        await repos.roles.update(Role(id=missing, name="x"))
    with pytest.raises(RecordNotFound):
        await repos.roles.delete(missing)
    with pytest.raises(RecordNotFound):
        await repos.roles.permissions(missing)
    with pytest.raises(RecordNotFound):
        await repos.roles.add_members(missing, [])
    assert await repos.roles.by_name("nope") is None


async def test_permissions_are_described_and_idempotent(
    repos: Repositories, api: ResourceServer
) -> None:
    role = await repos.roles.create(Role(id="", name="writer"))
    await repos.roles.add_permissions(role.id, [perm("write:a"), perm("read:a")])
    await repos.roles.add_permissions(role.id, [perm("read:a")])
    assert await repos.roles.permissions(role.id) == [
        AssignedPermission(API, "read:a", "Example", "Read A"),
        AssignedPermission(API, "write:a", "Example", "Write A"),
    ]
    await repos.roles.remove_permissions(role.id, [perm("write:a")])
    assert [p.permission_name for p in await repos.roles.permissions(role.id)] == ["read:a"]
    await repos.roles.add_permissions(role.id, [perm("write:a")])  # re-adding after removal
    assert len(await repos.roles.permissions(role.id)) == 2


async def test_permission_on_an_unknown_api_is_not_found(repos: Repositories) -> None:
    role = await repos.roles.create(Role(id="", name="r"))
    with pytest.raises(RecordNotFound):
        await repos.roles.add_permissions(role.id, [perm("read:a", "urn:none")])


async def test_members(repos: Repositories) -> None:
    role = await repos.roles.create(Role(id="", name="r"))
    a, b = await _user(repos, "a@x.test"), await _user(repos, "b@x.test")
    await repos.roles.add_members(role.id, [a, b, a])
    await repos.roles.add_members(role.id, [a])
    assert sorted(u.user_id for u in await repos.roles.members(role.id)) == sorted([a, b])
    assert await repos.roles.roles_of(a) == [role]
    await repos.roles.remove_members(role.id, [a])
    assert [u.user_id for u in await repos.roles.members(role.id)] == [b]
    assert await repos.roles.roles_of(a) == []
    with pytest.raises(RecordNotFound):
        await repos.roles.add_members(role.id, ["auth0|nobody"])


async def test_effective_permissions_join_direct_and_role_permissions(
    repos: Repositories, api: ResourceServer
) -> None:
    other = await repos.resource_servers.create(ResourceServer(id="", identifier="urn:o", name="o"))
    user = await _user(repos, "u@x.test")
    role = await repos.roles.create(Role(id="", name="r"))
    await repos.roles.add_permissions(role.id, [perm("read:a"), perm("x", other.identifier)])
    await repos.roles.add_members(role.id, [user])
    await repos.roles.add_user_permissions(user, [perm("write:a")])
    assert await repos.roles.effective_permissions(user, API) == {"read:a", "write:a"}
    assert await repos.roles.effective_permissions(user, "urn:o") == {"x"}
    assert [p.permission_name for p in await repos.roles.user_permissions(user)] == ["write:a"]
    await repos.roles.remove_user_permissions(user, [perm("write:a")])
    assert await repos.roles.effective_permissions(user, API) == {"read:a"}
    with pytest.raises(RecordNotFound):
        await repos.roles.user_permissions("auth0|nobody")


async def test_deleting_a_role_or_user_removes_assignments(
    repos: Repositories, api: ResourceServer
) -> None:
    user = await _user(repos, "u@x.test")
    role = await repos.roles.create(Role(id="", name="r"))
    await repos.roles.add_permissions(role.id, [perm("read:a")])
    await repos.roles.add_members(role.id, [user])
    await repos.roles.delete(role.id)
    assert await repos.roles.roles_of(user) == []
    assert await repos.roles.effective_permissions(user, API) == frozenset()
    role = await repos.roles.create(Role(id="", name="r2"))
    await repos.roles.add_members(role.id, [user])
    await repos.users.delete(user)
    assert await repos.roles.members(role.id) == []
