"""GET|POST /userinfo (contract §5, §0.3; security cases JW-01, JW-05, JW-08, JW-12, OI-07, OI-09,
RE-07): only our own unexpired RS256 tokens for /userinfo, current profile values, CORS."""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import replace
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.id_tokens import iso8601
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from tests.conftest import ISSUER
from tests.http.helpers import module_app, module_http

API = "https://api.example/"
USERINFO = ISSUER + "userinfo"
APP_ORIGIN = "https://app.example"


pytestmark = pytest.mark.asyncio(loop_scope="module")


# One app for the module: starting one (migrations, two RSA keys) takes about a second.
@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock()


app = module_app(fixed_clock=True)
http = module_http()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def spa(app: Any) -> Client:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return await state.repos(session).clients.create(
            Client(
                client_id="",
                name="SPA",
                app_type="spa",
                token_endpoint_auth_method="none",
                callbacks=(APP_ORIGIN + "/callback",),
                web_origins=(APP_ORIGIN,),
            )
        )


@pytest_asyncio.fixture(loop_scope="module")
async def user(app: Any) -> User:
    """A new user per test, created at the clock's current time."""
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return await state.repos(session).users.create(
            User(
                user_id="",
                email=f"Alice.{secrets.token_hex(4)}@Example.com",
                email_verified=True,
                name="Alice Liddell",
                nickname="alice",
                picture="https://img.example/a.png",
                given_name="Alice",
                phone_number="+15555550100",
                user_metadata={"theme": "dark"},
                app_metadata={"plan": "gold"},
            ),
            connection=DATABASE_CONNECTION,
        )


def mint(app: Any, clock: FixedClock, sub: str, **over: Any) -> str:
    now = int(clock.now())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": sub,
        "aud": [API, USERINFO],
        "azp": "some-client",
        "scope": "openid profile email",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(over)
    return str(app.state.keystead.keys.sign({k: v for k, v in claims.items() if v is not None}))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def assert_invalid_token(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_token"
    assert isinstance(r.json()["error_description"], str)
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert r.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in r.headers


# --- success ------------------------------------------------------------------------------------


async def test_get_returns_the_current_profile_for_the_granted_scopes(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    r = await http.get("/userinfo", headers=bearer(mint(app, clock, user.user_id)))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["content-type"] == "application/json"
    assert r.json() == {
        "sub": user.user_id,
        "name": "Alice Liddell",
        "nickname": "alice",
        "picture": "https://img.example/a.png",
        "updated_at": iso8601(clock.now()),
        "given_name": "Alice",
        "email": user.email,
        "email_verified": True,
    }


@pytest.mark.parametrize(
    ("scope", "keys"),
    [
        ("openid", {"sub"}),
        ("openid email", {"sub", "email", "email_verified"}),
        ("openid phone", {"sub", "phone_number", "phone_number_verified"}),
        ("email openid read:things", {"sub", "email", "email_verified"}),
    ],
)
async def test_each_scope_releases_only_its_claims(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, scope: str, keys: set[str]
) -> None:
    r = await http.get("/userinfo", headers=bearer(mint(app, clock, user.user_id, scope=scope)))
    assert r.status_code == 200
    assert set(r.json()) == keys
    assert r.json()["sub"] == user.user_id
    if "email_verified" in keys:
        assert r.json()["email_verified"] is True


async def test_values_are_read_at_request_time(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    token = mint(app, clock, user.user_id)
    state: AppState = app.state.keystead
    clock.advance(30)
    async with state.transaction() as session:
        await state.repos(session).users.update(replace(user, name="Alice L."))
    r = await http.get("/userinfo", headers=bearer(token))
    assert r.json()["name"] == "Alice L."
    assert r.json()["updated_at"] == iso8601(clock.now())


async def test_post_with_header_and_with_form_body(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    token = mint(app, clock, user.user_id, scope="openid")
    r = await http.post("/userinfo", headers=bearer(token))
    assert (r.status_code, r.json()) == (200, {"sub": user.user_id})
    r = await http.post("/userinfo", data={"access_token": token})
    assert (r.status_code, r.json()) == (200, {"sub": user.user_id})
    assert r.headers["cache-control"] == "no-store"


async def test_token_in_two_places_is_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    token = mint(app, clock, user.user_id)
    r = await http.post("/userinfo", headers=bearer(token), data={"access_token": token})
    assert r.status_code == 400
    assert r.json()["error"] == "invalid_request"


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer"])
async def test_scheme_is_case_insensitive(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, scheme: str
) -> None:
    token = mint(app, clock, user.user_id)
    r = await http.get("/userinfo", headers={"Authorization": f"{scheme} {token}"})
    assert r.status_code == 200


async def test_string_audience_is_enough(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    r = await http.get("/userinfo", headers=bearer(mint(app, clock, user.user_id, aud=USERINFO)))
    assert r.status_code == 200


async def test_clock_skew_within_the_leeway_is_accepted(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    now = int(clock.now())
    early = mint(app, clock, user.user_id, iat=now + 59, nbf=now + 59)
    assert (await http.get("/userinfo", headers=bearer(early))).status_code == 200
    too_early = mint(app, clock, user.user_id, iat=now + 61)
    assert_invalid_token(await http.get("/userinfo", headers=bearer(too_early)))


# --- no token, bad tokens ------------------------------------------------------------------------


async def test_no_token_is_a_bare_bearer_challenge(http: httpx.AsyncClient) -> None:
    for r in (await http.get("/userinfo"), await http.post("/userinfo")):
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"  # RFC 6750 §3.1: no error code
        assert r.json() == {"error": "invalid_token", "error_description": "Missing access token"}
        assert r.headers["cache-control"] == "no-store"


async def test_token_in_the_query_string_is_not_accepted(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    token = mint(app, clock, user.user_id)
    r = await http.get("/userinfo", params={"access_token": token})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "header",
    ["Bearer", "Bearer ", "Bearer  x.y.z", "Basic dXNlcjpwYXNz", "Bearer a b", "Token abc"],
)
async def test_malformed_authorization_header(http: httpx.AsyncClient, header: str) -> None:
    assert_invalid_token(await http.get("/userinfo", headers={"Authorization": header}))


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.e30."])
async def test_garbage_tokens(http: httpx.AsyncClient, token: str) -> None:
    assert_invalid_token(await http.get("/userinfo", headers=bearer(token)))


@pytest.mark.parametrize("alg", ["none", "None", "nOnE"])
async def test_alg_none_is_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, alg: str
) -> None:
    header, payload, _sig = mint(app, clock, user.user_id).split(".")
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    forged = f"{b64({'alg': alg, 'typ': 'JWT', 'kid': kid})}.{payload}."
    assert_invalid_token(await http.get("/userinfo", headers=bearer(forged)))


async def test_hs256_with_the_public_key_as_secret_is_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    ring = app.state.keystead.keys
    key = ring.current
    public_pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(clock.now())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user.user_id,
        "aud": USERINFO,
        "scope": "openid",
    }
    claims |= {"iat": now, "exp": now + 60}
    forged = _hs256(claims, public_pem, key.kid)
    assert_invalid_token(await http.get("/userinfo", headers=bearer(forged)))


def _hs256(claims: dict[str, Any], secret: bytes, kid: str) -> str:
    import hashlib
    import hmac

    signing_input = f"{b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{b64(claims)}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return signing_input + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


async def test_foreign_key_and_foreign_issuer_and_flipped_bit_are_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    kid = app.state.keystead.keys.current.kid
    now = int(clock.now())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": user.user_id,
        "aud": USERINFO,
        "scope": "openid",
    }
    claims |= {"iat": now, "exp": now + 60}
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = jwt.encode(claims, other, algorithm="RS256", headers={"kid": kid})
    assert_invalid_token(await http.get("/userinfo", headers=bearer(foreign)))

    wrong_iss = mint(app, clock, user.user_id, iss="https://other.example/")
    assert_invalid_token(await http.get("/userinfo", headers=bearer(wrong_iss)))

    header, payload, sig = mint(app, clock, user.user_id).split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=="))
    body["scope"] = "openid profile email phone"
    assert_invalid_token(await http.get("/userinfo", headers=bearer(f"{header}.{b64(body)}.{sig}")))


async def test_expired_token_is_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    now = int(clock.now())
    token = mint(app, clock, user.user_id, iat=now - 4200, exp=now - 600)
    r = await http.get("/userinfo", headers=bearer(token))
    assert_invalid_token(r)
    assert "expired" in r.json()["error_description"]
    # and one that expires while it is being held
    token = mint(app, clock, user.user_id, exp=now + 10)
    assert (await http.get("/userinfo", headers=bearer(token))).status_code == 200
    clock.advance(71)
    assert_invalid_token(await http.get("/userinfo", headers=bearer(token)))


@pytest.mark.parametrize("aud", [API, [API], "client-id-as-in-an-id-token", ISSUER + "api/v2/"])
async def test_token_for_another_audience_is_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, aud: Any
) -> None:
    assert_invalid_token(
        await http.get("/userinfo", headers=bearer(mint(app, clock, user.user_id, aud=aud)))
    )


@pytest.mark.parametrize("scope", [None, "", "profile email", "openidx", "read:things"])
async def test_token_without_openid_is_insufficient_scope(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, scope: str | None
) -> None:
    r = await http.get("/userinfo", headers=bearer(mint(app, clock, user.user_id, scope=scope)))
    assert r.status_code == 403
    assert r.json()["error"] == "insufficient_scope"
    assert r.headers["www-authenticate"] == 'Bearer error="insufficient_scope", scope="openid"'


async def test_deleted_and_blocked_users_get_nothing(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    state: AppState = app.state.keystead
    token = mint(app, clock, user.user_id)
    async with state.transaction() as session:
        await state.repos(session).users.update(replace(user, blocked=True))
    assert_invalid_token(await http.get("/userinfo", headers=bearer(token)))
    async with state.transaction() as session:
        await state.repos(session).users.delete(user.user_id)
    assert_invalid_token(await http.get("/userinfo", headers=bearer(token)))
    unknown = mint(app, clock, "auth0|ffffffffffffffffffffffff")
    assert_invalid_token(await http.get("/userinfo", headers=bearer(unknown)))


# --- CORS ---------------------------------------------------------------------------------------


async def test_cors_for_the_origin_of_the_tokens_client(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, spa: Client
) -> None:
    token = mint(app, clock, user.user_id, azp=spa.client_id)
    r = await http.get("/userinfo", headers={**bearer(token), "Origin": APP_ORIGIN})
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "origin" in r.headers["vary"].lower()
    assert "access-control-allow-credentials" not in r.headers

    r = await http.get("/userinfo", headers={**bearer(token), "Origin": "https://evil.example"})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    assert "origin" in r.headers["vary"].lower()

    # The origin belongs to a client, but not to the client the token was issued to.
    other = mint(app, clock, user.user_id, azp="another-client")
    r = await http.get("/userinfo", headers={**bearer(other), "Origin": APP_ORIGIN})
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


async def test_preflight_allows_authorization_for_client_origins_only(
    http: httpx.AsyncClient, spa: Client
) -> None:
    ask = {
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "authorization",
    }
    r = await http.options("/userinfo", headers={**ask, "Origin": APP_ORIGIN})
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    assert "Authorization" in r.headers["access-control-allow-headers"]
    assert {"GET", "POST"} <= {
        m.strip() for m in r.headers["access-control-allow-methods"].split(",")
    }

    r = await http.options("/userinfo", headers={**ask, "Origin": "https://evil.example"})
    assert r.status_code == 204
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-headers" not in r.headers


async def test_errors_are_readable_by_allowed_origins(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get("/userinfo", headers={"Origin": APP_ORIGIN, "Authorization": "Bearer x"})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == APP_ORIGIN
    r = await http.get("/userinfo", headers={"Origin": "https://evil.example"})
    assert r.status_code == 401
    assert "access-control-allow-origin" not in r.headers
