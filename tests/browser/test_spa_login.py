"""auth0-spa-js, unchanged, in Debian's Chromium against a live Keystead (contract §13.1, §16)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.browser.conftest import drive

pytestmark = pytest.mark.browser

SPA_CLIENT_ID = "CompatSpaClient00000000000000001"
SCOPE = "openid profile email read:current_user update:current_user_metadata read:users"


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


MANAGEMENT_CALLS = {
    "read_self": ["GET", "/api/v2/users/{sub}"],
    "patch_self": ["PATCH", "/api/v2/users/{sub}", {"user_metadata": {"lang": "fr"}}],
    "patch_app_metadata": ["PATCH", "/api/v2/users/{sub}", {"app_metadata": {"x": 1}}],
    "list_users": ["GET", "/api/v2/users"],
    "other_user": ["GET", "/api/v2/users/auth0%7C000000000000000000000000"],
}


def scenario(  # type: ignore[no-untyped-def]
    live_server, spa_server, *, use_refresh_tokens: bool, audience: str, scope: str, calls=None
) -> dict[str, Any]:
    return drive(
        {
            "spaOrigin": spa_server,
            "username": "ada@compat.test",
            "password": "Compat-Passw0rd-ada",
            "client": {
                "domain": live_server.issuer.rstrip("/"),
                "clientId": SPA_CLIENT_ID,
                "audience": audience,
                "scope": scope,
                "useRefreshTokens": use_refresh_tokens,
            },
            "apiCalls": calls or {},
        }
    )


def check_login(out: dict[str, Any], issuer: str, audience: str) -> None:
    steps = out["steps"]
    assert "error" not in out, json.dumps(out)[:4000]
    assert steps["login_page"]["value"].startswith("/u/login")
    assert steps["submit_credentials"]["value"] is True
    user = steps["callback"]["value"]["user"]
    assert user["email"] == "ada@compat.test"
    assert user["name"] == "Ada Lovelace"
    claims = steps["claims"]["value"]
    assert claims["iss"] == issuer
    assert claims["aud"] == SPA_CLIENT_ID
    token = steps["token_silent"]["value"]
    access = jwt_claims(token["access_token"])
    assert access["aud"] == [audience, issuer + "userinfo"]


def check_management(out: dict[str, Any]) -> None:
    steps = out["steps"]
    assert steps["api:read_self"]["value"]["status"] == 200
    patched = steps["api:patch_self"]["value"]
    assert patched["status"] == 200
    assert patched["body"]["user_metadata"]["lang"] == "fr"
    assert patched["body"]["user_metadata"]["theme"] == "dark"
    assert steps["api:patch_app_metadata"]["value"]["status"] == 403
    listing = steps["api:list_users"]["value"]
    assert listing["status"] == 403
    assert listing["body"]["errorCode"] == "insufficient_scope"
    other = steps["api:other_user"]["value"]
    assert other["status"] == 403
    assert other["body"]["errorCode"] == "unowned_resource"


def test_redirect_login_iframe_silent_auth_and_logout(live_server, spa_server):  # type: ignore[no-untyped-def]
    management = live_server.issuer + "api/v2/"
    out = scenario(
        live_server,
        spa_server,
        use_refresh_tokens=False,
        audience=management,
        scope=SCOPE,
        calls=MANAGEMENT_CALLS,
    )
    check_login(out, live_server.issuer, management)
    granted = set(
        jwt_claims(out["steps"]["token_silent"]["value"]["access_token"])["scope"].split()
    )
    # A SPA asking for read:users gets only the current-user scopes (contract §3.8).
    assert {"read:current_user", "update:current_user_metadata"} <= granted
    assert not any(s.endswith(":users") for s in granted)
    # Silent auth through the hidden iframe (response_mode=web_message) gives a fresh token.
    assert out["steps"]["token_silent_again"]["ok"]
    check_management(out)
    assert out["steps"]["logout"]["ok"]
    # The session is gone: silent auth in the iframe answers login_required.
    assert out["steps"]["after_logout_silent"]["value"] == "login_required"


def test_refresh_token_rotation_in_the_browser(live_server, spa_server):  # type: ignore[no-untyped-def]
    # The Management API allows no offline access (as on Auth0), so refresh tokens are asked for
    # an API that does.
    api = "https://api.compat.test/"
    out = scenario(
        live_server,
        spa_server,
        use_refresh_tokens=True,
        audience=api,
        scope="openid profile email offline_access read:things",
    )
    check_login(out, live_server.issuer, api)
    # Two refreshes in a row: the second presents the token the first rotated in, so both
    # succeeding shows rotation works through the SDK's own refresh-token handling.
    for step in ("token_silent", "token_silent_again"):
        response = out["steps"][step]["value"]
        assert response["id_token"]  # spa-js requires it on every refresh
        assert jwt_claims(response["access_token"])["gty"] == "refresh_token"
    assert out["steps"]["logout"]["ok"]
    # Logout dropped the refresh token; without useRefreshTokensFallback spa-js says so itself.
    assert out["steps"]["after_logout_silent"]["value"] == "missing_refresh_token"
