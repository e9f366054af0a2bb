"""storage/login_records: targeted login writes and the linked-identity lookup, on SQLite and
PostgreSQL."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core import linking
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.storage.login_records import SqlLoginRecords
from keystead.storage.models import UserRow
from keystead.storage.repositories import Repositories

DB = DATABASE_CONNECTION
OTHER_DB = "other-db"


async def _linked(repos: Repositories, secondary_email: str = "Sec@Example.com") -> User:
    primary = await repos.users.create(
        User(user_id="", email="primary@example.com", password_hash="primary-hash"),
        connection=DB,
    )
    secondary = await repos.users.create(
        User(user_id="", email=secondary_email, name="Sec", password_hash="secondary-hash"),
        connection=OTHER_DB,
    )
    await repos.users.delete(secondary.user_id)
    return await repos.users.update(linking.link(primary, secondary))


async def test_record_login_changes_only_its_columns(
    repos: Repositories, session: AsyncSession
) -> None:
    user = await repos.users.create(
        User(user_id="", email="a@example.com", user_metadata={"k": 1}, logins_count=4),
        connection=DB,
    )
    records = SqlLoginRecords(session)
    await records.record_login(user.user_id, at=1234.5, ip="203.0.113.7")
    await records.set_password_hash(user.user_id, "new-hash")
    session.expunge_all()
    after = await repos.users.get(user.user_id)
    assert (after.logins_count, after.last_login, after.last_ip) == (5, 1234.5, "203.0.113.7")
    assert after.password_hash == "new-hash" and after.user_metadata == {"k": 1}


async def test_a_linked_identity_keeps_its_hash_out_of_profile_data(
    repos: Repositories, session: AsyncSession
) -> None:
    primary = await _linked(repos)
    stored = await session.scalar(
        select(UserRow.linked_identities).where(UserRow.user_id == primary.user_id)
    )
    assert stored is not None
    (item,) = stored
    assert item["password_hash"] == "secondary-hash"
    assert "password_hash" not in item["profileData"]
    assert primary.identities[1].password_hash == "secondary-hash"


async def test_linked_login_finds_the_primary(repos: Repositories, session: AsyncSession) -> None:
    primary = await _linked(repos)
    records = SqlLoginRecords(session)
    found = await records.linked_login(OTHER_DB, " SEC@example.com")
    assert found is not None
    user, identity = found
    assert user.user_id == primary.user_id
    assert identity.password_hash == "secondary-hash" and identity.connection == OTHER_DB
    assert await records.linked_login(DB, "sec@example.com") is None  # another connection
    assert await records.linked_login(OTHER_DB, "se@example.com") is None
    assert await records.linked_login(OTHER_DB, "primary@example.com") is None


async def test_an_identity_hash_is_replaced_in_place(
    repos: Repositories, session: AsyncSession
) -> None:
    primary = await _linked(repos)
    primary = await repos.users.update(replace(primary, user_metadata={"kept": True}))
    records = SqlLoginRecords(session)
    await records.set_identity_password_hash(primary.user_id, primary.identities[1], "upgraded")
    session.expunge_all()
    after = await repos.users.get(primary.user_id)
    assert after.identities[1].password_hash == "upgraded"
    assert after.identities[1].profile_data == primary.identities[1].profile_data
    assert after.password_hash == "primary-hash" and after.user_metadata == {"kept": True}
