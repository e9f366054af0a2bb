"""Connections repository: lookups, create, update, delete (with the connection's users)."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from keystead.core.ports import Connection
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.repositories import Repositories

DB = DATABASE_CONNECTION

GOOGLE = Connection(
    id="",
    name="google-oauth2",
    strategy="google-oauth2",
    options={"client_id": "abc", "scope": ["email", "profile"]},
    extra={"display_name": "Google", "enabled_clients": ["c1"]},
)


async def test_create_and_read_back(repos: Repositories) -> None:
    created = await repos.connections.create(GOOGLE)
    assert re.fullmatch(r"con_[A-Za-z0-9]{16}", created.id)
    assert created == replace(GOOGLE, id=created.id, created_at=created.created_at)
    assert created.created_at > 0
    assert await repos.connections.get(created.id) == created
    assert await repos.connections.by_name("google-oauth2") == created
    assert await repos.connections.by_name("nope") is None


async def test_list_filters(repos: Repositories) -> None:
    google = await repos.connections.create(GOOGLE)
    names = [c.name for c in await repos.connections.list()]
    assert sorted(names) == sorted([DATABASE_CONNECTION, "google-oauth2"])
    assert await repos.connections.list(strategies=["google-oauth2", "github"]) == [google]
    assert await repos.connections.list(name="google-oauth2") == [google]
    assert len(await repos.connections.list(limit=1)) == 1


async def test_update_changes_options_not_name(repos: Repositories) -> None:
    created = await repos.connections.create(GOOGLE)
    changed = replace(created, name="renamed", options={"client_id": "xyz"}, extra={})
    updated = await repos.connections.update(changed)
    assert updated == replace(changed, name="google-oauth2")


async def test_duplicate_name_is_already_exists(repos: Repositories) -> None:
    with pytest.raises(AlreadyExists):
        await repos.connections.create(replace(GOOGLE, name=DATABASE_CONNECTION))


async def test_missing_connection(repos: Repositories) -> None:
    with pytest.raises(RecordNotFound):
        await repos.connections.get("con_0000000000000000")
    with pytest.raises(RecordNotFound):
        await repos.connections.update(replace(GOOGLE, id="con_0000000000000000"))
    with pytest.raises(RecordNotFound):
        await repos.connections.delete("con_0000000000000000")


async def test_delete_removes_the_connections_users(repos: Repositories) -> None:
    created = await repos.connections.create(GOOGLE)
    social = await repos.users.create(
        User(user_id="google-oauth2|123", email="a@x.test"), connection="google-oauth2"
    )
    local = await repos.users.create(
        User(user_id="", email="a@x.test"), connection=DATABASE_CONNECTION
    )
    await repos.connections.delete(created.id)
    with pytest.raises(RecordNotFound):
        await repos.connections.get(created.id)
    assert await repos.users.find(social.user_id) is None
    assert await repos.users.find(local.user_id) == local
