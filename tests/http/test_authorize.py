"""/authorize (contract §2.1-§2.4; security cases AZ-01…AZ-21, PK-01/02/07/08, SE-09, CD-01, CD-05).

The helpers at the top are shared with test_login.py, test_signup_page.py and test_logout.py.
"""

from __future__ import annotations

import asyncio
import html
import json
import re
import shutil
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from sqlalchemy import func, make_url, select

from keystead.app import create_app
from keystead.core.apis import Permission, ResourceServer
from keystead.core.clients import Client, RefreshTokenPolicy
from keystead.core.clock import FixedClock
from keystead.core.codes import AuthorizationCode, ConsumeResult, code_expiry, new_family_id
from keystead.core.passwords import hash_password
from keystead.core.pkce import s256_challenge
from keystead.core.scopes import CURRENT_USER_SCOPES
from keystead.core.sessions import IDLE_TIMEOUT
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from keystead.settings import Settings
from keystead.storage.log_writer import flush_pending_logs
from keystead.storage.models import AuthorizationCodeRow, LogEventRow
from keystead.storage.repositories.codes import SqlCodes
from tests.conftest import ISSUER, POSTGRES_URL, need_service

APP = "https://app.example"
CB = f"{APP}/cb"
SPA_ID = "SpaClient00000000000000000000001"
WEB_ID = "WebClient00000000000000000000001"
EMAIL = "ada@example.com"
PASSWORD = "Correct-Horse-Battery-1"
VERIFIER = "v" * 20 + "-._~" + "w" * 19
CHALLENGE = s256_challenge(VERIFIER)
API = "https://api.example/"
MANAGEMENT = f"{ISSUER}api/v2/"
T0 = 1_800_000_000.0
# AZ-18: every character that tends to get mangled, and 4 KB of it.
NASTY_STATE = "a+b %2B&=é/?#;\u2028\"'<>" + "x" * 4000

_HASHES: dict[str, str] = {}


# --- a fast app: migrated, seeded and keyed once per session, copied for each test --------------


@pytest.fixture(scope="session")
def template_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database after a first start: migrations, system records and signing keys."""
    path = tmp_path_factory.mktemp("template") / "keystead.db"
    settings = Settings(
        issuer=ISSUER, database_url=f"sqlite:///{path}", data_dir=str(path.parent / "data")
    ).with_defaults()

    async def first_start() -> None:
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            pass

    with ThreadPoolExecutor(1) as pool:  # pytest-asyncio may already run a loop here
        pool.submit(asyncio.run, first_start()).result()
    return path


@pytest.fixture
async def app(settings: Settings, template_database: Path) -> AsyncIterator[Any]:
    """Overrides conftest's `app`: the same app, without migrating and generating RSA keys
    again for every test (a copy of the template database instead)."""
    target = make_url(settings.database_url).database
    assert target is not None
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template_database}{suffix}")
        if source.exists():
            shutil.copyfile(source, f"{target}{suffix}")
    application = create_app(settings, migrate=False)
    async with application.router.lifespan_context(application):
        yield application


def password_hash(password: str) -> str:
    if password not in _HASHES:  # argon2 is slow by design; tests reuse hashes
        _HASHES[password] = hash_password(password)
    return _HASHES[password]


# --- shared helpers ----------------------------------------------------------------------------


@pytest.fixture
def state(app: Any) -> AppState:
    found: AppState = app.state.keystead
    return found


async def add_client(state: AppState, client_id: str = SPA_ID, **fields: Any) -> Client:
    public = fields.pop("public", True)
    defaults: dict[str, Any] = {
        "name": "Test SPA" if public else "Test web app",
        "app_type": "spa" if public else "regular_web",
        "token_endpoint_auth_method": "none" if public else "client_secret_post",
        "callbacks": (CB,),
        "web_origins": (APP,),
        "allowed_logout_urls": (f"{APP}/", f"{APP}/bye"),
        "grant_types": ("authorization_code", "refresh_token"),
        "refresh_token": RefreshTokenPolicy(rotation_type="rotating"),
    }
    client = Client(client_id=client_id, **{**defaults, **fields})
    async with state.transaction() as session:
        return await state.repos(session).clients.create(client)


async def add_user(
    state: AppState, email: str = EMAIL, password: str | None = PASSWORD, **fields: Any
) -> User:
    user = User(
        user_id="",
        email=email,
        password_hash=fields.pop("password_hash", None)
        or (password_hash(password) if password else None),
        name=fields.pop("name", "Ada Lovelace"),
        **fields,
    )
    async with state.transaction() as session:
        return await state.repos(session).users.create(user, connection=DATABASE_CONNECTION)


async def add_api(state: AppState, identifier: str = API, **fields: Any) -> ResourceServer:
    api = ResourceServer(
        id="",
        identifier=identifier,
        name="Test API",
        scopes=(Permission("read:things"), Permission("write:things")),
        **fields,
    )
    async with state.transaction() as session:
        return await state.repos(session).resource_servers.create(api)


async def get_user(state: AppState, user_id: str) -> User:
    async with state.transaction() as session:
        return await state.repos(session).users.get(user_id)


def authorize_params(client_id: str | None = SPA_ID, **overrides: str | None) -> dict[str, str]:
    params = {
        "client_id": client_id or "",
        "response_type": "code",
        "redirect_uri": CB,
        "scope": "openid profile email",
        "state": "st-1",
        "nonce": "n-1",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    }
    if client_id is None:
        del params["client_id"]
    for name, value in overrides.items():
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    return params


_HIDDEN = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')


def hidden_fields(page: str) -> dict[str, str]:
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


async def open_login_page(http: httpx.AsyncClient, **params: str | None) -> httpx.Response:
    start = await http.get("/authorize", params=authorize_params(**params))
    assert start.status_code == 302, start.text
    assert start.headers["location"].startswith("/u/login?")
    page = await http.get(start.headers["location"])
    assert page.status_code == 200, page.text
    return page


async def log_in(
    http: httpx.AsyncClient, email: str = EMAIL, password: str = PASSWORD, **params: str | None
) -> httpx.Response:
    """The whole interactive flow: /authorize → /u/login → POST credentials."""
    page = await open_login_page(http, **params)
    form = {**hidden_fields(page.text), "username": email, "password": password}
    return await http.post("/u/login", data=form)


def location(response: httpx.Response) -> str:
    assert response.status_code in (302, 303), (response.status_code, response.text)
    return response.headers["location"]


def redirect_params(response: httpx.Response, base: str = CB) -> dict[str, str]:
    """The parameters of a redirect to the app, checking it goes to `base` and nowhere else."""
    target = location(response)
    parts = urlsplit(target)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == base, target
    return dict(parse_qsl(parts.query, keep_blank_values=True))


def assert_error_page(response: httpx.Response, status: int = 400, text: str = "") -> None:
    """G6: an HTML page, no Location, not framable."""
    assert response.status_code == status, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert text in html.unescape(response.text)


def web_message(response: httpx.Response) -> tuple[dict[str, Any], str]:
    """The message a web_message page posts, and its targetOrigin."""
    assert response.status_code == 200
    found = re.search(r"target\.postMessage\((\{.*\}), (\"[^\"]*\")\);", response.text)
    assert found is not None, response.text
    return json.loads(found[1]), json.loads(found[2])


async def consume(state: AppState, code: str) -> ConsumeResult:
    async with state.transaction() as session:
        return await SqlCodes(session, state.clock).consume(code)


async def count(state: AppState, row: Any, **where: Any) -> int:
    async with state.transaction() as session:
        await flush_pending_logs(session)  # log events are written in batches
        stmt = select(func.count()).select_from(row).filter_by(**where)
        return int(await session.scalar(stmt) or 0)


async def log_types(state: AppState) -> list[str]:
    async with state.transaction() as session:
        await flush_pending_logs(session)
        rows = await session.scalars(select(LogEventRow).order_by(LogEventRow.log_id))
        return [row.type for row in rows]


@pytest.fixture
async def spa(state: AppState) -> Client:
    return await add_client(state)


@pytest.fixture
async def user(state: AppState) -> User:
    return await add_user(state)


# --- steps 1 and 2: error pages, never a redirect ------------------------------------------------


async def test_missing_client_id_is_an_error_page(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get("/authorize", params=authorize_params(client_id=None))
    assert_error_page(r, text="Missing required parameter: client_id")


async def test_unknown_client_is_an_error_page(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get("/authorize", params=authorize_params(client_id="nobody<script>"))
    assert_error_page(r, text="Unknown client: nobody<script>")
    assert "<script>" not in r.text  # escaped


async def test_az01_unregistered_redirect_uri_is_an_error_page(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await log_in(http)  # even with a live session, nothing goes to evil.example
    before = await count(state, AuthorizationCodeRow)
    r = await http.get(
        "/authorize", params=authorize_params(redirect_uri="https://evil.example/cb")
    )
    assert_error_page(r, text="Callback URL mismatch")
    assert "evil.example" not in r.headers.get("location", "")
    assert await count(state, AuthorizationCodeRow) == before
    assert await count(state, LogEventRow, type="f") == 1  # the attempt is logged


@pytest.mark.parametrize(
    ("registered", "requested"),
    [
        (CB, f"{CB}?foo=bar"),  # AZ-03: a query added
        (f"{CB}?x=1", f"{CB}?x=2"),  # AZ-03: a different query
        (CB, f"{CB}/"),
        (CB, "https://APP.example/cb/../cb"),
        (CB, f"{CB}#frag"),
    ],
)
async def test_az03_redirect_uri_must_match_exactly(
    http: httpx.AsyncClient, state: AppState, registered: str, requested: str
) -> None:
    await add_client(state, callbacks=(registered,))
    r = await http.get("/authorize", params=authorize_params(redirect_uri=requested))
    assert_error_page(r, text="Callback URL mismatch")


async def test_az03_registered_query_is_kept(
    http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await add_client(state, callbacks=(f"{CB}?x=1",))
    r = await log_in(http, redirect_uri=f"{CB}?x=1")
    params = redirect_params(r)
    assert params["x"] == "1"
    assert params["code"]
    assert location(r).startswith(f"{CB}?x=1&code=")


async def test_az04_no_redirect_uri_with_several_callbacks(
    http: httpx.AsyncClient, state: AppState
) -> None:
    await add_client(state, callbacks=(CB, f"{APP}/other"))
    r = await http.get("/authorize", params=authorize_params(redirect_uri=None))
    assert_error_page(r, text="Missing required parameter: redirect_uri")


async def test_no_redirect_uri_with_one_callback_uses_it(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    r = await log_in(http, redirect_uri=None)
    code = redirect_params(r)["code"]
    found = await consume(state, code)
    assert found.code is not None
    assert found.code.redirect_uri is None  # what the request sent: nothing


async def test_repeated_redirect_uri_is_an_error_page(http: httpx.AsyncClient, spa: Client) -> None:
    query = httpx.QueryParams(authorize_params()).add("redirect_uri", "https://evil.example/")
    r = await http.get("/authorize", params=query)
    assert_error_page(r, text="redirect_uri must not be repeated")


async def test_web_message_needs_an_allowed_web_origin(
    http: httpx.AsyncClient, state: AppState
) -> None:
    await add_client(state, web_origins=())
    r = await http.get(
        "/authorize", params=authorize_params(response_mode="web_message", prompt="none")
    )
    assert_error_page(r, text="Allowed Web Origins")


async def test_order_client_before_redirect_before_response_type(
    http: httpx.AsyncClient, spa: Client
) -> None:
    bad = {"response_type": "bogus", "audience": "https://unknown.example/"}
    r = await http.get(
        "/authorize",
        params=authorize_params(client_id="nobody", redirect_uri="https://evil.example/", **bad),
    )
    assert_error_page(r, text="Unknown client")
    r = await http.get(
        "/authorize", params=authorize_params(redirect_uri="https://evil.example/", **bad)
    )
    assert_error_page(r, text="Callback URL mismatch")


# --- steps 3-5: errors delivered to the app ----------------------------------------------------


async def test_order_response_type_before_audience_before_session(
    http: httpx.AsyncClient, spa: Client
) -> None:
    r = await http.get(
        "/authorize",
        params=authorize_params(
            response_type="bogus", audience="https://unknown.example/", prompt="none"
        ),
    )
    assert redirect_params(r) == {
        "error": "unsupported_response_type",
        "error_description": "Unsupported response type",
        "state": "st-1",
    }
    r = await http.get(
        "/authorize",
        params=authorize_params(audience="https://unknown.example/", prompt="none"),
    )
    assert redirect_params(r) == {
        "error": "access_denied",
        "error_description": "Service not found: https://unknown.example/",
        "state": "st-1",
    }


async def test_az09_unknown_audience_description_is_printable(
    http: httpx.AsyncClient, spa: Client
) -> None:
    r = await http.get(
        "/authorize", params=authorize_params(audience="https://x.example/\r\n\tévil")
    )
    params = redirect_params(r)
    assert params["error"] == "access_denied"
    assert params["error_description"].startswith("Service not found: https://x.example/")
    assert all(" " <= c <= "~" for c in params["error_description"])


async def test_az08_missing_response_type(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get("/authorize", params=authorize_params(response_type=None))
    assert redirect_params(r) == {
        "error": "invalid_request",
        "error_description": "Missing required parameter: response_type",
        "state": "st-1",
    }


@pytest.mark.parametrize("response_type", ["token", "id_token token", "code id_token"])
async def test_az08_implicit_and_hybrid_are_refused(
    http: httpx.AsyncClient, state: AppState, user: User, response_type: str
) -> None:
    await add_client(state, grant_types=("authorization_code",))
    await add_client(state, WEB_ID, public=False, grant_types=("authorization_code", "implicit"))
    await log_in(http)  # a session exists: still no token anywhere
    r = await http.get("/authorize", params=authorize_params(response_type=response_type))
    target = location(r)
    assert "#" in target  # implicit types default to the fragment
    params = dict(parse_qsl(urlsplit(target).fragment))
    assert params["error"] == "unauthorized_client"
    assert params["state"] == "st-1"
    r = await http.get("/authorize", params=authorize_params(WEB_ID, response_type=response_type))
    params = dict(parse_qsl(urlsplit(location(r)).fragment))
    assert params["error"] == "unsupported_response_type"
    for token in ("access_token", "id_token", "code"):
        assert token not in params


async def test_client_without_the_code_grant(http: httpx.AsyncClient, state: AppState) -> None:
    await add_client(state, grant_types=("refresh_token",))
    r = await http.get("/authorize", params=authorize_params())
    assert redirect_params(r)["error"] == "unauthorized_client"


async def test_unknown_response_mode(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get("/authorize", params=authorize_params(response_mode="carrier_pigeon"))
    params = redirect_params(r)
    assert params["error"] == "invalid_request"
    assert params["error_description"] == "Unsupported response_mode: carrier_pigeon"
    assert params["state"] == "st-1"


@pytest.mark.parametrize(
    ("overrides", "description"),
    [
        # PK-01: a public client must use PKCE.
        (
            {"code_challenge": None, "code_challenge_method": None},
            "Missing required parameter: code_challenge",
        ),
        # PK-02: plain is not accepted.
        ({"code_challenge_method": "plain"}, "transform algorithm not supported"),
        # PK-07
        ({"code_challenge_method": "S512"}, "transform algorithm not supported"),
        ({"code_challenge": "short"}, "code_challenge must be 43 base64url characters for S256"),
        (
            {"code_challenge": None},
            "code_challenge_method was sent without code_challenge",
        ),
    ],
)
async def test_pkce_errors(
    http: httpx.AsyncClient, spa: Client, overrides: dict[str, str | None], description: str
) -> None:
    r = await http.get("/authorize", params=authorize_params(**overrides))
    params = redirect_params(r)
    assert params["error"] == "invalid_request"
    assert description in params["error_description"]
    assert params["state"] == "st-1"


async def test_pk08_pkce_is_optional_for_confidential_clients(
    http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await add_client(state, WEB_ID, public=False)
    r = await log_in(http, client_id=WEB_ID, code_challenge=None, code_challenge_method=None)
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None
    assert found.code.code_challenge is None
    # With PKCE the challenge is stored for the token endpoint to enforce.
    r = await http.get("/authorize", params=authorize_params(WEB_ID, prompt="none"))
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None
    assert (found.code.code_challenge, found.code.code_challenge_method) == (CHALLENGE, "S256")


@pytest.mark.parametrize(
    ("overrides", "error", "description"),
    [
        ({"prompt": "none login"}, "invalid_request", "must not be combined"),  # AZ-14
        ({"max_age": "-1"}, "invalid_request", "max_age must be a non-negative integer"),
        ({"max_age": "1e3"}, "invalid_request", "max_age must be a non-negative integer"),
        ({"request": "eyJhbGciOiJub25lIn0.e30."}, "request_not_supported", ""),  # AZ-17
        (
            {"request_uri": "http://169.254.169.254/latest/meta-data"},
            "request_uri_not_supported",
            "",
        ),
        ({"scope": 'openid "quoted"'}, "invalid_scope", ""),
        ({"connection": "no-such-connection"}, "invalid_request", "connection was not found"),
    ],
)
async def test_malformed_requests(
    http: httpx.AsyncClient,
    spa: Client,
    overrides: dict[str, str],
    error: str,
    description: str,
) -> None:
    r = await http.get("/authorize", params=authorize_params(**overrides))
    params = redirect_params(r)
    assert params["error"] == error
    assert description in params["error_description"]
    assert params["state"] == "st-1"


async def test_repeated_parameter_is_invalid_request(http: httpx.AsyncClient, spa: Client) -> None:
    query = httpx.QueryParams(authorize_params()).add("scope", "openid read:users")
    r = await http.get("/authorize", params=query)
    params = redirect_params(r)
    assert params["error"] == "invalid_request"
    assert params["error_description"] == "scope must not be repeated"


async def test_oversized_query_is_refused_before_lookup(
    http: httpx.AsyncClient, spa: Client
) -> None:
    r = await http.get("/authorize", params=authorize_params(login_hint="x" * 20_000))
    assert_error_page(r, text="The request is too large")


# --- step 6: the session -----------------------------------------------------------------------


async def test_interactive_request_goes_to_the_login_page(
    http: httpx.AsyncClient, spa: Client
) -> None:
    params = authorize_params(state=NASTY_STATE, extra="foobar", auth0Client="eyJuYW1lIjoieCJ9")
    r = await http.get("/authorize", params=params)
    assert r.status_code == 302
    target = r.headers["location"]
    assert target.startswith("/u/login?")
    carried = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    assert carried == params  # everything carried, byte-exact, for validation again
    assert r.headers["cache-control"] == "no-store"


async def test_screen_hint_signup_goes_to_the_signup_page(
    http: httpx.AsyncClient, spa: Client
) -> None:
    r = await http.get("/authorize", params=authorize_params(screen_hint="signup"))
    assert r.headers["location"].startswith("/u/signup?")


@pytest.mark.parametrize("mode", ["query", "web_message"])
async def test_az12_prompt_none_without_session(
    http: httpx.AsyncClient, state: AppState, spa: Client, mode: str
) -> None:
    r = await http.get("/authorize", params=authorize_params(prompt="none", response_mode=mode))
    expected = {"error": "login_required", "error_description": "Login required", "state": "st-1"}
    if mode == "query":
        assert redirect_params(r) == expected
    else:
        message, origin = web_message(r)
        assert message == {"type": "authorization_response", "response": expected}
        assert origin == APP
        assert "<form" not in r.text  # the login page is never rendered
    assert await log_types(state) == ["fsa"]


async def test_az13_prompt_none_with_a_session_issues_a_code(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    first = await consume(state, redirect_params(await log_in(http))["code"])
    r = await http.get("/authorize", params=authorize_params(prompt="none", nonce="n-2"))
    params = redirect_params(r)
    assert set(params) == {"code", "state"}
    second = await consume(state, params["code"])
    assert first.code is not None and second.code is not None
    assert second.code.user_id == first.code.user_id == user.user_id
    assert second.code.auth_time == first.code.auth_time
    assert second.code.sid == first.code.sid
    assert second.code.nonce == "n-2"
    assert second.code.family_id != first.code.family_id
    assert "ssa" in await log_types(state)


async def test_code_carries_the_request(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    state.clock = FixedClock(T0)
    await add_api(state)
    r = await log_in(http, audience=API, scope="openid email read:things offline_access bogus")
    found = await consume(state, redirect_params(r)["code"])
    assert found == ConsumeResult(
        AuthorizationCode(
            client_id=SPA_ID,
            user_id=user.user_id,
            redirect_uri=CB,
            # offline_access needs the API's allow_offline_access; undefined scopes drop
            scope=("openid", "email", "read:things"),
            audience=API,
            nonce="n-1",
            code_challenge=CHALLENGE,
            code_challenge_method="S256",
            auth_time=int(T0),
            sid=found.code.sid if found.code else "",
            family_id=found.code.family_id if found.code else "",
            expires_at=T0 + 60,
        )
    )
    assert found.code is not None and len(found.code.sid) >= 32


async def test_blocked_users_session_gets_unauthorized(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await log_in(http)
    async with state.transaction() as session:
        await state.repos(session).users.update(replace(user, blocked=True))
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert redirect_params(r) == {
        "error": "unauthorized",
        "error_description": "user is blocked",
        "state": "st-1",
    }
    # The session is gone, not only refused.
    async with state.transaction() as session:
        await state.repos(session).users.update(replace(user, blocked=False))
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert redirect_params(r)["error"] == "login_required"


async def test_az16_max_age_and_prompt_login(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    clock = FixedClock(T0)
    state.clock = clock
    first = await consume(state, redirect_params(await log_in(http))["code"])
    assert first.code is not None and first.code.auth_time == int(T0)
    clock.advance(2)
    # max_age=1 after 2 s: credentials again, or login_required when silent.
    r = await http.get("/authorize", params=authorize_params(max_age="1"))
    assert r.headers["location"].startswith("/u/login?")
    r = await http.get("/authorize", params=authorize_params(max_age="1", prompt="none"))
    assert redirect_params(r)["error"] == "login_required"
    # max_age=10000: no prompt, unchanged auth_time.
    r = await http.get("/authorize", params=authorize_params(max_age="10000", prompt="none"))
    same = await consume(state, redirect_params(r)["code"])
    assert same.code is not None and same.code.auth_time == int(T0)
    # prompt=login re-requests credentials even with a fresh session; the new auth_time is later.
    r = await http.get("/authorize", params=authorize_params(prompt="login"))
    assert r.headers["location"].startswith("/u/login?")
    again = await consume(state, redirect_params(await log_in(http, prompt="login"))["code"])
    assert again.code is not None and again.code.auth_time == int(T0) + 2


async def test_se09_idle_session_is_not_usable(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    clock = FixedClock(T0)
    state.clock = clock
    await log_in(http)
    clock.advance(IDLE_TIMEOUT - 10)
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert "code" in redirect_params(r)  # used, so the idle timer restarts
    clock.advance(IDLE_TIMEOUT - 10)
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert "code" in redirect_params(r)
    clock.advance(IDLE_TIMEOUT)
    r = await http.get("/authorize", params=authorize_params(prompt="none"))
    assert redirect_params(r)["error"] == "login_required"
    r = await http.get("/authorize", params=authorize_params())
    assert r.headers["location"].startswith("/u/login?")


async def test_third_party_client_needs_consent(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await log_in(http)
    await add_client(state, WEB_ID, is_first_party=False)
    r = await http.get("/authorize", params=authorize_params(WEB_ID, prompt="none"))
    assert redirect_params(r)["error"] == "consent_required"
    r = await http.get("/authorize", params=authorize_params(WEB_ID))
    assert redirect_params(r)["error"] == "access_denied"


# --- audiences and scopes (contract §3.8) -------------------------------------------------------


async def test_default_audience_from_tenant_settings(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await add_api(state)
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set("default_audience", API)  # type: ignore[arg-type]
    r = await log_in(http, scope="openid read:things")
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None
    assert found.code.audience == API
    assert found.code.scope == ("openid", "read:things")


async def test_no_audience_gives_a_userinfo_only_code(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    found = await consume(state, redirect_params(await log_in(http))["code"])
    assert found.code is not None
    assert found.code.audience is None
    assert found.code.scope == ("openid", "profile", "email")


async def test_mg06_management_api_gives_only_current_user_scopes(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    scope = "openid read:users update:users read:current_user update:current_user_metadata"
    r = await log_in(http, audience=MANAGEMENT, scope=scope)
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None
    assert found.code.audience == MANAGEMENT
    assert found.code.scope == ("openid", "read:current_user", "update:current_user_metadata")
    assert set(found.code.scope) - {"openid"} <= set(CURRENT_USER_SCOPES)


async def test_current_user_tokens_can_be_switched_off(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set(
            "self_service", {"current_user_tokens": False}
        )
    r = await log_in(http, audience=MANAGEMENT, scope="openid read:current_user")
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None and found.code.scope == ("openid",)


async def test_rbac_grants_only_the_users_permissions(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await add_api(state, enforce_policies=True)

    class Ref:
        resource_server_identifier = API
        permission_name = "read:things"

    async with state.transaction() as session:
        await state.repos(session).roles.add_user_permissions(user.user_id, [Ref()])
    r = await log_in(http, audience=API, scope="openid read:things write:things")
    found = await consume(state, redirect_params(r)["code"])
    assert found.code is not None and found.code.scope == ("openid", "read:things")


# --- response modes and state (contract §2.3; AZ-18, AZ-21) --------------------------------------


async def test_az18_state_is_echoed_byte_exact_in_every_mode(
    http: httpx.AsyncClient, spa: Client, user: User
) -> None:
    # Through the login page and its hidden field too.
    assert redirect_params(await log_in(http, state=NASTY_STATE))["state"] == NASTY_STATE
    base = {"prompt": "none", "state": NASTY_STATE}
    # query
    r = await http.get("/authorize", params=authorize_params(**base))
    assert redirect_params(r)["state"] == NASTY_STATE
    # fragment
    r = await http.get("/authorize", params=authorize_params(response_mode="fragment", **base))
    parts = urlsplit(location(r))
    assert parts.query == ""
    fragment = dict(parse_qsl(parts.fragment))
    assert fragment["state"] == NASTY_STATE and fragment["code"]
    # form_post
    r = await http.get("/authorize", params=authorize_params(response_mode="form_post", **base))
    assert r.status_code == 200
    assert f'<form method="post" action="{CB}"' in r.text
    fields = hidden_fields(r.text)
    assert fields["state"] == NASTY_STATE and fields["code"]
    # web_message
    r = await http.get("/authorize", params=authorize_params(response_mode="web_message", **base))
    message, _ = web_message(r)
    assert message["response"]["state"] == NASTY_STATE
    # And on errors, with no session.
    http.cookies.clear()
    for mode in ("query", "fragment", "form_post", "web_message"):
        r = await http.get("/authorize", params=authorize_params(response_mode=mode, **base))
        if mode == "query":
            got = redirect_params(r)
        elif mode == "fragment":
            got = dict(parse_qsl(urlsplit(location(r)).fragment))
        elif mode == "form_post":
            got = hidden_fields(r.text)
        else:
            got = web_message(r)[0]["response"]
        assert got == {
            "error": "login_required",
            "error_description": "Login required",
            "state": NASTY_STATE,
        }, mode


async def test_az18_no_state_sent_none_returned(
    http: httpx.AsyncClient, spa: Client, user: User
) -> None:
    r = await log_in(http, state=None)
    assert set(redirect_params(r)) == {"code"}
    http.cookies.clear()
    r = await http.get("/authorize", params=authorize_params(state=None, prompt="none"))
    assert set(redirect_params(r)) == {"error", "error_description"}


async def test_az21_web_message_page(
    http: httpx.AsyncClient, state: AppState, spa: Client, user: User
) -> None:
    await log_in(http)
    r = await http.get(
        "/authorize",
        params=authorize_params(response_mode="web_message", prompt="none", redirect_uri=None),
    )
    message, origin = web_message(r)
    assert message["type"] == "authorization_response"
    assert set(message["response"]) == {"code", "state"}
    assert message["response"]["state"] == "st-1"
    assert origin == APP  # targetOrigin is the redirect_uri's origin, never "*"
    assert "window.opener || window.parent" in r.text  # popup first, then the iframe's parent
    # Framable, but only by that origin; the inline script runs by nonce.
    assert "x-frame-options" not in r.headers
    csp = r.headers["content-security-policy"]
    assert f"frame-ancestors {APP}" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce is not None and f'<script nonce="{nonce[1]}">' in r.text
    assert r.headers["cache-control"] == "no-store"
    found = await consume(state, message["response"]["code"])
    assert found.code is not None and found.code.client_id == SPA_ID


async def test_az11_post_and_extra_parameters(
    http: httpx.AsyncClient, spa: Client, user: User
) -> None:
    await log_in(http)
    extras = {
        "extra": "foobar",
        "display": "popup",
        "ui_locales": "se",
        "claims_locales": "se",
        "acr_values": "urn:x",
        "auth0Client": "not base64 at all",
        "prompt": "none",
    }
    r = await http.post("/authorize", data=authorize_params(scope="email openid", **extras))
    assert set(redirect_params(r)) == {"code", "state"}


async def test_az20_no_cors_on_authorize(http: httpx.AsyncClient, spa: Client) -> None:
    r = await http.get(
        "/authorize", params=authorize_params(), headers={"Origin": "https://evil.example"}
    )
    assert "access-control-allow-origin" not in r.headers


# --- codes: single use (CD-01, CD-05) ------------------------------------------------------------


def make_code(user_id: str, **fields: Any) -> AuthorizationCode:
    values: dict[str, Any] = {
        "client_id": SPA_ID,
        "user_id": user_id,
        "redirect_uri": CB,
        "scope": ("openid",),
        "audience": None,
        "nonce": None,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "auth_time": int(T0),
        "sid": "sid-1",
        "family_id": new_family_id(),
        "expires_at": code_expiry(T0),
        **fields,
    }
    return AuthorizationCode(**values)


async def store_code(state: AppState, code: AuthorizationCode) -> str:
    async with state.transaction() as session:
        return await SqlCodes(session, state.clock).create(code)


async def test_cd01_a_code_is_redeemed_once(state: AppState, spa: Client, user: User) -> None:
    state.clock = FixedClock(T0)
    code = make_code(user.user_id)
    value = await store_code(state, code)
    assert len(value) >= 43
    async with state.transaction() as session:  # only the digest is stored
        row = await session.scalar(select(AuthorizationCodeRow))
        assert row is not None and value.encode() not in row.code_digest
    assert await consume(state, value) == ConsumeResult(code)
    assert await consume(state, value) == ConsumeResult(code, replayed=True)
    assert await consume(state, value) == ConsumeResult(code, replayed=True)
    assert await consume(state, "made-up") == ConsumeResult(None)
    assert await consume(state, "x" * 5000) == ConsumeResult(None)


async def test_cd05_an_expired_code_is_refused(state: AppState, spa: Client, user: User) -> None:
    clock = FixedClock(T0)
    state.clock = clock
    value = await store_code(state, make_code(user.user_id))
    clock.advance(60)
    assert await consume(state, value) == ConsumeResult(None)
    assert await consume(state, value) == ConsumeResult(None)  # not "replayed": never used


async def _concurrent_consume(state: AppState) -> None:
    await add_client(state)
    user = await add_user(state)
    state.clock = FixedClock(T0)
    value = await store_code(state, make_code(user.user_id))
    results = await asyncio.gather(*(consume(state, value) for _ in range(8)))
    winners = [r for r in results if r.code is not None and not r.replayed]
    assert len(winners) == 1
    assert sum(r.replayed for r in results) == 7


async def test_cd01_concurrent_exchanges_on_sqlite(state: AppState) -> None:
    await _concurrent_consume(state)


@pytest.fixture
async def postgres_app(tmp_path: Path) -> AsyncIterator[Any]:
    need_service("PostgreSQL", bool(POSTGRES_URL), "set KEYSTEAD_TEST_POSTGRES_URL")
    from tests.storage.conftest import Scratch

    scratch = Scratch()
    url = scratch.create()
    try:
        settings = Settings(
            issuer=ISSUER, database_url=url, data_dir=str(tmp_path / "data")
        ).with_defaults()
        application = create_app(settings)
        async with application.router.lifespan_context(application):
            yield application
    finally:
        scratch.drop_all()


@pytest.mark.postgres
async def test_cd01_concurrent_exchanges_on_postgresql(postgres_app: Any) -> None:
    await _concurrent_consume(postgres_app.state.keystead)
