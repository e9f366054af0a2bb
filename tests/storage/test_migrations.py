"""Migrations: an empty database upgrades to head, models = migrations, concurrent starts."""

from __future__ import annotations

import asyncio

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

import keystead.storage.migrate as migrate_module
from keystead.storage.db import Base, create_engine
from keystead.storage.migrate import (
    alembic_config,
    check,
    differences,
    upgrade,
    upgrade_to_head,
)


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert revision is not None
    return revision


async def _tables_and_version(url: str) -> tuple[set[str], str]:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
            version = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        return tables, str(version)
    finally:
        await engine.dispose()


def test_empty_database_upgrades_to_head(fresh_url: str) -> None:
    upgrade(fresh_url)
    tables, version = asyncio.run(_tables_and_version(fresh_url))
    assert tables == set(Base.metadata.tables) | {"alembic_version"}
    assert version == head()


def test_upgrading_twice_changes_nothing(fresh_url: str) -> None:
    upgrade(fresh_url)
    upgrade(fresh_url)
    assert asyncio.run(_tables_and_version(fresh_url))[1] == head()


def test_models_and_migrations_agree(fresh_url: str) -> None:
    assert check(fresh_url) == []


async def test_check_reports_a_schema_that_drifted(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        await upgrade_to_head(engine)
        async with engine.begin() as conn:
            await conn.execute(text("DROP INDEX ix_users_username"))
        assert await differences(engine) == ["add_index users.ix_users_username"]
    finally:
        await engine.dispose()


async def test_processes_starting_together_migrate_once(fresh_url: str) -> None:
    engines = [create_engine(fresh_url) for _ in range(3)]
    try:
        await asyncio.gather(*(upgrade_to_head(engine) for engine in engines))
        async with engines[0].connect() as conn:
            versions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).all()
        assert versions == [(head(),)]
    finally:
        for engine in engines:
            await engine.dispose()


async def test_foreign_keys_are_enforced_again_after_migrating(fresh_url: str) -> None:
    # SQLite migrations turn foreign keys off; the pool must not hand that connection out.
    engine = create_engine(fresh_url)
    try:
        await upgrade_to_head(engine)
        async with engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            insert = text(
                "INSERT INTO user_roles (user_id, role_id) VALUES ('auth0|nobody', 'rol_none')"
            )
            with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
                await conn.execute(insert)
    finally:
        await engine.dispose()


async def test_a_failed_upgrade_changes_nothing(
    fresh_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_upgrade = migrate_module._upgrade_on

    def upgrade_then_fail(connection: Connection, revision: str = "head") -> None:
        real_upgrade(connection, revision)
        raise RuntimeError("disk full")

    engine = create_engine(fresh_url)
    try:
        monkeypatch.setattr(migrate_module, "_upgrade_on", upgrade_then_fail)
        with pytest.raises(RuntimeError, match="disk full"):
            await upgrade_to_head(engine)
        async with engine.connect() as conn:
            assert await conn.run_sync(lambda c: inspect(c).get_table_names()) == []
            if conn.dialect.name == "sqlite":
                assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
    finally:
        await engine.dispose()
