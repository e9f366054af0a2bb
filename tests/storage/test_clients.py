"""Clients repository: CRUD, config mapping, secrets hashed and sealed, verify_secret."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clients import AppType, Client, RefreshTokenPolicy
from keystead.core.clock import FixedClock
from keystead.core.ports import ProtectedRecord
from keystead.core.sealing import Sealer
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.models import ClientRow
from keystead.storage.repositories import Repositories, SqlClients

SPA = Client(
    client_id="",
    name="My SPA",
    app_type="spa",
    token_endpoint_auth_method="none",
    callbacks=("https://app.example/cb",),
    allowed_logout_urls=("https://app.example/",),
    web_origins=("https://app.example",),
    allowed_origins=("https://app.example",),
    grant_types=("authorization_code", "refresh_token"),
    jwt_lifetime_in_seconds=600,
    refresh_token=RefreshTokenPolicy(rotation_type="rotating", expiration_type="expiring"),
    client_metadata={"team": "web"},
    extra={"oidc_conformant": True, "jwt_configuration": {"alg": "RS256"}},
)
M2M = Client(client_id="", name="backend", app_type="non_interactive")


async def test_create_generates_an_id_and_round_trips_every_field(repos: Repositories) -> None:
    created = await repos.clients.create(SPA)
    assert re.fullmatch(r"[A-Za-z0-9]{32}", created.client_id)
    assert created.client_secret is None  # public: no secret
    fetched = await repos.clients.get(created.client_id)
    assert fetched == replace(
        SPA,
        client_id=created.client_id,
        extra={
            "oidc_conformant": True,
            "jwt_configuration": {"alg": "RS256", "lifetime_in_seconds": 600},
        },
    )


async def test_confidential_client_gets_a_secret_shown_once(repos: Repositories) -> None:
    created = await repos.clients.create(M2M)
    assert created.client_secret is not None and len(created.client_secret) == 64
    assert (await repos.clients.get(created.client_id)).client_secret is None
    revealed = await repos.clients.get(created.client_id, reveal_secret=True)
    assert revealed.client_secret == created.client_secret


async def test_secret_is_stored_hashed_and_sealed(
    repos: Repositories, session: AsyncSession
) -> None:
    created = await repos.clients.create(replace(M2M, client_secret="s3cret-value-of-some-length"))
    row = await session.get(ClientRow, created.client_id)
    assert row is not None and row.secret_stored is not None
    assert b"s3cret" not in row.secret_stored
    assert b"s3cret" not in (row.secret_digest or b"")
    assert row.secret_encrypted


async def test_without_a_secret_key_the_secret_is_stored_in_clear_and_says_so(
    session: AsyncSession, clock: FixedClock
) -> None:
    clients = SqlClients(session, clock, Sealer())
    created = await clients.create(replace(M2M, client_secret="clear-secret"))
    row = await session.get(ClientRow, created.client_id)
    assert row is not None and not row.secret_encrypted
    assert (
        await clients.get(created.client_id, reveal_secret=True)
    ).client_secret == "clear-secret"


@pytest.mark.parametrize(
    ("client_id", "secret", "ok"),
    [
        ("known", "right-secret", True),
        ("known", "wrong-secret", False),
        ("known", "", False),
        ("known", "right-secret ", False),
        ("unknown", "right-secret", False),
        ("public", "anything", False),
    ],
)
async def test_verify_secret(repos: Repositories, client_id: str, secret: str, ok: bool) -> None:
    await repos.clients.create(replace(M2M, client_id="known", client_secret="right-secret"))
    await repos.clients.create(replace(SPA, client_id="public"))
    assert await repos.clients.verify_secret(client_id, secret) is ok


async def test_rotate_secret(repos: Repositories) -> None:
    created = await repos.clients.create(replace(M2M, client_secret="old"))
    rotated = await repos.clients.rotate_secret(created.client_id)
    assert rotated.client_secret not in (None, "old")
    assert not await repos.clients.verify_secret(created.client_id, "old")
    assert await repos.clients.verify_secret(created.client_id, rotated.client_secret or "")
    fixed = await repos.clients.rotate_secret(created.client_id, "chosen")
    assert fixed.client_secret == "chosen"
    assert await repos.clients.verify_secret(created.client_id, "chosen")


async def test_update_replaces_fields_and_keeps_the_secret(
    repos: Repositories, clock: FixedClock
) -> None:
    created = await repos.clients.create(replace(M2M, client_secret="keep-me"))
    clock.advance(10)
    changed = replace(created, name="renamed", callbacks=("https://x/cb",), client_secret=None)
    updated = await repos.clients.update(changed)
    assert updated.name == "renamed" and updated.callbacks == ("https://x/cb",)
    assert await repos.clients.verify_secret(created.client_id, "keep-me")


async def test_list_filters_and_pages(repos: Repositories, clock: FixedClock) -> None:
    ids = []
    app_types: list[AppType] = ["spa", "non_interactive", "regular_web", "spa"]
    for i, app_type in enumerate(app_types):
        clock.advance(1)
        client = replace(M2M, name=f"c{i}", app_type=app_type, is_first_party=i != 2)
        ids.append((await repos.clients.create(client)).client_id)
    assert [c.client_id for c in await repos.clients.list()] == ids
    assert [c.client_id for c in await repos.clients.list(app_types=["spa"])] == [ids[0], ids[3]]
    third_party = await repos.clients.list(is_first_party=False)
    assert [c.client_id for c in third_party] == [ids[2]]
    assert [c.client_id for c in await repos.clients.list(offset=1, limit=2)] == ids[1:3]


async def test_duplicate_id_is_already_exists(repos: Repositories) -> None:
    await repos.clients.create(replace(M2M, client_id="same"))
    with pytest.raises(AlreadyExists):
        await repos.clients.create(replace(SPA, client_id="same"))


async def test_missing_client(repos: Repositories) -> None:
    assert await repos.clients.find("nope") is None
    with pytest.raises(RecordNotFound):
        await repos.clients.get("nope")
    with pytest.raises(RecordNotFound):
        await repos.clients.update(replace(M2M, client_id="nope"))
    with pytest.raises(RecordNotFound):
        await repos.clients.rotate_secret("nope")
    with pytest.raises(RecordNotFound):
        await repos.clients.delete("nope")


async def test_delete(repos: Repositories) -> None:
    created = await repos.clients.create(M2M)
    await repos.clients.delete(created.client_id)
    assert await repos.clients.find(created.client_id) is None
    assert not await repos.clients.verify_secret(created.client_id, created.client_secret or "")


async def test_system_client_cannot_be_deleted(repos: Repositories, session: AsyncSession) -> None:
    created = await repos.clients.create(M2M)
    row = await session.get(ClientRow, created.client_id)
    assert row is not None
    row.is_system = True
    with pytest.raises(ProtectedRecord):
        await repos.clients.delete(created.client_id)
