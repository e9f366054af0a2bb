"""Token contents and response (contract §3.7, §4, §5; security cases CD-06, CD-07, OI-01…OI-09)."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import jwt
import pytest

from keystead.core.apis import Permission, ResourceServer
from keystead.core.clock import FixedClock
from keystead.core.id_tokens import (
    half_hash,
    id_token_claims,
    iso8601,
    user_claims,
    userinfo_claims,
)
from keystead.core.keys import KeyRing, SigningKey, generate_signing_key
from keystead.core.tokens import (
    Signer,
    TokenResponse,
    access_token_claims,
    access_token_typ,
    client_access_token_claims,
    new_opaque_token,
    token_digest,
)
from keystead.core.users import User

T = "https://login.example.com/"
MGMT = ResourceServer(
    id="rs_mgmt",
    identifier=f"{T}api/v2/",
    name="Auth0 Management API",
    scopes=(Permission("read:current_user"), Permission("read:users")),
    is_system=True,
)
ORDERS = ResourceServer(
    id="rs_orders",
    identifier="https://orders.example",
    name="Orders",
    scopes=(Permission("read:orders"), Permission("write:orders")),
    token_lifetime=3_600,
)
SPA_ID = "SpaClientId00000000000000000000a"
SUB = "auth0|65f1c0ffee0000000000abcd"
NOW = 1_717_000_000.0
UPDATED = datetime(2024, 5, 1, 9, 12, 33, 417_000, tzinfo=UTC).timestamp()

USER = User(
    user_id=SUB,
    email="ada@example.com",
    email_verified=True,
    phone_number="+15555550100",
    phone_verified=False,
    name="Ada Lovelace",
    nickname="ada",
    given_name="Ada",
    family_name="Lovelace",
    picture="https://example.com/ada.png",
    updated_at=UPDATED,
    password_hash="$argon2id$secret",
)
BARE_USER = User(user_id="sms|abc")


@pytest.fixture
def now() -> float:
    return FixedClock(NOW).now()


def user_token(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "issuer": T,
        "subject": SUB,
        "client_id": SPA_ID,
        "api": MGMT,
        "scopes": ("openid", "profile", "email", "read:current_user"),
        "grant_type": "authorization_code",
        "now": NOW,
    }
    args.update(overrides)
    return access_token_claims(**args)


# --- user access tokens ----------------------------------------------------------------------


def test_spa_management_token_matches_the_contract_example() -> None:
    claims = user_token(
        scopes=("openid", "profile", "email", "read:current_user", "update:current_user_metadata")
    )
    assert claims == {
        "iss": "https://login.example.com/",
        "sub": "auth0|65f1c0ffee0000000000abcd",
        "aud": ["https://login.example.com/api/v2/", "https://login.example.com/userinfo"],
        "azp": "SpaClientId00000000000000000000a",
        "iat": 1717000000,
        "exp": 1717086400,
        "scope": "openid profile email read:current_user update:current_user_metadata",
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        # gty: only password and refresh grants (contract §4.1).
        ({"grant_type": "password"}, {"gty": "password"}),
        ({"grant_type": "http://auth0.com/oauth/grant-type/password-realm"}, {"gty": "password"}),
        ({"grant_type": "refresh_token"}, {"gty": "refresh_token"}),
        ({"grant_type": "authorization_code"}, {"gty": None}),
        # aud: an array only with openid and an RS256 API.
        ({"scopes": ("read:current_user",)}, {"aud": MGMT.identifier}),
        ({"api": replace(MGMT, signing_alg="HS256")}, {"aud": MGMT.identifier}),
        ({"api": None, "scopes": ("openid",)}, {"aud": f"{T}userinfo", "exp": 1717086400}),
        ({"api": None, "scopes": ()}, {"aud": f"{T}userinfo", "scope": None}),
        # lifetimes: the API's, or an explicit one (implicit tokens use token_lifetime_for_web).
        ({"api": ORDERS, "scopes": ("read:orders",)}, {"exp": 1717003600}),
        ({"lifetime": 7_200}, {"exp": 1717007200}),
        ({"now": NOW + 0.999}, {"iat": 1717000000, "exp": 1717086400}),
        # sid and organizations are optional.
        ({"session_id": "sess1"}, {"sid": "sess1"}),
        ({"session_id": None}, {"sid": None}),
        ({"org_id": "org_1", "org_name": "acme"}, {"org_id": "org_1", "org_name": "acme"}),
        # permissions only under the _authz dialects, not intersected with the request.
        ({"permissions": ["read:users"]}, {"permissions": None}),
        (
            {"api": replace(MGMT, token_dialect="access_token_authz"), "permissions": ["a", "b"]},
            {"permissions": ["a", "b"]},
        ),
        ({"api": replace(MGMT, token_dialect="access_token_authz")}, {"permissions": []}),
        # Custom claims never override registered ones.
        (
            {"extra": {"https://example.com/role": "x", "iss": "evil", "sub": "other"}},
            {"https://example.com/role": "x", "iss": T, "sub": SUB},
        ),
    ],
)
def test_user_access_token_claims(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    claims = user_token(**overrides)
    for name, value in expected.items():
        if value is None:
            assert name not in claims, name
        else:
            assert claims[name] == value, name
    assert isinstance(claims["iat"], int) and isinstance(claims["exp"], int)


def test_rfc9068_dialect() -> None:
    api = replace(ORDERS, token_dialect="rfc9068_profile_authz")
    claims = user_token(
        api=api,
        scopes=("read:orders",),
        grant_type="refresh_token",
        permissions=["read:orders"],
        jti="j1",
    )
    assert claims == {
        "iss": T,
        "sub": SUB,
        "aud": "https://orders.example",
        "client_id": SPA_ID,
        "jti": "j1",
        "iat": 1717000000,
        "exp": 1717003600,
        "scope": "read:orders",
        "permissions": ["read:orders"],
    }
    generated = user_token(api=api)["jti"]
    assert isinstance(generated, str) and len(generated) >= 16
    assert access_token_typ(api) == "at+jwt"
    assert access_token_typ(ORDERS) == "JWT"
    assert access_token_typ(None) == "JWT"


# --- client credentials ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("api", "scopes", "expected"),
    [
        (
            MGMT,
            ("read:users",),
            {
                "iss": T,
                "sub": "m2m@clients",
                "aud": f"{T}api/v2/",
                "azp": "m2m",
                "iat": 1717000000,
                "exp": 1717086400,
                "scope": "read:users",
                "gty": "client-credentials",
            },
        ),
        (  # no scopes: the claim is absent (contract §4.1, obs.)
            ORDERS,
            (),
            {
                "iss": T,
                "sub": "m2m@clients",
                "aud": "https://orders.example",
                "azp": "m2m",
                "iat": 1717000000,
                "exp": 1717003600,
                "gty": "client-credentials",
            },
        ),
        (  # _authz: permissions are the granted scopes
            replace(ORDERS, token_dialect="access_token_authz"),
            ("read:orders", "write:orders"),
            {
                "iss": T,
                "sub": "m2m@clients",
                "aud": "https://orders.example",
                "azp": "m2m",
                "iat": 1717000000,
                "exp": 1717003600,
                "scope": "read:orders write:orders",
                "gty": "client-credentials",
                "permissions": ["read:orders", "write:orders"],
            },
        ),
    ],
)
def test_client_access_token_claims(
    api: ResourceServer, scopes: tuple[str, ...], expected: dict[str, Any], now: float
) -> None:
    claims = client_access_token_claims(issuer=T, client_id="m2m", api=api, scopes=scopes, now=now)
    assert claims == expected


def test_client_access_token_with_openid_is_still_a_string_audience(now: float) -> None:
    claims = client_access_token_claims(
        issuer=T, client_id="m2m", api=MGMT, scopes=("openid",), now=now, lifetime=60
    )
    assert claims["aud"] == MGMT.identifier
    assert claims["exp"] - claims["iat"] == 60


# --- profile claims (OI-09) ------------------------------------------------------------------

PROFILE = {
    "name": "Ada Lovelace",
    "nickname": "ada",
    "picture": "https://example.com/ada.png",
    "updated_at": "2024-05-01T09:12:33.417Z",
    "given_name": "Ada",
    "family_name": "Lovelace",
}
EMAIL = {"email": "ada@example.com", "email_verified": True}
PHONE = {"phone_number": "+15555550100", "phone_number_verified": False}


@pytest.mark.parametrize(
    ("user", "scopes", "expected"),
    [
        (USER, ("openid",), {}),
        (USER, ("openid", "email"), EMAIL),
        (USER, ("openid", "profile"), PROFILE),
        (USER, ("openid", "phone"), PHONE),
        (USER, ("openid", "address", "phone"), PHONE),  # no address known
        (USER, ("openid", "profile", "email", "phone"), {**PROFILE, **EMAIL, **PHONE}),
        (USER, ("read:orders", "offline_access"), {}),
        (BARE_USER, ("openid", "profile", "email", "phone"), {}),  # nothing known, nothing sent
    ],
)
def test_user_claims(user: User, scopes: tuple[str, ...], expected: dict[str, Any]) -> None:
    assert user_claims(user, scopes) == expected
    assert userinfo_claims(user, scopes) == {"sub": user.user_id, **expected}


def test_secrets_never_become_claims() -> None:
    everything = ("openid", "profile", "email", "phone", "address", "offline_access")
    assert "password_hash" not in userinfo_claims(USER, everything)
    assert "$argon2id$secret" not in repr(userinfo_claims(USER, everything))


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (UPDATED, "2024-05-01T09:12:33.417Z"),
        (UPDATED - 0.417, "2024-05-01T09:12:33.000Z"),
        (UPDATED + 0.5826, "2024-05-01T09:12:34.000Z"),  # rounds up into the next second
        (1_717_000_000, "2024-05-29T16:26:40.000Z"),
    ],
)
def test_iso8601(timestamp: float, text: str) -> None:
    assert iso8601(timestamp) == text


# --- ID tokens (contract §4.3) ---------------------------------------------------------------


def id_token(**overrides: Any) -> dict[str, Any]:
    args: dict[str, Any] = {
        "issuer": T,
        "user": USER,
        "client_id": SPA_ID,
        "scopes": ("openid", "profile", "email"),
        "now": NOW,
        "auth_time": NOW - 120.7,
        "lifetime": 36_000,
    }
    args.update(overrides)
    return id_token_claims(**args)


def test_id_token_for_spa_js_default_scopes() -> None:
    assert id_token(nonce="n-0S6_WzA2Mj", session_id="sid1") == {
        **PROFILE,
        **EMAIL,
        "iss": T,
        "sub": SUB,
        "aud": SPA_ID,  # the client only, never the API (OI-03)
        "iat": 1717000000,
        "exp": 1717036000,
        "auth_time": 1716999879,
        "nonce": "n-0S6_WzA2Mj",
        "sid": "sid1",
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"scopes": ("openid",)}, {"name": None, "email": None, "sub": SUB}),  # OI-09
        ({"nonce": None}, {"nonce": None}),  # OI-01: no nonce sent, none returned
        ({"nonce": "ü ✓ " + "x" * 400}, {"nonce": "ü ✓ " + "x" * 400}),  # byte-exact, not cut
        ({"auth_time": NOW - 5}, {"auth_time": 1716999995}),  # always present (§4.3 SHOULD)
        ({"lifetime": 60}, {"exp": 1717000060}),
        ({"org_id": "org_1", "org_name": "acme"}, {"org_id": "org_1", "org_name": "acme"}),
        ({}, {"at_hash": None, "c_hash": None, "sid": None}),
        ({"extra": {"https://example.com/roles": ["a"], "aud": "x"}}, {"aud": SPA_ID}),
    ],
)
def test_id_token_claims(overrides: dict[str, Any], expected: dict[str, Any]) -> None:
    claims = id_token(**overrides)
    for name, value in expected.items():
        if value is None:
            assert name not in claims, name
        else:
            assert claims[name] == value, name
    assert all(isinstance(claims[n], int) for n in ("iat", "exp", "auth_time"))


def test_at_hash_and_c_hash() -> None:
    access_token, code = "eyJhbGciOi.payload.sig", "SplxlOBeZQQYbYS6WxSbIA"

    def expected(value: str) -> str:
        left = hashlib.sha256(value.encode()).digest()[:16]
        return base64.urlsafe_b64encode(left).decode().rstrip("=")

    claims = id_token(access_token=access_token, code=code)
    assert claims["at_hash"] == expected(access_token) == half_hash(access_token)
    assert claims["c_hash"] == expected(code)
    assert len(claims["at_hash"]) == 22


# --- the response (contract §3.7) ------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "body"),
    [
        (
            TokenResponse("at", expires_in=86_400, scope="openid profile", id_token="it"),
            {
                "access_token": "at",
                "id_token": "it",
                "scope": "openid profile",
                "expires_in": 86400,
                "token_type": "Bearer",
            },
        ),
        (
            TokenResponse(
                "at",
                expires_in=86_400,
                scope="openid offline_access",
                id_token="it",
                refresh_token="rt",
            ),
            {
                "access_token": "at",
                "refresh_token": "rt",
                "id_token": "it",
                "scope": "openid offline_access",
                "expires_in": 86400,
                "token_type": "Bearer",
            },
        ),
        (  # client credentials without scopes: no scope, id_token or refresh_token
            TokenResponse("at", expires_in=3600),
            {"access_token": "at", "expires_in": 3600, "token_type": "Bearer"},
        ),
    ],
)
def test_token_response_body(response: TokenResponse, body: dict[str, Any]) -> None:
    assert response.body() == body
    assert list(response.body()) == list(body)  # Auth0's member order


def test_expires_in_is_always_an_int() -> None:
    body = TokenResponse("at", expires_in=3600.0).body()  # type: ignore[arg-type]
    assert body["expires_in"] == 3600 and type(body["expires_in"]) is int


# --- opaque tokens (CD-06) -------------------------------------------------------------------


def test_opaque_tokens_are_random_and_url_safe() -> None:
    tokens = {new_opaque_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert re.fullmatch(r"[A-Za-z0-9_\-]{43}", token)  # 256 bits


@pytest.mark.parametrize("token", ["abc", new_opaque_token(), "é", "\ud800", ""])
def test_token_digest(token: str) -> None:
    digest = token_digest(token)
    assert len(digest) == 32
    assert digest == token_digest(token)


def test_token_digest_distinguishes_tokens() -> None:
    assert token_digest("a") != token_digest("b")


# --- signing ---------------------------------------------------------------------------------


def test_the_key_ring_is_a_signer(now: float) -> None:
    private_pem, cert_der, kid = generate_signing_key(now)
    ring = KeyRing(
        [SigningKey.load(kid=kid, state="current", private_pem=private_pem, cert_der=cert_der)]
    )
    signer: Signer = ring
    api = replace(ORDERS, token_dialect="rfc9068_profile")
    claims = user_token(api=api, scopes=("read:orders",), now=now)
    token = signer.sign(claims, typ=access_token_typ(api))
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": kid, "typ": "at+jwt"}
    assert jwt.decode(token, options={"verify_signature": False}) == claims
