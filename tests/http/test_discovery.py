"""Discovery, JWKS and probes over HTTP; the signing keys behind them (created, rotated, sealed)."""

from __future__ import annotations

import asyncio
import logging
import threading
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine
from starlette.applications import Starlette
from starlette.routing import Route

from keystead.app import create_app
from keystead.core.clock import FixedClock
from keystead.deps import AppState
from keystead.errors import ConfigError, InvalidToken
from keystead.oauth import discovery
from keystead.settings import Settings
from keystead.storage.db import async_url, create_engine, session_factory
from keystead.storage.keys import (
    REFRESH_INTERVAL,
    UNKNOWN_KID_RECHECK,
    keyring,
    list_keys,
    load_keyring,
    rotate_keys,
    verify_token,
)
from keystead.storage.migrate import upgrade_to_head
from keystead.storage.models import SigningKeyRow
from tests.conftest import ISSUER, POSTGRES_URL, need_service

T = ISSUER.rstrip("/")

EXPECTED_DISCOVERY = {
    "issuer": "http://keystead.test/",
    "authorization_endpoint": "http://keystead.test/authorize",
    "token_endpoint": "http://keystead.test/oauth/token",
    "userinfo_endpoint": "http://keystead.test/userinfo",
    "jwks_uri": "http://keystead.test/.well-known/jwks.json",
    "revocation_endpoint": "http://keystead.test/oauth/revoke",
    "end_session_endpoint": "http://keystead.test/oidc/logout",
    "scopes_supported": [
        "openid",
        "profile",
        "offline_access",
        "name",
        "given_name",
        "family_name",
        "nickname",
        "email",
        "email_verified",
        "picture",
        "created_at",
        "identities",
        "phone",
        "address",
    ],
    "response_types_supported": ["code"],
    "code_challenge_methods_supported": ["S256"],
    "response_modes_supported": ["query", "fragment", "form_post"],
    "subject_types_supported": ["public"],
    "id_token_signing_alg_values_supported": ["RS256"],
    "token_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ],
    "token_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256", "RS256", "RS384"],
    "revocation_endpoint_auth_methods_supported": [
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    ],
    "revocation_endpoint_auth_signing_alg_values_supported": ["ES256", "PS256", "RS256", "RS384"],
    "claims_supported": [
        "aud",
        "auth_time",
        "created_at",
        "email",
        "email_verified",
        "exp",
        "family_name",
        "given_name",
        "iat",
        "identities",
        "iss",
        "name",
        "nickname",
        "phone_number",
        "picture",
        "sub",
    ],
    "request_uri_parameter_supported": False,
    "request_parameter_supported": False,
}


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.keystead
    return state


# --- discovery -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"]
)
async def test_discovery_document(http: httpx.AsyncClient, path: str) -> None:
    r = await http.get(path)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.json() == EXPECTED_DISCOVERY
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"] == "public, max-age=3600"


async def test_discovery_follows_the_configured_issuer(tmp_path: Path) -> None:
    settings = Settings(
        issuer="https://login.example.com:8443/tenant",  # normalised to end with "/"
        database_url=f"sqlite:///{tmp_path / 'k.db'}",
    ).with_defaults()
    async with running(settings) as (client, _state):
        body = (await client.get("/.well-known/openid-configuration")).json()
    assert body["issuer"] == "https://login.example.com:8443/tenant/"
    assert body["jwks_uri"] == "https://login.example.com:8443/tenant/.well-known/jwks.json"
    assert body["token_endpoint"] == "https://login.example.com:8443/tenant/oauth/token"


# --- JWKS ----------------------------------------------------------------------------------------


async def test_jwks_serves_current_and_next_keys(http: httpx.AsyncClient, app: Starlette) -> None:
    discovered = (await http.get("/.well-known/openid-configuration")).json()
    r = await http.get(discovered["jwks_uri"].removeprefix(T))
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json"
    assert r.headers["access-control-allow-origin"] == "*"
    assert r.headers["cache-control"] == "public, max-age=300"
    keys = r.json()["keys"]
    ring = state_of(app).keys
    assert [k["kid"] for k in keys] == [ring.current.kid, ring.next.kid]
    for key in keys:
        assert {key["kty"], key["use"], key["alg"], key["e"]} == {"RSA", "sig", "RS256", "AQAB"}
        assert key["x5c"] and key["x5t"] and key["n"]
    # A token the server signs names a published kid and verifies with the published key alone.
    token = ring.sign({"iss": ISSUER, "sub": "auth0|1", "exp": 2_000_000_000})
    header = jwt.get_unverified_header(token)
    published = next(k for k in keys if k["kid"] == header["kid"])
    public = jwt.algorithms.RSAAlgorithm.from_jwk(published)
    assert isinstance(public, RSAPublicKey)
    assert jwt.decode(token, public, algorithms=["RS256"], issuer=ISSUER)["sub"] == "auth0|1"


async def test_preflight_on_well_known_documents(app: Starlette) -> None:
    # Routes here allow OPTIONS; oauth/routes.py must list it too for the real app.
    mini = Starlette(
        routes=[
            Route("/d", discovery.openid_configuration, methods=["GET", "OPTIONS"]),
            Route("/j", discovery.jwks, methods=["GET", "OPTIONS"]),
        ]
    )
    mini.state.keystead = state_of(app)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=mini), base_url=T) as client:
        for path in ("/d", "/j"):
            r = await client.options(
                path,
                headers={
                    "Origin": "https://spa.example.com",
                    "Access-Control-Request-Method": "GET",
                    "Access-Control-Request-Headers": "auth0-client",
                },
            )
            assert r.status_code == 204
            assert r.headers["access-control-allow-origin"] == "*"
            assert "GET" in r.headers["access-control-allow-methods"]
            assert r.headers["access-control-allow-headers"] == "auth0-client"
        r = await client.options(
            "/j", headers={"Access-Control-Request-Headers": "x\r\nSet-Cookie: a=b"}
        )
        assert "access-control-allow-headers" not in r.headers


# --- probes --------------------------------------------------------------------------------------


async def test_healthz(http: httpx.AsyncClient) -> None:
    r = await http.get("/healthz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})
    assert r.headers["cache-control"] == "no-store"


async def test_readyz(http: httpx.AsyncClient) -> None:
    r = await http.get("/readyz")
    assert (r.status_code, r.json()) == (200, {"status": "ok"})


async def test_readyz_when_the_database_is_down(
    http: httpx.AsyncClient, app: Starlette, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = state_of(app)
    working = state.engine
    state.engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'dir' / 'k.db'}")
    try:
        r = await http.get("/readyz")
    finally:
        await state.engine.dispose()
        state.engine = working
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable"}
    assert r.headers["retry-after"] == "5"
    assert "readiness check failed" in caplog.text
    assert (await http.get("/healthz")).status_code == 200  # liveness is not readiness


# --- key storage ---------------------------------------------------------------------------------


class running:
    """An app with its lifespan run and a client, on the given settings and clock."""

    def __init__(self, settings: Settings, clock: FixedClock | None = None) -> None:
        self.app = create_app(settings, clock=clock or FixedClock())
        self.lifespan = self.app.router.lifespan_context(self.app)

    async def __aenter__(self) -> tuple[httpx.AsyncClient, AppState]:
        await self.lifespan.__aenter__()
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=T)
        return self.client, state_of(self.app)

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()
        await self.lifespan.__aexit__(None, None, None)


async def jwks_kids(client: httpx.AsyncClient) -> list[str]:
    return [k["kid"] for k in (await client.get("/.well-known/jwks.json")).json()["keys"]]


async def rows(state: AppState) -> dict[str, str]:
    async with state.sessions() as session:
        found = (await session.execute(select(SigningKeyRow.kid, SigningKeyRow.state))).all()
    return {kid: key_state for kid, key_state in found}


async def test_keys_survive_a_restart(settings: Settings) -> None:
    async with running(settings) as (client, _state):
        first = await jwks_kids(client)
    async with running(settings) as (client, state):
        assert await jwks_kids(client) == first
        assert sorted((await rows(state)).values()) == ["current", "next"]


async def test_unencrypted_keys_are_announced(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="keystead"):
        async with running(settings) as (_client, state):
            listed = await list_keys(state)
    assert "signing keys are stored unencrypted; set KEYSTEAD_SECRET_KEY" in caplog.text
    assert {k["encrypted"] for k in listed} == {False}


async def test_rotation_through_the_jwks(settings: Settings) -> None:
    clock = FixedClock()
    async with running(settings, clock) as (client, state):
        current, upcoming = await jwks_kids(client)
        old_token = state.keys.sign({"iss": ISSUER, "sub": "auth0|1", "exp": 2_000_000_000})

        ring = await rotate_keys(state)
        assert ring.next is not None
        new_next = ring.next.kid
        assert await jwks_kids(client) == [upcoming, new_next, current]
        assert state.keys.verify(old_token, issuer=ISSUER, now=clock.now())
        assert jwt.get_unverified_header(state.keys.sign({"iss": ISSUER}))["kid"] == upcoming

        # A second rotation would retire `current`, which may still have signed live tokens.
        with pytest.raises(ConfigError, match=f"signing key {current} may still have signed"):
            await rotate_keys(state)
        clock.advance(settings.access_token_ttl + REFRESH_INTERVAL)
        ring = await rotate_keys(state)
        assert ring.next is not None
        assert await jwks_kids(client) == [new_next, ring.next.kid, upcoming]
        assert (await rows(state))[current] == "retired"
        listed = await list_keys(state)
        assert [k["state"] for k in listed].count("retired") == 1
        assert not any("private" in field for k in listed for field in k)
        # Forced: the way to drop a compromised key at once.
        await rotate_keys(state, force=True)
        assert (await rows(state))[upcoming] == "retired"


async def test_other_processes_pick_up_a_rotation(settings: Settings) -> None:
    clock = FixedClock()
    async with (
        running(settings, clock) as (client, state),
        running(settings, clock) as (_other_client, other),
    ):
        before = await jwks_kids(client)
        await rotate_keys(other)
        assert await jwks_kids(client) == before  # until the next check
        clock.advance(REFRESH_INTERVAL)
        after = await jwks_kids(client)
        assert after == [before[1], other.keys.next.kid, before[0]]
        assert (await keyring(state)).current.kid == before[1]


async def test_an_unknown_kid_triggers_one_bounded_reload(settings: Settings) -> None:
    clock = FixedClock()
    claims = {"iss": ISSUER, "sub": "auth0|1", "aud": "api", "exp": clock.now() + 600}
    async with (
        running(settings, clock) as (_client, state),
        running(settings, clock) as (_other_client, other),
    ):
        await rotate_keys(other)
        await rotate_keys(other, force=True)  # a current key this process has never seen
        token = other.keys.sign(claims)
        with pytest.raises(InvalidToken, match="unknown key"):
            await verify_token(state, token)  # checked a moment ago: no reload yet
        clock.advance(UNKNOWN_KID_RECHECK)
        assert (await verify_token(state, token, audience="api"))["sub"] == "auth0|1"

        await rotate_keys(other, force=True)  # `next` of the reload: known
        assert await verify_token(state, other.keys.sign(claims))
        await rotate_keys(other, force=True)  # unknown again
        newer = other.keys.sign(claims)
        with pytest.raises(InvalidToken, match="unknown key"):
            await verify_token(state, newer)  # just reloaded: made-up kids can't force another
        with pytest.raises(InvalidToken, match="invalid audience"):
            await verify_token(state, token, audience="other")


async def test_sealed_keys(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    sealed = settings.merged(secret_key="correct horse battery staple")
    with caplog.at_level(logging.WARNING, logger="keystead"):
        async with running(sealed) as (client, state):
            kids = await jwks_kids(client)
            async with state.sessions() as session:
                stored = (await session.scalars(select(SigningKeyRow))).all()
    assert "unencrypted" not in caplog.text
    assert all(row.encrypted and b"PRIVATE KEY" not in row.private_pem for row in stored)
    async with running(sealed) as (client, _state):
        assert await jwks_kids(client) == kids

    with pytest.raises(
        ConfigError, match=r"^KEYSTEAD_SECRET_KEY does not decrypt the stored keys$"
    ):
        async with running(settings.merged(secret_key="wrong")):
            pass
    with pytest.raises(ConfigError, match="set KEYSTEAD_SECRET_KEY"):
        async with running(settings):
            pass


# --- two processes starting at once, on SQLite and PostgreSQL ----------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
async def shared_database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    need_service("PostgreSQL", bool(POSTGRES_URL), "set KEYSTEAD_TEST_POSTGRES_URL")
    name = f"keystead_keys_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(async_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield async_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        async with admin.connect() as conn:
            await conn.exec_driver_sql(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.dispose()


async def test_simultaneous_first_starts_create_one_key_pair(shared_database: str) -> None:
    settings = Settings(issuer=ISSUER, database_url=shared_database).with_defaults()
    engine = create_engine(shared_database)
    await upgrade_to_head(engine)
    await engine.dispose()

    # Threads, each with its own event loop and engine: the closest thing to separate processes
    # that still runs in seconds. Without the lock every one of them creates its own pair.
    barrier = threading.Barrier(4)
    current: list[str] = []
    failures: list[BaseException] = []

    def start() -> None:
        async def main() -> None:
            engine = create_engine(shared_database)
            state = AppState(settings=settings, engine=engine, sessions=session_factory(engine))
            barrier.wait()
            try:
                current.append((await load_keyring(state)).current.kid)
            finally:
                await engine.dispose()

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported below, in the test's thread
            failures.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(current) == 4 and len(set(current)) == 1

    engine = create_engine(shared_database)
    state = AppState(settings=settings, engine=engine, sessions=session_factory(engine))
    try:
        assert sorted((await rows(state)).values()) == ["current", "next"]
    finally:
        await engine.dispose()
