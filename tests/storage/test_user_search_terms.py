"""User search terms (storage/user_search_terms.py) follow every write to a user, in the same
transaction, and migration 0004 derives them for the users a database already has."""

from __future__ import annotations

from dataclasses import replace

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.users import DATABASE_CONNECTION, Identity, User
from keystead.storage.db import create_engine
from keystead.storage.migrate import alembic_config, locked_connection
from keystead.storage.models import UserRow, UserSearchTermRow
from keystead.storage.repositories import Repositories
from keystead.storage.user_search import search_users

DB = DATABASE_CONNECTION
JANE = User(
    user_id="auth0|jane",
    email="jane@Example.com",
    app_metadata={"plan": "pro", "roles": ["admin"]},
    user_metadata={"lang": "fr"},
)
GITHUB = Identity(connection="github", provider="github", user_id="987", is_social=True)


async def terms(session: AsyncSession, user_id: str = "auth0|jane") -> set[tuple[str, str]]:
    rows = await session.execute(
        select(UserSearchTermRow.path, UserSearchTermRow.value).where(
            UserSearchTermRow.user_id == user_id
        )
    )
    return {(p, v) for p, v in rows}


async def found(session: AsyncSession, q: str) -> list[str]:
    users, _ = await search_users(session, q, sort=None, offset=0, limit=10, include_total=False)
    return [u.user_id for u in users]


async def test_create_writes_the_terms(repos: Repositories, session: AsyncSession) -> None:
    await repos.users.create(JANE, connection=DB)
    assert await terms(session) == {
        ("email.domain", "sexample.com"),
        ("app_metadata.plan", "spro"),
        ("app_metadata.roles", "sadmin"),
        ("user_metadata.lang", "sfr"),
        ("identities.connection", f"s{DB}"),
        ("identities.provider", "sauth0"),
        ("identities.user_id", "sjane"),
    }


async def test_update_replaces_them(repos: Repositories, session: AsyncSession) -> None:
    user = await repos.users.create(JANE, connection=DB)
    changed = replace(user, email="jane@other.org", app_metadata={"plan": "free"},
                      identities=(*user.identities, GITHUB))  # fmt: skip
    await repos.users.update(changed)
    assert await found(session, "app_metadata.plan:pro") == []
    assert await found(session, "app_metadata.plan:free") == ["auth0|jane"]
    assert await found(session, "email.domain:example.com") == []
    assert await found(session, "email.domain:other.org") == ["auth0|jane"]
    assert await found(session, "identities.user_id:987") == ["auth0|jane"]
    assert await found(session, "identities.isSocial:true") == ["auth0|jane"]
    assert ("app_metadata.roles", "sadmin") not in await terms(session)


async def test_a_login_leaves_them_alone(repos: Repositories, session: AsyncSession) -> None:
    user = await repos.users.create(JANE, connection=DB)
    before = await terms(session)
    await repos.users.update(replace(user, logins_count=4, last_login=1.0))
    assert await terms(session) == before


async def test_delete_cascades(repos: Repositories, session: AsyncSession) -> None:
    await repos.users.create(JANE, connection=DB)
    await repos.users.delete("auth0|jane")
    assert await terms(session) == set()


async def test_a_row_written_without_the_repository_is_kept_too(session: AsyncSession) -> None:
    """Tenant apply writes users rows itself: the flush hooks cover it."""
    row = UserRow(user_id="auth0|t1", connection=DB, email="t@tenant.example",
                  app_metadata={"plan": "pro"}, created_at=1.0, updated_at=1.0)  # fmt: skip
    session.add(row)
    await session.flush()
    assert await found(session, "app_metadata.plan:pro AND email.domain:tenant.example") == [
        "auth0|t1"
    ]
    row.app_metadata = {"plan": "team"}
    await session.flush()
    assert await found(session, "app_metadata.plan:pro") == []


def _upgrade(connection: Connection, revision: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


@pytest.mark.parametrize("users", [0, 3])
async def test_migration_derives_the_terms_of_existing_users(fresh_url: str, users: int) -> None:
    engine = create_engine(fresh_url)
    try:
        async with locked_connection(engine) as conn:
            await conn.run_sync(_upgrade, "0003")
        async with engine.begin() as conn:
            for i in range(users):
                await conn.execute(
                    UserRow.__table__.insert().values(
                        user_id=f"google-oauth2|{i}", connection="google-oauth2",
                        email=f"u{i}@example.com", email_verified=False, phone_verified=False,
                        user_metadata={}, app_metadata={"tier": i}, linked_identities=[],
                        blocked=False, created_at=1.0, updated_at=1.0, logins_count=0,
                    )
                )  # fmt: skip
        async with locked_connection(engine) as conn:
            await conn.run_sync(_upgrade, "head")
        async with AsyncSession(engine) as session:
            assert await terms(session, "google-oauth2|2") == (
                {
                    ("email.domain", "sexample.com"),
                    ("app_metadata.tier", "nc000000000000000"),
                    ("identities.connection", "sgoogle-oauth2"),
                    ("identities.provider", "sgoogle-oauth2"),
                    ("identities.user_id", "s2"),
                }
                if users
                else set()
            )
            count = await session.scalar(text("SELECT count(*) FROM user_search_terms"))
            assert count == 5 * users
    finally:
        await engine.dispose()
