"""Migration 0009: log event codes up to 64 characters, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from keystead.storage.db import create_engine
from tests.storage.test_migration_session_amr import _to


async def _type_length(engine: AsyncEngine) -> int | None:
    async with engine.connect() as conn:
        columns = await conn.run_sync(lambda c: inspect(c).get_columns("logs"))
    return next(col["type"].length for col in columns if col["name"] == "type")


async def test_the_log_type_column_widens_and_narrows_back(fresh_url: str) -> None:
    engine = create_engine(fresh_url)
    try:
        await _to(engine, "upgrade", "head")
        assert await _type_length(engine) == 64
        await _to(engine, "downgrade", "0008")
        assert await _type_length(engine) == 16
        await _to(engine, "upgrade", "head")
        assert await _type_length(engine) == 64
    finally:
        await engine.dispose()
