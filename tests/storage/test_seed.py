"""Seed: the system API and database connection, idempotent, following the issuer."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from keystead.core.apis import ClientGrant
from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.core.ports import ProtectedRecord
from keystead.core.sealing import Sealer
from keystead.core.users import DATABASE_CONNECTION
from keystead.storage.db import create_engine, session_factory
from keystead.storage.migrate import upgrade_to_head
from keystead.storage.models import ConnectionRow, ResourceServerRow
from keystead.storage.repositories import Repositories
from keystead.storage.seed import management_scopes, seed
from tests.conftest import ISSUER

CURRENT_USER_SCOPES = {
    "read:current_user",
    "update:current_user_metadata",
    "create:current_user_metadata",
    "delete:current_user_metadata",
    "update:current_user_identities",
    "create:current_user_device_credentials",
    "delete:current_user_device_credentials",
}


async def _count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_seed_creates_the_management_api(repos: Repositories) -> None:
    api = await repos.resource_servers.by_identifier(ISSUER + "api/v2/")
    assert api is not None
    assert api.name == "Auth0 Management API"
    assert api.is_system
    assert api.signing_alg == "RS256"
    assert {"read:users", "create:client_grants", "read:clients"} <= api.scope_values
    assert api.scope_values >= CURRENT_USER_SCOPES
    assert len(api.scopes) == len(management_scopes()) >= 240


async def test_seed_creates_the_database_connection(repos: Repositories) -> None:
    connection = await repos.connections.by_name(DATABASE_CONNECTION)
    assert connection is not None
    assert connection.strategy == "auth0"
    assert connection.is_system
    assert connection.id.startswith("con_") and len(connection.id) == 20
    assert connection.id[4:].isalnum()


async def test_seed_is_idempotent(session: AsyncSession, repos: Repositories) -> None:
    before = await repos.resource_servers.by_identifier(ISSUER + "api/v2/")
    await seed(session, ISSUER, FixedClock(2_000_000_000.0))
    await seed(session, ISSUER, FixedClock(2_000_000_000.0))
    assert await _count(session, ResourceServerRow) == 1
    assert await _count(session, ConnectionRow) == 1
    assert await repos.resource_servers.by_identifier(ISSUER + "api/v2/") == before


async def test_a_new_issuer_moves_the_system_api_and_its_grants(
    session: AsyncSession, repos: Repositories, clock: FixedClock
) -> None:
    client = await repos.clients.create(Client(client_id="", name="m2m"))
    old = ISSUER + "api/v2/"
    grant = await repos.client_grants.create(
        ClientGrant(id="", client_id=client.client_id, audience=old, scope=("read:users",))
    )
    await seed(session, "https://id.example.com/", clock)
    new = "https://id.example.com/api/v2/"
    assert await repos.resource_servers.by_identifier(old) is None
    api = await repos.resource_servers.by_identifier(new)
    assert api is not None and api.is_system
    assert (await repos.client_grants.get(grant.id)).audience == new
    assert await _count(session, ResourceServerRow) == 1


async def test_system_records_cannot_be_deleted(repos: Repositories) -> None:
    api = await repos.resource_servers.by_identifier(ISSUER + "api/v2/")
    connection = await repos.connections.by_name(DATABASE_CONNECTION)
    assert api is not None and connection is not None
    with pytest.raises(ProtectedRecord):
        await repos.resource_servers.delete(api.id)
    with pytest.raises(ProtectedRecord):
        await repos.resource_servers.update(api)
    with pytest.raises(ProtectedRecord):
        await repos.connections.delete(connection.id)
    assert await repos.resource_servers.by_id(api.id) == api
    assert await repos.connections.get(connection.id) == connection


async def test_processes_seeding_together_create_each_record_once(fresh_url: str) -> None:
    engines = [create_engine(fresh_url) for _ in range(3)]
    try:
        await upgrade_to_head(engines[0])

        async def start(engine: AsyncEngine) -> None:
            async with session_factory(engine)() as session, session.begin():
                await seed(session, ISSUER, FixedClock())

        await asyncio.gather(*(start(engine) for engine in engines))
        async with session_factory(engines[0])() as session:
            assert await _count(session, ResourceServerRow) == 1
            assert await _count(session, ConnectionRow) == 1
            repos = Repositories.over(session, FixedClock(), Sealer())
            assert await repos.resource_servers.by_identifier(ISSUER + "api/v2/") is not None
    finally:
        for engine in engines:
            await engine.dispose()
