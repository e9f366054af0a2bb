"""ResourceServers repository: CRUD, lookups by id or identifier, sealed HS256 secret."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.apis import ClientGrant, Permission, ResourceServer
from keystead.core.clients import Client
from keystead.core.clock import FixedClock
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.models import ResourceServerRow
from keystead.storage.repositories import Repositories
from tests.conftest import ISSUER

API = ResourceServer(
    id="",
    identifier="https://api.example/",
    name="Example API",
    scopes=(Permission("read:things", "Read things"), Permission("write:things")),
    allow_offline_access=True,
    token_lifetime=3_600,
    enforce_policies=True,
    token_dialect="access_token_authz",
)
MANAGEMENT = ISSUER + "api/v2/"


async def test_create_and_read_back(repos: Repositories) -> None:
    created = await repos.resource_servers.create(API)
    assert re.fullmatch(r"[0-9a-f]{24}", created.id)
    assert created == replace(API, id=created.id)
    assert await repos.resource_servers.by_id(created.id) == created
    assert await repos.resource_servers.by_identifier(API.identifier) == created
    assert await repos.resource_servers.get(created.id) == created
    assert await repos.resource_servers.get(API.identifier) == created


async def test_signing_secret_is_sealed(repos: Repositories, session: AsyncSession) -> None:
    hs = replace(API, signing_alg="HS256", signing_secret="a-signing-secret-0123456789")
    created = await repos.resource_servers.create(hs)
    assert created.signing_secret == "a-signing-secret-0123456789"
    row = await session.get(ResourceServerRow, created.id)
    assert row is not None and "a-signing-secret" not in str(row.config)
    assert (await repos.resource_servers.get(created.id)).signing_secret == hs.signing_secret


async def test_list_is_ordered_and_filters_by_identifier(
    repos: Repositories, clock: FixedClock
) -> None:
    clock.advance(1)
    a = await repos.resource_servers.create(replace(API, identifier="urn:a"))
    clock.advance(1)
    b = await repos.resource_servers.create(replace(API, identifier="urn:b"))
    listed = [api.identifier for api in await repos.resource_servers.list()]
    assert listed == [MANAGEMENT, "urn:a", "urn:b"]
    chosen = await repos.resource_servers.list(identifiers=["urn:b", "urn:zzz"])
    assert chosen == [b]
    assert await repos.resource_servers.list(offset=1, limit=1) == [a]


async def test_update_keeps_identifier_and_unknown_fields(
    repos: Repositories, session: AsyncSession
) -> None:
    created = await repos.resource_servers.create(API)
    row = await session.get(ResourceServerRow, created.id)
    assert row is not None
    row.config = {**row.config, "consent_policy": "transactional-authorization-with-mfa"}
    changed = replace(created, identifier="urn:other", name="Renamed", scopes=())
    updated = await repos.resource_servers.update(changed)
    assert updated == replace(created, name="Renamed", scopes=())
    assert row.config["consent_policy"] == "transactional-authorization-with-mfa"


async def test_duplicate_identifier_is_already_exists(repos: Repositories) -> None:
    await repos.resource_servers.create(API)
    with pytest.raises(AlreadyExists):
        await repos.resource_servers.create(replace(API, name="again"))
    with pytest.raises(AlreadyExists):
        await repos.resource_servers.create(replace(API, identifier=MANAGEMENT))


async def test_missing_api(repos: Repositories) -> None:
    assert await repos.resource_servers.by_id("0" * 24) is None
    assert await repos.resource_servers.by_identifier("urn:none") is None
    with pytest.raises(RecordNotFound):
        await repos.resource_servers.get("urn:none")
    with pytest.raises(RecordNotFound):
        await repos.resource_servers.update(replace(API, id="0" * 24))
    with pytest.raises(RecordNotFound):
        await repos.resource_servers.delete("0" * 24)


async def test_delete_removes_its_client_grants(repos: Repositories) -> None:
    api = await repos.resource_servers.create(API)
    client = await repos.clients.create(Client(client_id="", name="m2m"))
    grant = await repos.client_grants.create(
        ClientGrant(id="", client_id=client.client_id, audience=api.identifier)
    )
    await repos.resource_servers.delete(api.id)
    assert await repos.resource_servers.by_id(api.id) is None
    with pytest.raises(RecordNotFound):
        await repos.client_grants.get(grant.id)
