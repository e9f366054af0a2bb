"""MFA data (contract §9.2): GET /users/{id}/enrollments, DELETE /users/{id}/multifactor/{provider}
and the authentication-methods resource; secrets go in and never come out. Security case MG-12
(a current-user token sees and removes only its own enrollments). OAS-validated answers."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from keystead.storage.models import AuthenticationMethodRow
from keystead.storage.repositories.authentication_methods import SqlAuthenticationMethods
from tests.http.helpers import (
    M2M,
    check_error,
    check_oas,
    m2m,
    make_client,
    make_spa,
    make_user,
    module_app,
    module_http,
    sapi_events,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app(secret_key="enrollment-tests-secret-key-0123456789")
http = module_http()

TOTP = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
METHODS = "/users/{id}/authentication-methods"
METHOD = "/users/{id}/authentication-methods/{authentication_method_id}"
ALL = (
    "read:authentication_methods create:authentication_methods update:authentication_methods "
    "delete:authentication_methods read:users update:users"
)


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_spa(app)
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")


async def a_user(app: Any) -> Any:
    return await make_user(app, email=f"u{uuid.uuid4().hex[:12]}@example.com")


def admin(app: Any, scope: str = ALL) -> dict[str, str]:
    return m2m(app, scope)


def methods_path(user_id: str) -> str:
    return f"/api/v2/users/{user_id}/authentication-methods"


async def add(app: Any, http: Any, user_id: str, **body: Any) -> dict[str, Any]:
    r = await http.post(methods_path(user_id), json=body, headers=admin(app))
    assert r.status_code == 201, r.text
    created: dict[str, Any] = check_oas(r, "POST", METHODS)
    return created


async def stored(app: Any, user_id: str, type: str, confirmed: bool = True, **props: Any) -> str:
    """A factor the API cannot create (push, webauthn-platform), as a login flow would store."""
    state = state_of(app)
    async with state.transaction() as session:
        repo = SqlAuthenticationMethods(session, state.clock, state.sealer)
        method = await repo.create(user_id, type, confirmed=confirmed, properties=props)
    return method.id


# --- enrollments --------------------------------------------------------------------------------


async def test_no_enrollments_is_an_empty_array(app: Any, http: Any) -> None:
    user = await a_user(app)
    r = await http.get(f"/api/v2/users/{user.user_id}/enrollments", headers=admin(app))
    assert check_oas(r, "GET", "/users/{id}/enrollments") == []


async def test_enrollments_are_the_mfa_methods(app: Any, http: Any) -> None:
    user = await a_user(app)
    totp = await add(app, http, user.user_id, type="totp", totp_secret=TOTP)
    await add(app, http, user.user_id, type="phone", phone_number="+15550100", name="My phone")
    await add(app, http, user.user_id, type="email", email="second@example.com")  # not MFA here
    pending = await stored(app, user.user_id, "webauthn-platform", confirmed=False)
    await stored(app, user.user_id, "push")
    r = await http.get(f"/api/v2/users/{user.user_id}/enrollments", headers=admin(app))
    body = check_oas(r, "GET", "/users/{id}/enrollments")
    by_method = {e["auth_method"]: e for e in body}
    assert set(by_method) == {"authenticator", "sms", "webauthn-platform", "guardian"}
    assert by_method["authenticator"] == {
        "id": totp["id"].split("|")[1],
        "status": "confirmed",
        "type": "authenticator",
        "auth_method": "authenticator",
        "enrolled_at": totp["created_at"],
    }
    assert by_method["sms"]["phone_number"] == "+15550100"
    assert by_method["sms"]["name"] == "My phone"
    assert by_method["webauthn-platform"]["status"] == "pending"
    assert by_method["webauthn-platform"]["id"] == pending.split("|")[1]
    assert "enrolled_at" not in by_method["webauthn-platform"]
    assert by_method["guardian"]["type"] == "pn"
    assert TOTP not in r.text


async def test_mg12_current_user_reads_only_own_enrollments(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    await add(app, http, other.user_id, type="totp", totp_secret=TOTP)
    headers = user_token(app, me.user_id, "read:current_user")
    r = await http.get(f"/api/v2/users/{me.user_id}/enrollments", headers=headers)
    assert check_oas(r, "GET", "/users/{id}/enrollments") == []
    r = await http.get(f"/api/v2/users/{other.user_id}/enrollments", headers=headers)
    check_error(r, 403, "User to be acted on does not match subject in bearer token.")
    r = await http.get(f"/api/v2/users/{other.user_id}/enrollments", headers=admin(app, "x:y"))
    check_error(r, 403, "Insufficient scope, expected any of: read:users,read:current_user")


async def test_enrollments_of_an_unknown_user(app: Any, http: Any) -> None:
    r = await http.get(
        "/api/v2/users/auth0|000000000000000000000000/enrollments", headers=admin(app)
    )
    check_error(r, 404, "User not found.", "inexistent_user")


# --- multifactor --------------------------------------------------------------------------------


async def test_delete_google_authenticator_removes_totp_only(app: Any, http: Any) -> None:
    user = await a_user(app)
    await add(app, http, user.user_id, type="totp", totp_secret=TOTP)
    await add(app, http, user.user_id, type="phone", phone_number="+15550101")
    r = await http.delete(
        f"/api/v2/users/{user.user_id}/multifactor/google-authenticator", headers=admin(app)
    )
    assert check_oas(r, "DELETE", "/users/{id}/multifactor/{provider}") is None
    assert r.status_code == 204
    r = await http.get(methods_path(user.user_id), headers=admin(app))
    assert [m["type"] for m in r.json()] == ["phone"]
    r = await http.delete(f"/api/v2/users/{user.user_id}/multifactor/duo", headers=admin(app))
    assert r.status_code == 204


async def test_multifactor_with_current_user_scope(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    await add(app, http, other.user_id, type="totp", totp_secret=TOTP)
    headers = user_token(app, me.user_id, "delete:current_user_metadata")
    r = await http.delete(
        f"/api/v2/users/{me.user_id}/multifactor/google-authenticator", headers=headers
    )
    assert r.status_code == 204
    # MG-12: not another user's factor.
    r = await http.delete(
        f"/api/v2/users/{other.user_id}/multifactor/google-authenticator", headers=headers
    )
    check_error(r, 403, "User to be acted on does not match subject in bearer token.")
    r = await http.get(methods_path(other.user_id), headers=admin(app))
    assert [m["type"] for m in r.json()] == ["totp"]
    r = await http.delete(
        f"/api/v2/users/{me.user_id}/multifactor/google-authenticator",
        headers=user_token(app, me.user_id, "read:current_user"),
    )
    check_error(
        r, 403, "Insufficient scope, expected any of: update:users,delete:current_user_metadata"
    )


async def test_multifactor_errors(app: Any, http: Any) -> None:
    user = await a_user(app)
    r = await http.delete(f"/api/v2/users/{user.user_id}/multifactor/sms", headers=admin(app))
    check_error(
        r, 400, "Path validation error: 'No enum match for: sms' on property provider.",
        "invalid_uri",
    )  # fmt: skip
    r = await http.delete(
        "/api/v2/users/auth0|000000000000000000000000/multifactor/duo", headers=admin(app)
    )
    check_error(r, 404, "User not found.", "inexistent_user")


# --- authentication methods: create -------------------------------------------------------------


async def test_create_totp_keeps_the_secret_sealed(app: Any, http: Any) -> None:
    user = await a_user(app)
    created = await add(app, http, user.user_id, type="totp", totp_secret=TOTP, name="Phone app")
    assert created["type"] == "totp"
    assert created["id"].startswith("totp|dev_")
    assert created["name"] == "Phone app"
    assert "totp_secret" not in created
    state = state_of(app)
    async with state.transaction() as session:
        row = await session.scalar(
            select(AuthenticationMethodRow).where(AuthenticationMethodRow.id == created["id"])
        )
        assert row is not None and TOTP not in str(row.data)  # encrypted at rest
        repo = SqlAuthenticationMethods(session, state.clock, state.sealer)
        assert await repo.secret(user.user_id, created["id"], "totp_secret") == TOTP
    r = await http.get(methods_path(user.user_id), headers=admin(app))
    assert TOTP not in r.text
    assert all(TOTP not in str(e.data) for e in await sapi_events(app))
    r = await http.post(
        methods_path(user.user_id), json={"type": "totp", "totp_secret": TOTP}, headers=admin(app)
    )
    check_error(r, 409, "Authentication method already exists.")


async def test_create_each_kind(app: Any, http: Any) -> None:
    user = await a_user(app)
    phone = await add(app, http, user.user_id, type="phone", phone_number="+15550102")
    assert phone["preferred_authentication_method"] == "sms"
    assert phone["phone_number"] == "+15550102"
    email = await add(app, http, user.user_id, type="email", email="mfa@example.com")
    assert email["email"] == "mfa@example.com"
    key = await add(
        app, http, user.user_id, type="webauthn-roaming", key_id="k1", public_key="cHVi",
        relying_party_identifier="example.com",
    )  # fmt: skip
    assert key["relying_party_identifier"] == "example.com"
    passkey = await add(
        app, http, user.user_id, type="passkey", key_id="k2", public_key="cHVi",
        credential_device_type="multi_device", transports=["internal"],
    )  # fmt: skip
    assert passkey["transports"] == ["internal"]
    r = await http.post(
        methods_path(user.user_id),
        json={"type": "phone", "phone_number": "+15550102"},
        headers=admin(app),
    )
    check_error(r, 409, "Authentication method already exists.")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"type": "totp"}, "Payload validation error: 'Missing required property: totp_secret'."),
        ({"type": "totp", "totp_secret": "not base32!"},
         "Payload validation error: "
         "'totp_secret must be a base32 encoded secret of 16 to 128 characters'."),
        ({"type": "totp", "totp_secret": "JBSW"},
         "Payload validation error: "
         "'totp_secret must be a base32 encoded secret of 16 to 128 characters'."),
        ({"type": "phone"}, "Payload validation error: 'Missing required property: phone_number'."),
        ({"type": "email", "email": "x@example.com", "phone_number": "+1555"},
         "phone_number does not apply to email authentication methods."),
        ({"type": "totp", "totp_secret": TOTP, "name": "x" * 21},
         "Payload validation error: 'String is too long (21 chars), maximum 20' on property name."),
        ({"type": "email", "email": "no-at-sign"},
         "Payload validation error: 'Object didn't pass validation for format email: no-at-sign'"
         " on property email."),
        ({"type": "totp", "totp_secret": TOTP, "foo": 1},
         "Payload validation error: 'Additional properties not allowed: foo'."),
        ({}, "Payload validation error: 'Missing required property: type'."),
    ],
)  # fmt: skip
async def test_create_rejects(app: Any, http: Any, body: dict[str, Any], message: str) -> None:
    user = await a_user(app)
    r = await http.post(methods_path(user.user_id), json=body, headers=admin(app))
    check_error(r, 400, message)
    assert (await http.get(methods_path(user.user_id), headers=admin(app))).json() == []


async def test_unknown_type_and_bad_json(app: Any, http: Any) -> None:
    user = await a_user(app)
    r = await http.post(
        methods_path(user.user_id), json={"type": "recovery-code"}, headers=admin(app)
    )
    assert r.status_code == 400 and r.json()["errorCode"] == "invalid_body"
    headers = {**admin(app), "content-type": "application/json"}
    r = await http.post(methods_path(user.user_id), content=b"{nope", headers=headers)
    check_error(r, 400, "Invalid request payload JSON format", "invalid_body")


# --- read, update, delete -----------------------------------------------------------------------


async def test_list_and_get(app: Any, http: Any) -> None:
    user = await a_user(app)
    first = await add(app, http, user.user_id, type="totp", totp_secret=TOTP)
    second = await add(app, http, user.user_id, type="email", email="m@example.com")
    r = await http.get(methods_path(user.user_id), headers=admin(app))
    listed = check_oas(r, "GET", METHODS)
    assert [m["id"] for m in listed] == [first["id"], second["id"]]
    assert listed[0]["confirmed"] is True
    assert listed[0]["enrolled_at"] == listed[0]["created_at"]
    r = await http.get(
        methods_path(user.user_id) + "?include_totals=true&per_page=1&page=1", headers=admin(app)
    )
    assert check_oas(r, "GET", METHODS) == {
        "start": 1, "limit": 1, "total": 2, "authenticators": [listed[1]]
    }  # fmt: skip
    encoded = first["id"].replace("|", "%7C")
    r = await http.get(f"{methods_path(user.user_id)}/{encoded}", headers=admin(app))
    assert check_oas(r, "GET", METHOD) == listed[0]


async def test_methods_of_others_and_unknown_ids(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    theirs = await add(app, http, other.user_id, type="totp", totp_secret=TOTP)
    for method, extra in (("GET", {}), ("PATCH", {"json": {"name": "x"}}), ("DELETE", {})):
        r = await http.request(
            method, f"{methods_path(me.user_id)}/{theirs['id']}", headers=admin(app), **extra
        )
        check_error(r, 404, "The authentication method could not be found.")
    r = await http.get(methods_path("auth0|000000000000000000000000"), headers=admin(app))
    check_error(r, 404, "The user does not exist.", "inexistent_user")
    r = await http.post(
        methods_path("auth0|000000000000000000000000"),
        json={"type": "totp", "totp_secret": TOTP},
        headers=admin(app),
    )
    check_error(r, 404, "The user does not exist.", "inexistent_user")
    r = await http.get(f"{methods_path(other.user_id)}/{theirs['id']}", headers=admin(app))
    assert r.status_code == 200  # still there


async def test_patch(app: Any, http: Any) -> None:
    user = await a_user(app)
    phone = await add(app, http, user.user_id, type="phone", phone_number="+15550103")
    totp = await add(app, http, user.user_id, type="totp", totp_secret=TOTP)
    url = f"{methods_path(user.user_id)}/{phone['id']}"
    r = await http.patch(
        url, json={"name": "Work", "preferred_authentication_method": "voice"}, headers=admin(app)
    )
    body = check_oas(r, "PATCH", METHOD)
    assert (body["name"], body["preferred_authentication_method"]) == ("Work", "voice")
    r = await http.patch(
        f"{methods_path(user.user_id)}/{totp['id']}",
        json={"preferred_authentication_method": "sms"},
        headers=admin(app),
    )
    check_error(
        r, 400, "preferred_authentication_method applies to phone authentication methods only."
    )
    r = await http.patch(url, json={"type": "email"}, headers=admin(app))
    check_error(r, 400, "Payload validation error: 'Additional properties not allowed: type'.")


async def test_delete_one_and_all(app: Any, http: Any) -> None:
    user = await a_user(app)
    first = await add(app, http, user.user_id, type="totp", totp_secret=TOTP)
    await add(app, http, user.user_id, type="email", email="m@example.com")
    url = f"{methods_path(user.user_id)}/{first['id']}"
    r = await http.delete(url, headers=admin(app))
    assert check_oas(r, "DELETE", METHOD) is None
    r = await http.delete(url, headers=admin(app))
    check_error(r, 404, "The authentication method could not be found.")
    r = await http.delete(methods_path(user.user_id), headers=admin(app))
    assert check_oas(r, "DELETE", METHODS) is None
    assert (await http.get(methods_path(user.user_id), headers=admin(app))).json() == []


async def test_replace_all(app: Any, http: Any) -> None:
    user = await a_user(app)
    old = await add(app, http, user.user_id, type="email", email="old@example.com")
    r = await http.put(
        methods_path(user.user_id),
        json=[
            {"type": "totp", "totp_secret": TOTP},
            {"type": "phone", "phone_number": "+15550104"},
        ],
        headers=admin(app),
    )
    body = check_oas(r, "PUT", METHODS)
    assert [m["type"] for m in body] == ["totp", "phone"]
    assert TOTP not in r.text
    listed = (await http.get(methods_path(user.user_id), headers=admin(app))).json()
    assert old["id"] not in [m["id"] for m in listed] and len(listed) == 2


@pytest.mark.parametrize(
    ("raw", "status", "message"),
    [
        ({"type": "totp"}, 400,
         "Payload validation error: 'Expected type array but found type object'."),
        ([{"type": "passkey"}], 400, None),
        ([{"type": "totp", "totp_secret": TOTP}] * 2, 409, "Authentication method already exists."),
        ([{"type": "email", "email": "a@example.com"}] * 51, 400,
         "Payload validation error: 'Array is too long (51), maximum 50'."),
    ],
)  # fmt: skip
async def test_replace_all_rejects(
    app: Any, http: Any, raw: Any, status: int, message: str | None
) -> None:
    user = await a_user(app)
    kept = await add(app, http, user.user_id, type="email", email="kept@example.com")
    r = await http.put(methods_path(user.user_id), json=raw, headers=admin(app))
    assert r.status_code == status, r.text
    if message:
        check_error(r, status, message)
    listed = (await http.get(methods_path(user.user_id), headers=admin(app))).json()
    assert [m["id"] for m in listed] == [kept["id"]]  # nothing changed


async def test_passkeys_lock_replace_and_delete_all(app: Any, http: Any) -> None:
    user = await a_user(app)
    await add(app, http, user.user_id, type="passkey", key_id="k", public_key="cHVi")
    lock = "Operation not permitted when the user has registered at least 1 passkey"
    r = await http.put(methods_path(user.user_id), json=[], headers=admin(app))
    check_error(r, 403, lock)
    r = await http.delete(methods_path(user.user_id), headers=admin(app))
    check_error(r, 403, lock)


async def test_limit_per_type(app: Any, http: Any) -> None:
    user = await a_user(app)
    for n in range(20):
        await add(app, http, user.user_id, type="email", email=f"m{n}@example.com")
    r = await http.post(
        methods_path(user.user_id),
        json={"type": "email", "email": "x@example.com"},
        headers=admin(app),
    )
    check_error(r, 403, "You reached the limit of entities of this type for this user.")


async def test_current_user_tokens_have_no_access(app: Any, http: Any) -> None:
    me = await a_user(app)
    headers = user_token(app, me.user_id, "read:current_user update:current_user_metadata")
    r = await http.get(methods_path(me.user_id), headers=headers)
    check_error(r, 403, "Insufficient scope, expected any of: read:authentication_methods")
    r = await http.post(
        methods_path(me.user_id), json={"type": "totp", "totp_secret": TOTP}, headers=headers
    )
    check_error(r, 403, "Insufficient scope, expected any of: create:authentication_methods")


async def test_nul_characters_are_refused(app: Any, http: Any) -> None:
    user = await a_user(app)
    r = await http.post(
        methods_path(user.user_id), json={"type": "email", "email": "a\u0000@example.com"},
        headers=admin(app),
    )  # fmt: skip
    assert r.status_code == 400
    r = await http.post(
        methods_path(user.user_id), json={"type": "totp", "totp_secret": TOTP, "name": "\u0000"},
        headers=admin(app),
    )  # fmt: skip
    check_error(r, 400, "Payload validation error: 'String must not contain NUL characters'.")
    r = await http.get(f"{methods_path(user.user_id)}/totp%7C%00", headers=admin(app))
    check_error(r, 400, "Path validation error: 'String must not contain NUL characters'.")
    r = await http.get("/api/v2/users/auth0%7C%00/enrollments", headers=admin(app))
    check_error(r, 400, "Path validation error: 'String must not contain NUL characters'.")
    r = await http.put(
        methods_path(user.user_id),
        json=[{"type": "totp", "totp_secret": TOTP + "\u0000"}],
        headers=admin(app),
    )
    assert r.status_code == 400
