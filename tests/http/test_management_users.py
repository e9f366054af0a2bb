"""Management API users (contract §9): CRUD, update semantics, bodies, the self-service profile
policy, audit events; every response checked against Auth0's OpenAPI response schema.
Security cases MG-03, MG-04, MG-05, MG-13, MG-17; the community thread (§16 item 4)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
import pytest_asyncio

from keystead.core.passwords import verify_password
from keystead.core.ports import Connection
from keystead.management.bodies import CREATE_USER, UPDATE_USER
from tests.http.helpers import (
    M2M,
    SPA,
    check_error,
    check_oas,
    get_user,
    m2m,
    make_client,
    make_spa,
    make_user,
    module_app,
    module_http,
    oas_document,
    sapi_events,
    set_tenant_setting,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

DB = "Username-Password-Authentication"
ADMIN_SCOPES = "read:users create:users update:users delete:users"
PASSWORD = "correct horse battery staple"
OTHER = "OtherSpa000000000000000000000001"


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_spa(app)
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    await make_client(app, client_id=OTHER, name="Other", app_type="spa")
    state = state_of(app)
    async with state.transaction() as session:
        repos = state.repos(session)
        await repos.connections.create(
            Connection(id="", name="google-oauth2", strategy="google-oauth2")
        )
        await repos.connections.create(
            Connection(
                id="", name="usernames", strategy="auth0", options={"requires_username": True}
            )
        )


@pytest_asyncio.fixture(loop_scope="module")
async def no_policy(app: Any) -> Any:
    """Tests that configure `self_service` leave Auth0's behaviour behind them."""
    yield
    await set_tenant_setting(app, "self_service", {})


def pv(why: str, prop: str | None = None) -> str:
    """Auth0's body validation message."""
    return f"Payload validation error: '{why}'" + (f" on property {prop}." if prop else ".")


def qv(why: str, prop: str) -> str:
    """Auth0's query validation message."""
    return f"Query validation error: '{why}' on property {prop}."


WINDOW = (
    "You can only page through the first 1000 records. "
    "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation."
)
NOT_CREATABLE = (
    "Connection does not support user creation through the API. "
    "It must either be a database or passwordless connection."
)


def email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


async def a_user(app: Any, **fields: Any) -> Any:
    fields.setdefault("email", email())
    return await make_user(app, **fields)


def admin(app: Any, scope: str = ADMIN_SCOPES) -> dict[str, str]:
    return m2m(app, scope)


# --- GET /users/{id} --------------------------------------------------------------------------


async def test_get_user_is_the_full_auth0_user(app: Any, http: Any) -> None:
    user = await a_user(
        app,
        name="Jane",
        given_name="Jane",
        user_metadata={"theme": "dark"},
        app_metadata={"plan": "pro"},
        password_hash="$argon2id$not-a-real-hash",
    )
    r = await http.get(f"/api/v2/users/{user.user_id}", headers=admin(app))
    body = check_oas(r, "GET", "/users/{id}")
    local = user.user_id.split("|")[1]
    assert body == {
        "user_id": user.user_id,
        "email": user.email,
        "email_verified": False,
        "created_at": body["created_at"],
        "updated_at": body["updated_at"],
        "identities": [
            {"connection": DB, "provider": "auth0", "user_id": local, "isSocial": False}
        ],
        "app_metadata": {"plan": "pro"},
        "user_metadata": {"theme": "dark"},
        "name": "Jane",
        "given_name": "Jane",
    }
    assert "argon2" not in r.text


async def test_unknown_user_is_404(app: Any, http: Any) -> None:
    r = await http.get("/api/v2/users/auth0|000000000000000000000000", headers=admin(app))
    check_error(r, 404, "The user does not exist.", "inexistent_user")


@pytest.mark.parametrize("user_id", ["auth0|a.b@c:d", "email|jane@example.com", "sms|+15550100"])
async def test_ids_with_at_dot_and_colon(app: Any, http: Any, user_id: str) -> None:
    await a_user(app, user_id=user_id)
    for path in (user_id, user_id.replace("|", "%7C").replace("@", "%40").replace(":", "%3A")):
        r = await http.get(f"/api/v2/users/{path}", headers=admin(app))
        assert check_oas(r, "GET", "/users/{id}")["user_id"] == user_id


@pytest.mark.parametrize(
    ("query", "keys"),
    [
        ("fields=email,user_id", {"email", "user_id"}),
        ("fields=email,user_id&include_fields=true", {"email", "user_id"}),
        (
            "fields=identities,created_at,updated_at,email_verified&include_fields=false",
            {"user_id", "email", "name"},
        ),
        (
            "include_fields=true",
            {
                "user_id",
                "email",
                "email_verified",
                "identities",
                "created_at",
                "updated_at",
                "name",
            },
        ),
    ],
)
async def test_fields_projection(app: Any, http: Any, query: str, keys: set[str]) -> None:
    user = await a_user(app, name="P")
    r = await http.get(f"/api/v2/users/{user.user_id}?{query}", headers=admin(app))
    assert set(check_oas(r, "GET", "/users/{id}")) == keys


@pytest.mark.parametrize("value", ["maybe", "True", "1", "yes"])
async def test_booleans_are_true_or_false(app: Any, http: Any, value: str) -> None:
    user = await a_user(app)
    r = await http.get(f"/api/v2/users/{user.user_id}?include_fields={value}", headers=admin(app))
    check_error(
        r,
        400,
        "Query validation error: 'Expected type boolean but found type string' "
        "on property include_fields.",
        "invalid_query_string",
    )


# --- the community thread (§16 item 4) and MG-03/04/05 -------------------------------------------


async def test_community_thread(app: Any, http: Any) -> None:
    me = await a_user(app, user_metadata={"a": 1, "b": 2})
    other = await a_user(app)
    headers = user_token(app, me.user_id)
    r = await http.get(f"/api/v2/users/{me.user_id}", headers=headers)
    assert check_oas(r, "GET", "/users/{id}")["user_metadata"] == {"a": 1, "b": 2}
    r = await http.get(f"/api/v2/users/{other.user_id}", headers=headers)
    check_error(
        r, 403, "User to be acted on does not match subject in bearer token.", "unowned_resource"
    )
    r = await http.get("/api/v2/users", headers=headers)
    check_error(r, 403, "Insufficient scope, expected any of: read:users,read:user_idp_tokens")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=headers, json={"user_metadata": {"a": None}}
    )
    assert check_oas(r, "PATCH", "/users/{id}")["user_metadata"] == {"b": 2}
    r = await http.patch(f"/api/v2/users/{me.user_id}", headers=headers, json={"name": "x"})
    check_error(r, 403, "You cannot update the following fields: name", "insufficient_scope")
    assert (await get_user(app, me.user_id)).name is None


async def test_user_token_with_create_current_user_metadata(app: Any, http: Any) -> None:
    me = await a_user(app)
    headers = user_token(app, me.user_id, scope="openid create:current_user_metadata")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=headers, json={"user_metadata": {"x": 1}}
    )
    assert check_oas(r, "PATCH", "/users/{id}")["user_metadata"] == {"x": 1}


async def test_user_token_cannot_patch_another_user(app: Any, http: Any) -> None:
    me, victim = await a_user(app), await a_user(app, user_metadata={"k": "v"})
    r = await http.patch(
        f"/api/v2/users/{victim.user_id.replace('|', '%7C')}",
        headers=user_token(app, me.user_id),
        json={"user_metadata": {"k": "owned"}},
    )
    check_error(
        r, 403, "User to be acted on does not match subject in bearer token.", "unowned_resource"
    )
    assert (await get_user(app, victim.user_id)).user_metadata == {"k": "v"}


async def test_user_token_cannot_touch_app_metadata(app: Any, http: Any) -> None:
    # MG-03
    me = await a_user(app, app_metadata={"role": "user"})
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=user_token(app, me.user_id),
        json={"app_metadata": {"role": "admin"}, "user_metadata": {"ok": True}},
    )
    check_error(r, 403, "You cannot update the following fields: app_metadata")
    stored = await get_user(app, me.user_id)
    assert (stored.app_metadata, stored.user_metadata) == ({"role": "user"}, {})


@pytest.mark.parametrize(
    "body",
    [
        {"password": "an0ther-long-password"},
        {"email": "new@example.com"},
        {"email_verified": True},
        {"phone_verified": True},
        {"blocked": True},
        {"connection": DB},
        {"username": "jane"},
        {"email": "new@example.com", "user_metadata": {"a": 1}},
    ],
    ids=lambda b: ",".join(b),
)
async def test_user_token_cannot_change_other_fields(
    app: Any, http: Any, body: dict[str, Any]
) -> None:
    # MG-04: refused, and nothing changes (password included: A0 allows no change with SPA tokens).
    me = await a_user(app, password_hash="$argon2id$stored")
    before = await get_user(app, me.user_id)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=user_token(app, me.user_id), json=body
    )
    bad = sorted(set(body) - {"user_metadata"})
    check_error(r, 403, "You cannot update the following fields: " + ", ".join(bad))
    assert await get_user(app, me.user_id) == before


@pytest.mark.parametrize("key", ["user_id", "identities", "created_at", "logins_count"])
async def test_fields_no_one_may_set(app: Any, http: Any, key: str) -> None:
    me = await a_user(app)
    for headers in (user_token(app, me.user_id), admin(app)):
        r = await http.patch(f"/api/v2/users/{me.user_id}", headers=headers, json={key: "x"})
        check_error(
            r,
            400,
            pv(f"Additional properties not allowed: {key}"),
            "invalid_body",
        )


async def test_metadata_merges_at_the_top_level(app: Any, http: Any) -> None:
    # MG-05, §9.5
    me = await a_user(
        app, user_metadata={"lang": "fr", "keep": 1, "addresses": {"home": "A", "work": "B"}}
    )
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=user_token(app, me.user_id),
        json={"user_metadata": {"theme": "dark", "lang": None, "addresses": {"home": "C"}}},
    )
    body = check_oas(r, "PATCH", "/users/{id}")
    assert body["user_metadata"] == {"keep": 1, "addresses": {"home": "C"}, "theme": "dark"}


async def test_empty_metadata_clears_it(app: Any, http: Any) -> None:
    me = await a_user(app, user_metadata={"a": 1}, app_metadata={"b": 2})
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=admin(app),
        json={"user_metadata": {}, "app_metadata": {}},
    )
    body = check_oas(r, "PATCH", "/users/{id}")
    assert "user_metadata" not in body and "app_metadata" not in body


# --- PATCH by an admin (§9.5) ---------------------------------------------------------------------


async def test_admin_patch_replaces_and_removes_root_fields(app: Any, http: Any) -> None:
    me = await a_user(app, name="Old", nickname="old", given_name="G", phone_number="+15550100")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=admin(app),
        json={
            "name": "New",
            "nickname": None,
            "given_name": None,
            "blocked": True,
            "phone_verified": True,
        },
    )
    body = check_oas(r, "PATCH", "/users/{id}")
    assert body["name"] == "New"
    assert "nickname" not in body and "given_name" not in body
    assert body["blocked"] is True and body["phone_verified"] is True
    assert body["updated_at"] >= body["created_at"]
    r = await http.patch(f"/api/v2/users/{me.user_id}", headers=admin(app), json={"blocked": False})
    assert "blocked" not in check_oas(r, "PATCH", "/users/{id}")


async def test_admin_changes_the_password(app: Any, http: Any) -> None:
    me = await a_user(app, password_hash="$argon2id$old")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"password": PASSWORD}
    )
    body = check_oas(r, "PATCH", "/users/{id}")
    assert PASSWORD not in r.text and "argon2" not in r.text
    stored = await get_user(app, me.user_id)
    assert stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, PASSWORD)
    assert "last_password_reset" in body
    events = [e for e in await sapi_events(app) if e.user_id == me.user_id]
    assert events and PASSWORD not in json.dumps([e.data for e in events])
    assert events[-1].data["details"]["fields"] == ["password"]


async def test_weak_password_is_refused(app: Any, http: Any) -> None:
    me = await a_user(app, password_hash="$argon2id$old")
    for weak in ("short", "password1"):
        r = await http.patch(
            f"/api/v2/users/{me.user_id}", headers=admin(app), json={"password": weak}
        )
        assert r.status_code == 400 and r.json()["errorCode"] == "invalid_body"
        assert r.json()["message"].startswith("Password")
    assert (await get_user(app, me.user_id)).password_hash == "$argon2id$old"


async def test_new_email_is_lower_cased_and_unverified(app: Any, http: Any) -> None:
    me = await a_user(app, email_verified=True)
    new = email()
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"email": new.upper()}
    )
    body = check_oas(r, "PATCH", "/users/{id}")
    assert (body["email"], body["email_verified"]) == (new, False)


async def test_email_taken_by_another_user_is_409(app: Any, http: Any) -> None:
    taken, me = await a_user(app), await a_user(app)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"email": taken.email}
    )
    assert r.status_code == 409 and r.json()["errorCode"]
    assert (await get_user(app, me.user_id)).email == me.email


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"password": PASSWORD, "email": "x@example.com"},
            "Cannot update password and email simultaneously.",
        ),
        (
            {"password": PASSWORD, "email_verified": True},
            "Cannot update password and email_verified simultaneously.",
        ),
        (
            {"username": "jane", "email": "x@example.com"},
            "Cannot update username and email simultaneously.",
        ),
        (
            {"username": "jane", "password": PASSWORD},
            "Cannot update username and password simultaneously.",
        ),
    ],
)
async def test_fields_that_cannot_change_together(
    app: Any, http: Any, body: dict[str, Any], message: str
) -> None:
    me = await a_user(app)
    r = await http.patch(f"/api/v2/users/{me.user_id}", headers=admin(app), json=body)
    check_error(r, 400, message, "invalid_body")
    assert await get_user(app, me.user_id) == me


async def test_email_of_a_social_user_cannot_change(app: Any, http: Any) -> None:
    social = await a_user(app, user_id="google-oauth2|1035", connection="google-oauth2")
    r = await http.patch(
        f"/api/v2/users/{social.user_id}", headers=admin(app), json={"email": email()}
    )
    check_error(r, 400, "Cannot update email for non-database user.")


async def test_username_needs_a_connection_that_requires_it(app: Any, http: Any) -> None:
    me = await a_user(app)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"username": "jane"}
    )
    check_error(r, 400, "Cannot set username for connection without requires_username.")
    named = await a_user(app, connection="usernames", username="first")
    r = await http.patch(
        f"/api/v2/users/{named.user_id}", headers=admin(app), json={"username": "Second"}
    )
    assert check_oas(r, "PATCH", "/users/{id}")["username"] == "second"
    other = await a_user(app, connection="usernames", username="third")
    r = await http.patch(
        f"/api/v2/users/{other.user_id}", headers=admin(app), json={"username": "SECOND"}
    )
    check_error(r, 409, "The username provided is in use already.")


async def test_app_metadata_only_scope(app: Any, http: Any) -> None:
    me = await a_user(app, app_metadata={"plan": "free", "seats": 1})
    headers = admin(app, "update:users_app_metadata")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=headers, json={"app_metadata": {"plan": "pro"}}
    )
    assert check_oas(r, "PATCH", "/users/{id}")["app_metadata"] == {"plan": "pro", "seats": 1}
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=headers, json={"name": "x", "blocked": True}
    )
    check_error(r, 403, "You cannot update the following fields: blocked, name")


@pytest.mark.parametrize("key", ["email", "blocked", "user_id", "__tenant", "loginsCount"])
async def test_app_metadata_reserved_keys(app: Any, http: Any, key: str) -> None:
    me = await a_user(app)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"app_metadata": {key: "x"}}
    )
    check_error(r, 400, f"app_metadata.{key} is a reserved key.", "invalid_body")
    assert (await get_user(app, me.user_id)).app_metadata == {}


async def test_unknown_user_patch_is_404(app: Any, http: Any) -> None:
    r = await http.patch("/api/v2/users/auth0|nobody", headers=admin(app), json={"name": "x"})
    check_error(r, 404, "The user does not exist.", "inexistent_user")


# --- bodies ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b'{"name": ', "Invalid request payload JSON format"),
        (b"[1, 2]", pv("Expected type object but found type array")),
        (b'"text"', pv("Expected type object but found type string")),
        (b'{"foo": 1, "bar": 2}', pv("Additional properties not allowed: foo,bar")),
        (b'{"blocked": "true"}', pv("Expected type boolean but found type string", "blocked")),
        (b'{"name": ""}', pv("String is too short (0 chars), minimum 1", "name")),
        (
            b'{"given_name": "' + b"g" * 151 + b'"}',
            pv("String is too long (151 chars), maximum 150", "given_name"),
        ),
        (
            b'{"phone_number": "555"}',
            pv("String does not match pattern ^\\+[0-9]{1,15}$: 555", "phone_number"),
        ),
        (
            b'{"user_metadata": [1]}',
            pv("Expected type object but found type array", "user_metadata"),
        ),
        (
            b'{"picture": "javascript:alert(1)"}',
            pv(
                "Object didn't pass validation for format strict-uri: javascript:alert(1)",
                "picture",
            ),
        ),
        (b"[" * 100_000, "Invalid request payload JSON format"),
    ],
)
async def test_bad_bodies(app: Any, http: Any, content: bytes, message: str) -> None:
    me = await a_user(app)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers={**admin(app), "Content-Type": "application/json"},
        content=content,
    )
    check_error(r, 400, message, "invalid_body")
    assert await get_user(app, me.user_id) == me


async def test_metadata_too_deep_or_too_large(app: Any, http: Any) -> None:
    me = await a_user(app)
    deep: Any = "x"
    for _ in range(101):
        deep = {"d": deep}
    for headers in (admin(app), user_token(app, me.user_id)):
        r = await http.patch(
            f"/api/v2/users/{me.user_id}", headers=headers, json={"user_metadata": {"k": deep}}
        )
        check_error(r, 400, "user_metadata.k: nested more than 100 levels deep", "invalid_body")
        r = await http.patch(
            f"/api/v2/users/{me.user_id}",
            headers=headers,
            json={"user_metadata": {"k": "x" * 17_000}},
        )
        check_error(r, 400, "user_metadata: 17008 bytes, the limit is 16384", "invalid_body")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"app_metadata": {"k": deep}}
    )
    check_error(r, 400, "app_metadata.k" + ".d" * 99 + ": nested more than 100 levels deep")
    assert await get_user(app, me.user_id) == me


async def test_metadata_key_names(app: Any, http: Any) -> None:
    me = await a_user(app)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"user_metadata": {"a.b": 1}}
    )
    check_error(r, 400, 'user_metadata["a.b"]: names must not contain "." or "$"')
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"app_metadata": {"$x": 1}}
    )
    check_error(r, 400, 'app_metadata.$x: names must not contain "." or "$"')


async def test_request_schemas_follow_the_openapi_document() -> None:
    schemas = oas_document()["components"]["schemas"]
    create = schemas["CreateUserRequestContent"]
    assert CREATE_USER["properties"].keys() == create["properties"].keys()
    assert CREATE_USER["required"] == create["required"]
    update = schemas["UpdateUserRequestContent"]
    assert UPDATE_USER["properties"].keys() == update["properties"].keys()
    for ours, theirs in ((CREATE_USER, create), (UPDATE_USER, update)):
        for name, prop in ours["properties"].items():
            spec = theirs["properties"][name]
            expected = spec.get("type", "object")  # metadata is a $ref to an object schema
            assert prop["type"] == expected, name
            for key in ("minLength", "maxLength", "pattern", "format"):
                assert prop.get(key) == spec.get(key), (name, key)


# --- the self-service profile policy (issue 6) -----------------------------------------------


async def test_policy_writable_keys(app: Any, http: Any, no_policy: Any) -> None:
    await set_tenant_setting(app, "self_service", {"user_metadata": {"writable": ["theme"]}})
    me = await a_user(app, user_metadata={"plan": "free"})
    headers = user_token(app, me.user_id)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=headers, json={"user_metadata": {"plan": "pro"}}
    )
    check_error(r, 400, "user_metadata.plan: not writable by the user", "invalid_body")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=headers, json={"user_metadata": {"theme": "dark"}}
    )
    assert check_oas(r, "PATCH", "/users/{id}")["user_metadata"] == {
        "plan": "free",
        "theme": "dark",
    }
    # An admin is not bound by the key list.
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"user_metadata": {"plan": "pro"}}
    )
    assert check_oas(r, "PATCH", "/users/{id}")["user_metadata"] == {"plan": "pro", "theme": "dark"}


async def test_policy_schema_binds_admins_too(app: Any, http: Any, no_policy: Any) -> None:
    schema = {"type": "object", "properties": {"age": {"type": "integer", "minimum": 0}}}
    await set_tenant_setting(app, "self_service", {"user_metadata": {"schema": schema}})
    me = await a_user(app)
    for headers in (user_token(app, me.user_id), admin(app)):
        r = await http.patch(
            f"/api/v2/users/{me.user_id}", headers=headers, json={"user_metadata": {"age": -1}}
        )
        check_error(r, 400, "user_metadata.age: must be an integer ≥ 0", "invalid_body")
    r = await http.patch(
        f"/api/v2/users/{me.user_id}", headers=admin(app), json={"user_metadata": {"age": 30}}
    )
    assert r.status_code == 200


async def test_policy_per_client_override(app: Any, http: Any, no_policy: Any) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        clients = state.repos(session).clients
        spa = await clients.get(SPA)
        await clients.update(
            type(spa)(
                **{
                    **spa.__dict__,
                    "extra": {"self_service": {"user_metadata": {"writable": ["lang"]}}},
                }
            )
        )
    try:
        me = await a_user(app)
        body = {"user_metadata": {"theme": "dark"}}
        r = await http.patch(
            f"/api/v2/users/{me.user_id}", headers=user_token(app, me.user_id), json=body
        )
        check_error(r, 400, "user_metadata.theme: not writable by the user")
        r = await http.patch(
            f"/api/v2/users/{me.user_id}", headers=user_token(app, me.user_id, azp=OTHER), json=body
        )
        assert r.status_code == 200
    finally:
        async with state.transaction() as session:
            clients = state.repos(session).clients
            spa = await clients.get(SPA)
            await clients.update(type(spa)(**{**spa.__dict__, "extra": {}}))


async def test_current_user_tokens_switched_off(app: Any, http: Any, no_policy: Any) -> None:
    await set_tenant_setting(app, "self_service", {"current_user_tokens": False})
    me = await a_user(app)
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=user_token(app, me.user_id),
        json={"user_metadata": {"a": 1}},
    )
    check_error(r, 403, "Current-user tokens are disabled for this application.")
    assert (await get_user(app, me.user_id)).user_metadata == {}


async def test_metadata_audit_has_keys_and_sizes_not_values(app: Any, http: Any) -> None:
    me = await a_user(app, user_metadata={"old": "secret-old-value"})
    r = await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=user_token(app, me.user_id),
        json={"user_metadata": {"old": None, "new": "secret-new-value"}},
    )
    assert r.status_code == 200
    event = [e for e in await sapi_events(app) if e.user_id == me.user_id][-1]
    assert event.client_id == SPA
    assert event.description == "Update a User"
    details = event.data["details"]
    assert details["actor"] == {"sub": me.user_id, "scopes": ["update:current_user_metadata"]}
    assert details["user_metadata"] == {
        "field": "user_metadata",
        "actor": "user",
        "changed_keys": ["new", "old"],
        "old_bytes": 26,  # {"old":"secret-old-value"}
        "new_bytes": 26,
        "keys": {
            "new": {"old_bytes": None, "new_bytes": 18},
            "old": {"old_bytes": 18, "new_bytes": None},
        },
    }
    assert "secret" not in json.dumps(event.data)


async def test_metadata_audit_values_when_configured(app: Any, http: Any, no_policy: Any) -> None:
    await set_tenant_setting(app, "self_service", {"audit_values": True})
    me = await a_user(app)
    await http.patch(
        f"/api/v2/users/{me.user_id}",
        headers=user_token(app, me.user_id),
        json={"user_metadata": {"k": "v"}},
    )
    event = [e for e in await sapi_events(app) if e.user_id == me.user_id][-1]
    assert event.data["details"]["user_metadata"]["keys"]["k"] == {
        "old_bytes": None,
        "new_bytes": 3,
        "new": "v",
    }


# --- POST /users (§9.4) ---------------------------------------------------------------------------


async def test_create_user(app: Any, http: Any) -> None:
    address = email()
    r = await http.post(
        "/api/v2/users",
        headers=admin(app),
        json={
            "connection": DB,
            "email": address.upper(),
            "password": PASSWORD,
            "user_metadata": {"theme": "dark"},
            "app_metadata": {"plan": "pro"},
            "given_name": "Jane",
        },
    )
    body = check_oas(r, "POST", "/users")
    assert body["email"] == address
    assert body["user_id"].startswith("auth0|") and len(body["user_id"]) == 30
    assert body["identities"][0] == {
        "connection": DB,
        "provider": "auth0",
        "user_id": body["user_id"][6:],
        "isSocial": False,
    }
    assert body["nickname"] == address.split("@")[0] and body["name"] == address
    assert body["picture"].startswith("https://s.gravatar.com/avatar/")
    assert (body["user_metadata"], body["app_metadata"]) == ({"theme": "dark"}, {"plan": "pro"})
    assert PASSWORD not in r.text and "password" not in r.text
    stored = await get_user(app, body["user_id"])
    assert verify_password(stored.password_hash, PASSWORD)
    event = [e for e in await sapi_events(app) if e.user_id == body["user_id"]][-1]
    assert event.description == "Create a User" and event.client_id == M2M
    assert PASSWORD not in json.dumps(event.data)


async def test_create_user_with_custom_id(app: Any, http: Any) -> None:
    local = uuid.uuid4().hex
    r = await http.post(
        "/api/v2/users",
        headers=admin(app),
        json={"connection": DB, "email": email(), "password": PASSWORD, "user_id": local},
    )
    assert check_oas(r, "POST", "/users")["user_id"] == f"auth0|{local}"


async def test_duplicate_email_is_409(app: Any, http: Any) -> None:
    # MG-13
    existing = await a_user(app)
    r = await http.post(
        "/api/v2/users",
        headers=admin(app),
        json={"connection": DB, "email": existing.email.upper(), "password": PASSWORD},
    )
    check_error(r, 409, "The user already exists.", "auth0_idp_error")
    r = await http.get(f"/api/v2/users-by-email?email={existing.email}", headers=admin(app))
    assert len(r.json()) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"email": "x@example.com", "password": PASSWORD},
            pv("Missing required property: connection"),
        ),
        (
            {"connection": "nope", "email": "x@example.com", "password": PASSWORD},
            "Connection does not exist.",
        ),
        ({"connection": "google-oauth2", "email": "x@example.com"}, NOT_CREATABLE),
        ({"connection": DB, "password": PASSWORD}, pv("Missing required property: email")),
        ({"connection": DB, "email": "x@example.com"}, pv("Missing required property: password")),
        (
            {"connection": DB, "email": "x@example.com", "password": "short"},
            "PasswordStrengthError: Password is too weak",
        ),
        (
            {"connection": DB, "email": "x@example.com", "password": PASSWORD, "username": "x"},
            "Cannot set username for connection without requires_username.",
        ),
        (
            {"connection": "usernames", "email": "x@example.com", "password": PASSWORD},
            pv("Missing required property: username"),
        ),
        (
            {"connection": DB, "email": "x@example.com", "password": PASSWORD, "id": "x"},
            pv("Additional properties not allowed: id"),
        ),
        (
            {"connection": DB, "email": "not-an-email", "password": PASSWORD},
            pv("Object didn't pass validation for format email: not-an-email", "email"),
        ),
        (
            {"connection": DB, "email": "x@example.com", "password": PASSWORD, "user_id": "a b"},
            pv("String does not match pattern ^\\S*$: a b", "user_id"),
        ),
        (
            {
                "connection": DB,
                "email": "x@example.com",
                "password": PASSWORD,
                "app_metadata": {"user_id": 1},
            },
            "app_metadata.user_id is a reserved key.",
        ),
    ],
)
async def test_create_user_refusals(
    app: Any, http: Any, body: dict[str, Any], message: str
) -> None:
    r = await http.post("/api/v2/users", headers=admin(app), json=body)
    check_error(r, 400, message)
    r = await http.get("/api/v2/users-by-email?email=x@example.com", headers=admin(app))
    assert r.json() == []


async def test_create_user_needs_create_users(app: Any, http: Any) -> None:
    r = await http.post(
        "/api/v2/users", headers=admin(app, "update:users"), json={"connection": DB}
    )
    check_error(r, 403, "Insufficient scope, expected any of: create:users", "insufficient_scope")


# --- DELETE /users/{id} ---------------------------------------------------------------------------


async def test_delete_user(app: Any, http: Any) -> None:
    me = await a_user(app)
    r = await http.delete(f"/api/v2/users/{me.user_id.replace('|', '%7C')}", headers=admin(app))
    assert r.status_code == 204 and r.content == b""
    check_oas(r, "DELETE", "/users/{id}")
    r = await http.get(f"/api/v2/users/{me.user_id}", headers=admin(app))
    check_error(r, 404, "The user does not exist.", "inexistent_user")
    assert [e.description for e in await sapi_events(app) if e.user_id == me.user_id] == [
        "Delete a User"
    ]
    # Auth0 answers 204 for an id it does not know (obs.).
    r = await http.delete(f"/api/v2/users/{me.user_id}", headers=admin(app))
    assert r.status_code == 204


# --- GET /users-by-email --------------------------------------------------------------------------


async def test_users_by_email(app: Any, http: Any) -> None:
    me = await a_user(app, name="By Email")
    await a_user(app, email="x" + me.email)  # a longer address is not a match
    r = await http.get(
        "/api/v2/users-by-email", params={"email": me.email.upper()}, headers=admin(app)
    )
    body = check_oas(r, "GET", "/users-by-email")
    assert [u["user_id"] for u in body] == [me.user_id]
    r = await http.get(
        "/api/v2/users-by-email",
        params={"email": me.email, "fields": "user_id,name", "include_fields": "true"},
        headers=admin(app),
    )
    assert check_oas(r, "GET", "/users-by-email") == [{"user_id": me.user_id, "name": "By Email"}]
    r = await http.get("/api/v2/users-by-email", headers=admin(app))
    check_error(
        r,
        400,
        "Query validation error: 'Missing required property: email'.",
        "invalid_query_string",
    )


# --- GET /users (§9.3, §8.4) ----------------------------------------------------------------------


async def _total(app: Any) -> int:
    state = state_of(app)
    async with state.transaction() as session:
        return await state.repos(session).users.count()


async def test_list_users(app: Any, http: Any) -> None:
    for _ in range(3):
        await a_user(app)
    total = await _total(app)
    r = await http.get("/api/v2/users", headers=admin(app))
    body = check_oas(r, "GET", "/users")
    assert isinstance(body, list) and len(body) == min(total, 50)
    r = await http.get("/api/v2/users?include_totals=true&page=1&per_page=2", headers=admin(app))
    body = check_oas(r, "GET", "/users")
    assert {k: v for k, v in body.items() if k != "users"} == {
        "start": 2,
        "limit": 2,
        "length": 2,
        "total": total,
    }
    r = await http.get("/api/v2/users?per_page=100&include_totals=true", headers=admin(app))
    everyone = check_oas(r, "GET", "/users")["users"]
    assert [u["user_id"] for u in body["users"]] == [u["user_id"] for u in everyone[2:4]]
    r = await http.get("/api/v2/users?page=9&per_page=100&include_totals=true", headers=admin(app))
    assert check_oas(r, "GET", "/users")["users"] == []  # past the end, inside the window
    r = await http.get("/api/v2/users?per_page=0&include_totals=true", headers=admin(app))
    assert check_oas(r, "GET", "/users")["users"] == []


async def test_list_users_sorted(app: Any, http: Any) -> None:
    for _ in range(3):
        await a_user(app)
    for direction, reverse in (("1", False), ("-1", True)):
        r = await http.get(f"/api/v2/users?sort=email:{direction}&per_page=100", headers=admin(app))
        emails = [u["email"] for u in check_oas(r, "GET", "/users") if "email" in u]
        assert emails == sorted(emails, reverse=reverse)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("per_page=100000", qv("Value 100000 is greater than maximum 100", "per_page")),
        ("per_page=101", qv("Value 101 is greater than maximum 100", "per_page")),
        ("page=-1", qv("Value -1 is less than minimum 0", "page")),
        ("per_page=abc", qv("Expected type integer but found type string", "per_page")),
        ("per_page=²", qv("Expected type integer but found type string", "per_page")),
        ("page=99999999999999999999", qv("Expected type integer but found type string", "page")),
        (
            "include_totals=maybe",
            qv("Expected type boolean but found type string", "include_totals"),
        ),
        ("page=20&per_page=50", WINDOW),
        ("page=20", WINDOW),
        ("sort=email", qv("String does not match pattern ^[A-Za-z0-9_.]+:(1|-1)$: email", "sort")),
        ("sort=password_hash:1", "Sort by password_hash is not supported."),
        ("search_engine=v1", "You are not allowed to use search_engine=v1."),
        (
            "search_engine=v2",
            "You are not allowed to use search_engine=v2. Use search_engine=v3 instead.",
        ),
    ],
)
async def test_list_users_bad_queries(app: Any, http: Any, query: str, message: str) -> None:
    # MG-17: bounded or 400, never an unbounded query.
    r = await http.get(f"/api/v2/users?{query}", headers=admin(app))
    check_error(r, 400, message, "invalid_query_string")


async def test_list_users_window_edge(app: Any, http: Any) -> None:
    r = await http.get("/api/v2/users?page=19&per_page=50", headers=admin(app))
    assert r.status_code == 200  # records 950-999: the last page inside the window
    r = await http.get("/api/v2/users?page=33&per_page=30&include_totals=true", headers=admin(app))
    assert check_oas(r, "GET", "/users")["limit"] == 30  # 990-1019, cut at 1000


async def test_sdk_default_parameters(app: Any, http: Any) -> None:
    # auth0-python v4 sends include_fields=true on every call and include_totals=true on lists.
    r = await http.get(
        "/api/v2/users?page=0&per_page=50&include_totals=true&include_fields=true&search_engine=v3",
        headers=admin(app),
    )
    assert set(check_oas(r, "GET", "/users")) == {"start", "limit", "length", "total", "users"}
