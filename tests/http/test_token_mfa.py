"""Password grants with a second factor, and grant_type …/mfa-otp (contract §3.5, §3.6, §4).

A user with a confirmed TOTP method (created through the Management API) gets 403
`mfa_required` with an `mfa_token` from the password grants, and the tokens from the mfa-otp
grant with the right code: the same audience and scopes, `amr: ["mfa"]`, the login recorded once.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest
from starlette.applications import Starlette

from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.grants import MFA_OTP
from keystead.core.mfa import CHALLENGE_LIFETIME
from keystead.core.users import User
from tests.http.helpers import m2m
from tests.http.token_helpers import (
    API,
    PASSWORD,
    USERINFO,
    Tenant,
    assert_token_headers,
    claims,
    clocked_app_fixture,
    logs,
    postgres_app,
    prepared_tenant_fixtures,
    state_of,
)

REALM = "http://auth0.com/oauth/grant-type/password-realm"
WEB_SECRET = "web-secret: with % and +"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
MFA_REQUIRED = "Multifactor authentication required"
INVALID_CODE = {"error": "invalid_grant", "error_description": "Invalid otp_code."}
MALFORMED = {"error": "invalid_grant", "error_description": "Malformed mfa_token"}
EXPIRED = {"error": "invalid_grant", "error_description": "mfa_token is expired"}
SCOPE = "openid profile email offline_access read:messages"

prepared, database_url, tenant = prepared_tenant_fixtures()
app = clocked_app_fixture()


@pytest.fixture
def clock() -> FixedClock:
    # Near the real time: the Management API tokens minted by tests/http/helpers are valid.
    return FixedClock(math.floor(time.time()) + 300.0)


@pytest.fixture
async def mfa_web(app: Starlette, tenant: Tenant) -> Client:
    """The tenant's web client, with the mfa-otp grant added to its password grants."""
    state = state_of(app)
    async with state.transaction() as session:
        repos = state.repos(session)
        client = await repos.clients.get(tenant.web.client_id)
        return await repos.clients.update(
            replace(client, grant_types=(*client.grant_types, MFA_OTP))
        )


async def enroll(http: httpx.AsyncClient, app: Starlette, tenant: Tenant, user: User) -> None:
    r = await http.post(
        f"/api/v2/users/{user.user_id}/authentication-methods",
        json={"type": "totp", "totp_secret": SECRET},
        headers=m2m(app, "create:authentication_methods", azp=tenant.m2m.client_id),
    )
    assert r.status_code == 201, r.text


def code(clock: FixedClock, offset: int = 0) -> str:
    return pyotp.TOTP(SECRET).at(clock.now() + offset)


def password_login(tenant: Tenant, **fields: Any) -> dict[str, Any]:
    return {
        "grant_type": REALM,
        "client_id": tenant.web.client_id,
        "client_secret": WEB_SECRET,
        "username": "alice@example.com",
        "password": PASSWORD,
        "realm": "Username-Password-Authentication",
        "scope": SCOPE,
        "audience": API,
        **fields,
    }


def otp_request(tenant: Tenant, mfa_token: str, otp: str | None, **fields: Any) -> dict[str, Any]:
    body = {
        "grant_type": MFA_OTP,
        "client_id": tenant.web.client_id,
        "client_secret": WEB_SECRET,
        "mfa_token": mfa_token,
        **fields,
    }
    if otp is not None:
        body["otp"] = otp
    return body


async def logins_count(app: Starlette, user_id: str) -> int:
    state = state_of(app)
    async with state.transaction() as session:
        return (await state.repos(session).users.get(user_id)).logins_count


async def challenged(http: httpx.AsyncClient, tenant: Tenant, **fields: Any) -> str:
    r = await http.post("/oauth/token", data=password_login(tenant, **fields))
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["error"] == "mfa_required"
    token: str = body["mfa_token"]
    return token


# --- the password step -------------------------------------------------------------------------


async def test_without_a_factor_the_password_grant_is_unchanged(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client
) -> None:
    r = await http.post("/oauth/token", data=password_login(tenant))
    assert r.status_code == 200, r.text
    access = claims(app, r.json()["access_token"], API)
    assert access["gty"] == "password" and "amr" not in access
    assert await logins_count(app, tenant.user.user_id) == 1


async def test_a_confirmed_factor_is_required(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client
) -> None:
    await enroll(http, app, tenant, tenant.user)
    r = await http.post("/oauth/token", data=password_login(tenant))
    assert r.status_code == 403
    assert_token_headers(r)
    body = r.json()
    assert list(body) == ["error", "error_description", "mfa_token"]
    assert body["error"] == "mfa_required"
    assert body["error_description"] == MFA_REQUIRED
    assert isinstance(body["mfa_token"], str) and body["mfa_token"]
    assert await logins_count(app, tenant.user.user_id) == 0
    (event,) = await logs(app, "fepft")
    assert event.description == MFA_REQUIRED and event.user_id == tenant.user.user_id
    assert not await logs(app, "sepft")


async def test_the_password_step_still_checks_the_password(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client
) -> None:
    await enroll(http, app, tenant, tenant.user)
    r = await http.post("/oauth/token", data=password_login(tenant, password="wrong"))
    assert r.status_code == 403
    assert r.json() == {"error": "invalid_grant", "error_description": "Wrong email or password."}


async def test_a_right_password_does_not_reset_the_count_while_a_code_is_owed(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    """Otherwise whoever knows the password could guess codes without end: nine wrong codes,
    the password again, nine more. Only an accepted code ends the run of failures."""
    await enroll(http, app, tenant, tenant.user)
    for _ in range(9):  # one short of the default threshold (10)
        await http.post("/oauth/token", data=password_login(tenant, password="wrong"))
    mfa_token = await challenged(http, tenant)  # the right password: still nine
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, "000000"))
    assert r.status_code == 403  # the tenth failure
    blocked = await http.post("/oauth/token", data=password_login(tenant))
    assert blocked.status_code == 429 and blocked.json()["error"] == "too_many_attempts"


async def test_an_accepted_code_ends_the_run_of_failures(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    for _ in range(9):
        await http.post("/oauth/token", data=password_login(tenant, password="wrong"))
    mfa_token = await challenged(http, tenant)
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert r.status_code == 200, r.text
    for _ in range(9):
        await http.post("/oauth/token", data=password_login(tenant, password="wrong"))
    await challenged(http, tenant)  # not blocked: the count restarted


# --- the mfa-otp step --------------------------------------------------------------------------


async def test_the_right_code_gives_the_same_tokens(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    clock.advance(20)
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert r.status_code == 200, r.text
    assert_token_headers(r)
    body = r.json()
    assert set(body) == {
        "access_token",
        "refresh_token",
        "id_token",
        "scope",
        "expires_in",
        "token_type",
    }
    assert body["scope"].split() == SCOPE.split()
    access = claims(app, body["access_token"], API)
    assert access["aud"] == [API, USERINFO]
    assert access["sub"] == tenant.user.user_id and access["azp"] == tenant.web.client_id
    assert access["scope"] == SCOPE
    assert access["amr"] == ["mfa"]
    id_token = claims(app, body["id_token"], tenant.web.client_id)
    assert id_token["amr"] == ["mfa"] and id_token["email"] == "alice@example.com"
    assert id_token["auth_time"] == int(clock.now())
    assert await logins_count(app, tenant.user.user_id) == 1
    (event,) = await logs(app, "seotpft")
    assert event.user_id == tenant.user.user_id and event.client_id == tenant.web.client_id


async def test_tokens_of_the_mfa_grant_say_gty_mfa(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert claims(app, r.json()["access_token"], API).get("gty") == "mfa"


async def test_implied_trust_is_carried_too(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    """No scope asked at the password step: every scope of the audience, as without MFA."""
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant, scope="")
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert r.status_code == 200, r.text
    assert set(r.json()["scope"].split()) == {"read:messages", "write:messages"}
    assert "id_token" not in r.json()


async def test_a_code_is_spent_once(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    otp = code(clock)
    assert (await http.post("/oauth/token", data=otp_request(tenant, mfa_token, otp))).is_success
    replay = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, otp))
    assert replay.status_code == 403
    assert replay.json() == INVALID_CODE
    # Also with a fresh challenge: the code, not the challenge, is spent.
    again = await challenged(http, tenant)
    replay = await http.post("/oauth/token", data=otp_request(tenant, again, otp))
    assert replay.json() == INVALID_CODE
    assert await logins_count(app, tenant.user.user_id) == 1
    assert len(await logs(app, "feotpft")) == 2


async def test_wrong_codes_count_as_failed_logins(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    wrong = "000000" if code(clock) != "000000" else "111111"
    for _ in range(10):  # Settings.bruteforce_max_attempts
        r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, wrong))
        assert (r.status_code, r.json()) == (403, INVALID_CODE)
    blocked = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert blocked.status_code == 429
    assert blocked.json()["error"] == "too_many_attempts"
    # The pair is blocked for the password step too, even with the right password.
    r = await http.post("/oauth/token", data=password_login(tenant))
    assert r.status_code == 429
    assert await logins_count(app, tenant.user.user_id) == 0
    assert len(await logs(app, "feotpft")) == 10
    assert len(await logs(app, "limit_wc")) == 2  # the (user, IP) pair, and the user's codes


async def test_malformed_codes_are_wrong_codes(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    for otp in ("12345", "1234567", "abcdef", "\uff11\uff12\uff13\uff14\uff15\uff16"):
        r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, otp))
        assert (r.status_code, r.json()) == (403, INVALID_CODE)


async def test_a_challenge_of_another_client_is_refused(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        other = await state.repos(session).clients.create(
            replace(
                mfa_web,
                client_id="OtherWebClient000000000000000001",
                name="Other",
                client_secret=WEB_SECRET,
            )
        )
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    r = await http.post(
        "/oauth/token",
        data=otp_request(tenant, mfa_token, code(clock), client_id=other.client_id),
    )
    assert r.status_code == 403
    assert r.json() == MALFORMED
    # The code was not spent: the right client still gets in with it.
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert r.status_code == 200


async def test_tampered_and_expired_challenges_are_refused(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    head, body, signature = mfa_token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    for bad in (f"{head}.{body}.{flipped}", "not-a-token", mfa_token[:-10]):
        r = await http.post("/oauth/token", data=otp_request(tenant, bad, code(clock)))
        assert (r.status_code, r.json()) == (403, MALFORMED)
    clock.advance(CHALLENGE_LIFETIME + 1)
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert (r.status_code, r.json()) == (403, EXPIRED)
    assert await logins_count(app, tenant.user.user_id) == 0


async def test_other_tokens_are_no_challenge(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    """An ID token is signed by the same keys but has another audience."""
    r = await http.post("/oauth/token", data=password_login(tenant))  # no factor yet
    id_token = r.json()["id_token"]
    await enroll(http, app, tenant, tenant.user)
    r = await http.post("/oauth/token", data=otp_request(tenant, id_token, code(clock)))
    assert (r.status_code, r.json()) == (403, MALFORMED)


@pytest.mark.parametrize("missing", ["mfa_token", "otp"])
async def test_missing_parameters(
    http: httpx.AsyncClient, tenant: Tenant, mfa_web: Client, missing: str
) -> None:
    body = otp_request(tenant, "x", "123456")
    del body[missing]
    r = await http.post("/oauth/token", data=body)
    assert r.status_code == 400
    assert r.json() == {
        "error": "invalid_request",
        "error_description": f"Missing required parameter: {missing}",
    }


async def test_a_client_without_the_grant(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert r.status_code == 403
    assert r.json() == {
        "error": "unauthorized_client",
        "error_description": f"Grant type '{MFA_OTP}' not allowed for the client.",
    }


async def test_a_wrong_client_secret(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    body = otp_request(tenant, mfa_token, code(clock), client_secret="wrong")
    r = await http.post("/oauth/token", data=body)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


async def test_a_user_blocked_between_the_steps(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    r = await http.patch(
        f"/api/v2/users/{tenant.user.user_id}",
        json={"blocked": True},
        headers=m2m(app, "update:users", azp=tenant.m2m.client_id),
    )
    assert r.status_code == 200, r.text
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert (r.status_code, r.json()) == (
        403,
        {"error": "invalid_grant", "error_description": "user is blocked"},
    )


async def test_a_factor_removed_between_the_steps(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    admin = m2m(
        app, "read:authentication_methods delete:authentication_methods", azp=tenant.m2m.client_id
    )
    path = f"/api/v2/users/{tenant.user.user_id}/authentication-methods"
    assert (await http.delete(path, headers=admin)).status_code == 204
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert (r.status_code, r.json()) == (403, INVALID_CODE)


# --- PostgreSQL ----------------------------------------------------------------------------------


async def test_the_two_steps_on_postgresql(tmp_path: Path, clock: FixedClock) -> None:
    async with postgres_app(tmp_path, clock) as (app, http, tenant):
        state = state_of(app)
        async with state.transaction() as session:
            repos = state.repos(session)
            web = await repos.clients.get(tenant.web.client_id)
            await repos.clients.update(replace(web, grant_types=(*web.grant_types, MFA_OTP)))
        await enroll(http, app, tenant, tenant.user)
        mfa_token = await challenged(http, tenant)
        otp = code(clock)
        r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, otp))
        assert r.status_code == 200, r.text
        assert claims(app, r.json()["access_token"], API)["amr"] == ["mfa"]
        replay = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, otp))
        assert (replay.status_code, replay.json()) == (403, INVALID_CODE)
        assert await logins_count(app, tenant.user.user_id) == 1


async def test_codes_guessed_from_many_addresses_hit_one_limit(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant, mfa_web: Client, clock: FixedClock
) -> None:
    """One mfa_token, ten addresses, one wrong code each: the user's codes from every address
    reach the limit, and the right code is then refused too."""
    await enroll(http, app, tenant, tenant.user)
    mfa_token = await challenged(http, tenant)
    wrong = "000000" if code(clock) != "000000" else "111111"
    for n in range(10):
        transport = httpx.ASGITransport(app=app, client=(f"2001:db8::{n + 1}", 4000))
        async with httpx.AsyncClient(transport=transport, base_url=str(http.base_url)) as other:
            r = await other.post("/oauth/token", data=otp_request(tenant, mfa_token, wrong))
            assert (r.status_code, r.json()) == (403, INVALID_CODE)
    r = await http.post("/oauth/token", data=otp_request(tenant, mfa_token, code(clock)))
    assert (r.status_code, r.json()["error"]) == (429, "too_many_attempts")
    assert await logins_count(app, tenant.user.user_id) == 0
