"""The Management API's front door: bearer tokens (§8.1), scopes and ownership (§8.3), CORS
(§0.3). Security cases MG-01, MG-02, MG-06, MG-07, JW-01, JW-05, JW-06, JW-08, JW-12."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keystead.core.keys import check_token_times
from keystead.errors import InvalidToken
from keystead.management import auth
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    MGMT,
    SPA,
    SPA_ORIGIN,
    bearer,
    check_error,
    check_oas,
    m2m,
    make_client,
    make_spa,
    make_user,
    mint,
    module_app,
    module_http,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app(
    management_audience_aliases=("https://custom.example/api/v2/",),
    rate_limits="management.subject=off",  # many calls as one user; limits are tested elsewhere
)
http = module_http()

EVIL = "https://evil.example"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def users(app: Any) -> dict[str, str]:
    await make_spa(app)
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    a = await make_user(app, user_id="auth0|aaaaaaaaaaaaaaaaaaaaaaaa", email="a@example.com")
    b = await make_user(app, user_id="auth0|bbbbbbbbbbbbbbbbbbbbbbbb", email="b@example.com")
    return {"a": a.user_id, "b": b.user_id}


def _b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**over: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": f"{M2M}@clients", "aud": MGMT, "iat": now, "exp": now + 600}
    claims["scope"] = "read:users"
    claims.update(over)
    return claims


# --- §8.1: the header ---------------------------------------------------------------------------

MISSING = "Missing authentication"
BAD_FORMAT = "Bad HTTP authentication header format"


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Bearer   ", "Basic dXNlcjpwYXNz", "Token abc.def.ghi"],
    ids=["absent", "empty", "bare-scheme", "empty-token", "spaces-only", "basic", "other-scheme"],
)
async def test_missing_authentication_is_401(http: Any, users: Any, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    r = await http.get(f"/api/v2/users/{users['a']}", headers=headers)
    body = check_error(r, 401, MISSING)
    assert body == {
        "statusCode": 401,
        "error": "Unauthorized",
        "message": MISSING,
        "attributes": {"error": MISSING},
    }
    assert r.headers["www-authenticate"] == "Bearer"  # RFC 6750 §3.1: no error code


@pytest.mark.parametrize(
    "header",
    ["Bearer a.b.c extra", "Bearer opaque-token-from-a-login-without-audience", "Bearer a.b"],
)
async def test_bad_header_format_is_400(http: Any, users: Any, header: str) -> None:
    # The opaque-token mistake (§8.1): Auth0 answers 400, not 401.
    r = await http.get(f"/api/v2/users/{users['a']}", headers={"Authorization": header})
    assert check_error(r, 400, BAD_FORMAT, "Bearer") == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": BAD_FORMAT,
        "errorCode": "Bearer",
    }


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
async def test_scheme_is_case_insensitive(app: Any, http: Any, users: Any, scheme: str) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:users")
    r = await http.get(
        f"/api/v2/users/{users['a']}", headers={"Authorization": f"{scheme} {token}"}
    )
    assert r.status_code == 200
    check_oas(r, "GET", "/users/{id}")


async def test_token_in_query_string_is_not_accepted(app: Any, http: Any, users: Any) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:users")
    r = await http.get(f"/api/v2/users/{users['a']}", params={"access_token": token})
    check_error(r, 401, MISSING)


# --- §8.1: the token ----------------------------------------------------------------------------


def _forged_none(app: Any, alg: str) -> str:
    header = {"alg": alg, "typ": "JWT", "kid": state_of(app).keys.current.kid}
    return f"{_b64(header)}.{_b64(_claims())}."


def _forged_hs256(app: Any) -> str:
    """Algorithm confusion: HS256 keyed with our public key's PEM (CVE-2015-9235 style)."""
    key = state_of(app).keys.current
    pem = key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': key.kid})}.{_b64(_claims())}"
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def _foreign_key(app: Any, **claims: Any) -> str:
    """Signed by a key we never published, under our current kid or a kid of its own."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = claims.pop("kid")
    return jwt.encode(_claims(**claims), other, algorithm="RS256", headers={"kid": kid})


def _flipped(app: Any) -> str:
    token = mint(app, sub=f"{M2M}@clients", scope="read:users")
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["scope"] = "read:users delete:users"
    return f"{header}.{_b64(claims)}.{signature}"


@pytest.mark.parametrize(
    "make",
    [
        lambda app: _forged_none(app, "none"),
        lambda app: _forged_none(app, "None"),
        lambda app: _forged_none(app, "nOnE"),
        _forged_hs256,
        lambda app: _foreign_key(app, kid=state_of(app).keys.current.kid),
        lambda app: _foreign_key(app, kid="made-up-kid"),
        _flipped,
        lambda app: mint(app, sub=f"{M2M}@clients", scope="read:users", iss="https://other.example/"),
        lambda app: mint(app, sub=f"{M2M}@clients", scope="read:users", iss=ISSUER.rstrip("/")),
        lambda app: state_of(app).keys.sign({k: v for k, v in _claims().items() if k != "exp"}),
        lambda app: state_of(app).keys.sign({k: v for k, v in _claims().items() if k != "sub"}),
        lambda app: "eyJhbGciOiJSUzI1NiJ9.not-base64!.c2ln",
    ],
    ids=[
        "alg-none", "alg-None", "alg-nOnE", "hs256-with-public-key", "foreign-key-our-kid",
        "unknown-kid", "payload-bit-flipped", "other-issuer", "issuer-without-slash",
        "no-exp", "no-sub", "garbage",
    ],
)  # fmt: skip
async def test_invalid_tokens_are_401(app: Any, http: Any, users: Any, make: Any) -> None:
    r = await http.get(f"/api/v2/users/{users['a']}", headers=bearer(make(app)))
    body = check_error(r, 401, "Invalid token")
    assert body["attributes"] == {"error": "Invalid token"}
    assert r.headers["www-authenticate"].startswith('Bearer error="invalid_token"')
    assert "a@example.com" not in r.text


async def test_expired_token_has_its_own_message(app: Any, http: Any, users: Any) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:users", ttl=-600)  # JW-05
    r = await http.get(f"/api/v2/users/{users['a']}", headers=bearer(token))
    check_error(r, 401, "Expired token received for JSON Web Token validation")


async def test_expiry_description_is_the_one_auth_recognises() -> None:
    # auth.py tells an expired token from other invalid ones by core/keys' description.
    with pytest.raises(InvalidToken) as caught:
        check_token_times({"exp": 100}, now=200)
    assert caught.value.description == auth._EXPIRED_DESCRIPTION


@pytest.mark.parametrize(
    ("aud", "shown"),
    [
        ("https://orders.example", "https://orders.example"),  # JW-06
        (
            ["https://orders.example", ISSUER + "userinfo"],
            f"https://orders.example {ISSUER}userinfo",
        ),
        (SPA, SPA),  # an ID token presented as an access token
        ([], ""),
    ],
)
async def test_bad_audience(app: Any, http: Any, users: Any, aud: Any, shown: str) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:users", aud=aud)
    r = await http.get(f"/api/v2/users/{users['a']}", headers=bearer(token))
    check_error(r, 401, f"Bad audience: {shown}")


@pytest.mark.parametrize(
    "aud",
    [
        MGMT,
        [MGMT, ISSUER + "userinfo"],
        [ISSUER + "userinfo", MGMT],
        "https://custom.example/api/v2/",
    ],
    ids=["string", "array", "array-second", "alias"],
)
async def test_good_audience(app: Any, http: Any, users: Any, aud: Any) -> None:
    token = mint(app, sub=f"{M2M}@clients", scope="read:users", aud=aud)
    r = await http.get(f"/api/v2/users/{users['a']}", headers=bearer(token))
    assert r.status_code == 200, r.text


# --- §8.3: scopes and ownership -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "expected"),
    [
        ("GET", "/users/{a}", "read:users,read:current_user,read:user_idp_tokens"),
        ("GET", "/users", "read:users,read:user_idp_tokens"),
        ("GET", "/users-by-email?email=a@example.com", "read:users"),
        ("POST", "/users", "create:users"),
        (
            "PATCH",
            "/users/{a}",
            "update:users,update:users_app_metadata,update:current_user_metadata,"
            "create:current_user_metadata",
        ),
        ("DELETE", "/users/{a}", "delete:users,delete:current_user"),
    ],
)
async def test_insufficient_scope_names_the_accepted_scopes(
    app: Any, http: Any, users: Any, method: str, path: str, expected: str
) -> None:
    headers = m2m(app, "read:clients create:clients")
    r = await http.request(method, "/api/v2" + path.format(**users), headers=headers, json={})
    body = check_error(r, 403, f"Insufficient scope, expected any of: {expected}")
    assert body == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": f"Insufficient scope, expected any of: {expected}",
        "errorCode": "insufficient_scope",
    }


async def test_read_only_m2m_token_reads_but_cannot_write(app: Any, http: Any, users: Any) -> None:
    # MG-07
    headers = m2m(app, "read:users")
    r = await http.get(f"/api/v2/users/{users['b']}", headers=headers)
    assert r.status_code == 200
    r = await http.delete(f"/api/v2/users/{users['b']}", headers=headers)
    check_error(r, 403, "Insufficient scope, expected any of: delete:users,delete:current_user")
    r = await http.get(f"/api/v2/users/{users['b']}", headers=headers)
    assert r.status_code == 200  # still there


async def test_no_scope_claim_is_insufficient(app: Any, http: Any, users: Any) -> None:
    token = state_of(app).keys.sign({k: v for k, v in _claims().items() if k != "scope"})
    r = await http.get(f"/api/v2/users/{users['a']}", headers=bearer(token))
    assert r.status_code == 403
    assert r.json()["errorCode"] == "insufficient_scope"


UNOWNED = "User to be acted on does not match subject in bearer token."


@pytest.mark.parametrize(
    "encode", [str, lambda u: u.replace("|", "%7C"), lambda u: u.replace("|", "%7c")]
)
async def test_user_token_reads_itself(app: Any, http: Any, users: Any, encode: Any) -> None:
    r = await http.get("/api/v2/users/" + encode(users["a"]), headers=user_token(app, users["a"]))
    body = check_oas(r, "GET", "/users/{id}")
    assert body["user_id"] == users["a"]


@pytest.mark.parametrize(
    "encode",
    [str, lambda u: u.replace("|", "%7C"), lambda u: u.replace("|", "%257C")],
    ids=["raw", "encoded", "double-encoded"],
)
async def test_user_token_cannot_read_another_user(
    app: Any, http: Any, users: Any, encode: Any
) -> None:
    # MG-02: 403 unowned_resource and nothing about B.
    r = await http.get("/api/v2/users/" + encode(users["b"]), headers=user_token(app, users["a"]))
    check_error(r, 403, UNOWNED, "unowned_resource")
    assert "b@example.com" not in r.text


async def test_user_token_cannot_read_a_missing_user_either(
    app: Any, http: Any, users: Any
) -> None:
    r = await http.get("/api/v2/users/auth0|nobody", headers=user_token(app, users["a"]))
    check_error(r, 403, UNOWNED, "unowned_resource")  # not 404: existence is not revealed


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/users"), ("GET", "/users-by-email?email=b@example.com"), ("POST", "/users")],
)
async def test_user_token_gets_no_collections(
    app: Any, http: Any, users: Any, method: str, path: str
) -> None:
    # §8.3 item 3, MG-06: the community thread's "GET /api/v2/users is not allowed".
    r = await http.request(method, "/api/v2" + path, headers=user_token(app, users["a"]), json={})
    assert r.status_code == 403
    assert r.json()["errorCode"] == "insufficient_scope"
    assert "b@example.com" not in r.text


async def test_user_token_cannot_delete_itself_without_the_scope(
    app: Any, http: Any, users: Any
) -> None:
    r = await http.delete(f"/api/v2/users/{users['a']}", headers=user_token(app, users["a"]))
    check_error(r, 403, "Insufficient scope, expected any of: delete:users,delete:current_user")


# --- §0.3: CORS -----------------------------------------------------------------------------------


async def test_preflight_for_an_allowed_origin(http: Any, users: Any) -> None:
    r = await http.options(
        f"/api/v2/users/{users['a']}",
        headers={
            "Origin": SPA_ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert r.headers["access-control-allow-methods"] == "GET, POST, PATCH, PUT, DELETE"
    assert r.headers["access-control-allow-headers"] == "Authorization, Content-Type"
    assert r.headers["vary"] == "Origin"


@pytest.mark.parametrize("origin", [EVIL, "null", "http://localhost:3001"])
async def test_preflight_for_another_origin(http: Any, users: Any, origin: str) -> None:
    r = await http.options(
        "/api/v2/users", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
    )
    assert r.status_code == 204
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-methods" not in r.headers


async def test_browser_call_with_the_spa_token(app: Any, http: Any, users: Any) -> None:
    headers = {**user_token(app, users["a"]), "Origin": SPA_ORIGIN}
    r = await http.get(f"/api/v2/users/{users['a']}", headers=headers)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN
    assert r.headers["access-control-expose-headers"] == (
        "X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset"
    )
    assert r.headers["vary"] == "Origin"
    # The SPA can read its errors too.
    r = await http.get(f"/api/v2/users/{users['b']}", headers=headers)
    assert r.status_code == 403
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN


async def test_origin_is_judged_by_the_tokens_client(app: Any, http: Any, users: Any) -> None:
    # An M2M client lists no web origins: a page on the SPA's origin may not use its token.
    headers = {**m2m(app, "read:users"), "Origin": SPA_ORIGIN}
    r = await http.get(f"/api/v2/users/{users['a']}", headers=headers)
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers
    headers = {**user_token(app, users["a"]), "Origin": EVIL}
    r = await http.get(f"/api/v2/users/{users['a']}", headers=headers)
    assert "access-control-allow-origin" not in r.headers


async def test_unknown_client_gets_no_cors(app: Any, http: Any, users: Any) -> None:
    headers = {**user_token(app, users["a"], azp="NoSuchClient"), "Origin": SPA_ORIGIN}
    r = await http.get(f"/api/v2/users/{users['a']}", headers=headers)
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


async def test_401_is_readable_by_allowed_origins_only(http: Any, users: Any) -> None:
    r = await http.get(f"/api/v2/users/{users['a']}", headers={"Origin": SPA_ORIGIN})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == SPA_ORIGIN
    r = await http.get(f"/api/v2/users/{users['a']}", headers={"Origin": EVIL})
    assert r.status_code == 401
    assert "access-control-allow-origin" not in r.headers


async def test_no_origin_no_cors_headers(app: Any, http: Any, users: Any) -> None:
    r = await http.get(f"/api/v2/users/{users['a']}", headers=user_token(app, users["a"]))
    assert "access-control-allow-origin" not in r.headers
    assert "vary" not in r.headers
