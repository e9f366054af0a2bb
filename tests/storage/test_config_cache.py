"""The per-process configuration copy: a change is seen at once by the process that made it,
within `max_age` by any other, and a session that wrote reads its own uncommitted changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from keystead.core.apis import ClientGrant, ResourceServer
from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.sealing import Sealer
from keystead.storage.config_cache import CACHE_KEY, ConfigCache, cached_config, read_version
from keystead.storage.db import create_engine, session_factory
from keystead.storage.migrate import upgrade_to_head
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.config_snapshot import snapshot_loader
from keystead.storage.seed import seed
from tests.conftest import ISSUER

MAX_AGE = 5.0


class Ticker:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Process:
    """One server process: its own engine, session factory and cache."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: ConfigCache
    clock: FixedClock
    sealer: Sealer

    def repos(self, session: AsyncSession) -> Repositories:
        return Repositories.over(session, self.clock, self.sealer)


@pytest.fixture
def ticker() -> Ticker:
    return Ticker()


@pytest.fixture
async def database(fresh_url: str, clock: FixedClock) -> str:
    engine = create_engine(fresh_url)
    await upgrade_to_head(engine)
    async with session_factory(engine)() as session, session.begin():
        await seed(session, ISSUER, clock)
    await engine.dispose()
    return fresh_url


async def _process(url: str, clock: FixedClock, ticker: Ticker) -> Process:
    sealer = Sealer("config-cache-tests")
    cache = ConfigCache(snapshot_loader(sealer), max_age=MAX_AGE, monotonic=ticker)
    engine = create_engine(url)
    return Process(engine, session_factory(engine, **{CACHE_KEY: cache}), cache, clock, sealer)


@pytest.fixture
async def processes(
    database: str, clock: FixedClock, ticker: Ticker
) -> AsyncIterator[tuple[Process, Process]]:
    one = await _process(database, clock, ticker)
    two = await _process(database, clock, ticker)
    yield one, two
    await one.engine.dispose()
    await two.engine.dispose()


async def _find(process: Process, client_id: str) -> Client | None:
    async with process.sessions() as session, session.begin():
        return await process.repos(session).clients.find(client_id)


async def _create_client(process: Process, name: str) -> Client:
    async with process.sessions() as session, session.begin():
        return await process.repos(session).clients.create(Client(client_id="", name=name))


async def test_writer_sees_its_change_at_once_others_within_max_age(
    processes: tuple[Process, Process], ticker: Ticker
) -> None:
    one, two = processes
    created = await _create_client(one, "first")
    assert await _find(one, created.client_id) is not None
    assert await _find(two, created.client_id) is not None  # loaded now: first read

    renamed = replace(created, name="renamed", client_secret=None)
    async with one.sessions() as session, session.begin():
        await one.repos(session).clients.update(renamed)

    found = await _find(one, created.client_id)
    assert found is not None and found.name == "renamed"  # the writer: at once
    stale = await _find(two, created.client_id)
    assert stale is not None and stale.name == "first"  # the other: its copy is still young
    ticker.now += MAX_AGE
    fresh = await _find(two, created.client_id)
    assert fresh is not None and fresh.name == "renamed"


async def test_every_configuration_kind_moves_the_version(
    processes: tuple[Process, Process],
) -> None:
    one, _ = processes

    async def version() -> int:
        async with one.sessions() as session:
            return await read_version(session)

    before = await version()
    client = await _create_client(one, "m2m")
    async with one.sessions() as session, session.begin():
        repos = one.repos(session)
        await repos.resource_servers.create(
            ResourceServer(id="", identifier="urn:cache-test", name="cache test")
        )
        await repos.client_grants.create(
            ClientGrant(id="", client_id=client.client_id, audience="urn:cache-test")
        )
        await repos.tenant_settings.set("self_service", {"writable": ["theme"]})
    after = await version()
    assert after >= before + 2  # two committed transactions, each bumped at least once

    async with one.sessions() as session, session.begin():
        repos = one.repos(session)
        assert await repos.resource_servers.by_identifier("urn:cache-test") is not None
        grant = await repos.client_grants.for_client_audience(client.client_id, "urn:cache-test")
        assert grant is not None
        assert await repos.tenant_settings.get("self_service") == {"writable": ["theme"]}
        assert await repos.clients.verify_secret(client.client_id, client.client_secret or "")
        assert not await repos.clients.verify_secret(client.client_id, "wrong")


async def test_a_writing_session_reads_its_own_uncommitted_change(
    processes: tuple[Process, Process],
) -> None:
    one, _ = processes
    async with one.sessions() as session, session.begin():
        repos = one.repos(session)
        assert await cached_config(session) is not None  # served from the copy so far
        client = await repos.clients.create(Client(client_id="", name="in-flight"))
        assert await cached_config(session) is None  # from now on: the database
        assert await repos.clients.find(client.client_id) is not None
        await session.rollback()
    assert await _find(one, client.client_id) is None  # rolled back: in neither place


async def test_deleted_client_is_gone_for_the_writer_at_once(
    processes: tuple[Process, Process], ticker: Ticker
) -> None:
    one, two = processes
    client = await _create_client(one, "doomed")
    assert await _find(two, client.client_id) is not None
    async with one.sessions() as session, session.begin():
        await one.repos(session).clients.delete(client.client_id)
    assert await _find(one, client.client_id) is None
    ticker.now += MAX_AGE
    assert await _find(two, client.client_id) is None


async def test_settings_are_handed_out_as_copies(processes: tuple[Process, Process]) -> None:
    one, _ = processes
    async with one.sessions() as session, session.begin():
        await one.repos(session).tenant_settings.set("branding", {"colors": {"primary": "#000"}})
    async with one.sessions() as session, session.begin():
        value = await one.repos(session).tenant_settings.get("branding")
        assert value is not None
        value["colors"]["primary"] = "#fff"  # a caller's change must not reach the copy
        assert await one.repos(session).tenant_settings.get("branding") == {
            "colors": {"primary": "#000"}
        }
