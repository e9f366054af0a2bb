"""/api/v2/clients (contract §10.2, §8.3 item 4, §8.4): shapes, secrets by scope, URL checks on
write (AZ-05), system clients, sapi events, and changes seen by the very next token request."""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0
from sqlalchemy import update

from keystead.core.apis import ClientGrant
from keystead.management.schemas import client_grants as cg_schemas
from keystead.management.schemas import clients as clients_schemas
from keystead.management.schemas import resource_servers as rs_schemas
from keystead.management.schemas import roles as role_schemas
from keystead.storage.models import ClientRow
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
    oas_document,
    sapi_events,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

ALL = (
    "read:clients create:clients update:clients delete:clients read:client_keys "
    "update:client_keys read:client_grants"
)
NO_KEYS = "read:clients create:clients update:clients delete:clients"
P = "/api/v2/clients"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def caller(app: Any) -> None:
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")


def admin(app: Any, scope: str = ALL) -> dict[str, str]:
    return m2m(app, scope)


async def create(http: Any, app: Any, **body: Any) -> dict[str, Any]:
    r = await http.post(P, json=body, headers=admin(app))
    assert r.status_code == 201, r.text
    result: dict[str, Any] = check_oas(r, "POST", "/clients")
    return result


async def fetch(http: Any, app: Any, client_id: str, scope: str = ALL) -> dict[str, Any]:
    r = await http.get(f"{P}/{client_id}", headers=admin(app, scope))
    assert r.status_code == 200, r.text
    result: dict[str, Any] = check_oas(r, "GET", "/clients/{id}")
    return result


# --- create ---------------------------------------------------------------------------------------


async def test_create_spa_gets_public_defaults(http: Any, app: Any, caller: None) -> None:
    body = await create(
        http, app, name="My SPA", app_type="spa", callbacks=["http://localhost:3000/cb"],
        web_origins=["http://localhost:3000"],
    )  # fmt: skip
    assert len(body["client_id"]) == 32
    assert "client_secret" not in body  # a public client has none
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "implicit", "refresh_token"]
    assert body["refresh_token"]["rotation_type"] == "rotating"
    assert body["refresh_token"]["expiration_type"] == "expiring"
    assert body["jwt_configuration"] == {
        "alg": "RS256", "secret_encoded": False, "lifetime_in_seconds": 36_000
    }  # fmt: skip
    assert body["is_first_party"] is True
    assert body["callbacks"] == ["http://localhost:3000/cb"]


async def test_create_confidential_shows_secret_once(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Backend", app_type="regular_web", description="api")
    secret = body["client_secret"]
    assert len(secret) >= 64
    assert body["token_endpoint_auth_method"] == "client_secret_post"
    assert "client_credentials" in body["grant_types"]
    # Later reads show it only with read:client_keys (§8.3 item 4).
    assert "client_secret" not in await fetch(http, app, body["client_id"], NO_KEYS)
    assert (await fetch(http, app, body["client_id"]))["client_secret"] == secret
    summary = await fetch(http, app, body["client_id"], "read:client_summary")
    assert summary == {
        "client_id": body["client_id"], "name": "Backend", "description": "api",
        "app_type": "regular_web",
    }  # fmt: skip


async def test_create_logs_sapi_without_the_secret(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Logged", app_type="non_interactive")
    events = [e for e in await sapi_events(app) if e.data["details"]["target"].get("client_id")]
    event = next(e for e in events if e.data["details"]["target"]["client_id"] == body["client_id"])
    assert event.description == "Create a client"
    assert event.client_id == M2M
    assert event.data["details"]["fields"] == ["app_type", "name"]
    assert body["client_secret"] not in json.dumps(event.data)


@pytest.mark.parametrize(
    ("field", "url", "reason"),
    [
        ("callbacks", "https://app.example/cb#x", "must not contain a fragment"),
        ("callbacks", "javascript:alert(1)", "must not use the javascript: scheme"),
        ("callbacks", "data:text/html,hi", "must not use the data: scheme"),
        ("callbacks", "vbscript:msgbox", "must not use the vbscript: scheme"),
        ("callbacks", "http://app.example/cb", "must use https unless the host is a loopback"),
        ("allowed_logout_urls", "https://app.example/#frag", "must not contain a fragment"),
        ("web_origins", "http://app.example", "must use https unless the host is a loopback"),
        ("allowed_origins", "https://app.example/path", "must be an origin"),
    ],
)
async def test_az05_bad_urls_are_refused_on_create(
    http: Any, app: Any, caller: None, field: str, url: str, reason: str
) -> None:
    before = len((await http.get(P, headers=admin(app))).json())
    body = {"name": "Evil", "app_type": "spa", field: ["https://ok.example/x", url]}
    if field in ("web_origins", "allowed_origins"):
        body[field] = ["https://ok.example", url]
    r = await http.post(P, json=body, headers=admin(app))
    error = check_error(r, 400, r.json()["message"], "invalid_body")
    assert error["message"].startswith("Payload validation error: ")
    assert error["message"].endswith(f"on property {field}[1].")
    assert reason in error["message"]
    assert len((await http.get(P, headers=admin(app))).json()) == before  # nothing created


async def test_az05_bad_callback_on_patch_leaves_client_unchanged(
    http: Any, app: Any, caller: None
) -> None:
    body = await create(http, app, name="Web", callbacks=["https://app.example/cb"])
    r = await http.patch(
        f"{P}/{body['client_id']}",
        json={"name": "Renamed", "callbacks": ["https://app.example/cb#steal"]},
        headers=admin(app),
    )
    assert r.status_code == 400
    assert "callbacks[0]" in r.json()["message"]
    after = await fetch(http, app, body["client_id"])
    assert after["name"] == "Web"
    assert after["callbacks"] == ["https://app.example/cb"]


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"name": "x", "foo": 1}, 400, "Payload validation error: 'Additional properties not "
         "allowed: foo'."),
        ({}, 400, "Payload validation error: 'Missing required property: name'."),
        ({"name": "a<b"}, 400, "Payload validation error: 'String does not match pattern "
         "^[^<>]+$: a<b' on property name."),
        ({"name": "x", "app_type": "box"}, 400, "app_type box is not supported; use spa, native, "
         "regular_web or non_interactive."),
        ({"name": "x", "addons": {"samlp": {}}}, 400, "Keystead does not support addons; leave it "
         "out or send null."),
        ({"name": "x", "app_type": "spa", "token_endpoint_auth_method": "client_secret_post"}, 400,
         "Payload validation error: 'A spa client cannot keep a secret: use none (it "
         "authenticates with PKCE)' on property token_endpoint_auth_method."),
        ({"name": "x", "app_type": "spa", "grant_types": ["client_credentials"]}, 400,
         "Payload validation error: 'client_credentials needs a confidential client "
         "(token_endpoint_auth_method client_secret_post or client_secret_basic)' on property "
         "grant_types."),
        ({"name": "x", "grant_types": ["magic"]}, 400, "Payload validation error: 'Unknown grant "
         "type: magic' on property grant_types[0]."),
        ({"name": "x", "refresh_token": {"rotation_type": "rotating", "expiration_type":
          "non-expiring"}}, 400, "Payload validation error: 'Rotating refresh tokens must be "
         "expiring' on property refresh_token.expiration_type."),
        ({"name": "x", "jwt_configuration": {"alg": "RS512"}}, 400, "jwt_configuration.alg "
         "RS512 is not supported; use RS256, PS256 or HS256."),
        ({"name": "x", "initiate_login_uri": "http://app.example/login"}, 400, "Payload "
         "validation error: 'Must be an https URL without a fragment: "
         "http://app.example/login' on property initiate_login_uri."),
        ({"name": "x", "client_metadata": {"k": 1}}, 400, "Payload validation error: 'Expected "
         "type string but found type integer' on property client_metadata.k."),
    ],
)  # fmt: skip
async def test_bad_bodies_are_400(
    http: Any, app: Any, caller: None, body: Any, status: int, message: str
) -> None:
    r = await http.post(P, json=body, headers=admin(app))
    check_error(r, status, message)


async def test_features_asking_for_nothing_are_accepted(http: Any, app: Any, caller: None) -> None:
    # An exported Auth0 configuration carries these with their defaults (§ schemas/__init__.py).
    body = await create(
        http, app, name="Exported", addons={}, custom_login_page="",
        require_pushed_authorization_requests=False, sso_disabled=False, logo_uri="",
        oidc_conformant=True, client_metadata={"team": "blue"},
    )  # fmt: skip
    assert "addons" not in body
    assert body["sso_disabled"] is False
    assert body["client_metadata"] == {"team": "blue"}


# --- read and list ------------------------------------------------------------------------------


async def test_get_unknown_is_404(http: Any, app: Any, caller: None) -> None:
    r = await http.get(f"{P}/nope", headers=admin(app))
    check_error(r, 404, "The client does not exist.", "inexistent_client")


async def test_fields_projection(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Projected")
    r = await http.get(
        f"{P}/{body['client_id']}", params={"fields": "name,client_id"}, headers=admin(app)
    )
    assert check_oas(r, "GET", "/clients/{id}") == {
        "name": "Projected",
        "client_id": body["client_id"],
    }
    r = await http.get(
        f"{P}/{body['client_id']}",
        params={"fields": "client_secret,callbacks", "include_fields": "false"},
        headers=admin(app),
    )
    shown = check_oas(r, "GET", "/clients/{id}")
    assert "client_secret" not in shown and "callbacks" not in shown and "name" in shown


async def test_read_scopes_are_required(http: Any, app: Any, caller: None) -> None:
    r = await http.get(P, headers=admin(app, "read:users"))
    check_error(
        r, 403,
        "Insufficient scope, expected any of: read:clients,read:client_keys,"
        "read:client_credentials,read:client_summary",
        "insufficient_scope",
    )  # fmt: skip
    r = await http.post(P, json={"name": "x"}, headers=admin(app, "read:clients"))
    check_error(r, 403, "Insufficient scope, expected any of: create:clients")


async def test_list_shapes(http: Any, app: Any, caller: None) -> None:
    for i in range(3):
        await create(http, app, name=f"Listed {i}", app_type="native")
    r = await http.get(P, headers=admin(app, NO_KEYS))
    everything = check_oas(r, "GET", "/clients")
    assert isinstance(everything, list) and len(everything) >= 4
    assert all("client_secret" not in c for c in everything)
    r = await http.get(
        P, params={"include_totals": "true", "page": "1", "per_page": "2"}, headers=admin(app)
    )
    paged = check_oas(r, "GET", "/clients")
    assert set(paged) == {"start", "limit", "total", "clients"}
    assert (paged["start"], paged["limit"], paged["total"]) == (2, 2, len(everything))
    assert [c["client_id"] for c in paged["clients"]] == [c["client_id"] for c in everything[2:4]]
    r = await http.get(P, params={"app_type": "native,spa", "per_page": "100"}, headers=admin(app))
    assert {c["app_type"] for c in check_oas(r, "GET", "/clients")} <= {"native", "spa"}
    r = await http.get(P, params={"is_global": "true"}, headers=admin(app))
    assert check_oas(r, "GET", "/clients") == []
    r = await http.get(P, params={"per_page": "0", "include_totals": "true"}, headers=admin(app))
    assert check_oas(r, "GET", "/clients")["clients"] == []


async def test_list_checkpoint_follows_next(http: Any, app: Any, caller: None) -> None:
    all_ids = sorted(c["client_id"] for c in (await http.get(P, headers=admin(app))).json())
    seen: list[str] = []
    params: dict[str, str] = {"include_totals": "true", "take": "2"}
    for _ in range(50):
        r = await http.get(P, params=params, headers=admin(app))
        body = check_oas(r, "GET", "/clients")
        assert "total" not in body  # checkpoint shape even with include_totals (§8.4)
        seen += [c["client_id"] for c in body["clients"]]
        if not body["next"]:
            break
        params = {"include_totals": "true", "take": "2", "from": body["next"]}
    assert seen == all_ids
    r = await http.get(P, params={"from": "!!not-a-cursor!!"}, headers=admin(app))
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_query_string"


@pytest.mark.parametrize(
    "params",
    [{"per_page": "101"}, {"page": "-1"}, {"per_page": "abc"}, {"include_totals": "maybe"},
     {"take": "0"}, {"take": "101"}, {"page": "20", "per_page": "50"}],
)  # fmt: skip
async def test_bad_paging_is_400(http: Any, app: Any, caller: None, params: Any) -> None:
    r = await http.get(P, params=params, headers=admin(app))
    assert r.status_code == 400
    assert r.json()["errorCode"] == "invalid_query_string"


# --- update ---------------------------------------------------------------------------------------


async def test_patch_merges_metadata_and_keeps_other_fields(
    http: Any, app: Any, caller: None
) -> None:
    body = await create(
        http, app, name="Patched", callbacks=["https://a.example/cb"],
        client_metadata={"a": "1", "b": "2"},
    )  # fmt: skip
    r = await http.patch(
        f"{P}/{body['client_id']}",
        json={"description": "new", "client_metadata": {"b": None, "c": "3"}},
        headers=admin(app, NO_KEYS),
    )
    patched = check_oas(r, "PATCH", "/clients/{id}")
    assert patched["client_metadata"] == {"a": "1", "c": "3"}
    assert patched["description"] == "new"
    assert patched["callbacks"] == ["https://a.example/cb"]
    assert "client_secret" not in patched  # not asked for, not shown without read:client_keys


async def test_patch_secret_needs_update_client_keys(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Keyed")
    url = f"{P}/{body['client_id']}"
    r = await http.patch(url, json={"client_secret": "x" * 40}, headers=admin(app, NO_KEYS))
    check_error(r, 403, "You cannot update the following fields: client_secret")
    r = await http.patch(
        url, json={"client_secret": "s" * 40, "name": "n"}, headers=admin(app, "update:client_keys")
    )
    check_error(r, 403, "You cannot update the following fields: name")
    r = await http.patch(url, json={"client_secret": "s" * 40}, headers=admin(app))
    assert check_oas(r, "PATCH", "/clients/{id}")["client_secret"] == "s" * 40
    state = state_of(app)
    async with state.transaction() as session:
        assert await state.repos(session).clients.verify_secret(body["client_id"], "s" * 40)


async def test_patch_to_spa_must_drop_the_secret_method(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Web")
    url = f"{P}/{body['client_id']}"
    r = await http.patch(url, json={"app_type": "spa"}, headers=admin(app))
    assert r.status_code == 400 and "token_endpoint_auth_method" in r.json()["message"]
    r = await http.patch(
        url,
        json={
            "app_type": "spa", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
        },
        headers=admin(app),
    )  # fmt: skip
    assert check_oas(r, "PATCH", "/clients/{id}")["token_endpoint_auth_method"] == "none"


async def test_public_client_turned_confidential_gets_a_secret(
    http: Any, app: Any, caller: None
) -> None:
    body = await create(
        http,
        app,
        name="Was public",
        app_type="regular_web",
        token_endpoint_auth_method="none",
        grant_types=["authorization_code"],
    )
    assert "client_secret" not in body
    r = await http.patch(
        f"{P}/{body['client_id']}",
        json={"token_endpoint_auth_method": "client_secret_basic"},
        headers=admin(app, NO_KEYS),
    )
    patched = check_oas(r, "PATCH", "/clients/{id}")
    assert len(patched["client_secret"]) >= 64  # made by this request: shown once


async def test_empty_patch_and_unknown_client(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Still")
    r = await http.patch(f"{P}/{body['client_id']}", json={}, headers=admin(app))
    check_error(
        r, 400, "Payload validation error: 'Too few properties defined (0), minimum 1'.",
        "invalid_body",
    )  # fmt: skip
    r = await http.patch(f"{P}/missing", json={"name": "x"}, headers=admin(app))
    check_error(r, 404, "The client does not exist.", "inexistent_client")


# --- rotate, delete, system clients ---------------------------------------------------------------


async def test_rotate_secret(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Rotating", app_type="non_interactive")
    r = await http.post(
        f"{P}/{body['client_id']}/rotate-secret", headers=admin(app, "update:client_keys")
    )
    rotated = check_oas(r, "POST", "/clients/{id}/rotate-secret")
    assert rotated["client_secret"] != body["client_secret"]
    state = state_of(app)
    async with state.transaction() as session:
        clients = state.repos(session).clients
        assert not await clients.verify_secret(body["client_id"], body["client_secret"])
        assert await clients.verify_secret(body["client_id"], rotated["client_secret"])
    events = [e for e in await sapi_events(app) if e.description == "Rotate a client secret"]
    assert events and rotated["client_secret"] not in json.dumps([e.data for e in events])
    r = await http.post(f"{P}/missing/rotate-secret", headers=admin(app))
    check_error(r, 404, "The client does not exist.", "inexistent_client")
    spa = await create(http, app, name="SPA", app_type="spa")
    r = await http.post(f"{P}/{spa['client_id']}/rotate-secret", headers=admin(app))
    assert r.status_code == 400
    r = await http.post(f"{P}/{spa['client_id']}/rotate-secret", headers=admin(app, NO_KEYS))
    check_error(r, 403, "Insufficient scope, expected any of: update:client_keys")


async def test_delete(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Doomed", app_type="non_interactive")
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).client_grants.create(
            ClientGrant(id="", client_id=body["client_id"], audience=MGMT, scope=("read:users",))
        )
    r = await http.delete(f"{P}/{body['client_id']}", headers=admin(app))
    check_oas(r, "DELETE", "/clients/{id}")
    assert r.status_code == 204
    r = await http.get(f"{P}/{body['client_id']}", headers=admin(app))
    assert r.status_code == 404
    async with state.transaction() as session:
        assert not await state.repos(session).client_grants.list(client_id=body["client_id"])
    r = await http.delete(f"{P}/{body['client_id']}", headers=admin(app))
    assert r.status_code == 204  # already gone: the OpenAPI lists no 404


async def test_system_client_cannot_be_changed(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="System", app_type="non_interactive")
    state = state_of(app)
    async with state.transaction() as session:
        await session.execute(
            update(ClientRow).where(ClientRow.client_id == body["client_id"]).values(is_system=True)
        )
    url = f"{P}/{body['client_id']}"
    message = "This is a system client: it cannot be changed or deleted through the API."
    for r in (
        await http.patch(url, json={"name": "x"}, headers=admin(app)),
        await http.delete(url, headers=admin(app)),
        await http.post(f"{url}/rotate-secret", headers=admin(app)),
    ):
        check_error(r, 400, message, "operation_not_supported")
    assert (await fetch(http, app, body["client_id"]))["name"] == "System"


# --- no caches: the next token request sees the change ------------------------------------


async def test_token_endpoint_sees_changes_at_once(http: Any, app: Any, caller: None) -> None:
    body = await create(http, app, name="Worker", app_type="non_interactive")
    client_id, secret = body["client_id"], body["client_secret"]
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).client_grants.create(
            ClientGrant(id="", client_id=client_id, audience=MGMT, scope=("read:users",))
        )

    async def token(with_secret: str) -> Any:
        return await http.post(
            "/oauth/token",
            data={
                "grant_type": "client_credentials", "client_id": client_id,
                "client_secret": with_secret, "audience": MGMT,
            },
        )  # fmt: skip

    assert (await token(secret)).status_code == 200
    r = await http.post(f"{P}/{client_id}/rotate-secret", headers=admin(app))
    new_secret = r.json()["client_secret"]
    assert (await token(secret)).status_code == 401
    assert (await token(new_secret)).status_code == 200
    r = await http.patch(
        f"{P}/{client_id}", json={"grant_types": ["authorization_code"]}, headers=admin(app)
    )
    assert r.status_code == 200
    refused = await token(new_secret)
    assert refused.status_code == 403 and refused.json()["error"] == "unauthorized_client"


# --- the request schemas of every tenant-resource endpoint follow the OpenAPI document ----------

SCHEMAS = {
    "CreateClientRequestContent": clients_schemas.CREATE_CLIENT,
    "UpdateClientRequestContent": clients_schemas.UPDATE_CLIENT,
    "CreateResourceServerRequestContent": rs_schemas.CREATE_RESOURCE_SERVER,
    "UpdateResourceServerRequestContent": rs_schemas.UPDATE_RESOURCE_SERVER,
    "CreateClientGrantRequestContent": cg_schemas.CREATE_CLIENT_GRANT,
    "UpdateClientGrantRequestContent": cg_schemas.UPDATE_CLIENT_GRANT,
    "CreateRoleRequestContent": role_schemas.CREATE_ROLE,
    "UpdateRoleRequestContent": role_schemas.UPDATE_ROLE,
    "AddRolePermissionsRequestContent": role_schemas.PERMISSIONS,
    "DeleteRolePermissionsRequestContent": role_schemas.PERMISSIONS,
    "CreateUserPermissionsRequestContent": role_schemas.PERMISSIONS,
    "DeleteUserPermissionsRequestContent": role_schemas.PERMISSIONS,
    "AssignRoleUsersRequestContent": role_schemas.ROLE_USERS,
    "AssignUserRolesRequestContent": role_schemas.USER_ROLES,
    "DeleteUserRolesRequestContent": role_schemas.USER_ROLES,
}


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    components = oas_document()["components"]["schemas"]
    while "$ref" in schema:
        schema = {**components[schema["$ref"].split("/")[-1]], **{
            k: v for k, v in schema.items() if k != "$ref"
        }}  # fmt: skip
    return schema


def _types(schema: dict[str, Any]) -> set[str]:
    value = schema.get("type", [])
    return {value} if isinstance(value, str) else set(value)


def _narrower(ours: dict[str, Any], theirs: dict[str, Any], at: str) -> None:
    """Ours accepts no type, enum value or property the OpenAPI refuses."""
    theirs = _resolve(theirs)
    assert _types(ours) <= _types(theirs) or not _types(theirs), at
    if "enum" in ours and "enum" in theirs:
        assert set(ours["enum"]) <= set(theirs["enum"]), at
    if "pattern" in theirs:
        assert ours.get("pattern") == theirs["pattern"], at
    if "properties" in ours and "properties" in theirs:
        assert ours["properties"].keys() <= theirs["properties"].keys(), at
        for name, prop in ours["properties"].items():
            if prop:  # {}: an UNSUPPORTED property, checked by refuse_unsupported
                _narrower(prop, theirs["properties"][name], f"{at}.{name}")
    if "items" in ours and "items" in theirs:
        _narrower(ours["items"], theirs["items"], f"{at}[]")


@pytest.mark.parametrize("name", sorted(SCHEMAS))
async def test_request_schemas_follow_the_openapi_document(name: str) -> None:
    ours, theirs = SCHEMAS[name], oas_document()["components"]["schemas"][name]
    assert ours["properties"].keys() == theirs["properties"].keys()  # every property accounted for
    assert set(theirs.get("required", ())) <= set(ours.get("required", ()))
    assert ours["additionalProperties"] is False
    _narrower(ours, theirs, name)


# --- auth0-python v6 (the SDK itself, in process) -------------------------------------------------


async def test_auth0_python_drives_clients(http: Any, app: Any, caller: None) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope=ALL, gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    made = [await sdk.clients.create(name=f"SDK {i}", app_type="non_interactive") for i in range(3)]
    assert all(c.client_secret for c in made)
    pager = await sdk.clients.list(per_page=2)  # include_totals=true; pages until an empty one
    listed = [c.client_id async for c in pager]
    assert {c.client_id for c in made} <= set(listed) and len(listed) == len(set(listed))
    fetched = await sdk.clients.get(made[0].client_id)
    assert fetched.client_secret == made[0].client_secret
    rotated = await sdk.clients.rotate_secret(made[0].client_id)
    assert rotated.client_secret and rotated.client_secret != made[0].client_secret
    updated = await sdk.clients.update(made[1].client_id, callbacks=["https://sdk.example/cb"])
    assert updated.callbacks == ["https://sdk.example/cb"]
    await sdk.clients.delete(made[2].client_id)
    r = await http.get(f"{P}/{made[2].client_id}", headers=admin(app))
    assert r.status_code == 404
