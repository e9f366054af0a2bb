"""POST /dbconnections/signup and /dbconnections/change_password (contract §7.2, §7.3; security
cases SE-11, IN-05, IN-09; issue 6: user_metadata limits and the tenant's policy at signup)."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keystead.core import linking
from keystead.core.accounts import canonical_email
from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.logs import LogEvent
from keystead.core.passwords import verify_password
from keystead.core.ports import Connection
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from tests.http.helpers import module_app, module_http

pytestmark = pytest.mark.asyncio(loop_scope="module")

SENT = "We've just sent you an email to reset your password."
PASSWORD = "correct horse battery"
INVALID_SIGNUP = {
    "name": "BadRequestError",
    "code": "invalid_signup",
    "description": "Invalid sign up",
    "error": "invalid_signup",
    "error_description": "Invalid sign up",
    "statusCode": 400,
}


# One app for the module: starting one (migrations, two RSA keys) takes about a second.
@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock()


app = module_app(fixed_clock=True)
http = module_http()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def client_id(app: Any) -> str:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        client = await state.repos(session).clients.create(
            Client(client_id="", name="App", app_type="spa", token_endpoint_auth_method="none")
        )
    return client.client_id


def new_email() -> str:
    return f"user.{secrets.token_hex(5)}@example.com"


def body(cid: str, **over: Any) -> dict[str, Any]:
    out = {
        "client_id": cid,
        "connection": DATABASE_CONNECTION,
        "email": new_email(),
        "password": PASSWORD,
    }
    out.update(over)
    return out


async def users_with(app: Any, email: str) -> User | None:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return await state.repos(session).users.by_email(DATABASE_CONNECTION, email)


async def events(app: Any, type_: str) -> list[LogEvent]:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == type_]


async def set_options(app: Any, name: str, **options: Any) -> Connection:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        repos = state.repos(session)
        conn = await repos.connections.by_name(name)
        assert conn is not None
        return await repos.connections.update(replace(conn, options={**conn.options, **options}))


def signup_error(r: httpx.Response, code: str, status: int = 400) -> dict[str, Any]:
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    assert out["code"] == out["error"] == code
    assert out["statusCode"] == status
    assert isinstance(out["error_description"], str) and out["error_description"]
    assert "Traceback" not in r.text
    return out


# --- signup: success ----------------------------------------------------------------------------


async def test_signup_creates_the_user(http: httpx.AsyncClient, app: Any, client_id: str) -> None:
    sent = body(client_id)
    r = await http.post("/dbconnections/signup", json=sent)
    assert r.status_code == 200, r.text
    out = r.json()
    assert re.fullmatch(r"[0-9a-f]{24}", out["_id"])
    assert out == {"_id": out["_id"], "email": sent["email"], "email_verified": False}
    assert r.headers["cache-control"] == "no-store"

    user = await users_with(app, sent["email"])
    assert user is not None
    assert user.user_id == "auth0|" + out["_id"]
    assert user.email_verified is False
    assert user.name == sent["email"] and user.nickname == sent["email"].split("@")[0]
    assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
    assert verify_password(user.password_hash, PASSWORD)
    ss = [e for e in await events(app, "ss") if e.user_id == user.user_id]
    assert len(ss) == 1 and ss[0].client_id == client_id
    assert PASSWORD not in str(ss[0].data)


async def test_signup_echoes_the_optional_fields_it_was_sent(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    sent = body(
        client_id,
        email="  Mixed.Case@Example.COM ",
        given_name="Ada",
        family_name="Lovelace",
        name="Ada Lovelace",
        nickname="ada",
        picture="https://img.example/ada.png",
        user_metadata={"theme": "dark", "lang": "en"},
        organization=None,
        unknown_parameter={"ignored": True},
        username="ignored-without-requires-username",
    )
    r = await http.post("/dbconnections/signup", json=sent)
    assert r.status_code == 200, r.text
    out = r.json()
    assert out == {
        "_id": out["_id"],
        "email": "mixed.case@example.com",
        "email_verified": False,
        "given_name": "Ada",
        "family_name": "Lovelace",
        "name": "Ada Lovelace",
        "nickname": "ada",
        "picture": "https://img.example/ada.png",
        "user_metadata": {"theme": "dark", "lang": "en"},
    }
    user = await users_with(app, "mixed.case@example.com")
    assert user is not None and user.user_metadata == {"theme": "dark", "lang": "en"}
    assert user.username is None


async def test_signup_takes_a_form_body(http: httpx.AsyncClient, app: Any, client_id: str) -> None:
    sent = body(client_id, given_name="Form", name="")  # "" means absent
    r = await http.post("/dbconnections/signup", data=sent)
    assert r.status_code == 200, r.text
    assert r.json()["given_name"] == "Form"
    assert "name" not in r.json()


@pytest.mark.parametrize(
    "password",
    ["x" * 64, "y" * 200, "correct horse 🐎 battery", "   spaces count   ", "Zürich-Straße-12"],
)
async def test_long_and_any_character_passwords_are_accepted(
    http: httpx.AsyncClient, app: Any, client_id: str, password: str
) -> None:
    sent = body(client_id, password=password)
    r = await http.post("/dbconnections/signup", json=sent)
    assert r.status_code == 200, r.text
    user = await users_with(app, sent["email"])
    assert user is not None and user.password_hash is not None
    assert verify_password(user.password_hash, password)


# --- signup: duplicates without enumeration -----------------------------------------------------


async def test_duplicate_signup_is_the_generic_invalid_signup(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    local = f"alice.{secrets.token_hex(4)}"
    first = await http.post(
        "/dbconnections/signup", json=body(client_id, email=f"{local}@Example.com")
    )
    assert first.status_code == 200
    fullwidth = "".join(chr(ord(c) + 0xFEE0) if c.isalpha() else c for c in local)
    for variant in (
        f"{local}@example.com",
        f" {local}@example.com ",
        f"{local.upper()}@EXAMPLE.com",
        f"{fullwidth}@example.com",  # NFKC folds fullwidth letters (IN-05)
    ):
        r = await http.post("/dbconnections/signup", json=body(client_id, email=variant))
        assert r.status_code == 400, variant
        assert r.json() == INVALID_SIGNUP
    stored = await users_with(app, f"{local}@example.com")
    assert stored is not None and stored.user_id == "auth0|" + first.json()["_id"]
    failures = [
        e for e in await events(app, "fs") if e.data.get("details") == {"code": "invalid_signup"}
    ]
    assert len(failures) >= 4


async def test_an_address_held_by_a_linked_identity_stays_taken(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    state: AppState = app.state.keystead
    email = new_email()
    async with state.transaction() as session:
        users = state.repos(session).users
        primary = await users.create(
            User(user_id="", email=new_email()), connection=DATABASE_CONNECTION
        )
        secondary = await users.create(
            User(user_id="", email=email, password_hash="h"), connection=DATABASE_CONNECTION
        )
        await users.delete(secondary.user_id)
        await users.update(linking.link(primary, secondary))
    r = await http.post("/dbconnections/signup", json=body(client_id, email=email.upper()))
    assert (r.status_code, r.json()) == (400, INVALID_SIGNUP)
    assert await users_with(app, email) is None


# --- signup: password policy (SE-11) ------------------------------------------------------------


async def test_short_password_is_a_password_strength_error(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    sent = body(client_id, password="short12")
    out = signup_error(await http.post("/dbconnections/signup", json=sent), "invalid_password")
    assert out["name"] == "PasswordStrengthError"
    assert out["message"] == out["error_description"] == "Password is too weak"
    assert out["description"] == {
        "rules": [
            {
                "code": "password_too_short",
                "message": "Password must be at least 8 characters long",
                "verified": False,
            }
        ],
        "verified": False,
    }
    assert await users_with(app, sent["email"]) is None


@pytest.mark.parametrize(
    ("password", "code", "name"),
    [
        ("password1", "password_dictionary_error", "PasswordDictionaryError"),
        ("Password123", "password_dictionary_error", "PasswordDictionaryError"),
        ("{local}", "password_no_user_info_error", "PasswordNoUserInfoError"),
    ],
)
async def test_common_or_personal_passwords_are_refused(
    http: httpx.AsyncClient, app: Any, client_id: str, password: str, code: str, name: str
) -> None:
    email = new_email()
    sent = body(client_id, email=email, password=password.format(local=email.split("@")[0]))
    out = signup_error(await http.post("/dbconnections/signup", json=sent), code)
    assert out["name"] == name
    assert await users_with(app, email) is None


async def test_connection_min_length_applies(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    await set_options(app, DATABASE_CONNECTION, password_complexity_options={"min_length": 12})
    try:
        r = await http.post("/dbconnections/signup", json=body(client_id, password="elevenchars"))
        out = signup_error(r, "invalid_password")
        assert "at least 12 characters" in out["description"]["rules"][0]["message"]
    finally:
        await set_options(app, DATABASE_CONNECTION, password_complexity_options={"min_length": 8})


# --- signup: user_metadata (contract §7.2 limits, issue 6 policy) -------------------------------


@pytest.mark.parametrize(
    ("metadata", "names"),
    [
        ({f"k{i}": "v" for i in range(11)}, "11 properties"),
        ({"bio": "x" * 501}, "user_metadata.bio"),
        ({"n" * 101: "v"}, "names must be at most 100"),
        ({"age": 30}, "user_metadata.age: must be a string"),
        ({"nested": {"a": "b"}}, "user_metadata.nested"),
        ({"a.b": "v"}, 'user_metadata["a.b"]'),
        ("a string", "must be an object"),
        (["a", "list"], "must be an object"),
    ],
)
async def test_metadata_beyond_the_signup_limits_is_refused(
    http: httpx.AsyncClient, app: Any, client_id: str, metadata: Any, names: str
) -> None:
    sent = body(client_id, user_metadata=metadata)
    out = signup_error(await http.post("/dbconnections/signup", json=sent), "invalid_body")
    assert names in out["description"]
    assert await users_with(app, sent["email"]) is None


async def test_metadata_at_the_limits_is_accepted(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    metadata = {f"{i}" + "n" * 99: "v" * 500 for i in range(10)}
    r = await http.post("/dbconnections/signup", json=body(client_id, user_metadata=metadata))
    assert r.status_code == 200, r.text
    assert r.json()["user_metadata"] == metadata


async def test_tenant_policy_and_client_override_apply_at_signup(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    state: AppState = app.state.keystead
    policy = {
        "user_metadata": {
            "schema": {"type": "object", "properties": {"theme": {"enum": ["light", "dark"]}}},
            "writable": ["theme"],
        }
    }
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set("self_service", policy)
    try:
        r = await http.post(
            "/dbconnections/signup", json=body(client_id, user_metadata={"theme": "neon"})
        )
        assert "user_metadata.theme" in signup_error(r, "invalid_body")["description"]
        r = await http.post(
            "/dbconnections/signup", json=body(client_id, user_metadata={"plan": "gold"})
        )
        assert "user_metadata.plan: not writable" in signup_error(r, "invalid_body")["description"]
        ok = await http.post(
            "/dbconnections/signup", json=body(client_id, user_metadata={"theme": "dark"})
        )
        assert ok.status_code == 200, ok.text

        # The client's own override: this app may write `plan` too.
        async with state.transaction() as session:
            repos = state.repos(session)
            client = await repos.clients.get(client_id)
            override = {"user_metadata": {"writable": ["theme", "plan"]}}
            await repos.clients.update(replace(client, extra={"self_service": override}))
        r = await http.post(
            "/dbconnections/signup", json=body(client_id, user_metadata={"plan": "gold"})
        )
        assert r.status_code == 200, r.text
    finally:
        async with state.transaction() as session:
            repos = state.repos(session)
            await repos.tenant_settings.set("self_service", {})
            client = await repos.clients.get(client_id)
            await repos.clients.update(replace(client, extra={}))


# --- signup: malformed requests (IN-02, IN-09) --------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"email": "a@example.com", ', "application/json"),
        (b'{"email": "a@example.com",}', "application/json"),
        (b'{"n": NaN}', "application/json"),
        (b"['a']", "application/json"),
        (b'["client_id"]', "application/json"),
        (b"\xff\xfe{}", "application/json"),
        (b"email=a@example.com", "text/plain"),
    ],
)
async def test_unreadable_bodies_are_invalid_body(
    http: httpx.AsyncClient, content: bytes, content_type: str
) -> None:
    r = await http.post(
        "/dbconnections/signup", content=content, headers={"Content-Type": content_type}
    )
    signup_error(r, "invalid_body")


@pytest.mark.parametrize("missing", ["client_id", "connection", "email", "password"])
async def test_required_fields(http: httpx.AsyncClient, client_id: str, missing: str) -> None:
    for absent in (None, ""):
        sent = body(client_id, **{missing: absent})
        out = signup_error(await http.post("/dbconnections/signup", json=sent), "invalid_body")
        assert out["description"] == f"Missing required property: {missing}"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", ["a@example.com"]),
        ("email", "not-an-email"),
        ("email", "a b@example.com"),
        ("email", "a@localhost"),
        ("email", "a@bücher.example"),  # Unicode domains must come as xn--
        ("email", "a" * 250 + "@example.com"),
        ("password", 12345678),
        ("given_name", "g" * 151),
        ("name", {"first": "x"}),
        ("picture", "javascript:alert(1)"),
        ("phone_number", "12345"),
    ],
)
async def test_malformed_fields_are_invalid_body(
    http: httpx.AsyncClient, app: Any, client_id: str, field: str, value: Any
) -> None:
    sent = body(client_id, **{field: value})
    out = signup_error(await http.post("/dbconnections/signup", json=sent), "invalid_body")
    assert field in out["description"]
    if isinstance(sent["email"], str) and canonical_email(sent["email"]):
        assert await users_with(app, sent["email"]) is None


async def test_unknown_client_and_connection(http: httpx.AsyncClient, client_id: str) -> None:
    r = await http.post("/dbconnections/signup", json=body("no-such-client"))
    signup_error(r, "invalid_client")
    r = await http.post("/dbconnections/signup", json=body(client_id, connection="nope"))
    signup_error(r, "invalid_connection")


async def test_disabled_signup_is_unauthorized(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    await set_options(app, DATABASE_CONNECTION, disable_signup=True)
    try:
        sent = body(client_id)
        out = signup_error(await http.post("/dbconnections/signup", json=sent), "unauthorized", 403)
        assert out["description"] == "Public signup is disabled"
        assert await users_with(app, sent["email"]) is None
    finally:
        await set_options(app, DATABASE_CONNECTION, disable_signup=False)


async def test_connection_not_enabled_for_the_client(
    http: httpx.AsyncClient, app: Any, client_id: str
) -> None:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        await state.repos(session).connections.create(
            Connection(id="", name="Staff", strategy="auth0", extra={"enabled_clients": ["other"]})
        )
    r = await http.post("/dbconnections/signup", json=body(client_id, connection="Staff"))
    signup_error(r, "invalid_connection")


async def test_username_connections(http: httpx.AsyncClient, app: Any, client_id: str) -> None:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        await state.repos(session).connections.create(
            Connection(id="", name="Named", strategy="auth0", options={"requires_username": True})
        )
    r = await http.post("/dbconnections/signup", json=body(client_id, connection="Named"))
    assert signup_error(r, "invalid_body")["description"] == "Missing required property: username"
    r = await http.post(
        "/dbconnections/signup", json=body(client_id, connection="Named", username="x" * 16)
    )
    assert "username" in signup_error(r, "invalid_body")["description"]
    r = await http.post(
        "/dbconnections/signup", json=body(client_id, connection="Named", username="Ada_L")
    )
    assert r.status_code == 200, r.text
    assert r.json()["username"] == "ada_l"
    r = await http.post(
        "/dbconnections/signup", json=body(client_id, connection="Named", username="ADA_L")
    )
    assert r.json() == INVALID_SIGNUP


# --- change_password (contract §7.3) ------------------------------------------------------------


async def test_change_password_for_a_known_email_delivers_a_ticket(
    http: httpx.AsyncClient, app: Any, client_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    sent = body(client_id)
    assert (await http.post("/dbconnections/signup", json=sent)).status_code == 200
    caplog.set_level(logging.INFO, logger="keystead.mail")
    r = await http.post(
        "/dbconnections/change_password",
        json={
            "client_id": client_id,
            "email": sent["email"].upper(),
            "connection": DATABASE_CONNECTION,
        },
    )
    assert r.status_code == 200
    assert r.text == SENT
    assert r.headers["content-type"].startswith("text/plain")
    mails = [rec.getMessage() for rec in caplog.records if rec.name == "keystead.mail"]
    assert len(mails) == 1
    assert f"would send to {sent['email']}" in mails[0]
    ticket = re.search(r"/u/reset-password\?ticket=([\w.\-%]+)", mails[0])
    assert ticket is not None
    # The ticket is no access token: /userinfo refuses it.
    token = ticket.group(1)
    assert (
        await http.get("/userinfo", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 401

    user = await users_with(app, sent["email"])
    assert user is not None
    scpr = [e for e in await events(app, "scpr") if e.user_id == user.user_id]
    assert len(scpr) == 1 and scpr[0].client_id == client_id
    assert token not in str(scpr[0].data) and token not in scpr[0].description


async def test_change_password_for_an_unknown_email_answers_alike(
    http: httpx.AsyncClient, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keystead.mail")
    email = new_email()
    r = await http.post(
        "/dbconnections/change_password",
        data={"email": email, "connection": DATABASE_CONNECTION},
    )
    assert r.status_code == 200
    assert r.text == SENT
    assert r.headers["content-type"].startswith("text/plain")
    assert not [rec for rec in caplog.records if rec.name == "keystead.mail"]
    fcpr = [e for e in await events(app, "fcpr") if e.data.get("user_name") == email]
    assert len(fcpr) == 1 and fcpr[0].user_id is None


@pytest.mark.parametrize(
    ("sent", "description"),
    [
        ({"connection": DATABASE_CONNECTION}, "Missing required parameter: email"),
        ({"email": "a@example.com"}, "Missing required parameter: connection"),
        (
            {"email": "nope", "connection": DATABASE_CONNECTION},
            "email is not a valid email address",
        ),
        ({"email": "a@example.com", "connection": "nope"}, "Unknown database connection"),
        (
            {"email": "a@example.com", "connection": DATABASE_CONNECTION, "client_id": "nope"},
            "Unknown client",
        ),
    ],
)
async def test_change_password_bad_requests(
    http: httpx.AsyncClient, sent: dict[str, str], description: str
) -> None:
    r = await http.post("/dbconnections/change_password", json=sent)
    assert r.status_code == 400
    assert r.json() == {"error": "invalid_request", "error_description": description}
