"""auth0-spa-js, unchanged, in Debian's Chromium against a live Keystead (contract §13.1, §16)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.browser.conftest import drive

pytestmark = pytest.mark.browser

SPA_CLIENT_ID = "CompatSpaClient00000000000000001"
SCOPE = "openid profile email offline_access read:current_user update:current_user_metadata"


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def scenario(live_server, spa_server, *, use_refresh_tokens: bool) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return drive(
        {
            "spaOrigin": spa_server,
            "username": "ada@compat.test",
            "password": "Compat-Passw0rd-ada",
            "client": {
                "domain": live_server.issuer.rstrip("/"),
                "clientId": SPA_CLIENT_ID,
                "audience": live_server.issuer + "api/v2/",
                "scope": SCOPE,
                "useRefreshTokens": use_refresh_tokens,
            },
            "apiCalls": {
                "read_self": ["GET", "/api/v2/users/{sub}"],
                "patch_self": ["PATCH", "/api/v2/users/{sub}", {"user_metadata": {"lang": "fr"}}],
                "patch_app_metadata": ["PATCH", "/api/v2/users/{sub}", {"app_metadata": {"x": 1}}],
                "list_users": ["GET", "/api/v2/users"],
                "other_user": ["GET", "/api/v2/users/auth0%7C000000000000000000000000"],
            },
        }
    )


def check_login(out: dict[str, Any], issuer: str) -> None:
    steps = out["steps"]
    assert "error" not in out, out
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
    assert access["aud"] == [issuer + "api/v2/", issuer + "userinfo"]
    granted = set(access["scope"].split())
    assert {"read:current_user", "update:current_user_metadata"} <= granted
    assert not any(s.endswith(":users") for s in granted)


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
    out = scenario(live_server, spa_server, use_refresh_tokens=False)
    check_login(out, live_server.issuer)
    # Silent auth through the hidden iframe (response_mode=web_message) gives a fresh token.
    assert out["steps"]["token_silent_again"]["ok"]
    check_management(out)
    assert out["steps"]["logout"]["ok"]
    assert out["steps"]["after_logout_silent"]["value"] == "login_required"


def test_refresh_token_rotation_in_the_browser(live_server, spa_server):  # type: ignore[no-untyped-def]
    out = scenario(live_server, spa_server, use_refresh_tokens=True)
    check_login(out, live_server.issuer)
    first, second = out["steps"]["token_silent"]["value"], out["steps"]["token_silent_again"]["value"]
    assert first["access_token"] != second["access_token"]
    assert second["id_token"]
    check_management(out)
    assert out["steps"]["logout"]["ok"]
