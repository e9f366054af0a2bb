"""Hosted password reset, /u/reset-password (contract §7.3): request → emailed ticket → new
password; tickets single-use, bound to the password, expiring, tamper-proof; CSRF (SE-03)."""

from __future__ import annotations

import base64
import html
import json
import logging
import re
import secrets
from dataclasses import replace
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx
import pytest
import pytest_asyncio

from keystead.core.clock import FixedClock
from keystead.core.logs import LogEvent
from keystead.core.passwords import hash_password, verify_password
from keystead.core.tickets import new_reset_ticket
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from keystead.storage.repositories.sessions import SqlLoginSessions
from keystead.web.reset import LINK_DEAD, MISMATCH, PASSWORD_CHANGED
from tests.conftest import ISSUER
from tests.http.helpers import make_client, module_app, module_http

pytestmark = pytest.mark.asyncio(loop_scope="module")

OLD = "old password 1234"
NEW = "brand new password 5678"
SENT_TITLE = "Check your email"


# One app for the module: starting one (migrations, two RSA keys) takes about a second.
@pytest.fixture(scope="module")
def clock() -> FixedClock:
    return FixedClock()


app = module_app(fixed_clock=True)
http = module_http()


@pytest.fixture(scope="module")
def old_hash() -> str:
    return hash_password(OLD)


@pytest_asyncio.fixture(loop_scope="module")
async def user(app: Any, old_hash: str) -> User:
    """A new user per test, with password OLD and two SSO sessions."""
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        created = await state.repos(session).users.create(
            User(
                user_id="",
                email=f"reset.{secrets.token_hex(4)}@example.com",
                password_hash=old_hash,
            ),
            connection=DATABASE_CONNECTION,
        )
        sessions = SqlLoginSessions(session, state.clock)
        await sessions.create(created.user_id)
        await sessions.create(created.user_id)
    return created


async def current(app: Any, user_id: str) -> User:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return await state.repos(session).users.get(user_id)


async def session_count(app: Any, user_id: str) -> int:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return len(await SqlLoginSessions(session, state.clock).list_for_user(user_id))


async def events(app: Any, type_: str, user_id: str | None = None) -> list[LogEvent]:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        found = await state.logs(session).list(limit=None)
    return [e for e in found if e.type == type_ and (user_id is None or e.user_id == user_id)]


def field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match is not None, f"no {name} field"
    return html.unescape(match.group(1))


async def csrf(http: httpx.AsyncClient) -> str:
    r = await http.get("/u/reset-password")
    assert r.status_code == 200
    return field(r.text, "csrf_token")


async def request_link(
    http: httpx.AsyncClient, caplog: pytest.LogCaptureFixture, email: str
) -> str | None:
    """Ask for a link on the hosted form; the ticket that was "mailed", if any."""
    caplog.clear()
    caplog.set_level(logging.INFO, logger="keystead.mail")
    r = await http.post("/u/reset-password", data={"csrf_token": await csrf(http), "email": email})
    assert r.status_code == 200, r.text
    assert SENT_TITLE in r.text
    mails = [rec.getMessage() for rec in caplog.records if rec.name == "keystead.mail"]
    if not mails:
        return None
    assert len(mails) == 1 and f"would send to {email}" in mails[0]
    match = re.search(r"/u/reset-password\?ticket=(\S+)", mails[0])
    assert match is not None
    return unquote(match.group(1))


async def set_password(
    http: httpx.AsyncClient, ticket: str, password: str, confirm: str | None = None
) -> httpx.Response:
    return await http.post(
        "/u/reset-password",
        data={
            "csrf_token": await csrf(http),
            "ticket": ticket,
            "password": password,
            "confirm": password if confirm is None else confirm,
        },
    )


def b64(value: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


# --- the whole flow -----------------------------------------------------------------------------


async def test_full_reset_flow(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, caplog: Any
) -> None:
    assert await session_count(app, user.user_id) == 2
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    scpr = await events(app, "scpr", user.user_id)
    assert len(scpr) == 1 and ticket not in json.dumps(scpr[0].data)

    form = await http.get("/u/reset-password", params={"ticket": ticket})
    assert form.status_code == 200
    assert field(form.text, "ticket") == ticket
    assert "At least 8 characters" in form.text
    assert "Not a common password, and not your email address" in form.text
    assert form.headers["cache-control"] == "no-store"
    assert form.headers["referrer-policy"] == "no-referrer"  # the ticket is in this page's URL
    assert form.headers["x-frame-options"] == "DENY"

    clock.advance(120)
    done = await set_password(http, ticket, NEW)
    assert done.status_code == 200, done.text
    assert "Password changed" in done.text

    stored = await current(app, user.user_id)
    assert stored.password_hash is not None and stored.password_hash.startswith("$argon2id$")
    assert verify_password(stored.password_hash, NEW)
    assert not verify_password(stored.password_hash, OLD)
    assert stored.last_password_reset == clock.now()
    assert await session_count(app, user.user_id) == 0  # every SSO session ended
    scp = await events(app, "scp", user.user_id)
    assert len(scp) == 1 and scp[0].data["details"] == {"sessions_ended": 2}
    assert NEW not in json.dumps(scp[0].data) and ticket not in json.dumps(scp[0].data)

    # Single use: the same link now fails, shown and submitted.
    again = await http.get("/u/reset-password", params={"ticket": ticket})
    assert again.status_code == 400 and html.escape(LINK_DEAD) in again.text
    replay = await set_password(http, ticket, "yet another password 9")
    assert replay.status_code == 400 and html.escape(LINK_DEAD) in replay.text
    assert verify_password((await current(app, user.user_id)).password_hash or "", NEW)


async def test_unknown_email_gets_the_same_page_and_no_mail(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    known = await http.post(
        "/u/reset-password", data={"csrf_token": await csrf(http), "email": user.email}
    )
    unknown_email = f"nobody.{secrets.token_hex(4)}@example.com"
    assert await request_link(http, caplog, unknown_email) is None
    unknown = await http.post(
        "/u/reset-password", data={"csrf_token": await csrf(http), "email": unknown_email}
    )
    assert known.status_code == unknown.status_code == 200
    assert known.text.replace(user.email or "", "X") == unknown.text.replace(unknown_email, "X")
    assert [e for e in await events(app, "fcpr") if e.data.get("user_name") == unknown_email]


async def test_path_form_of_the_link_works(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    r = await http.get(f"/u/reset-password/{ticket}")
    assert r.status_code == 200 and field(r.text, "ticket") == ticket
    r = await http.post(
        f"/u/reset-password/{ticket}",
        data={"csrf_token": await csrf(http), "password": NEW, "confirm": NEW},
    )
    assert r.status_code == 200 and "Password changed" in r.text


async def test_change_password_api_ticket_works_on_the_page(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="keystead.mail")
    r = await http.post(
        "/dbconnections/change_password",
        json={"email": user.email, "connection": DATABASE_CONNECTION},
    )
    assert r.status_code == 200
    mail = [rec.getMessage() for rec in caplog.records if rec.name == "keystead.mail"][-1]
    match = re.search(r"/u/reset-password\?ticket=(\S+)", mail)
    assert match is not None
    assert (await set_password(http, unquote(match.group(1)), NEW)).status_code == 200
    assert verify_password((await current(app, user.user_id)).password_hash or "", NEW)


async def test_management_ticket_options_act_on_the_page(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    """result_url, includeEmailInRedirect and mark_email_as_verified of
    POST /api/v2/tickets/password-change (tests/http/test_management_tickets.py issues them)."""
    result_url = "https://reset-page.example.com/after"
    await make_client(
        app,
        client_id="ResetPage000000000000000000000001",
        name="Reset page",
        app_type="regular_web",
        callbacks=(result_url,),
    )
    state: AppState = app.state.keystead
    ticket = new_reset_ticket(
        state.keys, issuer=ISSUER, user=user, now=clock.now(), result_url=result_url,
        include_email=True, mark_email_verified=True,
    )  # fmt: skip
    form = await http.get(f"/u/reset-password/{ticket}")  # the form itself is unchanged
    assert form.status_code == 200 and field(form.text, "ticket") == ticket
    done = await http.post(
        f"/u/reset-password/{ticket}",
        data={"csrf_token": await csrf(http), "password": NEW, "confirm": NEW},
    )
    assert done.status_code == 302, done.text
    assert done.headers["cache-control"] == "no-store"
    location = urlsplit(done.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == result_url
    assert parse_qs(location.query) == {
        "email": [user.email],
        "success": ["true"],
        "message": [PASSWORD_CHANGED],
    }
    stored = await current(app, user.user_id)
    assert stored.email_verified and verify_password(stored.password_hash or "", NEW)
    assert await session_count(app, user.user_id) == 0  # everything else as without options
    assert len(await events(app, "scp", user.user_id)) == 1


async def test_an_unregistered_result_url_in_a_ticket_is_not_followed(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User
) -> None:
    state: AppState = app.state.keystead
    ticket = new_reset_ticket(
        state.keys, issuer=ISSUER, user=user, now=clock.now(),
        result_url="https://never-registered.example/", include_email=True,
    )  # fmt: skip
    done = await set_password(http, ticket, NEW)
    assert done.status_code == 200 and "Password changed" in done.text
    assert "never-registered" not in done.text
    assert not (await current(app, user.user_id)).email_verified


# --- the new password's rules (policy messages) -------------------------------------------------


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", None, "Password must be at least 8 characters long"),
        ("password1", None, "Password is too common, choose another"),
        ("{local}", None, "Password must not be your email address"),
        (NEW, NEW + "x", MISMATCH),
    ],
)
async def test_refused_passwords_show_the_rule_and_change_nothing(
    http: httpx.AsyncClient,
    app: Any,
    user: User,
    caplog: Any,
    password: str,
    confirm: str | None,
    message: str,
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    password = password.format(local=(user.email or "").split("@")[0])
    r = await set_password(http, ticket, password, confirm)
    assert r.status_code == 400
    assert html.escape(message) in r.text
    assert field(r.text, "ticket") == ticket  # the form stays usable
    assert verify_password((await current(app, user.user_id)).password_hash or "", OLD)
    assert await session_count(app, user.user_id) == 2
    # The ticket was not spent by the refusal.
    assert (await set_password(http, ticket, NEW)).status_code == 200


# --- tickets: tampering, expiry, password changes -----------------------------------------------


async def test_tampered_and_foreign_tickets_are_refused(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, caplog: Any
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    header, payload, signature = ticket.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    kid = json.loads(base64.urlsafe_b64decode(header + "=="))["kid"]
    other = await _other_user(app)
    state: AppState = app.state.keystead
    forged = [
        f"{header}.{b64({**claims, 'sub': other.user_id})}.{signature}",  # payload changed
        f"{b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{payload}.",  # alg none
        f"{header}.{payload}.{signature[:-4]}AAAA",  # signature changed
        # Our own signature, but an access token for /userinfo rather than a ticket.
        state.keys.sign({**claims, "aud": ISSUER + "userinfo"}),
        # Well signed for the reset audience, but without the password binding.
        state.keys.sign({k: v for k, v in claims.items() if k != "pfp"}),
        state.keys.sign({**claims, "iss": "https://other.example/"}),
        "not-a-ticket",
        "x" * 5000,
    ]
    for bad in forged:
        r = await http.get("/u/reset-password", params={"ticket": bad})
        assert r.status_code == 400, bad
        assert html.escape(LINK_DEAD) in r.text
        r = await set_password(http, bad, NEW)
        assert r.status_code == 400
    assert verify_password((await current(app, user.user_id)).password_hash or "", OLD)
    assert verify_password((await current(app, other.user_id)).password_hash or "", OLD)


async def _other_user(app: Any) -> User:
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        return await state.repos(session).users.create(
            User(
                user_id="",
                email=f"other.{secrets.token_hex(4)}@example.com",
                password_hash=hash_password(OLD),
            ),
            connection=DATABASE_CONNECTION,
        )


async def test_ticket_expires_after_an_hour(
    http: httpx.AsyncClient, app: Any, clock: FixedClock, user: User, caplog: Any
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    clock.advance(3599)
    assert (await http.get("/u/reset-password", params={"ticket": ticket})).status_code == 200
    clock.advance(1)
    r = await http.get("/u/reset-password", params={"ticket": ticket})
    assert r.status_code == 400 and html.escape(LINK_DEAD) in r.text
    assert (await set_password(http, ticket, NEW)).status_code == 400
    assert verify_password((await current(app, user.user_id)).password_hash or "", OLD)


async def test_one_reset_kills_every_other_ticket(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    first = await request_link(http, caplog, user.email or "")
    second = await request_link(http, caplog, user.email or "")
    assert first and second and first != second
    assert (await set_password(http, second, NEW)).status_code == 200
    assert (await set_password(http, first, "a third password 42")).status_code == 400


async def test_ticket_dies_when_the_password_changes_elsewhere(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        repos = state.repos(session)
        found = await repos.users.get(user.user_id)
        await repos.users.update(replace(found, password_hash=hash_password("set by an admin 1")))
    assert (await set_password(http, ticket, NEW)).status_code == 400


async def test_deleted_user_ticket_is_refused(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    state: AppState = app.state.keystead
    async with state.transaction() as session:
        await state.repos(session).users.delete(user.user_id)
    r = await http.get("/u/reset-password", params={"ticket": ticket})
    assert r.status_code == 400 and html.escape(LINK_DEAD) in r.text


# --- CSRF and the request form ------------------------------------------------------------------


async def test_posts_without_this_browsers_csrf_token_are_refused(
    http: httpx.AsyncClient, app: Any, user: User, caplog: Any
) -> None:
    ticket = await request_link(http, caplog, user.email or "")
    assert ticket is not None
    caplog.clear()
    for token in (None, "", "A" * 43):
        data = {"ticket": ticket, "password": NEW, "confirm": NEW}
        if token is not None:
            data["csrf_token"] = token
        assert (await http.post("/u/reset-password", data=data)).status_code == 403
        data = {"email": user.email or ""} | ({"csrf_token": token} if token is not None else {})
        assert (await http.post("/u/reset-password", data=data)).status_code == 403
    # A cross-site browser has no cookie at all.
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as fresh:
        r = await fresh.post(
            "/u/reset-password",
            data={
                "csrf_token": await csrf(http),
                "ticket": ticket,
                "password": NEW,
                "confirm": NEW,
            },
        )
        assert r.status_code == 403
    assert verify_password((await current(app, user.user_id)).password_hash or "", OLD)
    assert not [rec for rec in caplog.records if rec.name == "keystead.mail"]


async def test_request_form_sets_a_csrf_cookie_and_keeps_the_login_context(app: Any) -> None:
    transport = httpx.ASGITransport(app=app)  # a fresh cookie jar
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as fresh:
        r = await fresh.get("/u/reset-password", params={"client_id": "abc", "state": "s&t"})
        assert r.status_code == 200
        assert "keystead_csrf" in r.headers["set-cookie"]
        assert "httponly" in r.headers["set-cookie"].lower()
        assert field(r.text, "authorize_query") == "client_id=abc&state=s%26t"
        assert 'href="/u/login?client_id=abc&amp;state=s%26t"' in r.text
        plain = await fresh.get("/u/reset-password")
        assert "Back to log in" not in plain.text


@pytest.mark.parametrize("email", ["not-an-email", '"><script>alert(1)</script>', ""])
async def test_invalid_email_is_shown_escaped(http: httpx.AsyncClient, email: str) -> None:
    r = await http.post("/u/reset-password", data={"csrf_token": await csrf(http), "email": email})
    assert r.status_code == 400
    assert "Enter a valid email address." in r.text
    assert "<script>" not in r.text
