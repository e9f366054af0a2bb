"""/api/v2/client-grants (contract §10.4, §8.4; security case MG-15): shapes, checkpoint paging as
the SDKs follow it, scope checks, and grants that take effect on the next token request."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0

from keystead.core.apis import Permission, ResourceServer
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
app = module_app()
http = module_http()

ALL = "read:client_grants create:client_grants update:client_grants delete:client_grants"
P = "/api/v2/client-grants"
API = "https://orders.example/"
SECRET = "orders-worker-secret-" + "x" * 30


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def setup(app: Any) -> None:
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    state = state_of(app)
    async with state.transaction() as session:
        repos = state.repos(session)
        await repos.resource_servers.create(
            ResourceServer(
                id="", identifier=API, name="Orders",
                scopes=(Permission("read:orders"), Permission("write:orders")),
            )
        )  # fmt: skip
        for i in range(5):
            await repos.clients.create(
                Client(
                    client_id=f"worker{i}", name=f"Worker {i}", app_type="non_interactive",
                    client_secret=SECRET, grant_types=("client_credentials",),
                )
            )  # fmt: skip


def admin(app: Any, scope: str = ALL) -> dict[str, str]:
    return m2m(app, scope)


async def grant(http: Any, app: Any, **body: Any) -> dict[str, Any]:
    r = await http.post(P, json=body, headers=admin(app))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = check_oas(r, "POST", "/client-grants")
    return result


async def token(http: Any, client_id: str, **extra: str) -> Any:
    return await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials", "client_id": client_id, "client_secret": SECRET,
            "audience": API, **extra,
        },
    )  # fmt: skip


async def test_grant_lifecycle_reaches_the_token_endpoint(http: Any, app: Any, setup: None) -> None:
    """MG-15: no grant, no token; a grant works at once; after deletion new tokens are refused."""
    refused = await token(http, "worker0")
    assert refused.status_code == 403 and refused.json()["error"] == "access_denied"
    body = await grant(http, app, client_id="worker0", audience=API, scope=["read:orders"])
    assert body == {
        "id": body["id"], "client_id": "worker0", "audience": API, "scope": ["read:orders"],
        "organization_usage": "deny", "allow_any_organization": False, "is_system": False,
        "subject_type": "client", "allow_all_scopes": False,
    }  # fmt: skip
    assert body["id"].startswith("cgr_")
    r = await token(http, "worker0")
    assert r.status_code == 200 and r.json()["scope"] == "read:orders"
    r = await http.patch(
        f"{P}/{body['id']}", json={"scope": ["read:orders", "write:orders"]}, headers=admin(app)
    )
    assert check_oas(r, "PATCH", "/client-grants/{id}")["scope"] == ["read:orders", "write:orders"]
    assert (await token(http, "worker0")).json()["scope"] == "read:orders write:orders"
    r = await http.delete(f"{P}/{body['id']}", headers=admin(app))
    assert r.status_code == 204
    check_oas(r, "DELETE", "/client-grants/{id}")
    refused = await token(http, "worker0")
    assert refused.status_code == 403 and refused.json()["error"] == "access_denied"
    r = await http.delete(f"{P}/{body['id']}", headers=admin(app))
    assert r.status_code == 204  # already gone: the OpenAPI lists no 404
    r = await http.get(f"{P}/{body['id']}", headers=admin(app))
    check_error(r, 404, "The client grant does not exist.", "inexistent_client_grant")


async def test_writes_log_sapi(http: Any, app: Any, setup: None) -> None:
    body = await grant(http, app, client_id="worker1", audience=API, scope=["write:orders"])
    events = [e for e in await sapi_events(app) if e.description == "Create a client grant"]
    event = next(e for e in events if e.data["details"]["target"]["id"] == body["id"])
    assert event.client_id == M2M
    assert event.data["details"]["changes"] == {"scope": ["write:orders"]}
    assert SECRET not in json.dumps(event.data)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"client_id": "nobody", "audience": API}, 404, "The client does not exist."),
        ({"client_id": "worker2", "audience": "urn:none"}, 404,
         "The resource server does not exist."),
        ({"client_id": "worker2", "audience": API, "scope": ["delete:everything"]}, 400,
         "Payload validation error: 'The scope must be a subset of the resource server's "
         "scopes; not defined: delete:everything' on property scope."),
        ({"client_id": "worker2", "audience": MGMT, "scope": ["read:orders"]}, 400,
         "Payload validation error: 'The scope must be a subset of the resource server's "
         "scopes; not defined: read:orders' on property scope."),
        ({"audience": API}, 400, "Payload validation error: 'Missing required property: "
         "client_id'."),
        ({"client_id": "worker2", "audience": API, "organization_usage": "require"}, 400,
         "Keystead has no organizations: organization_usage may only be deny and "
         "allow_any_organization only false."),
        ({"client_id": "worker2", "audience": API, "default_for": "third_party_clients"}, 400,
         "Keystead does not support default_for; leave it out or send null."),
        ({"client_id": "worker2", "audience": API, "scope": "read:orders"}, 400,
         "Payload validation error: 'Expected type array but found type string' on property "
         "scope."),
    ],
)  # fmt: skip
async def test_bad_creates(
    http: Any, app: Any, setup: None, body: Any, status: int, message: str
) -> None:
    r = await http.post(P, json=body, headers=admin(app))
    check_error(r, status, message)
    r = await http.get(P, params={"client_id": "worker2"}, headers=admin(app))
    assert r.json() == []  # nothing was created


async def test_duplicate_pair_is_409(http: Any, app: Any, setup: None) -> None:
    await grant(http, app, client_id="worker3", audience=API, scope=[])
    r = await http.post(
        P,
        json={"client_id": "worker3", "audience": API, "subject_type": "user"},
        headers=admin(app),
    )
    check_error(r, 409, "A client grant for this client and audience already exists.")


async def test_management_api_grant_and_patch_rules(http: Any, app: Any, setup: None) -> None:
    body = await grant(http, app, client_id="worker4", audience=MGMT, scope=["read:users"])
    url = f"{P}/{body['id']}"
    r = await http.patch(url, json={}, headers=admin(app))
    check_error(r, 400, "Payload validation error: 'Too few properties defined (0), minimum 1'.")
    r = await http.patch(url, json={"scope": ["read:nothing"]}, headers=admin(app))
    assert r.status_code == 400 and "read:nothing" in r.json()["message"]
    r = await http.patch(url, json={"scope": None, "allow_all_scopes": True}, headers=admin(app))
    patched = check_oas(r, "PATCH", "/client-grants/{id}")
    assert patched["scope"] == [] and patched["allow_all_scopes"] is True
    r = await http.patch(url, json={"client_id": "worker0"}, headers=admin(app))
    check_error(r, 400, "Payload validation error: 'Additional properties not allowed: client_id'.")
    r = await http.patch(f"{P}/cgr_missing", json={"scope": []}, headers=admin(app))
    check_error(r, 404, "The client grant does not exist.", "inexistent_client_grant")
    r = await http.post(
        P, json={"client_id": "worker4", "audience": API}, headers=admin(app, "read:client_grants")
    )
    check_error(r, 403, "Insufficient scope, expected any of: create:client_grants")


async def test_list_shapes_and_checkpoint(http: Any, app: Any, setup: None) -> None:
    r = await http.get(P, headers=admin(app))
    everything = check_oas(r, "GET", "/client-grants")
    assert isinstance(everything, list) and len(everything) >= 3
    r = await http.get(P, params={"include_totals": "true", "per_page": "2"}, headers=admin(app))
    paged = check_oas(r, "GET", "/client-grants")
    assert set(paged) == {"start", "limit", "total", "client_grants"}
    assert paged["total"] == len(everything) and paged["client_grants"] == everything[:2]
    # What auth0-python v6 and node v7 send: include_totals=true&take=…, then follow `next`.
    seen: list[dict[str, Any]] = []
    params = {"include_totals": "true", "take": "1"}
    for _ in range(20):
        page = check_oas(
            await http.get(P, params=params, headers=admin(app)), "GET", "/client-grants"
        )
        assert set(page) == {"client_grants", "next"}
        seen += page["client_grants"]
        if not page["next"]:
            break
        params = {"include_totals": "true", "take": "1", "from": page["next"]}
    assert sorted(g["id"] for g in seen) == sorted(g["id"] for g in everything)
    r = await http.get(P, params={"audience": MGMT}, headers=admin(app))
    assert {g["audience"] for g in check_oas(r, "GET", "/client-grants")} == {MGMT}
    r = await http.get(
        P, params={"client_id": "worker3", "subject_type": "client"}, headers=admin(app)
    )
    assert [g["client_id"] for g in check_oas(r, "GET", "/client-grants")] == ["worker3"]
    r = await http.get(P, params={"allow_any_organization": "true"}, headers=admin(app))
    assert check_oas(r, "GET", "/client-grants") == []
    r = await http.get(P, params={"subject_type": "robot"}, headers=admin(app))
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_query_string"


async def test_auth0_python_follows_next(http: Any, app: Any, setup: None) -> None:
    """auth0-python v6 client_grants.list sends include_totals=true&take=… and follows `next`."""
    token = mint(app, sub=f"{M2M}@clients", scope=ALL, gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    for i in range(3):
        await make_client(app, client_id=f"sdk{i}", name=f"SDK {i}", app_type="non_interactive")
        made = await sdk.client_grants.create(client_id=f"sdk{i}", audience=API, scope=[])
    assert made.client_id == "sdk2" and made.scope == []
    pager = await sdk.client_grants.list(take=1)
    ids = [g.id async for g in pager]
    everything = (await http.get(P, headers=admin(app))).json()
    assert sorted(ids) == sorted(g["id"] for g in everything) and len(ids) > 1
    updated = await sdk.client_grants.update(made.id, scope=["read:orders", "write:orders"])
    assert updated.scope == ["read:orders", "write:orders"]
    assert (await sdk.client_grants.get(made.id)).scope == updated.scope
    await sdk.client_grants.delete(made.id)
    assert made.id not in [g.id async for g in await sdk.client_grants.list()]
