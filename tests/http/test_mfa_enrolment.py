"""The tenant's MFA policy (GET|PUT /api/v2/guardian/policies, keystead/mfa_policy.py) and the
hosted enrolment it leads to (web/mfa_enrol.py): with ["all-applications"], a user without a
factor enrols a TOTP app after the password, before any session starts; the password grant and
sessions without the factor are refused or sent there.

The fixtures are the hosted login's (test_login_mfa.py): a fixed clock, a SPA, and Ada.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pyotp
import pytest

from keystead.core.clock import FixedClock
from keystead.core.mfa import STEP_SECONDS
from keystead.core.users import User
from keystead.deps import AppState
from keystead.storage.models import LogEventRow
from keystead.storage.repositories.authentication_methods import (
    AuthenticationMethod,
    SqlAuthenticationMethods,
)
from keystead.web.mfa_enrol import ENROLLED, ENROLMENT_EVENT
from tests.http import test_authorize as shared
from tests.http import test_login_mfa as hosted
from tests.http import test_mfa_sessions as sessions
from tests.http.helpers import check_error, check_oas, m2m, sapi_events
from tests.http.test_authorize import (
    EMAIL,
    PASSWORD,
    add_client,
    assert_error_page,
    authorize_params,
    get_user,
    hidden_fields,
    open_login_page,
    redirect_params,
)
from tests.http.test_login_mfa import (
    BACKENDS,
    EXPIRED,
    WRONG_CODE,
    assert_no_login,
    browser,
    code_at,
    code_page,
    enroll,
    events,
    page_error,
    password_step,
    send_code,
    session_count,
)
from tests.http.test_mfa_sessions import OFFLINE, amr_of, exchange, silent

# The hosted login's fixtures, by name (pytest finds fixtures among the module's attributes).
template_database = shared.template_database
backend = hosted.backend
clock = hosted.clock
app = hosted.app
state = hosted.state
http = hosted.http
user = hosted.user
api = sessions.api  # the API the session tests' authorize requests ask for

P = "/api/v2/guardian/policies"
ALL = ["all-applications"]
INVALID = "Payload validation error: "


async def set_policy(app: Any, http: httpx.AsyncClient, policies: list[str]) -> None:
    r = await http.put(P, json=policies, headers=m2m(app, "update:mfa_policies"))
    assert check_oas(r, "PUT", "/guardian/policies") == policies


async def get_policy(app: Any, http: httpx.AsyncClient) -> Any:
    r = await http.get(P, headers=m2m(app, "read:mfa_policies"))
    return check_oas(r, "GET", "/guardian/policies")


# --- the policy in the Management API ---------------------------------------------------------


async def test_the_policy_is_off_until_set(app: Any, http: httpx.AsyncClient, user: User) -> None:
    assert await get_policy(app, http) == []
    await set_policy(app, http, ALL)
    assert await get_policy(app, http) == ALL
    r = await http.put(P, json=ALL + ALL, headers=m2m(app, "update:mfa_policies"))
    assert check_oas(r, "PUT", "/guardian/policies") == ALL  # a repeated value counts once
    await set_policy(app, http, [])
    assert await get_policy(app, http) == []


async def test_setting_the_policy_is_audited(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await set_policy(app, http, ALL)
    [event] = [e for e in await sapi_events(app) if e.description == "Set MFA policies"]
    assert event.data["details"]["changes"] == {"policies": ALL}


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("GET", "update:mfa_policies"),
        ("PUT", "read:mfa_policies"),
        ("GET", "read:tenant_settings update:tenant_settings"),
    ],
)
async def test_each_operation_needs_its_scope(
    app: Any, http: httpx.AsyncClient, user: User, method: str, scope: str
) -> None:
    r = await http.request(method, P, json=ALL, headers=m2m(app, scope))
    assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"
    assert await get_policy(app, http) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, f"{INVALID}'Expected type array but found type object'."),
        ("all-applications", f"{INVALID}'Expected type array but found type string'."),
        (["sms"], f"{INVALID}'No enum match for: sms' on property [0]."),
        ([ALL[0], 3], f"{INVALID}'No enum match for: number' on property [1]."),
        (
            ["confidence-score"],
            "MFA policy confidence-score is not supported: Keystead enforces only "
            "all-applications.",
        ),
    ],
)  # fmt: skip
async def test_a_body_that_is_not_an_enforced_policy_list_is_refused(
    app: Any, http: httpx.AsyncClient, user: User, body: Any, message: str
) -> None:
    r = await http.put(P, json=body, headers=m2m(app, "update:mfa_policies"))
    check_error(r, 400, message, "invalid_body")
    assert await get_policy(app, http) == []


# --- the enrolment page -----------------------------------------------------------------------

WEB_ID = "WebClient00000000000000000000001"
WEB_SECRET = "web-secret-of-the-enrolment-tests"
MFA_REQUIRED = "Multifactor authentication required"


async def enrol_page(http: httpx.AsyncClient, **params: str | None) -> tuple[dict[str, str], str]:
    """The password step of a user who must enrol: the page's hidden fields and its secret."""
    r = await password_step(http, **params)
    assert r.status_code == 200, r.text
    assert '<form method="post" action="/u/mfa-enroll"' in r.text
    fields = hidden_fields(r.text)
    assert set(fields) == {"csrf_token", "authorize_query", "challenge"}
    return fields, shown_secret(r.text)


def shown_secret(text: str) -> str:
    found = re.search(r'<code id="totp-secret">([A-Z2-7 ]+)</code>', text)
    assert found is not None, text
    return found.group(1).replace(" ", "")


def otpauth(text: str) -> str:
    found = re.search(r'<a href="(otpauth://totp/[^"]+)">', text)
    assert found is not None, text
    return found.group(1).replace("&amp;", "&")


async def send_enrolment(
    http: httpx.AsyncClient, fields: dict[str, str], code: str
) -> httpx.Response:
    return await http.post("/u/mfa-enroll", data={**fields, "code": code})


async def totp_methods(state: AppState, user: User) -> list[AuthenticationMethod]:
    async with state.transaction() as session:
        methods = SqlAuthenticationMethods(session, state.clock, state.sealer)
        return [m for m in await methods.list(user.user_id) if m.type == "totp"]


def other_code(secret: str, now: float) -> str:
    near = {pyotp.TOTP(secret).at(now + k * STEP_SECONDS) for k in (-1, 0, 1)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in near)


async def test_with_the_policy_a_user_without_a_factor_gets_the_enrolment_page(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await set_policy(app, http, ALL)
    r = await password_step(http)
    assert r.status_code == 200, r.text
    assert_no_login(r)
    text = r.text
    assert '<form method="post" action="/u/mfa-enroll"' in text
    assert '<svg width="' in text and 'class="segno"' in text  # the QR code, inline
    assert "<script" not in text and not re.search(r'(src|href)="(https?:)?//', text)
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["cache-control"] == "no-store"
    secret = shown_secret(text)
    assert len(secret) == 32 and re.search(r"[A-Z2-7]{4} [A-Z2-7]{4}", text)
    uri = urlsplit(otpauth(text))
    assert unquote(uri.path) == f"/Keystead:{EMAIL}"
    assert parse_qs(uri.query)["secret"] == [secret]
    assert parse_qs(uri.query)["issuer"] == ["Keystead"]
    fields = hidden_fields(text)
    assert fields["csrf_token"] == http.cookies["keystead_csrf"]
    assert PASSWORD not in text
    assert await session_count(state) == 0
    assert await totp_methods(state, user) == []
    assert (await get_user(state, user.user_id)).logins_count == 0
    # Each visit gets its own secret.
    async with browser(app) as other:
        assert (await enrol_page(other))[1] != secret


async def test_the_tenants_friendly_name_is_the_issuer(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set("friendly_name", "Acme Login")  # type: ignore[arg-type]
    await set_policy(app, http, ALL)
    r = await password_step(http)
    uri = urlsplit(otpauth(r.text))
    assert unquote(uri.path) == f"/Acme Login:{EMAIL}"
    assert parse_qs(uri.query)["issuer"] == ["Acme Login"]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_the_right_code_enrols_once_and_logs_in_with_mfa(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await set_policy(app, http, ALL)
    fields, secret = await enrol_page(http, state="st 7")
    code = pyotp.TOTP(secret).at(clock.now())
    r = await send_enrolment(http, fields, f"{code[:3]} {code[3:]}")
    assert r.status_code == 303, r.text
    params = redirect_params(r)
    assert params["state"] == "st 7"
    [method] = await totp_methods(state, user)
    assert method.confirmed
    async with state.transaction() as session:
        methods = SqlAuthenticationMethods(session, state.clock, state.sealer)
        assert await methods.secret(user.user_id, method.id, "totp_secret") == secret
    [enrolled] = await events(state, ENROLMENT_EVENT)
    assert enrolled.description == "Guardian enrollment complete"
    assert (enrolled.user_id, enrolled.client_id) == (user.user_id, shared.SPA_ID)
    assert len(await events(state, "s")) == 1
    assert (await get_user(state, user.user_id)).logins_count == 1
    assert await session_count(state) == 1
    assert amr_of(app, await exchange(http, params["code"])) == (["mfa"], ["mfa"])

    # The code that enrolled is spent: the next login asks for a code, and not that one.
    async with browser(app) as later:
        fields = await code_page(later)
        refused = await send_code(later, fields, code)
        assert (refused.status_code, page_error(refused)) == (400, WRONG_CODE)
        clock.advance(STEP_SECONDS * 2)
        done = await send_code(later, fields, pyotp.TOTP(secret).at(clock.now()))
        assert "code" in redirect_params(done)
    assert len(await totp_methods(state, user)) == 1


async def test_a_wrong_code_shows_the_same_secret_again_and_counts(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await set_policy(app, http, ALL)
    fields, secret = await enrol_page(http)
    r = await send_enrolment(http, fields, other_code(secret, clock.now()))
    assert (r.status_code, page_error(r)) == (400, WRONG_CODE)
    assert_no_login(r)
    assert shown_secret(r.text) == secret
    assert hidden_fields(r.text)["challenge"] == fields["challenge"]
    [failed] = await events(state, "gd_auth_failed")
    assert failed.user_id == user.user_id
    assert await totp_methods(state, user) == []
    r = await send_enrolment(http, fields, "12a")
    assert r.status_code == 400 and shown_secret(r.text) == secret
    assert len(await events(state, "gd_auth_failed")) == 1  # not six digits: not counted
    done = await send_enrolment(http, fields, pyotp.TOTP(secret).at(clock.now()))
    assert "code" in redirect_params(done)


@pytest.mark.parametrize("case", ["tampered", "other browser", "other application"])
async def test_an_enrolment_challenge_that_does_not_open_is_refused(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, case: str
) -> None:
    await set_policy(app, http, ALL)
    fields, secret = await enrol_page(http)
    code = pyotp.TOTP(secret).at(clock.now())
    if case == "tampered":
        head, body, signature = fields["challenge"].split(".")
        flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
        r = await send_enrolment(http, {**fields, "challenge": f"{head}.{body}.{flipped}"}, code)
    elif case == "other browser":
        async with browser(app) as other:  # its own CSRF cookie and token, the stolen challenge
            own = hidden_fields((await open_login_page(other)).text)
            r = await send_enrolment(other, {**fields, "csrf_token": own["csrf_token"]}, code)
    else:
        await add_client(state, hosted.OTHER_CLIENT, name="Other SPA")
        query = fields["authorize_query"].replace(shared.SPA_ID, hosted.OTHER_CLIENT)
        r = await send_enrolment(http, {**fields, "authorize_query": query}, code)
    assert_error_page(r, status=400, text=EXPIRED)
    assert await totp_methods(state, user) == []
    assert await session_count(state) == 0


async def test_a_code_challenge_does_not_enrol_and_an_enrolment_challenge_is_no_code(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await set_policy(app, http, ALL)
    fields, secret = await enrol_page(http)
    # The enrolment challenge at the code page: refused, whatever the code.
    r = await send_code(http, fields, pyotp.TOTP(secret).at(clock.now()))
    assert_error_page(r, status=400, text=EXPIRED)
    assert await totp_methods(state, user) == []
    # A code challenge at the enrolment page: refused too.
    await enroll(app, http, user)
    async with browser(app) as other:
        code_fields = await code_page(other)
        r = await send_enrolment(other, code_fields, code_at(clock.now()))
        assert_error_page(r, status=400, text=EXPIRED)
    assert len(await totp_methods(state, user)) == 1
    assert await session_count(state) == 0


async def test_a_factor_confirmed_meanwhile_is_asked_for_instead(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await set_policy(app, http, ALL)
    fields, secret = await enrol_page(http)
    await enroll(app, http, user)  # an administrator, or another tab, was quicker
    r = await send_enrolment(http, fields, pyotp.TOTP(secret).at(clock.now()))
    assert r.status_code == 200, r.text
    assert_no_login(r)
    assert '<form method="post" action="/u/mfa-challenge"' in r.text
    assert len(await totp_methods(state, user)) == 1
    assert [e for e in await events(state, ENROLMENT_EVENT) if e.description == ENROLLED] == []
    done = await send_code(http, hidden_fields(r.text), code_at(clock.now()))
    assert "code" in redirect_params(done)


async def test_without_the_policy_the_login_is_as_before(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await set_policy(app, http, ALL)
    await set_policy(app, http, [])
    assert "code" in redirect_params(await password_step(http))
    assert await totp_methods(state, user) == []


async def test_with_the_policy_an_enrolled_user_is_asked_for_the_code(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await enroll(app, http, user)
    await set_policy(app, http, ALL)
    fields = await code_page(http)
    assert "code" in redirect_params(await send_code(http, fields, code_at(clock.now())))


# --- sessions from before the policy ----------------------------------------------------------


async def test_silent_auth_with_a_session_from_before_the_policy_is_login_required(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, api: None
) -> None:
    assert "code" in redirect_params(await password_step(http))
    await set_policy(app, http, ALL)
    r = await silent(http, state="quiet")
    assert redirect_params(r) == {
        "error": "login_required",
        "error_description": MFA_REQUIRED,
        "state": "quiet",
    }
    assert await session_count(state) == 1


async def test_interactive_authorize_with_such_a_session_shows_the_enrolment_page(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock, api: None
) -> None:
    assert "code" in redirect_params(await password_step(http))
    old_cookie = http.cookies["keystead_session"]
    await set_policy(app, http, ALL)
    r = await http.get("/authorize", params={**authorize_params(**OFFLINE), "state": "again"})
    assert r.status_code == 200, r.text
    assert '<form method="post" action="/u/mfa-enroll"' in r.text
    fields = hidden_fields(r.text)
    assert fields["csrf_token"] == http.cookies["keystead_csrf"]
    done = await send_enrolment(http, fields, pyotp.TOTP(shown_secret(r.text)).at(clock.now()))
    assert done.status_code == 303, done.text
    assert redirect_params(done)["state"] == "again"
    assert http.cookies["keystead_session"] != old_cookie
    assert await session_count(state) == 1
    assert len(await totp_methods(state, user)) == 1
    # The new session has the factor: silent authentication works again.
    assert "code" in redirect_params(await silent(http))


# --- the password grants ----------------------------------------------------------------------


async def test_the_password_grant_without_a_factor_is_refused_without_an_mfa_token(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await add_client(
        state,
        WEB_ID,
        public=False,
        client_secret=WEB_SECRET,
        grant_types=("password", "http://auth0.com/oauth/grant-type/password-realm"),
    )
    form = {
        "grant_type": "password",
        "client_id": WEB_ID,
        "client_secret": WEB_SECRET,
        "username": EMAIL,
        "password": PASSWORD,
        "scope": "openid",
    }
    assert (await http.post("/oauth/token", data=form)).status_code == 200
    await set_policy(app, http, ALL)
    r = await http.post("/oauth/token", data=form)
    assert r.status_code == 403, r.text
    assert r.json() == {"error": "mfa_required", "error_description": MFA_REQUIRED}
    assert (await get_user(state, user.user_id)).logins_count == 1  # the first grant's only
    # A wrong password still says so first.
    r = await http.post("/oauth/token", data={**form, "password": "nope"})
    assert (r.status_code, r.json()["error"]) == (403, "invalid_grant")


def test_the_enrolment_is_logged_under_auth0s_event_code() -> None:
    assert ENROLMENT_EVENT == "gd_enrollment_complete"
    assert LogEventRow.__table__.c.type.type.length >= len(ENROLMENT_EVENT)  # type: ignore[attr-defined]


@pytest.mark.parametrize("backend", BACKENDS)
async def test_two_enrolments_at_once_create_one_factor(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    await set_policy(app, http, ALL)
    async with browser(app) as first, browser(app) as second:
        pages = [await enrol_page(first), await enrol_page(second)]
        answers = await asyncio.gather(
            *(
                send_enrolment(b, fields, pyotp.TOTP(secret).at(clock.now()))
                for b, (fields, secret) in zip((first, second), pages, strict=True)
            )
        )
    assert sorted(r.status_code for r in answers) == [200, 303]  # a login, and the code page
    assert len(await totp_methods(state, user)) == 1
    assert await session_count(state) == 1


async def test_a_signup_under_the_policy_enrols_before_any_session(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User, clock: FixedClock
) -> None:
    """The new user is created (and `ss` logged), but gets the enrolment page, not a code: a
    session and tokens come only once a factor is enrolled."""
    await set_policy(app, http, ALL)
    http.cookies.clear()  # a browser without a session
    try:
        start = await http.get("/authorize", params=authorize_params(screen_hint="signup"))
        page = await http.get(start.headers["location"])
        form = {**hidden_fields(page.text), "email": "newcomer@example.com"}
        r = await http.post("/u/signup", data={**form, "password": "Cobol-Compiler-1959"})
        assert r.status_code == 200, r.text
        assert '<form method="post" action="/u/mfa-enroll"' in r.text
        assert_no_login(r)
        [signed_up] = await events(state, "ss")
        assert signed_up.user_id is not None
        assert await events(state, "s") == []
    finally:
        await set_policy(app, http, [])
