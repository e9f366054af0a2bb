"""/api/v2/resource-servers (contract §10.3; security case MG-15): shapes, the system API,
identifiers in the path, HS256 secrets, and changes seen by the next token request."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0

from keystead.core.apis import ClientGrant
from keystead.core.clients import Client
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    MGMT,
    check_error,
    check_oas,
    m2m,
    make_client,
    mint,
    module_app,
    module_http,
    sapi_events,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app(management_audience_aliases=("https://alias.example/api/v2/",))
http = module_http()

ALL = (
    "read:resource_servers create:resource_servers update:resource_servers delete:resource_servers"
)
P = "/api/v2/resource-servers"
WORKER = Client(
    client_id="", name="Worker", app_type="non_interactive",
    client_secret="worker-secret-" + "x" * 30, grant_types=("client_credentials",),
)  # fmt: skip


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def caller(app: Any) -> None:
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")


def admin(app: Any, scope: str = ALL) -> dict[str, str]:
    return m2m(app, scope)


def check_patch(r: httpx.Response) -> Any:
    """PATCH answers 200 where the OpenAPI says 201 (both SDKs take any 2xx): same body."""
    assert r.status_code == 200, r.text
    return check_oas(httpx.Response(201, content=r.content), "PATCH", "/resource-servers/{id}")


async def create(http: Any, app: Any, **body: Any) -> dict[str, Any]:
    r = await http.post(P, json=body, headers=admin(app))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = check_oas(r, "POST", "/resource-servers")
    return result


async def test_system_api_is_listed_and_readable(http: Any, app: Any, caller: None) -> None:
    r = await http.get(P, headers=admin(app, "read:resource_servers"))
    listed = check_oas(r, "GET", "/resource-servers")
    system = next(api for api in listed if api["is_system"])
    assert system["identifier"] == MGMT
    assert system["name"] == "Auth0 Management API"
    assert {"value": "read:users", "description": "Read Users"} in system["scopes"]
    for ref in (system["id"], quote(MGMT, safe="")):
        r = await http.get(f"{P}/{ref}", headers=admin(app))
        assert check_oas(r, "GET", "/resource-servers/{id}")["id"] == system["id"]


async def test_system_api_cannot_be_changed_or_deleted(http: Any, app: Any, caller: None) -> None:
    url = f"{P}/{quote(MGMT, safe='')}"
    message = "The Management API is a system resource server: it cannot be changed or deleted."
    r = await http.patch(url, json={"scopes": [{"value": "read:everything"}]}, headers=admin(app))
    check_error(r, 400, message, "operation_not_supported")
    r = await http.delete(url, headers=admin(app))
    check_error(r, 400, message, "operation_not_supported")
    r = await http.get(url, headers=admin(app))
    assert {"value": "read:users", "description": "Read Users"} in r.json()["scopes"]


@pytest.mark.parametrize("identifier", [MGMT, "https://alias.example/api/v2/"])
async def test_management_identifiers_cannot_be_taken(
    http: Any, app: Any, caller: None, identifier: str
) -> None:
    # An alias API could mint tokens the Management API accepts: refused like a duplicate.
    r = await http.post(
        P, json={"identifier": identifier, "scopes": [{"value": "read:users"}]}, headers=admin(app)
    )
    check_error(r, 409, "A resource server with the same identifier already exists.")


async def test_create_defaults_and_conflict(http: Any, app: Any, caller: None) -> None:
    body = await create(
        http, app, identifier="https://orders.example/", scopes=[{"value": "read:orders"}]
    )
    assert body["name"] == "https://orders.example/"
    assert body["signing_alg"] == "RS256"
    assert body["token_lifetime"] == 86_400
    assert body["is_system"] is False
    assert body["scopes"] == [{"value": "read:orders", "description": ""}]
    assert "signing_secret" not in body
    r = await http.post(P, json={"identifier": "https://orders.example/"}, headers=admin(app))
    check_error(r, 409, "A resource server with the same identifier already exists.")
    # {id} may be the URL-encoded identifier, slashes included.
    r = await http.get(f"{P}/{quote('https://orders.example/', safe='')}", headers=admin(app))
    assert check_oas(r, "GET", "/resource-servers/{id}")["id"] == body["id"]


async def test_hs256_gets_a_secret_that_is_never_logged(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, identifier="urn:hs", name="HS", signing_alg="HS256")
    secret = body["signing_secret"]
    assert len(secret) >= 16
    events = [e for e in await sapi_events(app) if e.description == "Create a resource server"]
    assert events and secret not in json.dumps([e.data for e in events])
    r = await http.patch(f"{P}/{body['id']}", json={"signing_alg": "RS256"}, headers=admin(app))
    assert "signing_secret" not in check_patch(r)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"identifier": "urn:a", "signing_alg": "RS512"},
         "signing_alg RS512 is not supported; use RS256 or HS256."),
        ({"identifier": "urn:a", "signing_secret": "s" * 20},
         "Payload validation error: 'signing_secret is only used with signing_alg HS256' on "
         "property signing_secret."),
        ({"identifier": "urn:a", "token_dialect": "access_token_authz"},
         "Payload validation error: 'access_token_authz needs enforce_policies: true' on "
         "property token_dialect."),
        ({"identifier": "urn:a", "scopes": [{"value": "x"}, {"value": "x"}]},
         "Payload validation error: 'Duplicate scope value: x' on property scopes."),
        ({"identifier": "urn:a", "token_encryption": {"format": "compact-nested-jwe"}},
         "Keystead does not support token_encryption; leave it out or send null."),
        ({"name": "no identifier"},
         "Payload validation error: 'Missing required property: identifier'."),
        ({"identifier": "urn:a", "scopes": [{"value": ""}]},
         "Payload validation error: 'String is too short (0 chars), minimum 1' on property "
         "scopes.0.value."),
    ],
)  # fmt: skip
async def test_bad_bodies_are_400(
    http: Any, app: Any, caller: None, body: Any, message: str
) -> None:
    r = await http.post(P, json=body, headers=admin(app))
    check_error(r, 400, message)
    r = await http.get(f"{P}/urn:a", headers=admin(app))
    assert r.status_code == 404  # nothing was created


async def test_list_paging_and_filter(http: Any, app: Any, caller: None) -> None:
    for i in range(3):
        await create(http, app, identifier=f"urn:list:{i}")
    everything = check_oas(await http.get(P, headers=admin(app)), "GET", "/resource-servers")
    r = await http.get(
        P, params={"include_totals": "true", "per_page": "2", "page": "1"}, headers=admin(app)
    )
    paged = check_oas(r, "GET", "/resource-servers")
    assert set(paged) == {"start", "limit", "total", "resource_servers"}
    assert (paged["start"], paged["limit"], paged["total"]) == (2, 2, len(everything))
    assert paged["resource_servers"] == everything[2:4]
    r = await http.get(
        P, params=[("identifiers", "urn:list:0"), ("identifiers", "urn:list:2")], headers=admin(app)
    )
    found = check_oas(r, "GET", "/resource-servers")
    assert sorted(api["identifier"] for api in found) == ["urn:list:0", "urn:list:2"]
    r = await http.get(
        P, params=[("identifiers", f"urn:{i}") for i in range(11)], headers=admin(app)
    )
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_query_string"
    r = await http.get(P, params={"per_page": "0"}, headers=admin(app))
    assert r.status_code == 400


async def test_patch_and_unknown(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, identifier="urn:patch", scopes=[{"value": "a"}])
    r = await http.patch(
        f"{P}/{body['id']}",
        json={"name": "Patched", "scopes": [{"value": "b", "description": "B"}],
              "allow_offline_access": True, "token_lifetime": 600},
        headers=admin(app),
    )  # fmt: skip
    patched = check_patch(r)
    assert patched["name"] == "Patched"
    assert patched["scopes"] == [{"value": "b", "description": "B"}]
    assert patched["allow_offline_access"] is True and patched["token_lifetime"] == 600
    assert patched["identifier"] == "urn:patch"
    r = await http.patch(f"{P}/{body['id']}", json={"identifier": "urn:x"}, headers=admin(app))
    check_error(
        r, 400, "Payload validation error: 'Additional properties not allowed: identifier'."
    )
    for r in (
        await http.patch(f"{P}/missing", json={"name": "x"}, headers=admin(app)),
        await http.get(f"{P}/missing", headers=admin(app)),
    ):
        check_error(r, 404, "The resource server does not exist.", "inexistent_resource_server")
    r = await http.patch(
        f"{P}/{body['id']}", json={"name": "x"}, headers=admin(app, "read:resource_servers")
    )
    check_error(r, 403, "Insufficient scope, expected any of: update:resource_servers")


async def test_delete_takes_grants_along(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, identifier="urn:doomed", scopes=[{"value": "x"}])
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).client_grants.create(
            ClientGrant(id="", client_id=M2M, audience="urn:doomed", scope=("x",))
        )
    r = await http.delete(f"{P}/{body['id']}", headers=admin(app))
    assert r.status_code == 204
    check_oas(r, "DELETE", "/resource-servers/{id}")
    async with state.transaction() as session:
        assert not await state.repos(session).client_grants.list(audience="urn:doomed")
    r = await http.delete(f"{P}/{body['id']}", headers=admin(app))
    assert r.status_code == 204  # already gone


async def test_next_token_sees_scope_changes(http: Any, app: Any, caller: None) -> None:
    """MG-15 for APIs: a scope removed from the API is not granted any more, at once."""
    body = await create(
        http, app, identifier="https://billing.example/",
        scopes=[{"value": "read:bills"}, {"value": "pay:bills"}],
    )  # fmt: skip
    state = state_of(app)
    async with state.transaction() as session:
        worker = await state.repos(session).clients.create(WORKER)
        await state.repos(session).client_grants.create(
            ClientGrant(
                id="", client_id=worker.client_id, audience=body["identifier"],
                scope=("read:bills", "pay:bills"),
            )
        )  # fmt: skip

    async def granted() -> list[str]:
        r = await http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials", "client_id": worker.client_id,
                "client_secret": "worker-secret-" + "x" * 30, "audience": body["identifier"],
            },
        )  # fmt: skip
        assert r.status_code == 200, r.text
        claims = jwt.decode(r.json()["access_token"], options={"verify_signature": False})
        return sorted(str(claims["scope"]).split())

    assert await granted() == ["pay:bills", "read:bills"]
    r = await http.patch(
        f"{P}/{body['id']}", json={"scopes": [{"value": "read:bills"}]}, headers=admin(app)
    )
    check_patch(r)
    assert await granted() == ["read:bills"]


async def test_auth0_python_drives_resource_servers(http: Any, app: Any, caller: None) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope=ALL, gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    made = await sdk.resource_servers.create(
        identifier="https://sdk.example/", name="SDK", scopes=[{"value": "read:sdk"}]
    )
    # PATCH answers 200; the SDK takes any 2xx and parses the same body.
    updated = await sdk.resource_servers.update(made.id, name="SDK 2", allow_offline_access=True)
    assert updated.name == "SDK 2" and updated.allow_offline_access is True
    pager = await sdk.resource_servers.list(per_page=1)
    identifiers = [api.identifier async for api in pager]
    assert MGMT in identifiers and "https://sdk.example/" in identifiers
    assert (await sdk.resource_servers.get(made.id)).identifier == "https://sdk.example/"
    await sdk.resource_servers.delete(made.id)
    assert "https://sdk.example/" not in [
        a.identifier async for a in await sdk.resource_servers.list()
    ]
