"""/api/v2/tenants/settings (contract §10.9, issue 6): the settings Keystead honours, its
`self_service` extension checked as a tenant file's is, scopes, audit events; every response
checked against Auth0's OpenAPI response schema of the same operation."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio
from auth0.management import AsyncAuth0

from keystead.core.apis import Permission, ResourceServer
from keystead.management.tenant_settings import UPDATE_TENANT_SETTINGS
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    MGMT,
    check_error,
    check_oas,
    m2m,
    make_client,
    make_spa,
    make_user,
    mint,
    module_app,
    module_http,
    oas_document,
    sapi_events,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

P = "/api/v2/tenants/settings"
BOTH = "read:tenant_settings update:tenant_settings"
API = "https://api.settings.test/"
DEFAULTS = {"default_audience": "", "default_directory": "", "allowed_logout_urls": []}
POLICY = {
    "audit_values": False,
    "user_metadata": {
        "writable": ["theme"],
        "max_bytes": 2048,
        "schema": {"type": "object", "properties": {"theme": {"enum": ["light", "dark"]}}},
    },
}


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_spa(app)
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).resource_servers.create(
            ResourceServer(id="", identifier=API, name="Settings", scopes=(Permission("read:x"),))
        )


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def restore(app: Any, http: Any) -> Any:
    """Each test starts from, and leaves, a tenant with no settings."""
    yield
    r = await http.patch(P, headers=admin(app), json={**DEFAULTS, "self_service": None})
    assert r.status_code == 200, r.text


def admin(app: Any, scope: str = BOTH) -> dict[str, str]:
    return m2m(app, scope)


async def settings(http: Any, app: Any, query: str = "") -> dict[str, Any]:
    r = await http.get(P + query, headers=admin(app))
    result: dict[str, Any] = check_oas(r, "GET", "/tenants/settings")
    return result


async def patch(http: Any, app: Any, body: dict[str, Any]) -> Any:
    return await http.patch(P, headers=admin(app), json=body)


# --- GET and PATCH of the settings Keystead honours -------------------------------------------


async def test_a_new_tenant_has_auth0s_defaults(app: Any, http: Any) -> None:
    assert await settings(http, app) == DEFAULTS


async def test_patch_changes_and_answers_the_settings(app: Any, http: Any) -> None:
    body = {
        "default_audience": API,
        "default_directory": "Username-Password-Authentication",
        "allowed_logout_urls": ["https://app.example/bye", "http://localhost:3000/"],
    }
    r = await patch(http, app, body)
    assert check_oas(r, "PATCH", "/tenants/settings") == body
    assert await settings(http, app) == body
    # Only what is sent changes.
    r = await patch(http, app, {"allowed_logout_urls": []})
    assert check_oas(r, "PATCH", "/tenants/settings") == {**body, "allowed_logout_urls": []}


async def test_the_management_api_may_be_the_default_audience(app: Any, http: Any) -> None:
    r = await patch(http, app, {"default_audience": MGMT})
    assert check_oas(r, "PATCH", "/tenants/settings")["default_audience"] == MGMT


async def test_allowed_logout_urls_take_effect_at_once(app: Any, http: Any) -> None:
    target = "https://app.example/logged-out"
    r = await http.get("/v2/logout", params={"returnTo": target})
    assert r.status_code == 400  # not on the tenant's list yet
    assert (await patch(http, app, {"allowed_logout_urls": [target]})).status_code == 200
    r = await http.get("/v2/logout", params={"returnTo": target})
    assert r.status_code == 302 and r.headers["location"] == target


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("?fields=default_audience", {"default_audience"}),
        (
            "?fields=default_audience&include_fields=false",
            {"default_directory", "allowed_logout_urls"},
        ),
        ("?include_fields=true", set(DEFAULTS)),
    ],
)  # fmt: skip
async def test_fields_projection(app: Any, http: Any, query: str, keys: set[str]) -> None:
    await patch(http, app, {"self_service": POLICY})
    assert set(await settings(http, app, query)) == keys


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"default_audience": "https://nowhere.test/"},
            "Payload validation error: 'No API with identifier https://nowhere.test/' "
            "on property default_audience.",
        ),
        (
            {"default_directory": "no-such-db"},
            "Payload validation error: 'No database connection named no-such-db' "
            "on property default_directory.",
        ),
        (
            {"allowed_logout_urls": ["https://ok.example/", "javascript:alert(1)"]},
            "Payload validation error: 'Object didn't pass validation for format "
            "url-with-placeholders: javascript:alert(1) (must not use the javascript: scheme)' "
            "on property allowed_logout_urls[1].",
        ),
        (
            {"allowed_logout_urls": ["http://app.example/"]},
            "Payload validation error: 'Object didn't pass validation for format "
            "url-with-placeholders: http://app.example/ (must use https unless the host is a "
            "loopback address)' on property allowed_logout_urls[0].",
        ),
        (
            {"default_audience": None},
            "Payload validation error: 'Expected type string but found type null' "
            "on property default_audience.",
        ),
        (
            {"tenant_name": "x"},
            "Payload validation error: 'Additional properties not allowed: tenant_name'.",
        ),
        ([], "Payload validation error: 'Expected type object but found type array'."),
    ],
)  # fmt: skip
async def test_bad_values_are_400_and_change_nothing(
    app: Any, http: Any, body: Any, message: str
) -> None:
    await patch(http, app, {"default_audience": API})
    r = await http.patch(P, headers=admin(app), json=body)
    check_error(r, 400, message, "invalid_body")
    assert (await settings(http, app))["default_audience"] == API


async def test_features_keystead_lacks_are_refused_unless_they_ask_nothing(
    app: Any, http: Any
) -> None:
    r = await patch(http, app, {"friendly_name": "", "flags": {}, "enabled_locales": []})
    assert check_oas(r, "PATCH", "/tenants/settings") == DEFAULTS
    r = await patch(http, app, {"friendly_name": "Acme", "default_audience": API})
    check_error(
        r,
        400,
        "Keystead does not support friendly_name; leave it out or send null.",
        "operation_not_supported",
    )
    assert (await settings(http, app))["default_audience"] == ""


# --- the self_service extension (issue 6) -----------------------------------------------------


async def test_self_service_is_shown_only_to_who_asks(app: Any, http: Any) -> None:
    r = await patch(http, app, {"self_service": POLICY})
    assert r.status_code == 200 and r.json() == {**DEFAULTS, "self_service": POLICY}
    # Auth0's response schema allows no other properties: plain reads stay in its shape.
    assert await settings(http, app) == DEFAULTS
    r = await http.get(P, params={"fields": "self_service"}, headers=admin(app))
    assert r.status_code == 200 and r.json() == {"self_service": POLICY}
    r = await patch(http, app, {"default_audience": API})
    assert check_oas(r, "PATCH", "/tenants/settings") == {**DEFAULTS, "default_audience": API}


async def test_self_service_null_removes_the_policy(app: Any, http: Any) -> None:
    await patch(http, app, {"self_service": POLICY})
    r = await patch(http, app, {"self_service": None})
    assert r.status_code == 200 and r.json()["self_service"] is None
    r = await http.get(P, params={"fields": "self_service"}, headers=admin(app))
    assert r.json() == {"self_service": None}


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            "on",
            "Payload validation error: 'Expected type object,null but found type string' "
            "on property self_service.",
        ),
        (
            {"writable": ["theme"]},
            "self_service: unknown key 'writable' "
            "(expected audit_values, current_user_tokens, user_metadata)",
        ),
        (
            {"user_metadata": {"writable": "theme"}},
            "self_service.user_metadata.writable must be a list of user_metadata keys, "
            "got a string",
        ),
        (
            {"user_metadata": {"writable": ["prefs.theme"]}},
            "self_service.user_metadata.writable: 'prefs.theme' is not a top-level key name "
            '(a non-empty string, no "." or "$")',
        ),
        (
            {"user_metadata": {"max_bytes": 0}},
            "self_service.user_metadata.max_bytes must be a whole number from 1 to 16777216, got 0",
        ),
        (
            {"user_metadata": {"max_depth": True}},
            "self_service.user_metadata.max_depth must be a whole number from 1 to 100, got True",
        ),
        (
            {"current_user_tokens": "no"},
            "self_service.current_user_tokens must be true or false, got 'no'",
        ),
        (
            {"user_metadata": {"schema": {"type": "array"}}},
            "self_service.user_metadata.schema must describe an object: "
            "user_metadata always is one",
        ),
        (
            {"user_metadata": {"schema": {"properties": {"a": {"$ref": "https://x.test/s"}}}}},
            "self_service.user_metadata.schema: $ref 'https://x.test/s' must point inside "
            "the schema (#/…)",
        ),
    ],
)
async def test_bad_self_service_is_400_naming_the_path(
    app: Any, http: Any, block: Any, message: str
) -> None:
    await patch(http, app, {"self_service": POLICY})
    r = await patch(http, app, {"self_service": block, "default_audience": API})
    check_error(r, 400, message, "invalid_body")
    r = await http.get(P, params={"fields": "self_service,default_audience"}, headers=admin(app))
    assert r.json() == {"self_service": POLICY, "default_audience": ""}  # nothing changed


async def test_bad_schema_is_named(app: Any, http: Any) -> None:
    block = {"user_metadata": {"schema": {"type": "object", "minProperties": -1}}}
    r = await patch(http, app, {"self_service": block})
    assert r.status_code == 400
    assert r.json()["message"].startswith(
        "self_service.user_metadata.schema is not a valid JSON Schema: "
    )


async def test_a_policy_set_here_binds_the_next_current_user_write(app: Any, http: Any) -> None:
    me = await make_user(app, email="policy@example.com", user_metadata={"plan": "free"})
    path = f"/api/v2/users/{me.user_id}"
    headers = user_token(app, me.user_id)
    assert (await patch(http, app, {"self_service": POLICY})).status_code == 200
    r = await http.patch(path, headers=headers, json={"user_metadata": {"plan": "pro"}})
    check_error(r, 400, "user_metadata.plan: not writable by the user", "invalid_body")
    r = await http.patch(path, headers=headers, json={"user_metadata": {"theme": "blue"}})
    check_error(r, 400, "user_metadata.theme: must be one of: light, dark", "invalid_body")
    r = await http.patch(path, headers=headers, json={"user_metadata": {"theme": "dark"}})
    assert r.status_code == 200 and r.json()["user_metadata"] == {"plan": "free", "theme": "dark"}
    # Back to Auth0's behaviour once the policy is removed.
    assert (await patch(http, app, {"self_service": None})).status_code == 200
    r = await http.patch(path, headers=headers, json={"user_metadata": {"plan": "pro"}})
    assert r.status_code == 200


# --- scopes and audit ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("GET", "update:tenant_settings read:users"),
        ("PATCH", "read:tenant_settings update:users"),
    ],
)
async def test_each_operation_needs_its_scope(app: Any, http: Any, method: str, scope: str) -> None:
    r = await http.request(method, P, headers=admin(app, scope), json={"default_audience": API})
    assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"
    assert (await settings(http, app))["default_audience"] == ""


async def test_current_user_tokens_cannot_reach_tenant_settings(app: Any, http: Any) -> None:
    me = await make_user(app, email="nosy@example.com")
    for method in ("GET", "PATCH"):
        r = await http.request(method, P, headers=user_token(app, me.user_id), json={})
        assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"


async def test_patch_logs_sapi_with_fields_not_values(app: Any, http: Any) -> None:
    before = await sapi_events(app)
    await patch(http, app, {"self_service": POLICY, "default_audience": API})
    (event,) = [e for e in await sapi_events(app) if e not in before]
    assert event.description == "Update tenant settings"
    assert event.client_id == M2M
    details = event.data["details"]
    assert details["fields"] == ["default_audience", "self_service"]
    assert details["actor"] == {"sub": f"{M2M}@clients", "scopes": ["update:tenant_settings"]}
    assert "theme" not in str(event.data)


# --- Auth0's request schema and SDK -----------------------------------------------------------


async def test_request_schema_follows_the_openapi_document() -> None:
    theirs = oas_document()["components"]["schemas"]["UpdateTenantSettingsRequestContent"]
    ours = UPDATE_TENANT_SETTINGS
    assert ours["properties"].keys() == theirs["properties"].keys()
    assert ours["additionalProperties"] is False
    for name, prop in ours["properties"].items():
        if prop:  # {}: unsupported, checked by refuse_unsupported
            assert prop["type"] == theirs["properties"][name]["type"], name


async def test_auth0_python_reads_and_updates_settings(app: Any, http: Any) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope=BOTH, gty="client-credentials")
    sdk = AsyncAuth0(base_url=ISSUER + "api/v2", token=token, httpx_client=http)
    await sdk.tenants.settings.update(default_audience=API, allowed_logout_urls=["https://a.test/"])
    got = await sdk.tenants.settings.get()
    assert got.default_audience == API and got.allowed_logout_urls == ["https://a.test/"]
    # The extension through the SDK's escape hatch for extra body parameters.
    await sdk.tenants.settings.update(
        request_options={"additional_body_parameters": {"self_service": POLICY}}
    )
    r = await http.get(P, params={"fields": "self_service"}, headers=admin(app))
    assert r.json() == {"self_service": POLICY}
