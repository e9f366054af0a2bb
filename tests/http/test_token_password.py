"""POST /oauth/token, grant_type=password and …/password-realm (contract §3.5, §3.8; security
CL-06, SE-10)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import bcrypt
import httpx
import jwt
import pytest
from starlette.applications import Starlette

from keystead.core import linking, login_success, passwords
from keystead.core.ports import PermissionRef, Role
from keystead.core.scopes import CURRENT_USER_SCOPES
from keystead.core.users import DATABASE_CONNECTION, User
from tests.conftest import ISSUER
from tests.http.token_helpers import (
    API,
    HS_API,
    HS_SECRET,
    MGMT,
    PASSWORD,
    RBAC_API,
    USERINFO,
    Tenant,
    assert_token_headers,
    claims,
    logs,
    prepared_tenant_fixtures,
    state_of,
)

REALM = "http://auth0.com/oauth/grant-type/password-realm"
WEB_SECRET = "web-secret: with % and +"
WRONG = {"error": "invalid_grant", "error_description": "Wrong email or password."}


prepared, database_url, tenant = prepared_tenant_fixtures()


def login(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    """auth0-python's GetToken.login body (contract §13.2)."""
    return {
        "client_id": tenant.web.client_id,
        "username": "alice@example.com",
        "password": PASSWORD,
        "realm": "Username-Password-Authentication",
        "scope": "openid profile email offline_access",
        "audience": None,
        "grant_type": REALM,
        "client_secret": WEB_SECRET,
        **fields,
    }


async def test_password_realm(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    r = await http.post(
        "/oauth/token", json=login(tenant), headers={"auth0-forwarded-for": "203.0.113.9"}
    )
    assert r.status_code == 200
    assert_token_headers(r)
    body = r.json()
    assert list(body) == [
        "access_token",
        "refresh_token",
        "id_token",
        "scope",
        "expires_in",
        "token_type",
    ]
    access = claims(app, body["access_token"], USERINFO)
    assert access["gty"] == "password" and access["sub"] == tenant.user.user_id
    id_token = claims(app, body["id_token"], tenant.web.client_id)
    assert id_token["iss"] == ISSUER and id_token["email"] == "alice@example.com"
    assert id_token["auth_time"] == id_token["iat"]
    (event,) = await logs(app, "sepft")
    assert event.user_id == tenant.user.user_id
    assert event.data["connection"] == "Username-Password-Authentication"
    # The client is not trusted to forward the end user's address.
    assert event.data["ip"] != "203.0.113.9"
    assert PASSWORD not in repr(event)


async def test_a_trusted_backend_forwards_the_users_address(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        trusted = replace(tenant.web, extra={"is_token_endpoint_ip_header_trusted": True})
        await state.repos(session).clients.update(trusted)
    r = await http.post(
        "/oauth/token", json=login(tenant), headers={"auth0-forwarded-for": "203.0.113.9"}
    )
    assert r.status_code == 200
    (event,) = await logs(app, "sepft")
    assert event.data["ip"] == "203.0.113.9"


async def test_hs256_api(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    r = await http.post("/oauth/token", json=login(tenant, audience=HS_API, scope="openid read:hs"))
    assert r.status_code == 200
    body = r.json()
    access = jwt.decode(body["access_token"], HS_SECRET, algorithms=["HS256"], audience=HS_API)
    assert access["aud"] == HS_API  # HS256 APIs never get the userinfo audience (contract §4.1)
    assert access["scope"] == "openid read:hs"
    assert jwt.get_unverified_header(body["id_token"])["alg"] == "RS256"  # spa-js demands it


async def test_password_grant_uses_the_default_directory(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "password",
            "username": "ALICE@example.com",
            "password": PASSWORD,
            "scope": "openid",
        },
        headers={"Authorization": "Basic " + _basic(tenant)},
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "openid"


def _basic(tenant: Tenant) -> str:
    import base64
    from urllib.parse import quote_plus

    raw = f"{tenant.web.client_id}:{quote_plus(WEB_SECRET)}"
    return base64.b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    ("audience", "scope"),
    [
        (API, "read:messages write:messages"),
        (MGMT, " ".join(CURRENT_USER_SCOPES)),  # never full Management scopes (contract §3.8)
    ],
)
async def test_implied_trust_without_scope(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, audience: str, scope: str
) -> None:
    r = await http.post("/oauth/token", json=login(tenant, scope=None, audience=audience))
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "scope", "expires_in", "token_type"}
    assert body["scope"] == scope
    assert claims(app, body["access_token"], audience)["aud"] == audience


async def test_management_scopes_are_dropped_for_users(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    r = await http.post(
        "/oauth/token",
        json=login(tenant, audience=MGMT, scope="openid read:users read:current_user"),
    )
    assert r.status_code == 200
    assert r.json()["scope"] == "openid read:current_user"
    assert claims(app, r.json()["access_token"], MGMT)["aud"] == [MGMT, USERINFO]


async def test_rbac_api(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    scope = "openid read:orders write:orders"
    none = await http.post("/oauth/token", json=login(tenant, audience=RBAC_API, scope=scope))
    assert none.json()["scope"] == "openid"
    assert claims(app, none.json()["access_token"], RBAC_API)["permissions"] == []
    state = state_of(app)
    async with state.transaction() as session:
        roles = state.repos(session).roles
        role = await roles.create(Role(id="", name="Reader"))
        await roles.add_permissions(role.id, [_Perm(RBAC_API, "read:orders")])
        await roles.add_members(role.id, [tenant.user.user_id])
    some = await http.post("/oauth/token", json=login(tenant, audience=RBAC_API, scope=scope))
    assert some.json()["scope"] == "openid read:orders"
    assert claims(app, some.json()["access_token"], RBAC_API)["permissions"] == ["read:orders"]


class _Perm:
    def __init__(self, api: str, name: str) -> None:
        self.resource_server_identifier = api
        self.permission_name = name


_: type[PermissionRef] = _Perm


async def test_wrong_credentials_cost_the_same(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real_dummy, real_verify = passwords.verify_dummy, passwords.verify_password

    def dummy(password: str) -> bool:
        calls.append("dummy")
        return real_dummy(password)

    def verify(stored: str, password: str) -> bool:
        calls.append("verify")
        return real_verify(stored, password)

    monkeypatch.setattr(login_success, "verify_dummy", dummy)
    monkeypatch.setattr(login_success, "verify_password", verify)
    wrong = await http.post("/oauth/token", json=login(tenant, password="nope"))
    unknown = await http.post("/oauth/token", json=login(tenant, username="bob@example.com"))
    assert (wrong.status_code, wrong.json()) == (403, WRONG)
    assert (unknown.status_code, unknown.json()) == (403, WRONG)
    assert calls == ["verify", "dummy"]  # an unknown user still costs one verification
    events = await logs(app, "fepft")
    assert sorted(e.description for e in events) == ["Wrong email or password."] * 2
    assert not any("nope" in repr(e) for e in events)


async def test_blocked_user(http: httpx.AsyncClient, tenant: Tenant) -> None:
    right = await http.post("/oauth/token", json=login(tenant, username="blocked@example.com"))
    assert (right.status_code, right.json()) == (
        403,
        {"error": "invalid_grant", "error_description": "user is blocked"},
    )
    wrong = await http.post(
        "/oauth/token", json=login(tenant, username="blocked@example.com", password="x")
    )
    assert (wrong.status_code, wrong.json()) == (403, WRONG)  # SE-10: nothing learnt


@pytest.mark.parametrize(
    ("fields", "status", "body"),
    [
        (
            {"username": None},
            400,
            {
                "error": "invalid_request",
                "error_description": "Missing required parameter: username",
            },
        ),
        (
            {"password": ""},
            400,
            {
                "error": "invalid_request",
                "error_description": "Missing required parameter: password",
            },
        ),
        (
            {"realm": "No-Such-Connection"},
            403,
            {
                "error": "unauthorized_client",
                "error_description": "The connection is not enabled for this client.",
            },
        ),
        (
            {"client_secret": None},
            401,
            {"error": "invalid_client", "error_description": "Unauthorized"},
        ),
        (
            {"username": ["alice@example.com"]},
            400,
            {
                "error": "invalid_request",
                "error_description": "Invalid parameter: username must be a string",
            },
        ),
    ],
)
async def test_refusals(
    http: httpx.AsyncClient, tenant: Tenant, fields: dict[str, Any], status: int, body: Any
) -> None:
    r = await http.post("/oauth/token", json=login(tenant, **fields))
    assert (r.status_code, r.json()) == (status, body)
    assert_token_headers(r)


async def test_client_without_the_grant(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await http.post(
        "/oauth/token", json=login(tenant, client_id=tenant.spa.client_id, client_secret=None)
    )
    assert (r.status_code, r.json()) == (
        403,
        {
            "error": "unauthorized_client",
            "error_description": f"Grant type '{REALM}' not allowed for the client.",
        },
    )


async def _stored_user(app: Starlette, user_id: str) -> Any:
    state = state_of(app)
    async with state.transaction() as session:
        return await state.repos(session).users.get(user_id)


@pytest.mark.parametrize("grant_type", ["password", REALM])
async def test_a_login_is_recorded_and_an_imported_hash_upgraded(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, grant_type: str
) -> None:
    legacy = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    state = state_of(app)
    async with state.transaction() as session:
        users = state.repos(session).users
        before = await users.update(
            replace(await users.get(tenant.user.user_id), password_hash=legacy)
        )
    assert before.logins_count == 0 and before.last_login is None
    r = await http.post("/oauth/token", json=login(tenant, grant_type=grant_type))
    assert r.status_code == 200
    after = await _stored_user(app, tenant.user.user_id)
    assert after.logins_count == 1
    assert after.last_login is not None and after.last_ip
    assert after.password_hash is not None and after.password_hash.startswith("$argon2id$")
    assert passwords.verify_password(after.password_hash, PASSWORD)
    assert after.user_metadata == before.user_metadata  # only the login's columns changed
    again = await http.post("/oauth/token", json=login(tenant, grant_type=grant_type))
    assert again.status_code == 200  # the new hash verifies too
    final = await _stored_user(app, tenant.user.user_id)
    assert final.logins_count == 2 and final.password_hash == after.password_hash


async def test_a_failed_or_blocked_login_is_not_recorded(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    wrong = await http.post("/oauth/token", json=login(tenant, password="nope"))
    blocked = await http.post("/oauth/token", json=login(tenant, username="blocked@example.com"))
    assert wrong.status_code == blocked.status_code == 403
    for user in (tenant.user, tenant.blocked):
        stored = await _stored_user(app, user.user_id)
        assert stored.logins_count == 0 and stored.last_login is None


SECONDARY_PASSWORD = "the secondary's own passphrase"


async def _link_secondary(app: Starlette, tenant: Tenant, password_hash: str) -> None:
    """bob@example.com, a database user of his own, linked into alice (as the API does)."""
    state = state_of(app)
    async with state.transaction() as session:
        users = state.repos(session).users
        secondary = await users.create(
            User(user_id="", email="bob@example.com", password_hash=password_hash),
            connection=DATABASE_CONNECTION,
        )
        primary = await users.get(tenant.user.user_id)
        await users.delete(secondary.user_id)
        await users.update(linking.link(primary, secondary))


@pytest.mark.parametrize("grant_type", ["password", REALM])
async def test_a_linked_secondary_logs_in_as_the_primary(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, grant_type: str
) -> None:
    legacy = bcrypt.hashpw(SECONDARY_PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    await _link_secondary(app, tenant, legacy)
    body = login(tenant, grant_type=grant_type, username="BOB@example.com")
    wrong = await http.post("/oauth/token", json={**body, "password": PASSWORD})
    assert (wrong.status_code, wrong.json()) == (403, WRONG)  # the primary's password: no
    r = await http.post("/oauth/token", json={**body, "password": SECONDARY_PASSWORD})
    assert r.status_code == 200
    assert claims(app, r.json()["access_token"], USERINFO)["sub"] == tenant.user.user_id
    id_token = claims(app, r.json()["id_token"], tenant.web.client_id)
    assert id_token["email"] == "alice@example.com"  # the primary's profile
    primary = await _stored_user(app, tenant.user.user_id)
    assert primary.logins_count == 1
    upgraded = primary.identities[1].password_hash
    assert upgraded is not None and upgraded.startswith("$argon2id$")  # the identity's own
    again = await http.post("/oauth/token", json={**body, "password": SECONDARY_PASSWORD})
    assert again.status_code == 200
