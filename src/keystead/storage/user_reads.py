"""The user read on every `/userinfo`, `GET /api/v2/users/{id}` and token exchange, on the
driver itself.

The ORM path (`SqlUsers.find` in `AppState.transaction()`) costs three to four times the
statement, a Core SELECT about twice (it builds an execution context, a result and its rows for
one row). This read asks the driver directly and turns the values into Python with the same
column types SQLAlchemy would use:

    SQLite       sqlite3 in place (storage/sqlite_inline.py): outside a transaction on the
                 worker's query-only connection, inside one on the session's; values through
                 the types' result processors (booleans, JSON text)
    PostgreSQL   asyncpg's fetchrow on a pooled connection (outside a transaction: no BEGIN,
                 no ROLLBACK) or on the session's; JSONB arrives as text and is parsed

Measured per read (CPU, one process): SQLite 170 → 58 µs on a pooled connection, PostgreSQL
310 → 190 µs; the worker's own SQLite connection then took `/userinfo` from 160 to 85 µs
(docs/performance.md, step 10).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import JSON, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.util.concurrency import greenlet_spawn

from keystead.core.users import User
from keystead.storage import sqlite_inline
from keystead.storage.driver_sql import session_driver
from keystead.storage.models import UserRow
from keystead.storage.repositories.users import to_user

_USERS = cast(Table, UserRow.__table__)
_COLUMNS = [column.name for column in _USERS.c]

Convert = Callable[[Any], Any] | None


@dataclass(frozen=True)
class _Plan:
    sql: str
    converters: Sequence[Convert]


_PLANS: dict[str, _Plan] = {}


def _json_text(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _plan(dialect: Dialect) -> _Plan:
    plan = _PLANS.get(dialect.name)
    if plan is None:
        placeholder = "?" if dialect.name == "sqlite" else "$1"
        columns = ", ".join(f'"{name}"' for name in _COLUMNS)
        sql = f"SELECT {columns} FROM users WHERE user_id = {placeholder}"
        converters: list[Convert] = []
        for column in _USERS.c:
            impl = column.type.dialect_impl(dialect)
            if dialect.name == "sqlite":
                converters.append(impl.result_processor(dialect, None))
            else:  # asyncpg decodes every type but JSON, which SQLAlchemy leaves as text
                converters.append(_json_text if isinstance(impl, JSON) else None)
        plan = _PLANS[dialect.name] = _Plan(sql, converters)
    return plan


async def find_user(engine: AsyncEngine, user_id: str) -> User | None:
    """The user, read on a connection of its own (outside any transaction)."""
    if engine.dialect.name == "sqlite" and (own := await sqlite_inline.reader(engine)) is not None:
        return await _fetch(own, engine.dialect, user_id)
    fairy = await engine.raw_connection()
    try:
        return await _fetch(fairy.driver_connection, engine.dialect, user_id)
    finally:
        await greenlet_spawn(fairy.close)  # back to the pool (its reset may need the loop)


async def find_user_in(session: AsyncSession, user_id: str) -> User | None:
    """The user, read on the session's own connection (inside its transaction): a request
    that holds a connection must not wait for a second one from a pool others may have emptied."""
    conn, driver = await session_driver(session)
    return await _fetch(driver, conn.dialect, user_id)


async def _fetch(driver: Any, dialect: Dialect, user_id: str) -> User | None:
    # storage/db.create_engine makes only these two: sqlite_inline on SQLite, asyncpg else.
    plan = _plan(dialect)
    if isinstance(driver, sqlite_inline.Connection):
        row = await driver.fetchone(plan.sql, (user_id,))
    else:
        row = await driver.fetchrow(plan.sql, user_id)
    if row is None:
        return None
    values = {
        name: convert(value) if convert is not None and value is not None else value
        for name, convert, value in zip(_COLUMNS, plan.converters, row, strict=True)
    }
    # `to_user` reads the row's column attributes, which is all a namespace needs to offer;
    # the documents were parsed just now, so they need no defensive copy.
    return to_user(cast(Any, SimpleNamespace(**values)), fresh=True)
