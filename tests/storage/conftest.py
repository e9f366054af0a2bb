"""Storage fixtures: every contract test runs on SQLite and on PostgreSQL.

One migrated database per backend and test session (PostgreSQL: a scratch database created
here and dropped after). Each test works inside a transaction that is rolled back, so tests
see only what they create and run fast. `fresh_url` gives an empty database for the tests
that migrate or commit.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from keystead.core.clock import FixedClock
from keystead.core.sealing import Sealer
from keystead.storage.db import async_url, create_engine
from keystead.storage.migrate import upgrade
from keystead.storage.repositories import Repositories
from keystead.storage.seed import seed
from tests.conftest import ISSUER, POSTGRES_URL, need_service

BACKENDS = ["sqlite", "postgresql"]
SECRET_KEY = "storage-tests-secret-key"


def _run_admin(sql: str) -> None:
    # In a thread of its own: callers may be inside a running event loop (async fixtures).
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, _admin(sql)).result()


async def _admin(sql: str) -> None:
    engine = create_async_engine(async_url(POSTGRES_URL), isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()


class Scratch:
    """Creates PostgreSQL scratch databases and drops them all at the end of the session."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def create(self) -> str:
        need_service("PostgreSQL", bool(POSTGRES_URL), "set KEYSTEAD_TEST_POSTGRES_URL")
        name = f"keystead_test_{os.getpid()}_{secrets.token_hex(4)}"
        try:
            _run_admin(f'CREATE DATABASE "{name}"')
        except OSError as exc:  # refused or unreachable
            need_service("PostgreSQL", False, f"{POSTGRES_URL}: {exc}")
        self.names.append(name)
        return str(async_url(POSTGRES_URL).set(database=name).render_as_string(False))

    def drop_all(self) -> None:
        for name in self.names:
            _run_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def scratch() -> Iterator[Scratch]:
    databases = Scratch()
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('storage') / 'migrated.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session")
def migrated_postgresql(scratch: Scratch) -> str:
    url = scratch.create()
    upgrade(url)
    return url


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def migrated_url(backend: str, request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"migrated_{backend}"))


@pytest.fixture
def fresh_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the backend under test."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'fresh.db'}"
    scratch: Scratch = request.getfixturevalue("scratch")
    return scratch.create()


@pytest.fixture
async def session(migrated_url: str) -> AsyncIterator[AsyncSession]:
    """A session inside a transaction that is rolled back after the test."""
    engine = create_engine(migrated_url)
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            # pysqlite would only BEGIN before the first write; make the whole test one
            # transaction so that the rollback below undoes everything.
            await conn.exec_driver_sql("BEGIN")
        else:
            await conn.begin()
        db = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
        try:
            yield db
        finally:
            await db.close()
            await conn.rollback()
    await engine.dispose()


@pytest.fixture
def sealer() -> Sealer:
    return Sealer(SECRET_KEY)


@pytest.fixture
async def repos(session: AsyncSession, clock: FixedClock, sealer: Sealer) -> Repositories:
    await seed(session, ISSUER, clock)
    return Repositories.over(session, clock, sealer)
