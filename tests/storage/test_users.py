"""Users repository: CRUD, emails lower-cased, identities, count."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from keystead.core.clock import FixedClock
from keystead.core.users import DATABASE_CONNECTION, Identity, User
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.repositories import Repositories

DB = DATABASE_CONNECTION
ALICE = User(
    user_id="",
    email="Alice@Example.COM",
    email_verified=True,
    username="alice",
    name="Alice Liddell",
    nickname="alice",
    given_name="Alice",
    family_name="Liddell",
    picture="https://img.example/a.png",
    user_metadata={"theme": "dark", "nested": {"k": [1]}},
    app_metadata={"plan": "pro"},
    password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    logins_count=3,
    last_login=1_600_000_000.5,
    last_ip="203.0.113.9",
)


async def test_create_and_read_back(repos: Repositories, clock: FixedClock) -> None:
    created = await repos.users.create(ALICE, connection=DB)
    assert re.fullmatch(r"auth0\|[0-9a-f]{24}", created.user_id)
    assert created.email == "alice@example.com"
    assert created.created_at == created.updated_at == clock.now()
    assert created.identities == (
        Identity(connection=DB, provider="auth0", user_id=created.user_id[6:]),
    )
    expected = replace(
        ALICE,
        user_id=created.user_id,
        email="alice@example.com",
        identities=created.identities,
        created_at=clock.now(),
        updated_at=clock.now(),
    )
    assert created == expected
    assert await repos.users.get(created.user_id) == expected


async def test_by_email_ignores_case_and_is_per_connection(repos: Repositories) -> None:
    created = await repos.users.create(ALICE, connection=DB)
    assert await repos.users.by_email(DB, "ALICE@example.com") == created
    assert await repos.users.by_email("other-db", "alice@example.com") is None
    assert await repos.users.by_email(DB, "bob@example.com") is None


async def test_same_email_is_already_exists_in_one_connection_only(repos: Repositories) -> None:
    await repos.users.create(ALICE, connection=DB)
    with pytest.raises(AlreadyExists):
        await repos.users.create(replace(ALICE, email="ALICE@example.com"), connection=DB)
    other = await repos.users.create(ALICE, connection="other-db")
    assert other.identities[0].connection == "other-db"


async def test_same_id_is_already_exists(repos: Repositories) -> None:
    await repos.users.create(replace(ALICE, user_id="auth0|" + "a" * 24), connection=DB)
    with pytest.raises(AlreadyExists):
        await repos.users.create(
            replace(ALICE, user_id="auth0|" + "a" * 24, email="b@x.test"), connection=DB
        )


async def test_linked_identities_round_trip(repos: Repositories) -> None:
    created = await repos.users.create(ALICE, connection=DB)
    linked = Identity(
        connection="google-oauth2",
        provider="google-oauth2",
        user_id="10350",
        is_social=True,
        profile_data={"email": "alice@gmail.test"},
    )
    updated = await repos.users.update(replace(created, identities=(*created.identities, linked)))
    assert updated.identities == (*created.identities, linked)
    assert (await repos.users.get(created.user_id)).identities == updated.identities


async def test_social_primary_identity(repos: Repositories) -> None:
    created = await repos.users.create(User(user_id="google-oauth2|42"), connection="google-oauth2")
    assert created.identities == (
        Identity(
            connection="google-oauth2", provider="google-oauth2", user_id="42", is_social=True
        ),
    )


async def test_update_replaces_fields_and_stamps_updated_at(
    repos: Repositories, clock: FixedClock
) -> None:
    created = await repos.users.create(ALICE, connection=DB)
    clock.advance(60)
    changed = replace(created, email="New@Example.com", name=None, user_metadata={}, blocked=True)
    updated = await repos.users.update(changed)
    assert updated == replace(changed, email="new@example.com", updated_at=clock.now())
    assert updated.created_at == created.created_at


async def test_update_to_a_taken_email_is_already_exists(repos: Repositories) -> None:
    await repos.users.create(ALICE, connection=DB)
    bob = await repos.users.create(User(user_id="", email="bob@example.com"), connection=DB)
    with pytest.raises(AlreadyExists):
        await repos.users.update(replace(bob, email="alice@example.com"))


async def test_missing_user(repos: Repositories) -> None:
    assert await repos.users.find("auth0|nobody") is None
    with pytest.raises(RecordNotFound):
        await repos.users.get("auth0|nobody")
    with pytest.raises(RecordNotFound):
        await repos.users.update(User(user_id="auth0|nobody"))
    with pytest.raises(RecordNotFound):
        await repos.users.delete("auth0|nobody")


async def test_delete_and_count(repos: Repositories) -> None:
    assert await repos.users.count() == 0
    a = await repos.users.create(ALICE, connection=DB)
    b = await repos.users.create(User(user_id="", email="b@x.test"), connection=DB)
    assert await repos.users.count() == 2
    await repos.users.delete(a.user_id)
    assert await repos.users.find(a.user_id) is None
    assert await repos.users.count() == 1
    assert await repos.users.many([a.user_id, b.user_id]) == [b]
