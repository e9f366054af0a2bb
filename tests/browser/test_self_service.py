"""The self-service profile policy (issue 6) as a real SPA meets it: auth0-spa-js, unchanged, in
Debian's Chromium, writing the signed-in user's own user_metadata through the Management API.

The live server is shared by the whole session (tests/compat/tenant.yaml), so each test sets
its policy through the Management API with the compat M2M client and puts everything back
afterwards: the other browser tests see Auth0's behaviour and grace's metadata as they were.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.browser.conftest import drive

pytestmark = pytest.mark.browser

SPA_CLIENT_ID = "CompatSpaClient00000000000000001"
M2M_CLIENT_ID = "CompatM2MClient00000000000000001"
M2M_SECRET = "compat-m2m-secret-0123456789abcdef"
EMAIL = "grace@compat.test"  # ada belongs to test_spa_login.py, which checks her theme
PASSWORD = "Compat-Passw0rd-grace"
SCOPE = "openid profile email read:current_user update:current_user_metadata"
POLICY = {
    "user_metadata": {
        "writable": ["theme"],  # `plan` is read-only to the user
        "schema": {
            "type": "object",
            "properties": {"theme": {"enum": ["light", "dark"]}, "plan": {"type": "string"}},
        },
    }
}
CALLS = {
    "patch_plan": ["PATCH", "/api/v2/users/{sub}", {"user_metadata": {"plan": "pro"}}],
    "patch_theme": ["PATCH", "/api/v2/users/{sub}", {"user_metadata": {"theme": "light"}}],
    "patch_bad_theme": ["PATCH", "/api/v2/users/{sub}", {"user_metadata": {"theme": "neon"}}],
    "read_self": ["GET", "/api/v2/users/{sub}"],
}


class Admin:
    """The compat M2M client's Management API access, for arranging and restoring the tenant."""

    def __init__(self, issuer: str) -> None:
        self.base = issuer + "api/v2"
        r = httpx.post(
            issuer + "oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": M2M_CLIENT_ID,
                "client_secret": M2M_SECRET,
                "audience": issuer + "api/v2/",
            },
            timeout=10,
        )
        assert r.status_code == 200, r.text
        self.headers = {"Authorization": f"Bearer {r.json()['access_token']}"}

    def call(self, method: str, path: str, **kw: Any) -> Any:
        r = httpx.request(method, self.base + path, headers=self.headers, timeout=10, **kw)
        assert r.status_code == 200, r.text
        return r.json()

    def set_policy(self, block: dict[str, Any] | None) -> None:
        self.call("PATCH", "/tenants/settings", json={"self_service": block})

    def user(self) -> dict[str, Any]:
        (found,) = self.call("GET", "/users-by-email", params={"email": EMAIL})
        result: dict[str, Any] = found
        return result


@pytest.fixture
def admin(live_server: Any) -> Iterator[Admin]:
    admin = Admin(live_server.issuer)
    before = admin.call("GET", "/tenants/settings", params={"fields": "self_service"})
    user = admin.user()
    try:
        yield admin
    finally:
        admin.set_policy(before["self_service"])
        # {} clears; then the keys grace had before, if any.
        path = "/users/" + user["user_id"]
        admin.call("PATCH", path, json={"user_metadata": {}})
        if user.get("user_metadata"):
            admin.call("PATCH", path, json={"user_metadata": user["user_metadata"]})


def scenario(live_server: Any, spa_server: str, calls: dict[str, Any]) -> dict[str, Any]:
    out = drive(
        {
            "spaOrigin": spa_server,
            "username": EMAIL,
            "password": PASSWORD,
            "client": {
                "domain": live_server.issuer.rstrip("/"),
                "clientId": SPA_CLIENT_ID,
                "audience": live_server.issuer + "api/v2/",
                "scope": SCOPE,
                "useRefreshTokens": False,
            },
            "apiCalls": calls,
        }
    )
    assert "error" not in out, json.dumps(out)[:4000]
    return out


def granted_scopes(out: dict[str, Any]) -> set[str]:
    token = out["steps"]["token_silent"]["value"]["access_token"]
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return set(claims["scope"].split())


def test_forbidden_key_is_400_and_allowed_key_is_200(  # type: ignore[no-untyped-def]
    live_server, spa_server, admin
) -> None:
    admin.set_policy(POLICY)
    out = scenario(live_server, spa_server, CALLS)
    steps = out["steps"]
    refused = steps["api:patch_plan"]["value"]
    assert refused["status"] == 400, refused
    assert refused["body"] == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": "user_metadata.plan: not writable by the user",
        "errorCode": "invalid_body",
    }
    accepted = steps["api:patch_theme"]["value"]
    assert accepted["status"] == 200, accepted
    assert accepted["body"]["user_metadata"] == {"theme": "light"}
    bad = steps["api:patch_bad_theme"]["value"]
    assert bad["status"] == 400
    assert bad["body"]["message"] == "user_metadata.theme: must be one of: light, dark"
    # The refused writes changed nothing.
    assert steps["api:read_self"]["value"]["body"]["user_metadata"] == {"theme": "light"}
    assert admin.user()["user_metadata"] == {"theme": "light"}


def test_switched_off_the_spa_still_logs_in_without_management_scopes(  # type: ignore[no-untyped-def]
    live_server, spa_server, admin
) -> None:
    admin.set_policy({"current_user_tokens": False})
    out = scenario(live_server, spa_server, {"read_self": CALLS["read_self"]})
    assert out["steps"]["callback"]["value"]["user"]["email"] == EMAIL
    assert granted_scopes(out) == {"openid", "profile", "email"}
    read = out["steps"]["api:read_self"]["value"]
    assert read["status"] == 403 and read["body"]["errorCode"] == "insufficient_scope"
