"""ClientGrants repository: CRUD, one grant per (client, audience), filters."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from keystead.core.apis import ClientGrant, ResourceServer
from keystead.core.clients import Client
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.repositories import Repositories
from tests.conftest import ISSUER

MANAGEMENT = ISSUER + "api/v2/"


async def _client(repos: Repositories, name: str = "m2m") -> str:
    return (await repos.clients.create(Client(client_id="", name=name))).client_id


async def test_create_get_and_lookup(repos: Repositories) -> None:
    client_id = await _client(repos)
    grant = await repos.client_grants.create(
        ClientGrant(id="", client_id=client_id, audience=MANAGEMENT, scope=("read:users",))
    )
    assert re.fullmatch(r"cgr_[A-Za-z0-9]{16}", grant.id)
    assert await repos.client_grants.get(grant.id) == grant
    assert await repos.client_grants.for_client_audience(client_id, MANAGEMENT) == grant
    assert await repos.client_grants.for_client_audience(client_id, "urn:other") is None


async def test_update_changes_scopes_only(repos: Repositories) -> None:
    client_id = await _client(repos)
    grant = await repos.client_grants.create(
        ClientGrant(id="", client_id=client_id, audience=MANAGEMENT)
    )
    changed = replace(
        grant, scope=("read:users", "update:users"), allow_all_scopes=True, audience="urn:x"
    )
    updated = await repos.client_grants.update(changed)
    assert updated == replace(changed, audience=MANAGEMENT)
    assert await repos.client_grants.get(grant.id) == updated


async def test_list_filters(repos: Repositories) -> None:
    api = await repos.resource_servers.create(
        ResourceServer(id="", identifier="urn:api", name="api")
    )
    a, b = await _client(repos, "a"), await _client(repos, "b")
    made = [
        await repos.client_grants.create(ClientGrant(id="", client_id=a, audience=MANAGEMENT)),
        await repos.client_grants.create(ClientGrant(id="", client_id=a, audience=api.identifier)),
        await repos.client_grants.create(
            ClientGrant(id="", client_id=b, audience=api.identifier, subject_type="user")
        ),
    ]
    everything = await repos.client_grants.list()
    assert sorted(everything, key=lambda g: g.id) == sorted(made, key=lambda g: g.id)
    assert {g.audience for g in await repos.client_grants.list(client_id=a)} == {
        MANAGEMENT,
        "urn:api",
    }
    assert {g.client_id for g in await repos.client_grants.list(audience="urn:api")} == {a, b}
    assert await repos.client_grants.list(subject_type="user") == [made[2]]
    assert len(await repos.client_grants.list(limit=2)) == 2


async def test_second_grant_for_the_pair_is_already_exists(repos: Repositories) -> None:
    client_id = await _client(repos)
    await repos.client_grants.create(ClientGrant(id="", client_id=client_id, audience=MANAGEMENT))
    with pytest.raises(AlreadyExists):
        await repos.client_grants.create(
            ClientGrant(id="", client_id=client_id, audience=MANAGEMENT, scope=("read:users",))
        )


async def test_unknown_client_or_audience_is_not_found(repos: Repositories) -> None:
    client_id = await _client(repos)
    with pytest.raises(RecordNotFound, match="client"):
        await repos.client_grants.create(ClientGrant(id="", client_id="nope", audience=MANAGEMENT))
    with pytest.raises(RecordNotFound, match="resource server"):
        await repos.client_grants.create(
            ClientGrant(id="", client_id=client_id, audience="urn:none")
        )


async def test_missing_and_delete(repos: Repositories) -> None:
    client_id = await _client(repos)
    grant = await repos.client_grants.create(
        ClientGrant(id="", client_id=client_id, audience=MANAGEMENT)
    )
    await repos.client_grants.delete(grant.id)
    with pytest.raises(RecordNotFound):
        await repos.client_grants.get(grant.id)
    with pytest.raises(RecordNotFound):
        await repos.client_grants.update(grant)
    with pytest.raises(RecordNotFound):
        await repos.client_grants.delete(grant.id)


async def test_deleting_the_client_removes_its_grants(repos: Repositories) -> None:
    client_id = await _client(repos)
    grant = await repos.client_grants.create(
        ClientGrant(id="", client_id=client_id, audience=MANAGEMENT)
    )
    await repos.clients.delete(client_id)
    assert await repos.client_grants.list(client_id=client_id) == []
    with pytest.raises(RecordNotFound):
        await repos.client_grants.get(grant.id)
