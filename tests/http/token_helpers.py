"""Helpers for /oauth/token and /oauth/revoke tests: a small tenant, codes, token checks."""

from __future__ import annotations

import asyncio
import atexit
import base64
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette

from keystead.app import create_app
from keystead.core.apis import ClientGrant, Permission, ResourceServer
from keystead.core.clients import Client, RefreshTokenPolicy
from keystead.core.clock import Clock, FixedClock
from keystead.core.codes import AuthorizationCode, code_expiry, new_family_id
from keystead.core.logs import LogEvent
from keystead.core.passwords import hash_password
from keystead.core.pkce import s256_challenge
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.deps import AppState
from keystead.settings import Settings
from keystead.storage.db import async_url
from keystead.storage.models import RefreshTokenRow
from keystead.storage.repositories.codes import SqlCodes
from tests.conftest import ISSUER, POSTGRES_URL, need_service

API = "https://api.example/"
HS_API = "https://hs.example/"
RBAC_API = "https://rbac.example/"
MGMT = ISSUER + "api/v2/"
USERINFO = ISSUER + "userinfo"
SPA_ORIGIN = "https://app.example"
CALLBACK = SPA_ORIGIN + "/callback"
PASSWORD = "correct horse battery staple"
HS_SECRET = "an HS256 secret of at least thirty-two bytes!"
VERIFIER = "v" * 43 + "-._~" + "0123456789"
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
_PASSWORD_HASH = hash_password(PASSWORD)  # once: argon2 is slow on purpose

SPA_POLICY = RefreshTokenPolicy(
    rotation_type="rotating",
    expiration_type="expiring",
    leeway=10,
    token_lifetime=2_592_000,
    infinite_token_lifetime=False,
    idle_token_lifetime=1_296_000,
    infinite_idle_token_lifetime=False,
)


@dataclass(frozen=True)
class Tenant:
    spa: Client
    web: Client  # confidential, code + refresh (non-rotating) + password-realm
    m2m: Client  # confidential, client_credentials only
    api: ResourceServer
    user: User
    blocked: User


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.keystead
    return state


_TEMPLATE: tuple[Path, Tenant] | None = None


def prepared_database(tmp_path: Path) -> tuple[str, Tenant]:
    """A migrated, seeded database with keys and the tenant below, copied from a template made
    once per test process: creating keys and migrating for every test would triple its time."""
    global _TEMPLATE
    if _TEMPLATE is None:
        directory = Path(tempfile.mkdtemp(prefix="keystead-token-tests-"))
        atexit.register(shutil.rmtree, directory, True)
        template = directory / "template.db"
        _TEMPLATE = (template, asyncio.run(_prepare(template, directory)))
    template, tenant = _TEMPLATE
    shutil.copyfile(template, tmp_path / "keystead.db")
    return f"sqlite:///{tmp_path / 'keystead.db'}", tenant


async def _prepare(path: Path, directory: Path) -> Tenant:
    settings = Settings(
        issuer=ISSUER, database_url=f"sqlite:///{path}", data_dir=str(directory)
    ).with_defaults()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        return await make_tenant(app)


async def _admin(sql: str) -> None:
    engine = create_async_engine(async_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


@asynccontextmanager
async def postgres_app(
    tmp_path: Path, clock: Clock | None = None
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient, Tenant]]:
    """The app on a scratch PostgreSQL database (dropped after), its client and the tenant."""
    need_service("PostgreSQL", bool(POSTGRES_URL), "set KEYSTEAD_TEST_POSTGRES_URL")
    name = f"keystead_token_{secrets.token_hex(6)}"
    await _admin(f'CREATE DATABASE "{name}"')
    try:
        url = async_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        settings = Settings(issuer=ISSUER, database_url=url, data_dir=str(tmp_path))
        app = create_app(settings.with_defaults(), clock=clock)
        async with app.router.lifespan_context(app):
            tenant = await make_tenant(app)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=ISSUER[:-1]) as http:
                yield app, http, tenant
    finally:
        await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def make_tenant(app: Starlette) -> Tenant:
    state = state_of(app)
    async with state.transaction() as session:
        repos = state.repos(session)
        api = await repos.resource_servers.create(
            ResourceServer(
                id="",
                identifier=API,
                name="Example",
                scopes=(Permission("read:messages"), Permission("write:messages")),
                allow_offline_access=True,
                token_lifetime=3600,
            )
        )
        await repos.resource_servers.create(
            ResourceServer(
                id="",
                identifier=HS_API,
                name="HS",
                scopes=(Permission("read:hs"),),
                signing_alg="HS256",
                signing_secret=HS_SECRET,
                allow_offline_access=True,
            )
        )
        await repos.resource_servers.create(
            ResourceServer(
                id="",
                identifier=RBAC_API,
                name="RBAC",
                scopes=(Permission("read:orders"), Permission("write:orders")),
                enforce_policies=True,
                token_dialect="access_token_authz",
            )
        )
        spa = await repos.clients.create(
            Client(
                client_id="SpaClient00000000000000000000001",
                name="SPA",
                app_type="spa",
                token_endpoint_auth_method="none",
                callbacks=(CALLBACK,),
                web_origins=(SPA_ORIGIN,),
                grant_types=("authorization_code", "refresh_token"),
                refresh_token=SPA_POLICY,
                jwt_lifetime_in_seconds=600,
            )
        )
        web = await repos.clients.create(
            Client(
                client_id="WebClient00000000000000000000001",
                name="Web",
                client_secret="web-secret: with % and +",
                callbacks=("https://web.example/cb",),
                grant_types=(
                    "authorization_code",
                    "refresh_token",
                    "password",
                    "http://auth0.com/oauth/grant-type/password-realm",
                ),
            )
        )
        m2m = await repos.clients.create(
            Client(
                client_id="M2mClient00000000000000000000001",
                name="M2M",
                app_type="non_interactive",
                client_secret="m2m-secret",
                grant_types=("client_credentials",),
            )
        )
        await repos.client_grants.create(
            ClientGrant(id="", client_id=m2m.client_id, audience=API, scope=("read:messages",))
        )
        await repos.client_grants.create(
            ClientGrant(
                id="", client_id=m2m.client_id, audience=MGMT, scope=("read:users", "create:users")
            )
        )
        user = await repos.users.create(
            User(
                user_id="auth0|0123456789abcdef01234567",
                email="alice@example.com",
                email_verified=True,
                name="Alice",
                nickname="alice",
                password_hash=_PASSWORD_HASH,
            ),
            connection=DATABASE_CONNECTION,
        )
        blocked = await repos.users.create(
            User(
                user_id="auth0|0123456789abcdef0123bbbb",
                email="blocked@example.com",
                blocked=True,
                password_hash=_PASSWORD_HASH,
            ),
            connection=DATABASE_CONNECTION,
        )
    return Tenant(spa, web, m2m, api, user, blocked)


async def make_code(
    app: Starlette,
    *,
    client: Client,
    user: User,
    scope: str = "openid profile email offline_access",
    audience: str | None = None,
    redirect_uri: str | None = CALLBACK,
    verifier: str | None = VERIFIER,
    nonce: str | None = "n-0S6_WzA2Mj",
    family_id: str | None = None,
) -> str:
    """A code as /authorize stores it."""
    state = state_of(app)
    async with state.transaction() as session:
        return await SqlCodes(session, state.clock).create(
            AuthorizationCode(
                client_id=client.client_id,
                user_id=user.user_id,
                redirect_uri=redirect_uri,
                scope=tuple(scope.split()),
                audience=audience,
                nonce=nonce,
                code_challenge=s256_challenge(verifier) if verifier else None,
                code_challenge_method="S256" if verifier else None,
                auth_time=int(state.clock.now()) - 5,
                sid="sid-1",
                family_id=family_id or new_family_id(),
                expires_at=code_expiry(state.clock.now()),
            )
        )


async def spa_login(
    http: httpx.AsyncClient,
    app: Starlette,
    tenant: Tenant,
    scope: str = "openid profile email offline_access",
    audience: str | None = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An SPA login: /authorize's code (stored directly), then spa-js's exchange of it."""
    code = await make_code(app, client=tenant.spa, user=tenant.user, scope=scope, audience=audience)
    r = await http.post(
        "/oauth/token",
        data={
            "client_id": tenant.spa.client_id,
            "code_verifier": VERIFIER,
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": CALLBACK,
        },
        headers=headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def basic(client_id: str, secret: str) -> dict[str, str]:
    """RFC 6749 §2.3.1: each part form-urlencoded, then base64."""
    from urllib.parse import quote_plus

    raw = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode()}


def claims(app: Starlette, token: str, audience: str | list[str] | None = None) -> dict[str, Any]:
    """Verify one of our RS256 tokens with the app's own key ring and return its claims."""
    state = state_of(app)
    verified: dict[str, Any] = state.keys.verify(
        token, issuer=ISSUER, audience=audience, now=state.clock.now()
    )
    return verified


def header(token: str) -> dict[str, Any]:
    return dict(jwt.get_unverified_header(token))


def assert_token_headers(response: httpx.Response) -> None:
    assert response.headers["content-type"] == "application/json"
    for name, value in NO_STORE.items():
        assert response.headers[name] == value


async def logs(app: Starlette, *types: str) -> list[LogEvent]:
    state = state_of(app)
    async with state.transaction() as session:
        events = await state.logs(session).list(limit=None, newest_first=False)
    return [e for e in events if not types or e.type in types]


async def live_refresh_tokens(app: Starlette) -> int:
    state = state_of(app)
    async with state.transaction() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(RefreshTokenRow)
            .where(RefreshTokenRow.revoked_at.is_(None))
        )
    return int(count or 0)


# --- fixtures the token-endpoint test modules share -------------------------------------------


def prepared_tenant_fixtures() -> tuple[Any, Any, Any]:
    """`prepared`, `database_url` and `tenant` fixtures: a copy of the prepared token-test
    database per test, and its Tenant. Bind them at module level:

        prepared, database_url, tenant = prepared_tenant_fixtures()
    """

    @pytest.fixture
    def prepared(tmp_path: Path) -> tuple[str, Tenant]:
        return prepared_database(tmp_path)

    @pytest.fixture
    def database_url(prepared: tuple[str, Tenant]) -> str:
        return prepared[0]

    @pytest.fixture
    def tenant(prepared: tuple[str, Tenant]) -> Tenant:
        return prepared[1]

    return prepared, database_url, tenant


def clocked_app_fixture() -> Any:
    """An `app` fixture on the test's FixedClock (conftest's runs on the system clock)."""

    @pytest.fixture
    async def app(settings: Settings, clock: FixedClock) -> AsyncIterator[Starlette]:
        application = create_app(settings, clock=clock)
        async with application.router.lifespan_context(application):
            yield application

    return app
