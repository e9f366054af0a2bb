"""The current-user token switches of issue 6 (contract §14 #1), end to end over HTTP: a tenant
or one client turns Management API tokens for signed-in users off through the Management API;
/authorize and the password-realm grant then grant no current-user scope (the login itself
still succeeds), and tokens issued earlier can no longer write. Also a client's `self_service`
block through /api/v2/clients."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keystead.core.scopes import CURRENT_USER_SCOPES
from keystead.core.users import User
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    MGMT,
    check_error,
    check_oas,
    get_user,
    m2m,
    module_app,
    module_http,
    state_of,
)
from tests.http.test_authorize import (
    CB,
    PASSWORD,
    SPA_ID,
    VERIFIER,
    add_client,
    add_user,
    log_in,
    redirect_params,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

KIOSK = "KioskSpa000000000000000000000001"
WEB = "WebClient00000000000000000000001"
WEB_SECRET = "web-secret-0123456789abcdef"
REALM = "http://auth0.com/oauth/grant-type/password-realm"
DB = "Username-Password-Authentication"
ASKED = "openid profile email read:current_user update:current_user_metadata read:users"
GRANTED = ("openid", "profile", "email", "read:current_user", "update:current_user_metadata")
ADMIN = "read:tenant_settings update:tenant_settings read:clients create:clients update:clients"
DISABLED = "Current-user tokens are disabled for this application."


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    state = state_of(app)
    await add_client(state, SPA_ID)
    await add_client(state, KIOSK, name="Kiosk")
    await add_client(
        state,
        WEB,
        public=False,
        client_secret=WEB_SECRET,
        grant_types=("authorization_code", "password", REALM),
    )
    await add_client(
        state,
        M2M,
        public=False,
        name="M2M",
        app_type="non_interactive",
        grant_types=("client_credentials",),
    )


@pytest_asyncio.fixture(loop_scope="module")
async def me(app: Any) -> User:
    """A user of one test: each signed-in user has their own rate-limit bucket (§12)."""
    return await add_user(
        state_of(app), email=f"u{uuid.uuid4().hex[:12]}@example.com", user_metadata={"a": 1}
    )


@pytest_asyncio.fixture(loop_scope="module", autouse=True)
async def auth0_defaults(app: Any, http: Any) -> Any:
    """Every test starts from, and leaves, Auth0's behaviour: no policy anywhere."""
    yield
    headers = m2m(app, ADMIN)
    r = await http.patch("/api/v2/tenants/settings", headers=headers, json={"self_service": None})
    assert r.status_code == 200, r.text
    for client_id in (SPA_ID, KIOSK):
        r = await http.patch(
            f"/api/v2/clients/{client_id}", headers=headers, json={"self_service": None}
        )
        assert r.status_code == 200, r.text


# --- the flows ----------------------------------------------------------------------------------


async def spa_login(http: httpx.AsyncClient, user: User, client_id: str = SPA_ID) -> dict[str, Any]:
    """spa-js's redirect login for the Management API, through the login page; the tokens."""
    http.cookies.clear()  # no SSO session from an earlier test: always the login page
    r = await log_in(http, user.email or "", client_id=client_id, audience=MGMT, scope=ASKED)
    code = redirect_params(r)["code"]
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": client_id,
            "code": code,
            "code_verifier": VERIFIER,
            "redirect_uri": CB,
        },
    )
    assert r.status_code == 200, r.text  # the login succeeds whatever the switch says
    body: dict[str, Any] = r.json()
    return body


async def realm_login(http: httpx.AsyncClient, user: User) -> dict[str, Any]:
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": REALM,
            "realm": DB,
            "username": user.email,
            "password": PASSWORD,
            "client_id": WEB,
            "client_secret": WEB_SECRET,
            "audience": MGMT,
            "scope": ASKED,
        },
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def scopes(app: Any, tokens: dict[str, Any]) -> tuple[str, ...]:
    state = state_of(app)
    claims = state.keys.verify(
        tokens["access_token"], issuer=ISSUER, audience=MGMT, now=state.clock.now()
    )
    assert MGMT in claims["aud"]
    return tuple(claims["scope"].split())


async def tenant_policy(http: httpx.AsyncClient, app: Any, block: dict[str, Any]) -> None:
    r = await http.patch(
        "/api/v2/tenants/settings", headers=m2m(app, ADMIN), json={"self_service": block}
    )
    assert r.status_code == 200, r.text


async def client_policy(
    http: httpx.AsyncClient, app: Any, client_id: str, block: dict[str, Any] | None
) -> dict[str, Any]:
    r = await http.patch(
        f"/api/v2/clients/{client_id}", headers=m2m(app, ADMIN), json={"self_service": block}
    )
    result: dict[str, Any] = check_oas(r, "PATCH", "/clients/{id}")
    return result


async def write_metadata(
    http: httpx.AsyncClient, tokens: dict[str, Any], user_id: str, value: str
) -> httpx.Response:
    return await http.patch(
        f"/api/v2/users/{user_id}",
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        json={"user_metadata": {"theme": value}},
    )


# --- defaults: Auth0's behaviour ----------------------------------------------------------------


async def test_without_a_policy_a_spa_gets_the_current_user_scopes(
    app: Any, http: Any, me: User
) -> None:
    tokens = await spa_login(http, me)
    assert scopes(app, tokens) == GRANTED
    r = await write_metadata(http, tokens, me.user_id, "light")
    assert check_oas(r, "PATCH", "/users/{id}")["user_metadata"] == {"a": 1, "theme": "light"}
    assert scopes(app, await realm_login(http, me)) == GRANTED


# --- the tenant switch ----------------------------------------------------------------------------


async def test_tenant_switch_off_leaves_only_the_other_scopes(
    app: Any, http: Any, me: User
) -> None:
    await tenant_policy(http, app, {"current_user_tokens": False})
    for tokens in (
        await spa_login(http, me),
        await spa_login(http, me, KIOSK),
        await realm_login(http, me),
    ):
        assert scopes(app, tokens) == ("openid", "profile", "email")
        assert tokens["id_token"]  # the login itself is not refused
        r = await http.get(
            f"/api/v2/users/{me.user_id}",
            headers={"Authorization": f"Bearer {tokens['access_token']}"},
        )
        assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"
    assert not set(CURRENT_USER_SCOPES) & set(scopes(app, await realm_login(http, me)))


async def test_tokens_issued_before_the_switch_can_no_longer_write(
    app: Any, http: Any, me: User
) -> None:
    spa_tokens, realm_tokens = await spa_login(http, me), await realm_login(http, me)
    await tenant_policy(http, app, {"current_user_tokens": False})
    before = (await get_user(app, me.user_id)).user_metadata  # type: ignore[union-attr]
    for tokens in (spa_tokens, realm_tokens):
        r = await write_metadata(http, tokens, me.user_id, "solarized")
        check_error(r, 403, DISABLED)
    assert (await get_user(app, me.user_id)).user_metadata == before  # type: ignore[union-attr]
    # Switched on again, the same tokens write again.
    await tenant_policy(http, app, {"current_user_tokens": True})
    assert (await write_metadata(http, spa_tokens, me.user_id, "dark")).status_code == 200


# --- the per-client switch ------------------------------------------------------------------------


async def test_client_switch_off_affects_only_that_client(app: Any, http: Any, me: User) -> None:
    shown = await client_policy(http, app, KIOSK, {"current_user_tokens": False})
    assert shown["self_service"] == {"current_user_tokens": False}
    assert scopes(app, await spa_login(http, me, KIOSK)) == ("openid", "profile", "email")
    spa_tokens = await spa_login(http, me)
    assert scopes(app, spa_tokens) == GRANTED
    assert (await write_metadata(http, spa_tokens, me.user_id, "light")).status_code == 200


async def test_client_switch_off_refuses_that_clients_older_tokens(
    app: Any, http: Any, me: User
) -> None:
    kiosk_tokens = await spa_login(http, me, KIOSK)
    await client_policy(http, app, KIOSK, {"current_user_tokens": False})
    check_error(await write_metadata(http, kiosk_tokens, me.user_id, "x"), 403, DISABLED)
    await client_policy(http, app, KIOSK, None)  # back to the tenant's policy
    assert (await write_metadata(http, kiosk_tokens, me.user_id, "dark")).status_code == 200


async def test_a_client_may_stay_on_when_the_tenant_is_off(app: Any, http: Any, me: User) -> None:
    await tenant_policy(http, app, {"current_user_tokens": False})
    await client_policy(http, app, KIOSK, {"current_user_tokens": True})
    assert scopes(app, await spa_login(http, me, KIOSK)) == GRANTED
    assert scopes(app, await spa_login(http, me)) == ("openid", "profile", "email")


# --- a client's self_service block through /api/v2/clients ---------------------------------------


async def test_client_override_of_writable_keys(app: Any, http: Any, me: User) -> None:
    await tenant_policy(http, app, {"user_metadata": {"writable": ["theme", "lang"]}})
    await client_policy(http, app, KIOSK, {"user_metadata": {"writable": ["lang"]}})
    kiosk, spa = await spa_login(http, me, KIOSK), await spa_login(http, me)
    r = await write_metadata(http, kiosk, me.user_id, "light")
    check_error(r, 400, "user_metadata.theme: not writable by the user", "invalid_body")
    assert (await write_metadata(http, spa, me.user_id, "light")).status_code == 200


async def test_create_and_read_a_client_with_self_service(app: Any, http: Any) -> None:
    block = {"audit_values": True, "user_metadata": {"writable": ["theme"], "max_depth": 3}}
    r = await http.post(
        "/api/v2/clients",
        headers=m2m(app, ADMIN),
        json={"name": "Portal", "app_type": "spa", "self_service": block},
    )
    created = check_oas(r, "POST", "/clients")
    assert created["self_service"] == block
    r = await http.get(f"/api/v2/clients/{created['client_id']}", headers=m2m(app, ADMIN))
    assert check_oas(r, "GET", "/clients/{id}")["self_service"] == block
    # Left out, nothing is stored: the tenant's policy applies.
    r = await http.post(
        "/api/v2/clients", headers=m2m(app, ADMIN), json={"name": "Plain", "app_type": "spa"}
    )
    assert "self_service" not in check_oas(r, "POST", "/clients")


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (
            {"user_metadata": {"writable": "theme"}},
            "self_service.user_metadata.writable must be a list of user_metadata keys, "
            "got a string",
        ),
        (
            {"current_user_tokens": "off"},
            "self_service.current_user_tokens must be true or false, got 'off'",
        ),
        (
            {"user_metadata": {"schema": {"type": "string"}}},
            "self_service.user_metadata.schema must describe an object: "
            "user_metadata always is one",
        ),
        (
            ["theme"],
            "Payload validation error: 'Expected type object,null but found type array' "
            "on property self_service.",
        ),
    ],
)
async def test_bad_client_self_service_is_400_and_changes_nothing(
    app: Any, http: Any, block: Any, message: str
) -> None:
    await client_policy(http, app, KIOSK, {"current_user_tokens": False})
    headers = m2m(app, ADMIN)
    r = await http.patch(
        f"/api/v2/clients/{KIOSK}", headers=headers, json={"self_service": block, "name": "New"}
    )
    check_error(r, 400, message, "invalid_body")
    r = await http.post(
        "/api/v2/clients", headers=headers, json={"name": "Bad", "self_service": block}
    )
    check_error(r, 400, message, "invalid_body")
    r = await http.get(f"/api/v2/clients/{KIOSK}", headers=headers)
    shown = check_oas(r, "GET", "/clients/{id}")
    assert shown["name"] == "Kiosk" and shown["self_service"] == {"current_user_tokens": False}
