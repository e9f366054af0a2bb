"""POST /api/v2/tickets/password-change and /tickets/email-verification (contract §10.9), and the
hosted page the verification ticket opens, GET /u/email-verification.

Every Management answer is checked against Auth0's OpenAPI; tickets are used on the real pages.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio

from keystead.core.email_tickets import new_verification_ticket, verification_url
from keystead.core.passwords import verify_password
from keystead.core.tickets import new_reset_ticket
from keystead.core.users import User
from keystead.management.tickets import RESULT_URL_NOT_ALLOWED
from keystead.storage.keys import verify_token
from tests.conftest import ISSUER
from tests.http.helpers import (
    check_error,
    check_oas,
    get_user,
    m2m,
    make_client,
    make_user,
    module_app,
    module_http,
    sapi_events,
    state_of,
)
from tests.http.test_reset_password import set_password
from tests.http.token_helpers import postgres_app


async def log_events(app: Any, type_: str) -> list[Any]:
    state = state_of(app)
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == type_]


pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

TICKETS = "create:user_tickets"
RESET = "/api/v2/tickets/password-change"
VERIFY = "/api/v2/tickets/email-verification"
NEW = "correct horse battery staple 42"
RESULT_URL = "https://app.example.com/verified"


@pytest_asyncio.fixture(loop_scope="module")
async def user(app: Any) -> User:
    return await make_user(app, email=f"ada.{secrets.token_hex(4)}@example.com")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def web_client(app: Any) -> Any:
    """An application whose callback may be a verification result_url."""
    return await make_client(
        app,
        client_id="WebApp000000000000000000000000001",
        name="Web",
        app_type="regular_web",
        callbacks=(RESULT_URL,),
    )


def ticket_of(url: str, path: str) -> str:
    parts = urlsplit(url)
    assert url.startswith(ISSUER + path + "?"), url
    (ticket,) = parse_qs(parts.query)["ticket"]
    return ticket


async def post(http: httpx.AsyncClient, app: Any, path: str, body: Any, scope: str = TICKETS):
    return await http.post(path, json=body, headers=m2m(app, scope))


# --- password change ---------------------------------------------------------------------------


async def test_password_change_ticket_sets_a_password_on_the_reset_page(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    r = await post(http, app, RESET, {"user_id": user.user_id})
    assert r.status_code == 201
    ticket = ticket_of(
        check_oas(r, "POST", "/tickets/password-change")["ticket"], "u/reset-password"
    )
    assert (await set_password(http, ticket, NEW)).status_code == 200
    stored = await get_user(app, user.user_id)
    assert stored is not None and verify_password(stored.password_hash or "", NEW)
    # single use: the password changed, so the ticket is dead
    assert (await set_password(http, ticket, NEW + "!")).status_code == 400
    events = [e for e in await sapi_events(app) if e.user_id == user.user_id]
    assert events and ticket not in str(events[-1].data)


async def test_password_change_ticket_by_email_and_connection(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    state = state_of(app)
    async with state.sessions() as session:
        connection = await state.repos(session).connections.by_name(
            "Username-Password-Authentication"
        )
    assert connection is not None
    body = {"email": (user.email or "").upper(), "connection_id": connection.id, "ttl_sec": 60}
    r = await post(http, app, RESET, body)
    assert r.status_code == 201, r.text
    ticket = ticket_of(r.json()["ticket"], "u/reset-password")
    claims = await _claims(app, ticket, ISSUER + "u/reset-password")
    assert claims["sub"] == user.user_id and claims["exp"] - claims["iat"] == 60


async def _claims(app: Any, ticket: str, audience: str) -> dict[str, Any]:
    return await verify_token(state_of(app), ticket, audience=audience)


async def test_password_change_ticket_defaults_to_five_days(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    r = await post(http, app, RESET, {"user_id": user.user_id, "ttl_sec": 0})
    claims = await _claims(
        app, ticket_of(r.json()["ticket"], "u/reset-password"), ISSUER + "u/reset-password"
    )
    assert claims["exp"] - claims["iat"] == 432_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Send either user_id, or email together with connection_id."),
        ({"email": "a@example.com"}, "Send either user_id, or email together with connection_id."),
        (
            {
                "user_id": "auth0|x",
                "email": "a@example.com",
                "connection_id": "con_0000000000000001",
            },
            "Send either user_id, or email together with connection_id.",
        ),
        (
            {"user_id": "auth0|x", "result_url": "https://a.example/"},
            "result_url must be a callback or logout URL an application registered, "
            "or one of the tenant's allowed logout URLs.",
        ),
        (
            {"user_id": "auth0|x", "result_url": "javascript:alert(1)"},
            "result_url must not use the javascript: scheme.",
        ),
        (
            {"user_id": "auth0|x", "result_url": RESULT_URL + "#frag"},
            "result_url must not contain a fragment.",
        ),
        (
            {"user_id": "auth0|x", "mark_email_as_verified": "yes"},
            "Payload validation error: 'Expected type boolean,null but found type string' "
            "on property mark_email_as_verified.",
        ),
        (
            {"user_id": "auth0|x", "organization_id": "org_1"},
            "Keystead does not support organization_id; leave it out or send null.",
        ),
        (
            {"user_id": "auth0|x", "nope": 1},
            "Payload validation error: 'Additional properties not allowed: nope'.",
        ),
    ],
)
async def test_password_change_ticket_refuses_bad_bodies(
    http: httpx.AsyncClient, app: Any, body: dict[str, Any], message: str
) -> None:
    check_error(await post(http, app, RESET, body), 400, message)


async def _reset_ticket(
    http: httpx.AsyncClient, app: Any, body: dict[str, Any], status: int = 201
) -> str:
    r = await post(http, app, RESET, body)
    assert r.status_code == status, r.text
    return ticket_of(check_oas(r, "POST", "/tickets/password-change")["ticket"], "u/reset-password")


def _redirect(page: httpx.Response, to: str = RESULT_URL) -> dict[str, list[str]]:
    """The query a redirect to `to` carries, after checking the redirect itself."""
    assert page.status_code == 302, page.text
    assert page.headers["cache-control"] == "no-store"
    location = page.headers["location"]
    base, _, query = location.partition("?")
    assert base == to, location
    return parse_qs(query)


async def test_password_change_ticket_redirects_to_its_result_url(
    http: httpx.AsyncClient, app: Any, user: User, web_client: Any
) -> None:
    ticket = await _reset_ticket(http, app, {"user_id": user.user_id, "result_url": RESULT_URL})
    claims = await _claims(app, ticket, ISSUER + "u/reset-password")
    assert claims["result_url"] == RESULT_URL and "include_email" not in claims
    page = await set_password(http, ticket, NEW)
    assert page.headers["location"] == (
        RESULT_URL + "?success=true&message=You%20can%20now%20login%20to%20the%20application"
        "%20with%20the%20new%20password."
    )
    assert _redirect(page) == {
        "success": ["true"],
        "message": ["You can now login to the application with the new password."],
    }
    stored = await get_user(app, user.user_id)
    assert stored is not None and verify_password(stored.password_hash or "", NEW)
    assert not stored.email_verified  # not asked for
    assert (await set_password(http, ticket, NEW + "!")).status_code == 400  # still single use


async def test_password_change_ticket_can_name_the_email_in_the_redirect(
    http: httpx.AsyncClient, app: Any, user: User, web_client: Any
) -> None:
    # The registered URL matches whatever its query (as /v2/logout); that query is kept.
    result_url = RESULT_URL + "?from=invite"
    body = {"user_id": user.user_id, "result_url": result_url, "includeEmailInRedirect": True}
    page = await set_password(http, await _reset_ticket(http, app, body), NEW)
    assert page.headers["location"].startswith(result_url + "&email=")
    query = _redirect(page)
    assert query["from"] == ["invite"] and query["email"] == [user.email]
    assert query["success"] == ["true"]


async def test_include_email_without_a_result_url_shows_the_page(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    body = {"user_id": user.user_id, "includeEmailInRedirect": True}
    page = await set_password(http, await _reset_ticket(http, app, body), NEW)
    assert page.status_code == 200 and "Password changed" in page.text


async def test_mark_email_as_verified_verifies_the_address_with_the_new_password(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    assert not user.email_verified
    body = {"user_id": user.user_id, "mark_email_as_verified": True}
    ticket = await _reset_ticket(http, app, body)
    stored = await get_user(app, user.user_id)
    assert stored is not None and not stored.email_verified  # only once the ticket is used
    page = await set_password(http, ticket, NEW)
    assert page.status_code == 200 and "Password changed" in page.text
    stored = await get_user(app, user.user_id)
    assert stored is not None and stored.email_verified
    assert verify_password(stored.password_hash or "", NEW)


async def test_mark_email_as_verified_never_verifies_a_changed_address(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    body = {"user_id": user.user_id, "mark_email_as_verified": True}
    ticket = await _reset_ticket(http, app, body)
    r = await http.patch(
        f"/api/v2/users/{user.user_id}",
        json={"email": f"new.{secrets.token_hex(4)}@example.com"},
        headers=m2m(app, "update:users"),
    )
    assert r.status_code == 200, r.text
    assert (await set_password(http, ticket, NEW)).status_code == 200  # the password still works
    stored = await get_user(app, user.user_id)
    assert stored is not None and verify_password(stored.password_hash or "", NEW)
    assert not stored.email_verified


async def test_options_that_ask_nothing_are_accepted(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    body = {
        "user_id": user.user_id,
        "result_url": None,
        "includeEmailInRedirect": None,
        "mark_email_as_verified": False,
        "organization_id": None,
    }
    ticket = await _reset_ticket(http, app, body)
    claims = await _claims(app, ticket, ISSUER + "u/reset-password")
    assert not {"result_url", "include_email", "mev"} & claims.keys()
    page = await set_password(http, ticket, NEW)
    assert page.status_code == 200 and "Password changed" in page.text
    stored = await get_user(app, user.user_id)
    assert stored is not None and not stored.email_verified


async def test_a_result_url_removed_after_issue_is_not_redirected_to(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    leaving = "https://leaving.example.com/done"
    client = await make_client(
        app,
        client_id="Leaving0000000000000000000000001",
        name="Leaving",
        app_type="regular_web",
        callbacks=(leaving,),
    )
    body = {"user_id": user.user_id, "result_url": leaving, "includeEmailInRedirect": True}
    ticket = await _reset_ticket(http, app, body)
    r = await http.patch(
        f"/api/v2/clients/{client.client_id}",
        json={"callbacks": []},
        headers=m2m(app, "update:clients"),
    )
    assert r.status_code == 200, r.text
    page = await set_password(http, ticket, NEW)
    assert page.status_code == 200 and "Password changed" in page.text
    assert "location" not in page.headers and "leaving.example.com" not in page.text
    stored = await get_user(app, user.user_id)
    assert stored is not None and verify_password(stored.password_hash or "", NEW)
    # ... and it can no longer be asked for
    check_error(
        await post(http, app, RESET, {"user_id": user.user_id, "result_url": leaving}),
        400,
        "result_url must be a callback or logout URL an application registered, "
        "or one of the tenant's allowed logout URLs.",
    )


async def test_password_change_ticket_options_on_postgresql(tmp_path: Path) -> None:
    async with postgres_app(tmp_path) as (app, http, _):
        await make_client(
            app, client_id="PgWeb000000000000000000000000001", name="Web",
            app_type="regular_web", callbacks=(RESULT_URL,),
        )  # fmt: skip
        user = await make_user(app, email=f"pg.{secrets.token_hex(4)}@example.com")
        body = {
            "user_id": user.user_id,
            "result_url": RESULT_URL,
            "includeEmailInRedirect": True,
            "mark_email_as_verified": True,
        }
        page = await set_password(http, await _reset_ticket(http, app, body), NEW)
        assert _redirect(page)["email"] == [user.email]
        stored = await get_user(app, user.user_id)
        assert stored is not None and stored.email_verified
        assert verify_password(stored.password_hash or "", NEW)
        evil = {**body, "result_url": "https://evil.example/"}
        check_error(await post(http, app, RESET, evil), 400, RESULT_URL_NOT_ALLOWED)
        ticket = await _reset_ticket(http, app, body)
        r = await http.patch(
            "/api/v2/clients/PgWeb000000000000000000000000001",
            json={"callbacks": []},
            headers=m2m(app, "update:clients"),
        )
        assert r.status_code == 200, r.text
        page = await set_password(http, ticket, NEW + "!")  # no longer registered: no redirect
        assert page.status_code == 200 and "Password changed" in page.text


async def test_password_change_ticket_errors(http: httpx.AsyncClient, app: Any, user: User) -> None:
    check_error(await post(http, app, RESET, {"user_id": "auth0|nobody"}), 404, "User not found.")
    check_error(
        await post(
            http, app, RESET, {"email": "a@example.com", "connection_id": "con_0000000000000001"}
        ),
        400,
        "The connection with id con_0000000000000001 does not exist.",
    )
    check_error(
        await post(http, app, RESET, {"user_id": user.user_id, "client_id": "nope"}),
        400,
        "The client does not exist",
    )
    no_email = await make_user(app, username=f"u{secrets.token_hex(4)}")
    check_error(
        await post(http, app, RESET, {"user_id": no_email.user_id}),
        400,
        "The user does not have an email address.",
    )
    check_error(
        await post(http, app, RESET, {"user_id": user.user_id}, scope="update:users"),
        403,
        "Insufficient scope, expected any of: create:user_tickets",
    )


# --- email verification ------------------------------------------------------------------------


async def test_verification_ticket_verifies_the_email(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    r = await post(http, app, VERIFY, {"user_id": user.user_id})
    assert r.status_code == 201
    url = check_oas(r, "POST", "/tickets/email-verification")["ticket"]
    ticket = ticket_of(url, "u/email-verification")
    page = await http.get(url.removeprefix(ISSUER.rstrip("/")))
    assert page.status_code == 200 and "Email verified" in page.text
    assert page.headers["cache-control"] == "no-store"
    stored = await get_user(app, user.user_id)
    assert stored is not None and stored.email_verified
    again = await http.get("/u/email-verification", params={"ticket": ticket})
    assert again.status_code == 200 and "Email verified" in again.text
    verified = [e for e in await log_events(app, "sv") if e.user_id == user.user_id]
    assert len(verified) == 2


async def test_verification_ticket_redirects_to_a_registered_result_url(
    http: httpx.AsyncClient, app: Any, user: User, web_client: Any
) -> None:
    r = await post(http, app, VERIFY, {"user_id": user.user_id, "result_url": RESULT_URL})
    assert r.status_code == 201, r.text
    ticket = ticket_of(r.json()["ticket"], "u/email-verification")
    page = await http.get("/u/email-verification", params={"ticket": ticket})
    assert page.status_code == 302 and page.headers["location"] == RESULT_URL


async def test_an_unregistered_result_url_is_refused(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    check_error(
        await post(
            http, app, VERIFY, {"user_id": user.user_id, "result_url": "https://evil.example/"}
        ),
        400,
        "result_url must be a callback or logout URL an application registered, "
        "or one of the tenant's allowed logout URLs.",
    )
    check_error(
        await post(
            http, app, VERIFY, {"user_id": user.user_id, "result_url": "javascript:alert(1)"}
        ),
        400,
        "result_url must not use the javascript: scheme.",
    )


async def test_a_result_url_no_longer_registered_shows_the_page(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    state = state_of(app)
    ticket = new_verification_ticket(
        state.keys, issuer=ISSUER, user=user, now=time.time(), result_url="https://gone.example/"
    )
    page = await http.get("/u/email-verification", params={"ticket": ticket})
    assert page.status_code == 200 and "Email verified" in page.text


def _dead(page: httpx.Response) -> None:
    assert page.status_code == 400, page.text
    assert "Email not verified" in page.text and "invalid, has expired" in page.text


async def test_expired_forged_and_foreign_tickets_are_refused(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    state = state_of(app)
    expired = new_verification_ticket(
        state.keys, issuer=ISSUER, user=user, now=time.time() - 1000, lifetime=10
    )
    reset = new_reset_ticket(state.keys, issuer=ISSUER, user=user, now=time.time())
    good = new_verification_ticket(state.keys, issuer=ISSUER, user=user, now=time.time())
    head, payload, signature = good.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    before = len(await log_events(app, "fv"))
    for ticket in (expired, reset, forged, "not-a-jwt", "x" * 5000):
        _dead(await http.get("/u/email-verification", params={"ticket": ticket}))
    _dead(await http.get("/u/email-verification"))
    failed = (await log_events(app, "fv"))[: len(await log_events(app, "fv")) - before]
    assert len(failed) == 4  # the ones read as tokens; none holds the ticket
    assert all(good not in repr(e) and forged not in repr(e) for e in failed)
    # a verification ticket is no reset ticket either
    assert (await set_password(http, good, NEW)).status_code == 400
    stored = await get_user(app, user.user_id)
    assert stored is not None and not stored.email_verified


async def test_a_ticket_dies_when_the_email_changes(
    http: httpx.AsyncClient, app: Any, user: User
) -> None:
    state = state_of(app)
    url = verification_url(
        ISSUER, new_verification_ticket(state.keys, issuer=ISSUER, user=user, now=time.time())
    )
    r = await http.patch(
        f"/api/v2/users/{user.user_id}",
        json={"email": f"new.{secrets.token_hex(4)}@example.com"},
        headers=m2m(app, "update:users"),
    )
    assert r.status_code == 200, r.text
    _dead(await http.get(url.removeprefix(ISSUER.rstrip("/"))))


async def test_verification_ticket_errors(http: httpx.AsyncClient, app: Any) -> None:
    check_error(
        await post(http, app, VERIFY, {}),
        400,
        "Payload validation error: 'Missing required property: user_id'.",
    )
    check_error(await post(http, app, VERIFY, {"user_id": "auth0|nobody"}), 404, "User not found.")
    check_error(
        await post(http, app, VERIFY, {"user_id": "auth0|x", "organization_id": "org_1"}),
        400,
        "Keystead does not support organization_id; leave it out or send null.",
    )
    check_error(
        await post(http, app, VERIFY, {"user_id": "auth0|x", "ttl_sec": 10**9}),
        400,
        "Payload validation error: '1000000000 is greater than the maximum of 2592000' "
        "on property ttl_sec.",
    )
