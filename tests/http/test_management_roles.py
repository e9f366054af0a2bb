"""/api/v2/roles, /roles/{id}/permissions|users, /users/{id}/roles|permissions (contract §10.5,
§9.2; security case MG-16): Auth0's unusual statuses, shapes, paging, and RBAC data that the
next token request reads."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0

from keystead.core.apis import Permission, ResourceServer
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    check_error,
    check_oas,
    m2m,
    make_client,
    make_spa,
    make_user,
    mint,
    module_app,
    module_http,
    sapi_events,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

ALL = (
    "read:roles create:roles update:roles delete:roles read:users update:users "
    "read:role_members create:role_members delete:role_members"
)
API = "https://orders.example/"
ALICE = "auth0|aaaaaaaaaaaaaaaaaaaaaaaa"
USERS = [f"auth0|{c * 24}" for c in "bcdef"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(app: Any) -> None:
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    await make_spa(app)
    await make_user(app, user_id=ALICE, email="alice@example.com", name="Alice")
    for i, user_id in enumerate(USERS):
        await make_user(app, user_id=user_id, email=f"u{i}@example.com")
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).resource_servers.create(
            ResourceServer(
                id="", identifier=API, name="Orders",
                scopes=(Permission("read:orders", "Read orders"), Permission("write:orders")),
            )
        )  # fmt: skip


def admin(app: Any, scope: str = ALL) -> dict[str, str]:
    return m2m(app, scope)


async def new_role(http: Any, app: Any, name: str, **body: Any) -> dict[str, Any]:
    r = await http.post("/api/v2/roles", json={"name": name, **body}, headers=admin(app))
    assert r.status_code == 200, r.text  # Auth0 answers 200 here, not 201
    result: dict[str, Any] = check_oas(r, "POST", "/roles")
    return result


def perms(*names: str) -> dict[str, Any]:
    return {
        "permissions": [{"resource_server_identifier": API, "permission_name": n} for n in names]
    }


# --- roles --------------------------------------------------------------------------------------


async def test_role_crud(http: Any, app: Any, setup: None) -> None:
    role = await new_role(http, app, "Editor", description="Edits things")
    assert role["id"].startswith("rol_") and role["description"] == "Edits things"
    url = f"/api/v2/roles/{role['id']}"
    assert check_oas(await http.get(url, headers=admin(app)), "GET", "/roles/{id}") == role
    r = await http.post("/api/v2/roles", json={"name": "Editor"}, headers=admin(app))
    check_error(r, 409, "A role with the same name already exists.")
    r = await http.patch(url, json={"description": "Edits more"}, headers=admin(app))
    assert check_oas(r, "PATCH", "/roles/{id}") == {**role, "description": "Edits more"}
    await new_role(http, app, "Viewer")
    r = await http.patch(url, json={"name": "Viewer"}, headers=admin(app))
    check_error(r, 409, "A role with the same name already exists.")
    r = await http.delete(url, headers=admin(app))
    assert r.status_code == 200 and r.content == b""  # the OpenAPI's 200, no body
    check_oas(r, "DELETE", "/roles/{id}")
    for r in (
        await http.get(url, headers=admin(app)),
        await http.patch(url, json={"name": "x"}, headers=admin(app)),
        await http.delete(url, headers=admin(app)),
    ):
        check_error(r, 404, "The role does not exist.", "inexistent_role")
    described = [e.description for e in await sapi_events(app)]
    assert {"Create a role", "Update a role", "Delete a role"} <= set(described)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Payload validation error: 'Missing required property: name'."),
        ({"name": ""}, "Payload validation error: 'String is too short (0 chars), minimum 1' on "
         "property name."),
        ({"name": "x", "permissions": []}, "Payload validation error: 'Additional properties not "
         "allowed: permissions'."),
    ],
)  # fmt: skip
async def test_bad_role_bodies(http: Any, app: Any, setup: None, body: Any, message: str) -> None:
    check_error(await http.post("/api/v2/roles", json=body, headers=admin(app)), 400, message)


async def test_list_roles(http: Any, app: Any, setup: None) -> None:
    for name in ("List Alpha", "List Beta", "list gamma"):
        await new_role(http, app, name)
    r = await http.get("/api/v2/roles", params={"name_filter": "LIST"}, headers=admin(app))
    names = [role["name"] for role in check_oas(r, "GET", "/roles")]
    assert names == ["List Alpha", "List Beta", "list gamma"]  # case-insensitive filter
    r = await http.get(
        "/api/v2/roles",
        params={"name_filter": "list", "include_totals": "true", "per_page": "2", "page": "1"},
        headers=admin(app),
    )
    paged = check_oas(r, "GET", "/roles")
    assert set(paged) == {"start", "limit", "total", "roles"}
    assert (paged["start"], paged["limit"], paged["total"]) == (2, 2, 3)
    assert [role["name"] for role in paged["roles"]] == ["list gamma"]
    r = await http.get("/api/v2/roles", params={"per_page": "0"}, headers=admin(app))
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_query_string"


# --- a role's permissions and users -------------------------------------------------------------


async def test_role_permissions(http: Any, app: Any, setup: None) -> None:
    role = await new_role(http, app, "Orders clerk")
    url = f"/api/v2/roles/{role['id']}/permissions"
    r = await http.post(url, json=perms("read:orders", "write:orders"), headers=admin(app))
    assert r.status_code == 201 and r.content == b""
    check_oas(r, "POST", "/roles/{id}/permissions")
    listed = check_oas(await http.get(url, headers=admin(app)), "GET", "/roles/{id}/permissions")
    assert listed[0] == {
        "permission_name": "read:orders", "description": "Read orders",
        "resource_server_name": "Orders", "resource_server_identifier": API,
    }  # fmt: skip
    assert [p["permission_name"] for p in listed] == ["read:orders", "write:orders"]
    r = await http.get(url, params={"include_totals": "true", "per_page": "1"}, headers=admin(app))
    paged = check_oas(r, "GET", "/roles/{id}/permissions")
    assert paged["total"] == 2 and len(paged["permissions"]) == 1
    r = await http.request("DELETE", url, json=perms("write:orders"), headers=admin(app))
    assert r.status_code == 200
    check_oas(r, "DELETE", "/roles/{id}/permissions")
    assert [p["permission_name"] for p in (await http.get(url, headers=admin(app))).json()] == [
        "read:orders"
    ]
    r = await http.post(url, json=perms("fly:planes"), headers=admin(app))
    check_error(r, 400, f"Permission fly:planes is not defined by the resource server {API}.")
    r = await http.post(
        url,
        json={"permissions": [{"resource_server_identifier": "urn:x", "permission_name": "a"}]},
        headers=admin(app),
    )
    check_error(r, 404, "The resource server does not exist.", "inexistent_resource_server")
    r = await http.post(url, json={"permissions": []}, headers=admin(app))
    assert r.status_code == 400
    r = await http.get("/api/v2/roles/rol_missing/permissions", headers=admin(app))
    check_error(r, 404, "The role does not exist.", "inexistent_role")


async def test_role_users_offset_and_checkpoint(http: Any, app: Any, setup: None) -> None:
    role = await new_role(http, app, "Members")
    url = f"/api/v2/roles/{role['id']}/users"
    r = await http.post(url, json={"users": [*USERS, "auth0|nobody"]}, headers=admin(app))
    check_error(r, 404, "The user does not exist.", "inexistent_user")
    assert (await http.get(url, headers=admin(app))).json() == []  # all or nothing
    r = await http.post(url, json={"users": USERS}, headers=admin(app))
    assert r.status_code == 200 and r.content == b""
    check_oas(r, "POST", "/roles/{id}/users")
    listed = check_oas(await http.get(url, headers=admin(app)), "GET", "/roles/{id}/users")
    assert [u["user_id"] for u in listed] == sorted(USERS)
    assert listed[0] == {"user_id": USERS[0], "email": "u0@example.com"}
    r = await http.get(
        url, params={"include_totals": "true", "per_page": "2", "page": "2"}, headers=admin(app)
    )
    paged = check_oas(r, "GET", "/roles/{id}/users")
    assert (paged["start"], paged["limit"], paged["total"]) == (4, 2, 5)
    assert [u["user_id"] for u in paged["users"]] == sorted(USERS)[4:]
    # auth0-python v6 roles.users.list and node v7: include_totals=true&take=…, follow `next`.
    seen: list[str] = []
    params = {"include_totals": "true", "take": "2"}
    for _ in range(10):
        page = check_oas(
            await http.get(url, params=params, headers=admin(app)), "GET", "/roles/{id}/users"
        )
        assert set(page) == {"users", "next"}
        seen += [u["user_id"] for u in page["users"]]
        if not page["next"]:
            break
        params = {"include_totals": "true", "take": "2", "from": page["next"]}
    assert seen == sorted(USERS)


# --- a user's roles and permissions -------------------------------------------------------------


async def test_user_roles(http: Any, app: Any, setup: None) -> None:
    a = await new_role(http, app, "User role A")
    b = await new_role(http, app, "User role B")
    url = f"/api/v2/users/{quote(ALICE, safe='')}/roles"
    r = await http.post(url, json={"roles": [a["id"], "rol_missing"]}, headers=admin(app))
    check_error(r, 404, "The role does not exist.", "inexistent_role")
    assert (await http.get(url, headers=admin(app))).json() == []  # all or nothing
    r = await http.post(url, json={"roles": [a["id"], b["id"]]}, headers=admin(app))
    assert r.status_code == 204
    check_oas(r, "POST", "/users/{id}/roles")
    listed = check_oas(await http.get(url, headers=admin(app)), "GET", "/users/{id}/roles")
    assert listed == [a, b]
    r = await http.get(url, params={"include_totals": "true"}, headers=admin(app))
    assert check_oas(r, "GET", "/users/{id}/roles") == {
        "start": 0, "limit": 50, "total": 2, "roles": [a, b]
    }  # fmt: skip
    # DELETE with a JSON body, as auth0-python sends it (§9.2).
    r = await http.request("DELETE", url, json={"roles": [a["id"]]}, headers=admin(app))
    assert r.status_code == 204
    check_oas(r, "DELETE", "/users/{id}/roles")
    assert (await http.get(url, headers=admin(app))).json() == [b]
    r = await http.get("/api/v2/users/auth0%7Cnobody/roles", headers=admin(app))
    check_error(r, 404, "The user does not exist.", "inexistent_user")
    event = [e for e in await sapi_events(app) if e.description == "Remove roles from a user"][-1]
    assert event.user_id == ALICE and event.data["details"]["changes"] == {"roles": [a["id"]]}


async def test_user_permissions_direct_and_through_roles(http: Any, app: Any, setup: None) -> None:
    user = USERS[0]
    role = await new_role(http, app, "Readers")
    await http.post(
        f"/api/v2/roles/{role['id']}/permissions", json=perms("read:orders"), headers=admin(app)
    )
    await http.post(f"/api/v2/users/{user}/roles", json={"roles": [role["id"]]}, headers=admin(app))
    url = f"/api/v2/users/{user}/permissions"
    r = await http.post(url, json=perms("read:orders", "write:orders"), headers=admin(app))
    assert r.status_code == 201 and r.content == b""
    check_oas(r, "POST", "/users/{id}/permissions")
    listed = check_oas(await http.get(url, headers=admin(app)), "GET", "/users/{id}/permissions")
    assert listed[0]["permission_name"] == "read:orders"
    assert listed[0]["sources"] == [
        {"source_id": "", "source_name": "", "source_type": "DIRECT"},
        {"source_id": role["id"], "source_name": "Readers", "source_type": "ROLE"},
    ]
    assert listed[1]["sources"] == [{"source_id": "", "source_name": "", "source_type": "DIRECT"}]
    r = await http.request(
        "DELETE", url, json=perms("read:orders", "write:orders"), headers=admin(app)
    )
    assert r.status_code == 204
    check_oas(r, "DELETE", "/users/{id}/permissions")
    r = await http.get(url, params={"include_totals": "true"}, headers=admin(app))
    left = check_oas(r, "GET", "/users/{id}/permissions")
    assert left["total"] == 1 and left["permissions"][0]["sources"][0]["source_type"] == "ROLE"
    state = state_of(app)  # what the next token request reads (no cache in between)
    async with state.transaction() as session:
        assert await state.repos(session).roles.effective_permissions(user, API) == {"read:orders"}


async def test_mg16_assignment_needs_the_right_scopes(http: Any, app: Any, setup: None) -> None:
    role = await new_role(http, app, "Admins")
    spa = user_token(app, ALICE, scope="openid read:current_user update:current_user_metadata")
    for path in (f"/api/v2/users/{ALICE}/roles", f"/api/v2/users/{ALICE}/permissions"):
        body = {"roles": [role["id"]]} if path.endswith("roles") else perms("write:orders")
        r = await http.post(path, json=body, headers=spa)
        assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"
    r = await http.post(
        f"/api/v2/users/{ALICE}/roles", json={"roles": [role["id"]]},
        headers=admin(app, "read:roles"),
    )  # fmt: skip
    check_error(
        r, 403, "Insufficient scope, expected any of: update:users,create:role_members",
        "insufficient_scope",
    )  # fmt: skip
    r = await http.post(
        f"/api/v2/roles/{role['id']}/users", json={"users": [ALICE]},
        headers=admin(app, "read:roles"),
    )  # fmt: skip
    assert r.status_code == 403
    r = await http.get(f"/api/v2/users/{ALICE}/roles", headers=admin(app))
    assert role["id"] not in [x["id"] for x in r.json()]


async def test_auth0_python_drives_roles(http: Any, app: Any, setup: None) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope=ALL, gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    role = await sdk.roles.create(name="SDK role", description="via auth0-python")
    await sdk.roles.permissions.add(role.id, permissions=perms("read:orders")["permissions"])
    assert [p.permission_name async for p in await sdk.roles.permissions.list(role.id)] == [
        "read:orders"
    ]
    user = (await make_user(app, user_id="auth0|" + "9" * 24, email="sdk@example.com")).user_id
    await sdk.roles.users.assign(role.id, users=[*USERS, user])
    # roles.users.list sends include_totals=true&take=… and follows `next` (§8.4).
    members = [u.user_id async for u in await sdk.roles.users.list(role.id, take=2)]
    assert members == sorted([*USERS, user])
    await sdk.users.permissions.create(user, permissions=perms("write:orders")["permissions"])
    held = [p async for p in await sdk.users.permissions.list(user, per_page=1)]
    assert [(p.permission_name, p.sources[0]["source_type"]) for p in held] == [
        ("read:orders", "ROLE"), ("write:orders", "DIRECT")
    ]  # fmt: skip
    await sdk.users.permissions.delete(user, permissions=perms("write:orders")["permissions"])
    await sdk.users.roles.delete(user, roles=[role.id])
    assert [r.id async for r in await sdk.users.roles.list(user)] == []
    await sdk.users.roles.assign(user, roles=[role.id])
    assert [r.name async for r in await sdk.users.roles.list(user)] == ["SDK role"]
    await sdk.roles.update(role.id, name="SDK role 2")
    assert (await sdk.roles.get(role.id)).name == "SDK role 2"
    await sdk.roles.delete(role.id)  # 200 with no body
    assert role.id not in [r.id async for r in await sdk.roles.list(per_page=2)]
