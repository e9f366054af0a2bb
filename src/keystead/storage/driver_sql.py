"""Prepared Core statements run on the driver itself, for the token endpoint's few statements.

SQLAlchemy wraps each execution in an execution context, a cursor adapter and a result: about
150 to 250 µs of Python around a statement SQLite answers in 20 µs. The token path runs the same
five statements (module constants built with `bindparam`) all day, so for SQLite they are
compiled once and handed to `sqlite3` on the session's own connection:

    same connection, same transaction   sqlite3 begins its implicit transaction before the first
                                        write, as it does for SQLAlchemy, whose commit or
                                        rollback then covers these statements too
    same types                          parameters and columns pass through the column types'
                                        bind and result processors (JSON, booleans)
    a busy database                     waits as every other call does (storage/sqlite_inline.py)

On any other database (or driver) the statement runs through SQLAlchemy as before; callers see
the same `Outcome` either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Executable
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from keystead.storage import sqlite_inline

Convert = Callable[[Any], Any] | None


@dataclass(frozen=True)
class Outcome:
    """What callers read: rows changed, and the rows (attribute access by column name)."""

    rowcount: int
    rows: Sequence[Any] = field(default_factory=tuple)

    def first(self) -> Any:
        return self.rows[0] if self.rows else None


@dataclass(frozen=True)
class _Prepared:
    sql: str
    names: tuple[str, ...]  # parameter names in placeholder order
    defaults: tuple[Any, ...]  # values written into the statement (`.values(x=None)`)
    binds: tuple[Convert, ...]
    columns: tuple[str, ...]  # result columns (empty for writes)
    results: tuple[Convert, ...]


class Statement:
    """A module-level Core statement with bind parameters, compiled once for SQLite."""

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._sqlite: _Prepared | None = None

    def for_sqlite(self, dialect: Dialect) -> _Prepared:
        if self._sqlite is None:
            self._sqlite = _prepare(self.statement, dialect)
        return self._sqlite


async def execute(
    session: AsyncSession, statement: Statement, params: Mapping[str, Any]
) -> Outcome:
    """Run `statement` with `params` on the session's connection, inside its transaction."""
    conn, driver = await session_driver(session)
    if isinstance(driver, sqlite_inline.Connection):
        prepared = statement.for_sqlite(conn.dialect)
        given = (
            params.get(name, default)
            for name, default in zip(prepared.names, prepared.defaults, strict=True)
        )
        values = tuple(
            convert(value) if convert is not None else value
            for value, convert in zip(given, prepared.binds, strict=True)
        )
        rowcount, raw_rows = await driver.run(prepared.sql, values)
        return Outcome(rowcount, [_row(prepared, raw) for raw in raw_rows])
    result = await conn.execute(statement.statement, dict(params))
    rows = list(result) if result.returns_rows else []
    return Outcome(result.rowcount if not result.returns_rows else len(rows), rows)


async def session_driver(session: AsyncSession) -> tuple[AsyncConnection, Any]:
    """The session's connection and the driver's own connection under it, looked up once per
    transaction (each lookup goes through SQLAlchemy's session machinery)."""
    transaction = session.sync_session.get_transaction()
    found = session.info.get(_DRIVER_KEY)
    if transaction is not None and found is not None and found[0] is transaction:
        return found[1], found[2]
    conn = await session.connection()
    driver = (await conn.get_raw_connection()).driver_connection
    session.info[_DRIVER_KEY] = (session.sync_session.get_transaction(), conn, driver)
    return conn, driver


_DRIVER_KEY = "keystead.driver"  # Session.info: (transaction, connection, driver connection)


def _prepare(statement: Executable, dialect: Dialect) -> _Prepared:
    assert isinstance(statement, ClauseElement)
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
    names = tuple(compiled.positiontup or ())
    defaults = tuple(compiled.binds[name].value for name in names)
    binds = tuple(
        compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names
    )
    selected = getattr(statement, "selected_columns", ())
    columns = tuple(column.name for column in selected)
    results = tuple(
        column.type.dialect_impl(dialect).result_processor(dialect, None) for column in selected
    )
    return _Prepared(compiled.string, names, defaults, binds, columns, results)


def _row(prepared: _Prepared, raw: Sequence[Any]) -> SimpleNamespace:
    return SimpleNamespace(
        **{
            name: convert(value) if convert is not None and value is not None else value
            for name, convert, value in zip(prepared.columns, prepared.results, raw, strict=True)
        }
    )
