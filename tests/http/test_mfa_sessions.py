"""The second factor outlives the code page: sessions, codes and refresh tokens remember it
(`amr`, RFC 8176), and a session without it does not skip a factor confirmed since (contract
§2.2 step 8, §2.4, §4).

The fixtures are the hosted login's (test_login_mfa.py): a fixed clock, a SPA, and Ada.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keystead.core.clock import FixedClock
from keystead.core.users import User
from keystead.deps import AppState
from tests.http import test_authorize as shared
from tests.http import test_login_mfa as hosted
from tests.http.test_authorize import (
    API,
    CB,
    VERIFIER,
    add_api,
    authorize_params,
    hidden_fields,
    redirect_params,
    web_message,
)
from tests.http.test_login_mfa import (
    BACKENDS,
    browser,
    code_at,
    code_page,
    enroll,
    events,
    password_step,
    send_code,
    session_count,
    wrong_code,
)
from tests.http.token_helpers import claims

# The hosted login's fixtures, by name (pytest finds fixtures among the module's attributes).
template_database = shared.template_database
backend = hosted.backend
clock = hosted.clock
app = hosted.app
state = hosted.state
http = hosted.http
user = hosted.user

MFA_REQUIRED = "Multifactor authentication required"
OFFLINE = {"scope": "openid profile email offline_access", "audience": API}


@pytest.fixture
async def api(state: AppState, user: User) -> None:
    await add_api(state, allow_offline_access=True)


async def exchange(http: httpx.AsyncClient, code: str) -> dict[str, Any]:
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": shared.SPA_ID,
            "code": code,
            "redirect_uri": CB,
            "code_verifier": VERIFIER,
        },
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def refresh(http: httpx.AsyncClient, token: str) -> dict[str, Any]:
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "refresh_token", "client_id": shared.SPA_ID, "refresh_token": token},
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def amr_of(app: Any, body: dict[str, Any]) -> tuple[Any, Any]:
    """The `amr` claims (None when absent) of the ID token and the access token."""
    id_claims = claims(app, body["id_token"], shared.SPA_ID)
    access = claims(app, body["access_token"], [API, shared.ISSUER + "userinfo"])
    return id_claims.get("amr"), access.get("amr")


async def mfa_login(http: httpx.AsyncClient, clock: FixedClock, **params: str) -> dict[str, str]:
    """Password, then the right code: the redirect's parameters."""
    fields = await code_page(http, **params)
    r = await send_code(http, fields, code_at(clock.now()))
    assert r.status_code == 303, r.text
    return redirect_params(r)


async def silent(http: httpx.AsyncClient, **params: str) -> httpx.Response:
    return await http.get("/authorize", params=authorize_params(prompt="none", **OFFLINE, **params))


# --- the tokens say what the login was ------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_hosted_mfa_login_gives_tokens_with_amr_mfa_and_refreshes_keep_it(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, api: None
) -> None:
    await enroll(app, http, user)
    body = await exchange(http, (await mfa_login(http, clock, **OFFLINE))["code"])
    assert amr_of(app, body) == (["mfa"], ["mfa"])
    assert "refresh_token" in body

    clock.advance(60)
    first = await refresh(http, body["refresh_token"])
    assert amr_of(app, first) == (["mfa"], ["mfa"])
    assert first["refresh_token"] != body["refresh_token"]  # rotated
    clock.advance(60)
    second = await refresh(http, first["refresh_token"])  # the successor keeps it too
    assert amr_of(app, second) == (["mfa"], ["mfa"])

    # The session remembers it: silent authentication gets a code whose tokens say so too.
    r = await silent(http)
    assert set(redirect_params(r)) == {"code", "state"}
    assert amr_of(app, await exchange(http, redirect_params(r)["code"])) == (["mfa"], ["mfa"])


async def test_a_password_only_login_gives_tokens_without_amr(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, api: None
) -> None:
    r = await password_step(http, **OFFLINE)
    body = await exchange(http, redirect_params(r)["code"])
    assert amr_of(app, body) == (None, None)
    clock.advance(60)
    assert amr_of(app, await refresh(http, body["refresh_token"])) == (None, None)
    r = await silent(http)
    assert amr_of(app, await exchange(http, redirect_params(r)["code"])) == (None, None)


# --- a session from before the factor -------------------------------------------------------------


async def signed_in_then_enrolled(app: Any, http: httpx.AsyncClient, user: User) -> str:
    """A password-only session, then a factor confirmed: the session cookie."""
    assert "code" in redirect_params(await password_step(http))
    await enroll(app, http, user)
    cookie: str = http.cookies["keystead_session"]
    return cookie


@pytest.mark.parametrize("backend", BACKENDS)
async def test_silent_auth_with_a_session_from_before_the_factor_is_login_required(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, api: None
) -> None:
    await signed_in_then_enrolled(app, http, user)
    r = await silent(http, state="quiet")
    assert redirect_params(r) == {
        "error": "login_required",
        "error_description": MFA_REQUIRED,
        "state": "quiet",
    }
    # As the app asked for it: web_message for spa-js's hidden iframe.
    r = await silent(http, state="quiet", response_mode="web_message")
    message, origin = web_message(r)
    assert origin == shared.APP
    refused = {"error": "login_required", "error_description": MFA_REQUIRED, "state": "quiet"}
    assert message == {"type": "authorization_response", "response": refused}
    [failed, *_] = await events(state, "fsa")
    assert failed.description == MFA_REQUIRED
    assert await session_count(state) == 1  # the session stays: the code can still be given


async def test_interactive_authorize_with_such_a_session_shows_the_code_page(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, api: None
) -> None:
    old_cookie = await signed_in_then_enrolled(app, http, user)
    params = {**authorize_params(**OFFLINE), "state": "again"}
    r = await http.get("/authorize", params=params)
    assert r.status_code == 200, r.text
    assert '<form method="post" action="/u/mfa-challenge"' in r.text
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    fields = hidden_fields(r.text)
    assert set(fields) == {"csrf_token", "authorize_query", "challenge"}
    assert fields["csrf_token"] == http.cookies["keystead_csrf"]
    assert "code=" not in r.headers.get("location", "")

    done = await send_code(http, fields, code_at(clock.now()))
    assert done.status_code == 303, done.text
    back = redirect_params(done)
    assert back["state"] == "again"
    assert http.cookies["keystead_session"] != old_cookie  # a new session, the old one ended
    assert await session_count(state) == 1
    assert amr_of(app, await exchange(http, back["code"])) == (["mfa"], ["mfa"])
    # The new session has the factor: silent authentication works again.
    r = await silent(http)
    assert amr_of(app, await exchange(http, redirect_params(r)["code"])) == (["mfa"], ["mfa"])


async def test_the_code_page_from_authorize_counts_wrong_codes_and_keeps_the_session_out(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, api: None
) -> None:
    await signed_in_then_enrolled(app, http, user)
    r = await http.get("/authorize", params=authorize_params())
    fields = hidden_fields(r.text)
    refused = await send_code(http, fields, wrong_code(clock.now()))
    assert refused.status_code == 400
    [failed] = await events(state, "gd_auth_failed")
    assert failed.user_id == user.user_id
    assert redirect_params(await silent(http))["error_description"] == MFA_REQUIRED


async def test_a_fresh_browser_without_a_csrf_cookie_gets_one_with_the_code_page(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, api: None
) -> None:
    cookie = await signed_in_then_enrolled(app, http, user)
    async with browser(app) as other:  # the session cookie alone (e.g. the CSRF cookie expired)
        other.cookies.set("keystead_session", cookie)
        r = await other.get("/authorize", params=authorize_params())
        assert r.status_code == 200, r.text
        fields = hidden_fields(r.text)
        assert fields["csrf_token"] == other.cookies["keystead_csrf"]
        done = await send_code(other, fields, code_at(clock.now()))
        assert "code" in redirect_params(done)
