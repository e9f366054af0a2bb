"""Schema migrations: upgrade to head at start or from the CLI, and check models = migrations.

Alembic is configured here, in code (no alembic.ini): scripts live in `storage/migrations/`.
Every upgrade runs inside one transaction that holds a database-wide lock, so several
processes starting at once migrate the database exactly once:

    PostgreSQL   pg_advisory_xact_lock(MIGRATION_LOCK), released at commit
    SQLite       BEGIN IMMEDIATE (the write lock; others wait on busy_timeout)

New migration (developers): `python -c "from keystead.storage.migrate import revision;
revision('sqlite:////tmp/scratch.db', 'add_thing', rev_id='0002')"`, then read and edit it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import keystead.storage.models  # noqa: F401  (fills Base.metadata)
from keystead.errors import ConfigError
from keystead.storage.db import Base, create_engine

MIGRATIONS = Path(__file__).with_name("migrations")
# Advisory lock key shared by every Keystead process on one PostgreSQL database ("KSTD").
MIGRATION_LOCK = 0x4B535444

T = TypeVar("T")


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return cfg


@asynccontextmanager
async def locked_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection inside a transaction holding the migration lock; committed on success."""
    async with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        if sqlite:
            # Batch migrations drop and recreate tables: with foreign keys enforced, dropping a
            # parent would cascade-delete its children. The pragma only works outside a
            # transaction, hence before BEGIN.
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        elif conn.dialect.name == "postgresql":
            await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK})
        try:
            yield conn
            if sqlite:
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise ConfigError(f"migration left dangling foreign keys: {broken[:5]}")
            await conn.commit()
        finally:
            if sqlite:
                await _foreign_keys_back_on(conn)


async def _foreign_keys_back_on(conn: AsyncConnection) -> None:
    try:
        await conn.rollback()  # no-op after a commit
        await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        await conn.commit()
    except Exception:
        # Never hand the pool a connection without foreign keys (a new one gets the pragmas).
        await conn.invalidate()
        raise


def _upgrade_on(connection: Connection, revision: str = "head") -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def upgrade_to_head(engine: AsyncEngine) -> None:
    """Bring the database to the newest schema; safe to call from several processes at once."""
    async with locked_connection(engine) as conn:
        await conn.run_sync(_upgrade_on)


def _differences(connection: Connection) -> list[str]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return [_describe(diff) for diff in _flatten(compare_metadata(context, Base.metadata))]


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    # Column modifications come grouped in lists; everything else is one tuple.
    out: list[tuple[Any, ...]] = []
    for diff in diffs:
        out.extend(diff if isinstance(diff, list) else [diff])
    return out


def _describe(diff: tuple[Any, ...]) -> str:
    op, *rest = diff
    parts = []
    for item in rest:
        name = getattr(item, "name", None)
        table = getattr(getattr(item, "table", None), "name", None)
        if name is not None:
            parts.append(f"{table}.{name}" if table and table != name else str(name))
        elif item is not None and not isinstance(item, dict):
            parts.append(repr(item))
    return f"{op} " + " ".join(parts)


async def _with_engine(database_url: str, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(database_url)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


def upgrade(database_url: str) -> None:
    """`keystead db upgrade`: migrate the database at `database_url` to head."""
    asyncio.run(_with_engine(database_url, upgrade_to_head))


async def differences(engine: AsyncEngine) -> list[str]:
    """Upgrade, then list where the models and the migrated schema disagree."""
    await upgrade_to_head(engine)
    async with engine.connect() as conn:
        return await conn.run_sync(_differences)


def check(database_url: str) -> list[str]:
    """`make db-check`: upgrade, then compare models with migrations; [] means they agree."""
    return asyncio.run(_with_engine(database_url, differences))


def revision(database_url: str, message: str, *, rev_id: str) -> None:
    """Autogenerate a migration from the models against `database_url` upgraded to head."""

    async def run(engine: AsyncEngine) -> None:
        await upgrade_to_head(engine)
        async with engine.connect() as conn:
            await conn.run_sync(_autogenerate, message, rev_id)

    asyncio.run(_with_engine(database_url, run))


def _autogenerate(connection: Connection, message: str, rev_id: str) -> None:
    cfg = alembic_config()
    cfg.attributes["connection"] = connection
    command.revision(cfg, message, autogenerate=True, rev_id=rev_id)
