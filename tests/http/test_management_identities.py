"""Account linking (contract §9.6): POST /users/{id}/identities in both forms with every error
message, and DELETE /users/{id}/identities/{provider}/{user_id}; OAS-validated answers.
Security case MG-10 (a current-user token must prove the secondary with `link_with`)."""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import rsa

from keystead.core.ports import Connection
from tests.conftest import ISSUER
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
    sapi_events,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

DB = "Username-Password-Authentication"
LINK = "POST", "/users/{id}/identities"
UNLINK = "DELETE", "/users/{id}/identities/{provider}/{user_id}"
ADMIN = "read:users update:users"
LINK_SCOPES = "openid read:current_user update:current_user_identities"
CONNECTION_IDS: dict[str, str] = {}


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_spa(app)
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    state = state_of(app)
    async with state.transaction() as session:
        repos = state.repos(session)
        google = await repos.connections.create(
            Connection(id="", name="google-oauth2", strategy="google-oauth2")
        )
        other_db = await repos.connections.create(
            Connection(id="", name="other-db", strategy="auth0")
        )
        default = await repos.connections.by_name(DB)
    assert default is not None
    CONNECTION_IDS.update({"google": google.id, "other-db": other_db.id, DB: default.id})


def email() -> str:
    return f"u{uuid.uuid4().hex[:12]}@example.com"


async def a_user(app: Any, **fields: Any) -> Any:
    fields.setdefault("email", email())
    return await make_user(app, **fields)


async def a_google_user(app: Any, **fields: Any) -> Any:
    return await a_user(
        app, user_id=f"google-oauth2|{uuid.uuid4().int % 10**21}", connection="google-oauth2",
        email_verified=True, **fields,
    )  # fmt: skip


def admin(app: Any, scope: str = ADMIN) -> dict[str, str]:
    return m2m(app, scope)


def id_token(app: Any, sub: Any = None, **claims: Any) -> str:
    """An ID token of the secondary account, as the SPA would hold it after logging in."""
    now = int(time.time())
    body: dict[str, Any] = {"iss": ISSUER, "aud": SPA, "iat": now, "exp": now + 600}
    if sub is not None:
        body["sub"] = sub
    body.update(claims)
    return str(state_of(app).keys.sign({k: v for k, v in body.items() if v is not None}))


def path(user_id: str) -> str:
    return f"/api/v2/users/{user_id}/identities"


# --- the provider form (update:users) -----------------------------------------------------------


async def test_link_by_provider_moves_the_identity_with_its_profile(app: Any, http: Any) -> None:
    primary = await a_user(app, user_metadata={"theme": "dark"}, name="Primary")
    secondary = await a_google_user(
        app, name="Sec Ondary", given_name="Sec", user_metadata={"lang": "fr"},
        app_metadata={"plan": "pro"},
    )  # fmt: skip
    local = secondary.user_id.split("|", 1)[1]
    r = await http.post(
        path(primary.user_id),
        json={"provider": "google-oauth2", "user_id": local},
        headers=admin(app),
    )
    body = check_oas(r, *LINK)
    assert r.status_code == 201
    assert body == [
        {
            "connection": DB,
            "provider": "auth0",
            "user_id": primary.user_id.split("|")[1],
            "isSocial": False,
        },
        {
            "connection": "google-oauth2",
            "provider": "google-oauth2",
            "user_id": local,
            "isSocial": True,
            "profileData": {
                "email": secondary.email,
                "email_verified": True,
                "name": "Sec Ondary",
                "given_name": "Sec",
            },
        },
    ]
    assert await get_user(app, secondary.user_id) is None  # no longer a user of its own
    after = await get_user(app, primary.user_id)
    assert after is not None
    assert after.user_metadata == {"theme": "dark"}  # the secondary's metadata is not merged
    assert after.app_metadata == {}
    r = await http.get(f"/api/v2/users/{primary.user_id}", headers=admin(app))
    assert check_oas(r, "GET", "/users/{id}")["identities"] == body
    events = [e for e in await sapi_events(app) if e.user_id == primary.user_id]
    assert [e.description for e in events] == ["Link a User Account"]


async def test_user_id_may_carry_the_provider_prefix(app: Any, http: Any) -> None:
    primary = await a_user(app)
    secondary = await a_user(app)
    r = await http.post(
        path(primary.user_id),
        json={"provider": "auth0", "user_id": secondary.user_id},
        headers=admin(app),
    )
    assert [i["user_id"] for i in check_oas(r, *LINK)] == [
        primary.user_id.split("|")[1],
        secondary.user_id.split("|")[1],
    ]


async def test_connection_id_picks_the_database(app: Any, http: Any) -> None:
    primary = await a_user(app)
    secondary = await a_user(app, connection="other-db")
    body = {"provider": "auth0", "user_id": secondary.user_id}
    r = await http.post(
        path(primary.user_id),
        json={**body, "connection_id": CONNECTION_IDS[DB]},
        headers=admin(app),
    )
    check_error(r, 400, "Provided secondary account not found.")
    r = await http.post(
        path(primary.user_id),
        json={**body, "connection_id": CONNECTION_IDS["other-db"]},
        headers=admin(app),
    )
    assert check_oas(r, *LINK)[1]["connection"] == "other-db"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"provider": "auth0", "user_id": "auth0|000000000000000000000000"},
         "Provided secondary account not found."),
        ({"provider": "github", "user_id": "123"}, "The provider/connection is not configured."),
        ({"provider": "auth0", "user_id": "x", "connection_id": "con_0000000000000000"},
         "The provider/connection is not configured."),
        ({"provider": "nope", "user_id": "x"},
         "Payload validation error: 'No enum match for: nope' on property provider."),
        ({"provider": "auth0"}, "Payload validation error: 'Missing required property: user_id'."),
        ({"user_id": "x"}, "Payload validation error: 'Missing required property: provider'."),
        ({}, "Payload validation error: 'Too few properties defined (0), minimum 1'."),
        ({"provider": "auth0", "user_id": "x", "foo": 1},
         "Payload validation error: 'Additional properties not allowed: foo'."),
        ({"provider": "auth0", "user_id": None},
         "Payload validation error: 'Expected type string,integer but found type null' "
         "on property user_id."),
        ({"provider": "auth0", "user_id": "x", "connection_id": "con_1"},
         "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{16}$: con_1'"
         " on property connection_id."),
        ({"link_with": "a.b.c", "provider": "auth0"},
         "Payload validation error: "
         "'link_with cannot be combined with provider, user_id or connection_id'."),
    ],
)  # fmt: skip
async def test_bad_provider_form_is_400(
    app: Any, http: Any, body: dict[str, Any], message: str
) -> None:
    primary = await a_user(app)
    r = await http.post(path(primary.user_id), json=body, headers=admin(app))
    check_error(r, 400, message)
    after = await get_user(app, primary.user_id)
    assert after is not None and len(after.identities) == 1


@pytest.mark.parametrize("raw", [b"[]", b'"x"', b"{", b"null", b"[" * 5000])
async def test_body_must_be_a_json_object(app: Any, http: Any, raw: bytes) -> None:
    primary = await a_user(app)
    headers = {**admin(app), "content-type": "application/json"}
    r = await http.post(path(primary.user_id), content=raw, headers=headers)
    assert r.status_code == 400, r.text
    assert r.json()["errorCode"] == "invalid_body"


async def test_same_user_and_already_linked(app: Any, http: Any) -> None:
    primary = await a_user(app)
    secondary = await a_user(app)
    own = {"provider": "auth0", "user_id": primary.user_id}
    r = await http.post(path(primary.user_id), json=own, headers=admin(app))
    check_error(r, 400, "Main identity and the new one are the same.")
    body = {"provider": "auth0", "user_id": secondary.user_id}
    r = await http.post(path(primary.user_id), json=body, headers=admin(app))
    assert r.status_code == 201
    r = await http.post(path(primary.user_id), json=body, headers=admin(app))
    check_error(r, 409, "Specified identity already exists.")


async def test_a_primary_with_linked_accounts_cannot_become_a_secondary(
    app: Any, http: Any
) -> None:
    first, second, third = await a_user(app), await a_user(app), await a_user(app)
    body = {"provider": "auth0", "user_id": third.user_id}
    assert (await http.post(path(second.user_id), json=body, headers=admin(app))).status_code == 201
    body = {"provider": "auth0", "user_id": second.user_id}
    r = await http.post(path(first.user_id), json=body, headers=admin(app))
    check_error(r, 400, "Unable to link with the secondary account.")
    assert await get_user(app, second.user_id) is not None


async def test_unknown_primary_is_404(app: Any, http: Any) -> None:
    secondary = await a_user(app)
    r = await http.post(
        path("auth0|000000000000000000000000"),
        json={"provider": "auth0", "user_id": secondary.user_id},
        headers=admin(app),
    )
    check_error(r, 404, "The user does not exist.", "inexistent_user")
    assert await get_user(app, secondary.user_id) is not None


async def test_scopes(app: Any, http: Any) -> None:
    primary = await a_user(app)
    r = await http.post(
        path(primary.user_id),
        json={"provider": "auth0", "user_id": "x"},
        headers=admin(app, "read:users"),
    )
    check_error(
        r, 403, "Insufficient scope, expected any of: update:users,update:current_user_identities"
    )


# --- the link_with form -------------------------------------------------------------------------


async def test_current_user_links_with_an_id_token(app: Any, http: Any) -> None:
    me = await a_user(app)
    other = await a_google_user(app, name="Me On Google")
    headers = user_token(app, me.user_id, LINK_SCOPES)
    r = await http.post(
        path(me.user_id), json={"link_with": id_token(app, other.user_id)}, headers=headers
    )
    body = check_oas(r, *LINK)
    assert r.status_code == 201
    assert body[1]["provider"] == "google-oauth2"
    assert body[1]["profileData"]["name"] == "Me On Google"
    assert await get_user(app, other.user_id) is None


async def test_link_with_is_also_open_to_update_users(app: Any, http: Any) -> None:
    primary, secondary = await a_user(app), await a_user(app)
    # The aud of link_with must be the calling token's azp: here the M2M client.
    token = id_token(app, secondary.user_id, aud=M2M)
    r = await http.post(path(primary.user_id), json={"link_with": token}, headers=admin(app))
    assert r.status_code == 201, r.text


async def test_mg10_current_user_cannot_link_by_naming_a_victim(app: Any, http: Any) -> None:
    me, victim = await a_user(app), await a_google_user(app)
    headers = user_token(app, me.user_id, LINK_SCOPES)
    body = {"provider": "google-oauth2", "user_id": victim.user_id.split("|")[1]}
    r = await http.post(path(me.user_id), json=body, headers=headers)
    check_error(r, 403, "You cannot update the following fields: provider, user_id")
    assert await get_user(app, victim.user_id) is not None
    # Nor on someone else's account, whatever the body.
    r = await http.post(
        path(victim.user_id), json={"link_with": id_token(app, me.user_id)}, headers=headers
    )
    check_error(r, 403, "User to be acted on does not match subject in bearer token.")
    assert await get_user(app, me.user_id) is not None


def _hs256(app: Any, sub: str) -> str:
    kid = state_of(app).keys.current.kid
    claims = {"iss": ISSUER, "aud": SPA, "sub": sub, "exp": int(time.time()) + 60}
    return jwt.encode(claims, "a shared secret of at least thirty-two bytes", "HS256", {"kid": kid})


def _foreign_key(sub: str) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": ISSUER, "aud": SPA, "sub": sub, "exp": int(time.time()) + 60}
    return jwt.encode(claims, key, "RS256", {"kid": "someone-elses"})


def _tampered(app: Any, sub: str) -> str:
    head, _, signature = id_token(app, sub).rpartition(".")
    return head + "." + ("A" if signature[0] != "A" else "B") + signature[1:]


CASES: list[tuple[str, Any, str]] = [
    ("garbage", lambda app, sub: "not-a-jwt", "Invalid token (link_with)."),
    ("three junk parts", lambda app, sub: "a.b.c", "Invalid token (link_with)."),
    ("alg none", lambda app, sub: jwt.encode({"sub": sub, "aud": SPA}, None, "none"),
     "JWT (link_with) must have an alg of RS256."),
    ("HS256 with our kid", _hs256, "JWT (link_with) must have an alg of RS256."),
    ("unknown key", lambda app, sub: _foreign_key(sub), "Invalid token (link_with)."),
    ("bad signature", _tampered, "Invalid token (link_with)."),
    ("expired", lambda app, sub: id_token(app, sub, exp=int(time.time()) - 10),
     "Invalid token (link_with)."),
    ("no exp", lambda app, sub: id_token(app, sub, exp=None), "Invalid token (link_with)."),
    ("other issuer", lambda app, sub: id_token(app, sub, iss="https://evil.example/"),
     "JWT (link_with) must have the same issuer as the calling user."),
    ("no aud", lambda app, sub: id_token(app, sub, aud=None),
     "JWT (link_with) contains an invalid aud claim."),
    ("numeric aud", lambda app, sub: id_token(app, sub, aud=42),
     "JWT (link_with) contains an invalid aud claim."),
    ("another app's token", lambda app, sub: id_token(app, sub, aud="AnotherClient"),
     "JWT (link_with) must have an aud claim that matches that of the calling token's azp."),
    ("an access token", lambda app, sub: id_token(app, sub, aud=[ISSUER + "api/v2/"]),
     "JWT (link_with) must have an aud claim that matches that of the calling token's azp."),
    ("no sub", lambda app, sub: id_token(app, None), "JWT (link_with) must contains sub claim."),
    ("numeric sub", lambda app, sub: id_token(app, 12345),
     "JWT (link_with) contains an invalid sub claim."),
    ("client sub", lambda app, sub: id_token(app, M2M + "@clients"),
     "JWT (link_with) contains an invalid sub claim."),
    ("unknown sub", lambda app, sub: id_token(app, "auth0|000000000000000000000000"),
     "Provided secondary account not found."),
]  # fmt: skip


@pytest.mark.parametrize(("why", "make", "message"), CASES, ids=[c[0] for c in CASES])
async def test_link_with_errors(app: Any, http: Any, why: str, make: Any, message: str) -> None:
    me, other = await a_user(app), await a_user(app)
    headers = user_token(app, me.user_id, LINK_SCOPES)
    r = await http.post(
        path(me.user_id), json={"link_with": make(app, other.user_id)}, headers=headers
    )
    check_error(r, 400, message)
    assert await get_user(app, other.user_id) is not None
    after = await get_user(app, me.user_id)
    assert after is not None and len(after.identities) == 1


async def test_link_with_array_aud_holding_the_client(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    headers = user_token(app, me.user_id, LINK_SCOPES)
    token = id_token(app, other.user_id, aud=[SPA, "https://api.example/"])
    r = await http.post(path(me.user_id), json={"link_with": token}, headers=headers)
    assert r.status_code == 201, r.text


async def test_link_with_needs_an_azp_on_the_calling_token(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    headers = user_token(app, me.user_id, LINK_SCOPES, azp=None)
    r = await http.post(
        path(me.user_id), json={"link_with": id_token(app, other.user_id)}, headers=headers
    )
    check_error(
        r, 400,
        "JWT (link_with) must have an aud claim that matches that of the calling token's azp.",
    )  # fmt: skip


# --- unlink -------------------------------------------------------------------------------------


async def _linked(app: Any, http: Any, **secondary_fields: Any) -> tuple[Any, Any]:
    primary = await a_user(app)
    secondary = await a_google_user(app, **secondary_fields)
    body = {"provider": "google-oauth2", "user_id": secondary.user_id}
    assert (
        await http.post(path(primary.user_id), json=body, headers=admin(app))
    ).status_code == 201
    return primary, secondary


async def test_unlink_restores_a_standalone_user(app: Any, http: Any) -> None:
    primary, secondary = await _linked(
        app, http, name="Back Again", family_name="Again", user_metadata={"lost": True}
    )
    local = secondary.user_id.split("|")[1]
    r = await http.delete(f"{path(primary.user_id)}/google-oauth2/{local}", headers=admin(app))
    body = check_oas(r, *UNLINK)
    assert r.status_code == 200
    assert body == [
        {"connection": DB, "provider": "auth0", "user_id": primary.user_id.split("|")[1],
         "isSocial": False}
    ]  # fmt: skip
    r = await http.get(f"/api/v2/users/{secondary.user_id}", headers=admin(app))
    restored = check_oas(r, "GET", "/users/{id}")
    assert restored["email"] == secondary.email
    assert restored["name"] == "Back Again"
    assert restored["family_name"] == "Again"
    assert restored["identities"] == [
        {"connection": "google-oauth2", "provider": "google-oauth2", "user_id": local,
         "isSocial": True}
    ]  # fmt: skip
    assert "user_metadata" not in restored  # metadata did not survive the link (§9.6)
    descriptions = [e.description for e in await sapi_events(app) if e.user_id == primary.user_id]
    assert descriptions == ["Unlink a User Account", "Link a User Account"]  # newest first


async def test_current_user_unlinks_own_identity(app: Any, http: Any) -> None:
    primary, secondary = await _linked(app, http)
    local = secondary.user_id.split("|")[1]
    headers = user_token(app, primary.user_id, LINK_SCOPES)
    r = await http.delete(f"{path(primary.user_id)}/google-oauth2/{local}", headers=headers)
    assert len(check_oas(r, *UNLINK)) == 1
    other = await a_user(app)
    r = await http.delete(f"{path(other.user_id)}/google-oauth2/{local}", headers=headers)
    check_error(r, 403, "User to be acted on does not match subject in bearer token.")


async def test_main_identity_cannot_be_removed(app: Any, http: Any) -> None:
    primary, _ = await _linked(app, http)
    local = primary.user_id.split("|")[1]
    r = await http.delete(f"{path(primary.user_id)}/auth0/{local}", headers=admin(app))
    check_error(r, 400, "Main identity cannot be removed.")


async def test_unlink_errors(app: Any, http: Any) -> None:
    primary, _ = await _linked(app, http)
    r = await http.delete(f"{path(primary.user_id)}/google-oauth2/999", headers=admin(app))
    check_error(r, 404, "The identity does not exist.")
    r = await http.delete(f"{path(primary.user_id)}/nope/1", headers=admin(app))
    check_error(
        r, 400, "Path validation error: 'No enum match for: nope' on property provider.",
        "invalid_uri",
    )  # fmt: skip
    r = await http.delete(
        f"{path('auth0|000000000000000000000000')}/google-oauth2/1", headers=admin(app)
    )
    check_error(r, 404, "The user does not exist.", "inexistent_user")


async def test_unlink_refuses_when_the_old_address_was_taken(app: Any, http: Any) -> None:
    primary, secondary = await _linked(app, http)
    await a_user(app, email=secondary.email, connection="google-oauth2")  # a new sign-up
    local = secondary.user_id.split("|")[1]
    r = await http.delete(f"{path(primary.user_id)}/google-oauth2/{local}", headers=admin(app))
    check_error(r, 409, "The user already exists.")
    after = await get_user(app, primary.user_id)
    assert after is not None and len(after.identities) == 2  # nothing changed


async def test_idp_tokens_in_profile_data_need_read_user_idp_tokens(app: Any, http: Any) -> None:
    primary, _ = await _linked(app, http)
    state = state_of(app)
    async with state.transaction() as session:
        repos = state.repos(session)
        user = await repos.users.get(primary.user_id)
        linked = user.identities[1]
        data = {**(linked.profile_data or {}), "access_token": "idp-secret"}
        await repos.users.update(
            replace(user, identities=(user.identities[0], replace(linked, profile_data=data)))
        )
    third = await a_user(app)
    body = {"provider": "auth0", "user_id": third.user_id}
    r = await http.post(path(primary.user_id), json=body, headers=admin(app))
    assert r.status_code == 201 and "idp-secret" not in r.text
    local = third.user_id.split("|")[1]
    r = await http.delete(
        f"{path(primary.user_id)}/auth0/{local}",
        headers=admin(app, "update:users read:user_idp_tokens"),
    )
    assert check_oas(r, *UNLINK)[1]["profileData"]["access_token"] == "idp-secret"


async def test_nul_characters_are_refused(app: Any, http: Any) -> None:
    primary = await a_user(app)
    r = await http.post(
        path(primary.user_id), json={"provider": "auth0", "user_id": "a\u0000"}, headers=admin(app)
    )
    check_error(r, 400, "Payload validation error: 'String must not contain NUL characters'.")
    r = await http.post(
        path("auth0%7C%00"), json={"provider": "auth0", "user_id": "x"}, headers=admin(app)
    )
    check_error(r, 400, "Path validation error: 'String must not contain NUL characters'.")
    r = await http.delete(f"{path('auth0%7C%00')}/auth0/x", headers=admin(app))
    check_error(r, 400, "Path validation error: 'String must not contain NUL characters'.")


async def test_a_linked_database_account_keeps_its_password_through_unlinking(
    app: Any, http: Any
) -> None:
    primary = await a_user(app, password_hash="primary-hash")
    secondary = await a_user(app, connection="other-db", password_hash="its-own-hash")
    local = secondary.user_id.split("|")[1]
    body = {"provider": "auth0", "user_id": local, "connection_id": CONNECTION_IDS["other-db"]}
    r = await http.post(path(primary.user_id), json=body, headers=admin(app))
    assert r.status_code == 201
    assert "its-own-hash" not in r.text and "password" not in r.text
    r = await http.get(f"/api/v2/users/{primary.user_id}", headers=admin(app))
    shown = check_oas(r, "GET", "/users/{id}")
    assert "its-own-hash" not in r.text and "password" not in r.text
    assert shown["identities"][1] == {
        "connection": "other-db", "provider": "auth0", "user_id": local, "isSocial": False,
        "profileData": {"email": secondary.email, "email_verified": False},
    }  # fmt: skip
    linked = await get_user(app, primary.user_id)
    assert linked is not None and linked.identities[1].password_hash == "its-own-hash"
    r = await http.delete(f"{path(primary.user_id)}/auth0/{local}", headers=admin(app))
    assert r.status_code == 200
    restored = await get_user(app, secondary.user_id)
    assert restored is not None and restored.password_hash == "its-own-hash"
    assert restored.identities[0].connection == "other-db"
    after = await get_user(app, primary.user_id)
    assert after is not None and after.password_hash == "primary-hash"


async def test_an_address_held_by_a_linked_database_identity_stays_taken(
    app: Any, http: Any
) -> None:
    primary = await a_user(app)
    secondary = await a_user(app, password_hash="$argon2id$v=19$m=65536,t=3,p=4$x$y")
    local = secondary.user_id.split("|", 1)[1]
    body = {"provider": "auth0", "user_id": local}
    r = await http.post(path(primary.user_id), json=body, headers=admin(app))
    assert r.status_code == 201, r.text
    # the secondary still logs in with its address, so nobody may take it (§9.6)
    new = {"connection": DB, "email": secondary.email, "password": "Another-Passw0rd!"}
    r = await http.post("/api/v2/users", json=new, headers=admin(app, "create:users"))
    check_error(r, 409, "The user already exists.", "auth0_idp_error")
