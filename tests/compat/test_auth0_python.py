"""auth0-python 6, unchanged, against a live Keystead (contract §13.2, §16 item 5).

The authentication classes run over http (`protocol="http"`); the Fern management client runs
over http through `Auth0(base_url=…)`, and `ManagementClient(domain=…)`, which only speaks https
and fetches its own token, runs against the `--dev-tls` server.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from auth0.authentication import Database, GetToken, RevokeToken, Users
from auth0.authentication.exceptions import Auth0Error
from auth0.authentication.token_verifier import AsymmetricSignatureVerifier, TokenVerifier
from auth0.management import Auth0, ManagementClient
from auth0.management.errors import NotFoundError

from tests.compat.conftest import LiveServer
from tests.compat.tls import LiveTlsServer

pytestmark = pytest.mark.compat

CONNECTION = "Username-Password-Authentication"
WEB_CLIENT_ID = "CompatWebClient00000000000000001"
WEB_SECRET = "compat-web-secret-0123456789abcdef"
M2M_CLIENT_ID = "CompatM2MClient00000000000000001"
M2M_SECRET = "compat-m2m-secret-0123456789abcdef"
API = "https://api.compat.test/"
EMAIL, PASSWORD = "katherine@compat.test", "Compat-Passw0rd-katherine"
M2M_SCOPES = {"read:users", "create:users", "update:users", "delete:users", "read:roles"}


def jwt_part(token: str, index: int) -> dict[str, Any]:
    part = token.split(".")[index]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def unique_email(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@compat.test"


@pytest.fixture(scope="module")
def web(live_server: LiveServer) -> GetToken:
    return GetToken(live_server.domain, WEB_CLIENT_ID, client_secret=WEB_SECRET, protocol="http")


@pytest.fixture(scope="module")
def m2m(live_server: LiveServer) -> GetToken:
    return GetToken(live_server.domain, M2M_CLIENT_ID, client_secret=M2M_SECRET, protocol="http")


@pytest.fixture(scope="module")
def mgmt(live_server: LiveServer, m2m: GetToken) -> Auth0:
    token = m2m.client_credentials(live_server.issuer + "api/v2/")["access_token"]
    return Auth0(base_url=live_server.issuer + "api/v2", token=token)


@pytest.fixture(scope="module")
def login(web: GetToken) -> dict[str, Any]:
    tokens: dict[str, Any] = web.login(
        EMAIL,
        PASSWORD,
        realm=CONNECTION,
        scope="openid profile email offline_access",
        audience=API,
    )
    return tokens


# --- authentication ----------------------------------------------------------------------------


def test_client_credentials_for_the_management_api(m2m: GetToken, live_server: LiveServer) -> None:
    issued = m2m.client_credentials(live_server.issuer + "api/v2/")
    assert issued["token_type"] == "Bearer"
    assert issued["expires_in"] == 86400
    claims = jwt_part(issued["access_token"], 1)
    assert claims["iss"] == live_server.issuer
    assert claims["sub"] == M2M_CLIENT_ID + "@clients"
    assert claims["aud"] == live_server.issuer + "api/v2/"
    assert claims["gty"] == "client-credentials"
    assert set(claims["scope"].split()) >= M2M_SCOPES
    assert set(issued["scope"].split()) == set(claims["scope"].split())


def test_client_credentials_for_a_custom_api(m2m: GetToken) -> None:
    issued = m2m.client_credentials(API)
    claims = jwt_part(issued["access_token"], 1)
    assert claims["aud"] == API
    assert claims["scope"] == "read:things"  # the client grant allows only this one
    assert jwt_part(issued["access_token"], 0)["alg"] == "RS256"


def test_wrong_client_secret_is_invalid_client(live_server: LiveServer) -> None:
    bad = GetToken(live_server.domain, M2M_CLIENT_ID, client_secret="wrong", protocol="http")
    with pytest.raises(Auth0Error) as caught:
        bad.client_credentials(live_server.issuer + "api/v2/")
    assert caught.value.status_code == 401
    assert caught.value.error_code == "invalid_client"


def test_password_realm_login(login: dict[str, Any], live_server: LiveServer) -> None:
    assert set(login) >= {"access_token", "refresh_token", "id_token", "expires_in"}
    assert login["scope"].split() == ["openid", "profile", "email", "offline_access"]
    access = jwt_part(login["access_token"], 1)
    assert access["aud"] == [API, live_server.issuer + "userinfo"]
    assert access["azp"] == WEB_CLIENT_ID
    assert access["gty"] == "password"


def test_wrong_password_is_invalid_grant(web: GetToken) -> None:
    with pytest.raises(Auth0Error) as caught:
        web.login(EMAIL, "not-the-password", realm=CONNECTION, scope="openid")
    assert caught.value.status_code == 403
    assert caught.value.error_code == "invalid_grant"
    assert caught.value.message == "Wrong email or password."


def test_token_verifier_accepts_the_id_token(
    login: dict[str, Any], live_server: LiveServer
) -> None:
    verifier = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(
            live_server.issuer + ".well-known/jwks.json"
        ),
        issuer=live_server.issuer,
        audience=WEB_CLIENT_ID,
    )
    # Signature (JWKS by kid, RS256), iss, sub, aud, integer exp/iat; no nonce in this flow.
    claims = verifier.verify(login["id_token"])
    assert claims["email"] == EMAIL
    assert claims["email_verified"] is True
    assert claims["name"] == "Katherine Johnson"
    assert claims["sub"] == jwt_part(login["access_token"], 1)["sub"]
    assert "nonce" not in claims
    # And refuses it for another audience.
    other = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(
            live_server.issuer + ".well-known/jwks.json"
        ),
        issuer=live_server.issuer,
        audience="SomeOtherClient",
    )
    with pytest.raises(Exception, match="Audience"):
        other.verify(login["id_token"])


def test_userinfo(login: dict[str, Any], live_server: LiveServer) -> None:
    info = Users(live_server.domain, protocol="http").userinfo(login["access_token"])
    assert info["sub"] == jwt_part(login["access_token"], 1)["sub"]
    assert info["email"] == EMAIL
    assert info["name"] == "Katherine Johnson"


def test_refresh_token(web: GetToken, login: dict[str, Any]) -> None:
    refreshed = web.refresh_token(login["refresh_token"])
    access = jwt_part(refreshed["access_token"], 1)
    assert access["gty"] == "refresh_token"
    assert access["sub"] == jwt_part(login["access_token"], 1)["sub"]
    assert refreshed["scope"].split() == ["openid", "profile", "email", "offline_access"]
    assert jwt_part(refreshed["id_token"], 1)["email"] == EMAIL


def test_revoke_refresh_token(
    web: GetToken, live_server: LiveServer, mgmt: Auth0, login: dict[str, Any]
) -> None:
    sub = jwt_part(login["access_token"], 1)["sub"]
    # The refresh token is a device credential of the user (contract §10.1) until revoked.
    before = list(mgmt.device_credentials.list(user_id=sub, type="refresh_token"))
    assert [c.client_id for c in before] == [WEB_CLIENT_ID]
    assert before[0].user_id == sub
    assert before[0].device_name  # from the SDK's User-Agent

    revoker = RevokeToken(
        live_server.domain, WEB_CLIENT_ID, client_secret=WEB_SECRET, protocol="http"
    )
    revoker.revoke_refresh_token(login["refresh_token"])
    with pytest.raises(Auth0Error) as caught:
        web.refresh_token(login["refresh_token"])
    assert caught.value.status_code == 403
    assert caught.value.error_code == "invalid_grant"
    assert caught.value.message == "Unknown or invalid refresh token."
    assert list(mgmt.device_credentials.list(user_id=sub, type="refresh_token")) == []


def test_signup_then_login_and_change_password(
    live_server: LiveServer, web: GetToken, mgmt: Auth0
) -> None:
    database = Database(live_server.domain, WEB_CLIENT_ID, protocol="http")
    email = unique_email("signup")
    created = database.signup(
        email, "Signup-Passw0rd-1", connection=CONNECTION, name="Signed Up",
        user_metadata={"plan": "free"},
    )  # fmt: skip
    assert len(created["_id"]) == 24
    assert created["email"] == email
    assert created["email_verified"] is False
    assert created["user_metadata"] == {"plan": "free"}
    assert created["name"] == "Signed Up"

    stored = mgmt.users.get("auth0|" + created["_id"])
    assert stored.email == email
    assert stored.user_metadata == {"plan": "free"}
    tokens = web.login(email, "Signup-Passw0rd-1", realm=CONNECTION, scope="openid")
    assert jwt_part(tokens["id_token"], 1)["sub"] == "auth0|" + created["_id"]

    # The same email again: Auth0's enumeration-safe answer, parsed by the SDK from `code`.
    with pytest.raises(Auth0Error) as caught:
        database.signup(email, "Signup-Passw0rd-2", connection=CONNECTION)
    assert caught.value.status_code == 400
    assert caught.value.error_code == "invalid_signup"

    sent = "We've just sent you an email to reset your password."
    assert database.change_password(email, CONNECTION) == sent
    assert database.change_password(unique_email("nobody"), CONNECTION) == sent  # no enumeration


# --- management (Fern client over http) --------------------------------------------------------


def test_users_crud_and_metadata_merge(mgmt: Auth0) -> None:
    email = unique_email("v6")
    created = mgmt.users.create(
        connection=CONNECTION,
        email=email,
        password="V6-Passw0rd-crud",
        name="Fern Client",
        user_metadata={"theme": "dark", "lang": "en"},
        app_metadata={"plan": "pro"},
    )
    user_id = created.user_id
    assert user_id is not None and user_id.startswith("auth0|")
    assert created.email == email
    assert created.identities is not None
    assert created.identities[0].connection == CONNECTION
    assert created.identities[0].provider == "auth0"

    fetched = mgmt.users.get(user_id)
    assert (fetched.email, fetched.name) == (email, "Fern Client")
    assert fetched.app_metadata == {"plan": "pro"}

    # Metadata merges one level deep; the SDK sends an explicit None as JSON null: delete.
    updated = mgmt.users.update(user_id, user_metadata={"lang": None, "tz": "UTC"}, name="Renamed")
    assert updated.user_metadata == {"theme": "dark", "tz": "UTC"}
    assert updated.name == "Renamed"
    assert updated.app_metadata == {"plan": "pro"}
    assert mgmt.users.get(user_id).user_metadata == {"theme": "dark", "tz": "UTC"}

    assert [u.user_id for u in mgmt.users.list_users_by_email(email=email)] == [user_id]

    mgmt.users.delete(user_id)
    with pytest.raises(NotFoundError) as caught:
        mgmt.users.get(user_id)
    assert caught.value.status_code == 404
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["errorCode"] == "inexistent_user"
    assert mgmt.users.list_users_by_email(email=email) == []


def test_users_list_pages_with_totals(mgmt: Auth0) -> None:
    first = mgmt.users.list(per_page=2, include_totals=True)
    page = first.response
    assert (page.start, page.limit, page.length) == (0, 2, 2)
    assert page.total is not None and page.total >= 5  # the tenant file's users at least
    # The pager walks every page (page=1, 2, …) until a short or empty one.
    emails = [u.email for u in first]
    assert len(emails) == len(set(emails)) == page.total
    assert {"ada@compat.test", "grace@compat.test", EMAIL} <= set(emails)


def test_roles(mgmt: Auth0) -> None:
    user = mgmt.users.create(
        connection=CONNECTION, email=unique_email("role"), password="Role-Passw0rd-1"
    )
    assert user.user_id is not None
    name = f"compat-v6-{uuid.uuid4().hex[:8]}"
    role = mgmt.roles.create(name=name, description="from auth0-python 6")
    assert role.id is not None and role.id.startswith("rol_")
    assert (role.name, role.description) == (name, "from auth0-python 6")
    try:
        mgmt.users.roles.assign(user.user_id, roles=[role.id])
        assert [(r.id, r.name) for r in mgmt.users.roles.list(user.user_id)] == [(role.id, name)]
        assert [m.user_id for m in mgmt.roles.users.list(role.id)] == [user.user_id]
        assert name in [r.name for r in mgmt.roles.list()]
    finally:
        mgmt.roles.delete(role.id)
        mgmt.users.delete(user.user_id)
    assert name not in [r.name for r in mgmt.roles.list()]


# --- ManagementClient over TLS ------------------------------------------------------------------


@pytest.fixture
def trust_dev_ca(live_tls_server: LiveTlsServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in live_tls_server.trust_env().items():
        monkeypatch.setenv(name, value)
    yield


@pytest.mark.usefixtures("trust_dev_ca")
def test_management_client_over_tls(live_tls_server: LiveTlsServer) -> None:
    # It fetches its own token: client credentials at https://{domain}/oauth/token for the
    # audience https://{domain}/api/v2/, which is the TLS server's Management API. Our own
    # httpx client (trusting SSL_CERT_FILE) is closed at the end: an idle TLS keep-alive
    # connection would hold up the server's shutdown.
    with httpx.Client() as http:
        client = ManagementClient(
            domain=live_tls_server.domain,
            client_id=M2M_CLIENT_ID,
            client_secret=M2M_SECRET,
            httpx_client=http,
        )
        listed = client.users.list(per_page=2, include_totals=True)
        assert listed.response.start == 0
        emails = [u.email for u in listed]  # every page, two users at a time
        assert {"ada@compat.test", "grace@compat.test"} <= set(emails)
        assert listed.response.total == len(emails) == len(set(emails))

        email = unique_email("tls")
        created = client.users.create(connection=CONNECTION, email=email, password="Tls-Passw0rd-1")
        assert created.user_id is not None
        assert client.users.get(created.user_id).email == email
        client.users.delete(created.user_id)
        assert client.users.list_users_by_email(email=email) == []
