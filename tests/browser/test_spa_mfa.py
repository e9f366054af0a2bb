"""auth0-spa-js, unchanged, in Debian's Chromium through the hosted login's code page: a user
with a confirmed TOTP factor types the password, then the code (web/mfa.py; contract §2.2
step 8), and the SPA gets tokens saying amr ["mfa"]; silent auth in the iframe then needs no
second code, as the session remembers it.

A server of its own: the shared compat tenant has no machine client allowed
create:authentication_methods, and a factor on its users would put the code page in front of
the other browser tests. The factors are enrolled as an admin would, through the Management API
with a client-credentials token. Each code is computed with pyotp when the driver asks for it,
that is when it is typed.
"""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pyotp
import pytest

from tests.browser.conftest import drive_asking
from tests.compat.serving import free_port, keystead_serve

pytestmark = pytest.mark.browser

SPA_CLIENT_ID = "MfaSpaClient00000000000000000001"
M2M_CLIENT_ID = "MfaM2MClient00000000000000000001"
M2M_SECRET = "browser-mfa-m2m-secret-0123456789ab"
API = "https://api.compat.test/"
SCOPE = "openid profile email read:things"
HEDY = ("hedy@compat.test", "Compat-Passw0rd-hedy", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
RADIA = ("radia@compat.test", "Compat-Passw0rd-radia", "KRSXG5CTMVRXEZLUKRSXG5CTMVRXEZLU")
HEADING = "Verify your identity"
WRONG_CODE = "Wrong or already used code. Try again."

TENANT = f"""
clients:
  - client_id: {SPA_CLIENT_ID}
    name: MFA SPA
    app_type: spa
    callbacks: ["${{SPA_ORIGIN}}/callback"]
    web_origins: ["${{SPA_ORIGIN}}"]
    allowed_origins: ["${{SPA_ORIGIN}}"]
    allowed_logout_urls: ["${{SPA_ORIGIN}}/logged-out"]
    grant_types: [authorization_code, refresh_token]
  - client_id: {M2M_CLIENT_ID}
    name: MFA machine client
    app_type: non_interactive
    client_secret: {M2M_SECRET}
    grant_types: [client_credentials]
resourceServers:
  - identifier: {API}
    name: Compat API
    signing_alg: RS256
    allow_offline_access: true
    scopes:
      - {{value: "read:things", description: Read things}}
clientGrants:
  - client_id: {M2M_CLIENT_ID}
    audience: "{{issuer}}api/v2/"
    scope: [read:users, create:authentication_methods]
users:
  - email: {HEDY[0]}
    password: "{HEDY[1]}"
    email_verified: true
    name: Hedy Lamarr
  - email: {RADIA[0]}
    password: "{RADIA[1]}"
    email_verified: true
    name: Radia Perlman
"""


@dataclass(frozen=True)
class MfaServer:
    issuer: str  # with trailing slash


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return claims


@pytest.fixture(scope="module")
def mfa_server(tmp_path_factory: pytest.TempPathFactory, spa_server: str) -> Iterator[MfaServer]:
    """A live server on TENANT whose two users have a confirmed authenticator app."""
    tmp = tmp_path_factory.mktemp("live-browser-mfa")
    (tmp / "tenant.yaml").write_text(TENANT)
    port = free_port()
    env = {
        **os.environ,
        "KEYSTEAD_DATABASE_URL": f"sqlite:///{tmp / 'live.db'}",
        "KEYSTEAD_DATA_DIR": str(tmp / "data"),
        "KEYSTEAD_SECRET_KEY": "browser-mfa-test-secret-key",
        "KEYSTEAD_LOG_LEVEL": "warning",
        "SPA_ORIGIN": spa_server,
    }
    issuer = f"http://127.0.0.1:{port}/"
    args = ["--host", "127.0.0.1", "--port", str(port), "--tenant", str(tmp / "tenant.yaml")]
    with keystead_serve(args, env=env, issuer=issuer, log_path=tmp / "server.log"):
        enroll(issuer, [HEDY, RADIA])
        yield MfaServer(issuer=issuer)


def enroll(issuer: str, users: list[tuple[str, str, str]]) -> None:
    """POST /api/v2/users/{id}/authentication-methods {type: totp} with an M2M token."""
    with httpx.Client(base_url=issuer, timeout=10) as http:
        r = http.post(
            "oauth/token",
            json={
                "grant_type": "client_credentials",
                "client_id": M2M_CLIENT_ID,
                "client_secret": M2M_SECRET,
                "audience": issuer + "api/v2/",
            },
        )
        assert r.status_code == 200, r.text
        http.headers["Authorization"] = "Bearer " + r.json()["access_token"]
        for email, _, secret in users:
            r = http.get("api/v2/users-by-email", params={"email": email})
            assert r.status_code == 200, r.text
            (user,) = r.json()
            r = http.post(
                f"api/v2/users/{user['user_id']}/authentication-methods",
                json={"type": "totp", "totp_secret": secret},
            )
            assert r.status_code == 201, r.text


def codes(secret: str) -> Any:
    """The driver's answers: the code of this moment, or one the server accepts at no step near
    it (it accepts one step either side of now's)."""
    totp = pyotp.TOTP(secret)

    def answer(ask: str) -> str:
        now = time.time()
        if ask == "code":
            return str(totp.at(now))
        assert ask == "wrong_code", ask
        near = {totp.at(now + step * totp.interval) for step in range(-2, 3)}
        return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)

    return answer


def login(mfa_server: MfaServer, spa_server: str, user: tuple[str, str, str], *, wrong: bool):  # type: ignore[no-untyped-def]
    email, password, secret = user
    return drive_asking(
        {
            "spaOrigin": spa_server,
            "username": email,
            "password": password,
            "client": {
                "domain": mfa_server.issuer.rstrip("/"),
                "clientId": SPA_CLIENT_ID,
                "audience": API,
                "scope": SCOPE,
                "useRefreshTokens": False,  # getTokenSilently goes through the hidden iframe
            },
            "mfa": {"wrongCode": wrong},
        },
        codes(secret),
    )


def check_code_page(page: dict[str, Any]) -> None:
    assert page["heading"] == HEADING
    assert page["title"].startswith(HEADING)
    assert page["input"]["type"] == "text"
    assert page["input"]["autocomplete"] == "one-time-code"
    assert page["input"]["inputmode"] == "numeric"


def check_mfa_login(out: dict[str, Any], issuer: str, email: str) -> None:
    steps = out["steps"]
    assert "error" not in out, json.dumps(out)[:4000]
    assert steps["login_page"]["value"].startswith("/u/login")
    # The password answered the code page, not a redirect: no session and no code yet.
    page = steps["submit_password"]["value"]
    check_code_page(page)
    assert page["path"] == "/u/login"
    assert page["error"] is None
    assert steps["submit_credentials"]["value"] is True  # the code sent the browser back
    assert steps["callback"]["value"]["user"]["email"] == email
    claims = steps["claims"]["value"]
    assert claims["iss"] == issuer
    assert claims["aud"] == SPA_CLIENT_ID
    assert claims["amr"] == ["mfa"]
    # Silent auth in the iframe (prompt=none) twice: the session remembers the code, so no
    # second one is asked for, and the tokens still say amr ["mfa"].
    for step in ("token_silent", "token_silent_again"):
        response = steps[step]["value"]
        access = jwt_claims(response["access_token"])
        assert access["aud"] == [API, issuer + "userinfo"]
        assert access["amr"] == ["mfa"]
        assert jwt_claims(response["id_token"])["amr"] == ["mfa"]
    assert steps["logout"]["ok"]
    assert steps["after_logout_silent"]["value"] == "login_required"


def test_spa_login_through_the_code_page(mfa_server, spa_server):  # type: ignore[no-untyped-def]
    out = login(mfa_server, spa_server, HEDY, wrong=False)
    check_mfa_login(out, mfa_server.issuer, HEDY[0])
    assert "wrong_code" not in out["steps"]


def test_a_wrong_code_keeps_the_code_page(mfa_server, spa_server):  # type: ignore[no-untyped-def]
    out = login(mfa_server, spa_server, RADIA, wrong=True)
    wrong = out["steps"]["wrong_code"]
    assert wrong["ok"], json.dumps(out)[:4000]
    page = wrong["value"]
    check_code_page(page)
    assert page["path"] == "/u/mfa-challenge"
    assert page["error"] == WRONG_CODE
    assert page["input"]["invalid"] == "true"
    # The same challenge takes the right code afterwards: the login completes as without it.
    check_mfa_login(out, mfa_server.issuer, RADIA[0])
