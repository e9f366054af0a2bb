"""Form-encoded Management API bodies (contract §0.2; the OpenAPI lists form beside JSON): values
converted by the schema, then validated as JSON is; other media types are a 415."""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from keystead.management.bodies import UPDATE_USER
from keystead.management.form_bodies import FormBody, coerce_form, parse_form
from tests.http.helpers import (
    M2M,
    check_error,
    check_oas,
    get_user,
    m2m,
    make_client,
    module_app,
    module_http,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

DB = "Username-Password-Authentication"
SCOPES = "read:users create:users update:users create:clients update:clients read:clients"
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")


def admin(app: Any) -> dict[str, str]:
    return m2m(app, SCOPES)


async def test_create_and_patch_user_with_a_form(http: Any, app: Any) -> None:
    r = await http.post(
        "/api/v2/users",
        data={"connection": DB, "email": "form@example.com", "password": "correct horse 42!x",
              "email_verified": "true", "user_metadata": '{"theme": "dark"}'},
        headers=admin(app),
    )  # fmt: skip
    created = check_oas(r, "POST", "/users")
    assert created["email_verified"] is True and created["user_metadata"] == {"theme": "dark"}
    r = await http.patch(
        f"/api/v2/users/{created['user_id']}",
        content=b"blocked=true&app_metadata=%7B%22plan%22%3A%22pro%22%7D&name=Form+User",
        headers={**admin(app), **FORM},
    )
    patched = check_oas(r, "PATCH", "/users/{id}")
    assert (patched["blocked"], patched["app_metadata"], patched["name"]) == (
        True, {"plan": "pro"}, "Form User",
    )  # fmt: skip


async def test_client_arrays_from_repeated_keys(http: Any, app: Any) -> None:
    r = await http.post(
        "/api/v2/clients",
        content=b"name=Formed&app_type=spa&token_endpoint_auth_method=none"
        b"&callbacks=https%3A%2F%2Fa.example%2Fcb&callbacks=https%3A%2F%2Fb.example%2Fcb"
        b"&web_origins=https%3A%2F%2Fa.example",
        headers={**admin(app), **FORM},
    )
    client = check_oas(r, "POST", "/clients")
    assert client["callbacks"] == ["https://a.example/cb", "https://b.example/cb"]
    assert client["web_origins"] == ["https://a.example"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"blocked=yes", "Payload validation error: 'Expected type boolean but found type "
                         "string' on property blocked."),
        (b"user_metadata=%7Bnope", "Payload validation error: 'Expected type object but found "
                                   "type string' on property user_metadata."),
        (b"name=a&name=b", "Payload validation error: 'Expected type string,null but found "
                           "type array' on property name."),
        (b"foo=1", "Payload validation error: 'Additional properties not allowed: foo'."),
        (b"name=%FF", "Invalid request payload: form body is not UTF-8 or has too many fields"),
        (b"a=1&" * 1001, "Invalid request payload: form body is not UTF-8 or has too many fields"),
    ],
)  # fmt: skip
async def test_bad_forms_are_400(http: Any, app: Any, content: bytes, message: str) -> None:
    user_id = "auth0|f0f0f0f0f0f0f0f0f0f0f0f0"
    r = await http.post(
        "/api/v2/users",
        data={"connection": DB, "user_id": "f0f0f0f0f0f0f0f0f0f0f0f0", "email": "b@example.com",
              "password": "correct horse 42!x"},
        headers=admin(app),
    ) if await get_user(app, user_id) is None else None  # fmt: skip
    assert r is None or r.status_code == 201, r.text
    before = await get_user(app, user_id)
    r = await http.patch(
        f"/api/v2/users/{user_id}", content=content, headers={**admin(app), **FORM}
    )
    check_error(r, 400, message, "invalid_body")
    assert await get_user(app, user_id) == before


@pytest.mark.parametrize("media_type", ["text/plain", "multipart/form-data; boundary=x", "a/b"])
async def test_other_media_types_are_415(http: Any, app: Any, media_type: str) -> None:
    r = await http.post(
        "/api/v2/users",
        content=b'{"connection": "x"}',
        headers={**admin(app), "content-type": media_type},
    )
    base = media_type.partition(";")[0]
    check_error(
        r, 415,
        f"Unsupported Media Type: send {base} bodies as application/json or "
        "application/x-www-form-urlencoded.",
        "unsupported_media_type",
    )  # fmt: skip
    assert r.json()["error"] == "Unsupported Media Type"


async def test_json_variants_still_parse(http: Any, app: Any) -> None:
    for media_type in ("application/json; charset=utf-8", "application/merge-patch+json", None):
        headers = admin(app) if media_type is None else {**admin(app), "content-type": media_type}
        r = await http.post("/api/v2/users", content=b"{}", headers=headers)
        check_error(r, 400, "Payload validation error: 'Missing required property: connection'.")


async def test_coercion_follows_the_schema() -> None:
    body = parse_form(
        b"blocked=false&email_verified=1&user_metadata=%5B%5D&phone_verified=true"
        b"&given_name=true&password=%7B%7D"
    )
    assert body == FormBody(
        blocked="false", email_verified="1", user_metadata="[]", phone_verified="true",
        given_name="true", password="{}",
    )  # fmt: skip
    assert coerce_form(body, UPDATE_USER) == {
        "blocked": False, "email_verified": "1", "user_metadata": "[]", "phone_verified": True,
        "given_name": "true", "password": "{}",
    }  # fmt: skip
    schema = {"properties": {"n": {"type": "integer"}, "x": {"type": "number"},
                             "tags": {"type": "array", "items": {"type": "integer"}}}}  # fmt: skip
    assert coerce_form(FormBody(n="42", x="-1.5", tags=["1", "2"]), schema) == {
        "n": 42, "x": -1.5, "tags": [1, 2],
    }  # fmt: skip
    assert coerce_form(FormBody(n="4e2", tags="[3]"), schema) == {"n": "4e2", "tags": [3]}
    assert coerce_form(FormBody(tags="7"), schema) == {"tags": [7]}
