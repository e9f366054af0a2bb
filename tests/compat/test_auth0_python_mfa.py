"""auth0-python 6, unchanged, through a password login that owes a second factor (contract
§3.5, §3.6): `GetToken.login` raises Auth0Error carrying the whole `mfa_required` body, and the
mfa-otp grant, for which GetToken has no method of its own (6.8), goes through the class's
`authenticated_post` (client_secret_post added by the SDK), as an app would send it.

A server of its own, with tenant_mfa.yaml: the shared compat tenant has no client allowed the
mfa-otp grant.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from auth0.authentication import GetToken
from auth0.authentication.exceptions import Auth0Error
from auth0.management import Auth0

from tests.compat.conftest import HERE
from tests.compat.serving import free_port, keystead_serve

pytestmark = pytest.mark.compat

WEB_CLIENT_ID = "CompatMfaWebClient00000000000001"
WEB_SECRET = "compat-mfa-web-secret-0123456789ab"
M2M_CLIENT_ID = "CompatMfaM2MClient00000000000001"
M2M_SECRET = "compat-mfa-m2m-secret-0123456789ab"
CONNECTION = "Username-Password-Authentication"
API = "https://api.compat.test/"
EMAIL, PASSWORD = "hedy@compat.test", "Compat-Passw0rd-hedy"
TOTP_SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
MFA_OTP = "http://auth0.com/oauth/grant-type/mfa-otp"


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


@pytest.fixture(scope="module")
def mfa_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(domain, issuer) of a live server on tenant_mfa.yaml."""
    tmp = tmp_path_factory.mktemp("live-mfa")
    port = free_port()
    env = {
        **os.environ,
        "KEYSTEAD_DATABASE_URL": f"sqlite:///{tmp / 'live.db'}",
        "KEYSTEAD_DATA_DIR": str(tmp / "data"),
        "KEYSTEAD_SECRET_KEY": "compat-mfa-test-secret-key",
        "KEYSTEAD_LOG_LEVEL": "warning",
    }
    issuer = f"http://127.0.0.1:{port}/"
    args = ["--host", "127.0.0.1", "--port", str(port), "--tenant", str(HERE / "tenant_mfa.yaml")]
    with keystead_serve(args, env=env, issuer=issuer, log_path=tmp / "server.log"):
        yield f"127.0.0.1:{port}", issuer


@pytest.fixture(scope="module")
def web(mfa_server: tuple[str, str]) -> GetToken:
    return GetToken(mfa_server[0], WEB_CLIENT_ID, client_secret=WEB_SECRET, protocol="http")


@pytest.fixture(scope="module")
def enrolled(mfa_server: tuple[str, str]) -> None:
    """Hedy gets an authenticator app through the Management API (the Fern client)."""
    domain, issuer = mfa_server
    m2m = GetToken(domain, M2M_CLIENT_ID, client_secret=M2M_SECRET, protocol="http")
    token = m2m.client_credentials(issuer + "api/v2/")["access_token"]
    mgmt = Auth0(base_url=issuer + "api/v2", token=token)
    (user,) = mgmt.users.list_users_by_email(email=EMAIL)
    mgmt.users.authentication_methods.create(user.user_id, type="totp", totp_secret=TOTP_SECRET)


def mfa_otp(web: GetToken, mfa_token: str, otp: str) -> dict[str, Any]:
    """The body Auth0's MFA API documents, through the SDK's own client-authenticated POST."""
    issued: dict[str, Any] = web.authenticated_post(
        f"{web.protocol}://{web.domain}/oauth/token",
        data={
            "client_id": WEB_CLIENT_ID,
            "grant_type": MFA_OTP,
            "mfa_token": mfa_token,
            "otp": otp,
        },
    )
    return issued


def test_password_login_then_otp(
    web: GetToken, mfa_server: tuple[str, str], enrolled: None
) -> None:
    with pytest.raises(Auth0Error) as caught:
        web.login(EMAIL, PASSWORD, realm=CONNECTION, scope="openid offline_access", audience=API)
    error = caught.value
    assert (error.status_code, error.error_code) == (403, "mfa_required")
    assert error.message == "Multifactor authentication required"
    assert isinstance(error.content, dict)
    mfa_token = error.content["mfa_token"]

    otp = pyotp.TOTP(TOTP_SECRET).now()
    issued = mfa_otp(web, mfa_token, otp)
    assert set(issued) >= {"access_token", "id_token", "refresh_token", "expires_in"}
    access = jwt_part(issued["access_token"], 1)
    assert access["aud"] == [API, mfa_server[1] + "userinfo"]
    assert access["azp"] == WEB_CLIENT_ID and access["amr"] == ["mfa"]

    with pytest.raises(Auth0Error) as replayed:  # the code is spent
        mfa_otp(web, mfa_token, otp)
    assert (replayed.value.status_code, replayed.value.error_code) == (403, "invalid_grant")
    assert replayed.value.message == "Invalid otp_code."
