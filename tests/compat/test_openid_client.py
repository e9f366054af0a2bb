"""openid-client 6.9 (Node), unchanged, against a live Keystead over http (§1, §3, §5, §7.1).

openid-client is strict: discovery `issuer` must equal the URL it came from, every ID token claim
is checked, the callback's `state` and the nonce must match. The script drives the hosted login
page over plain HTTP; see tests/compat/node/openid_client_flow.mjs.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.compat.conftest import LiveServer, need_node_sdks, run_node_script

pytestmark = pytest.mark.compat

WEB_CLIENT_ID = "CompatWebClient00000000000000001"
WEB_SECRET = "compat-web-secret-0123456789abcdef"
REDIRECT_URI = "http://127.0.0.1:4999/callback"
API = "https://api.compat.test/"
EMAIL = "edsger@compat.test"


@pytest.fixture(scope="module")
def flow(live_server: LiveServer) -> dict[str, Any]:
    need_node_sdks("openid-client")
    out = run_node_script(
        "openid_client_flow.mjs",
        {
            "issuer": live_server.issuer,
            "clientId": WEB_CLIENT_ID,
            "clientSecret": WEB_SECRET,
            "redirectUri": REDIRECT_URI,
            "username": EMAIL,
            "password": "Compat-Passw0rd-edsger",
            "audience": API,
        },
    )
    steps: dict[str, Any] = out["steps"]
    return steps


def ok(steps: dict[str, Any], name: str) -> Any:
    step = steps[name]
    assert step["ok"], f"{name}: {step}"
    return step["value"]


def refused(steps: dict[str, Any], name: str) -> dict[str, Any]:
    step: dict[str, Any] = steps[name]
    assert not step["ok"], f"{name} unexpectedly succeeded: {step}"
    return step


def test_discovery(flow: dict[str, Any], live_server: LiveServer) -> None:
    meta = ok(flow, "discovery")
    issuer = live_server.issuer
    assert meta["issuer"] == issuer
    assert meta["authorization_endpoint"] == issuer + "authorize"
    assert meta["token_endpoint"] == issuer + "oauth/token"
    assert meta["userinfo_endpoint"] == issuer + "userinfo"
    assert meta["jwks_uri"] == issuer + ".well-known/jwks.json"
    assert meta["revocation_endpoint"] == issuer + "oauth/revoke"
    assert "S256" in meta["code_challenge_methods_supported"]
    assert "RS256" in meta["id_token_signing_alg_values_supported"]


def test_authorization_code_with_pkce(flow: dict[str, Any], live_server: LiveServer) -> None:
    url = ok(flow, "authorization_url")
    assert url.startswith(live_server.issuer + "authorize?")
    assert "code_challenge_method=S256" in url
    login = ok(flow, "login")
    assert login["loginPage"] == "/u/login"
    assert login["csrf"] is True  # the form carried its CSRF token
    assert login["callback"].startswith(REDIRECT_URI + "?code=")

    # authorizationCodeGrant checked state, PKCE, nonce and every ID token claim before this.
    grant = ok(flow, "authorization_code_grant")
    assert grant["token_type"] == "bearer"
    assert grant["expires_in"] == 86400
    assert grant["has_refresh_token"] is True
    assert grant["scope"].split() == ["openid", "profile", "email", "offline_access", "read:things"]
    id_claims = grant["id_token_claims"]
    assert id_claims["iss"] == live_server.issuer
    assert id_claims["aud"] == WEB_CLIENT_ID
    assert id_claims["sub"].startswith("auth0|")
    assert id_claims["email"] == EMAIL
    assert id_claims["name"] == "Edsger Dijkstra"
    assert id_claims["nonce"]
    assert isinstance(id_claims["auth_time"], int)
    assert id_claims["exp"] > id_claims["iat"]
    access = grant["access_token_claims"]
    assert access["aud"] == [API, live_server.issuer + "userinfo"]
    assert access["azp"] == WEB_CLIENT_ID
    assert access["sub"] == id_claims["sub"]
    assert access["scope"] == grant["scope"]


def test_userinfo(flow: dict[str, Any]) -> None:
    info = ok(flow, "userinfo")  # openid-client checked `sub` against the ID token's
    sub = ok(flow, "authorization_code_grant")["id_token_claims"]["sub"]
    assert info["sub"] == sub
    assert info["email"] == EMAIL
    assert info["email_verified"] is True
    assert info["name"] == "Edsger Dijkstra"


def test_refresh_token_grant(flow: dict[str, Any], live_server: LiveServer) -> None:
    refreshed = ok(flow, "refresh_token_grant")
    first = ok(flow, "authorization_code_grant")
    assert refreshed["access_token_claims"]["gty"] == "refresh_token"
    assert refreshed["access_token_claims"]["sub"] == first["id_token_claims"]["sub"]
    assert refreshed["access_token_claims"]["aud"] == [API, live_server.issuer + "userinfo"]
    # A new ID token with the same subject and the original authentication time.
    assert refreshed["id_token_claims"]["sub"] == first["id_token_claims"]["sub"]
    assert refreshed["id_token_claims"]["auth_time"] == first["id_token_claims"]["auth_time"]
    assert "nonce" not in refreshed["id_token_claims"]
    # The web client does not rotate: its refresh token stays the same.
    assert refreshed["rotated"] is False


def test_revocation_ends_the_refresh_token(flow: dict[str, Any]) -> None:
    assert ok(flow, "token_revocation") is None
    after = refused(flow, "refresh_after_revocation")
    assert after["status"] == 403
    assert after["oauth_error"] == "invalid_grant"
    assert after["description"] == "Unknown or invalid refresh token."


def test_code_replay_is_refused_and_revokes(flow: dict[str, Any]) -> None:
    # The second login reused the session: no login page, straight back with a code.
    assert ok(flow, "second_login")["loginPage"] is None
    assert ok(flow, "second_authorization_code_grant")["has_refresh_token"] is True
    replay = refused(flow, "code_replay")
    assert replay["status"] == 403
    assert replay["oauth_error"] == "invalid_grant"
    # Contract §3.2: reuse revokes what the code was exchanged for.
    after = refused(flow, "refresh_after_code_replay")
    assert after["oauth_error"] == "invalid_grant"


def test_client_credentials_grant(flow: dict[str, Any], live_server: LiveServer) -> None:
    grant = ok(flow, "client_credentials_grant")
    assert grant["token_type"] == "bearer"
    assert grant["scope"].split() == ["read:things", "write:things"]
    claims = grant["access_token_claims"]
    assert claims["sub"] == WEB_CLIENT_ID + "@clients"
    assert claims["aud"] == API
    assert claims["iss"] == live_server.issuer
    assert claims["gty"] == "client-credentials"


def test_client_credentials_refusals(flow: dict[str, Any]) -> None:
    # The web client has no client grant for the Management API.
    no_grant = refused(flow, "client_credentials_without_grant")
    assert no_grant["status"] == 403
    assert no_grant["oauth_error"] == "access_denied"
    assert no_grant["description"].startswith('Client is not authorized to access "')
    wrong = refused(flow, "wrong_secret")
    assert wrong["status"] == 401
    assert wrong["oauth_error"] == "invalid_client"
