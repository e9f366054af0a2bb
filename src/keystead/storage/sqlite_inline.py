"""SQLite for the async engine without a thread per connection.

SQLAlchemy's aiosqlite dialect runs every DB-API call (cursor, execute, fetch, close, commit) on
the connection's own thread and waits for it: about five thread hand-overs per statement, which
cost far more than the statement (an indexed read takes 20 to 40 µs in SQLite itself). This
driver keeps aiosqlite's interface, so SQLAlchemy's adapter works unchanged, but makes each call
on the event loop's thread, where it is quick:

    call with busy_timeout 0      → done (nearly always: WAL readers never wait)
    SQLITE_BUSY (a writer holds   → the same call again after an asyncio sleep of 0.2 ms,
    the lock elsewhere)             doubling to 5 ms, for up to BUSY_TIMEOUT_MS; the loop
                                    serves other requests meanwhile

A statement refused with SQLITE_BUSY did not run, so repeating it is safe. A long statement (a
search that scans) holds the event loop while it runs; PostgreSQL is the database for large
tenants. Use it with the URL scheme `sqlite+keystead` (storage/db.py does).
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
import weakref
from collections.abc import Callable, Generator, Iterable
from types import SimpleNamespace
from typing import Any, TypeVar

from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi, SQLiteDialect_aiosqlite
from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")

BUSY_TIMEOUT_MS = 5000  # how long a call waits for another process's write lock
RETRY_FIRST_S = 0.0002  # then doubling, up to
RETRY_MAX_S = 0.005

# What SQLAlchemy's adapter reads off the driver module.
DatabaseError = sqlite3.DatabaseError
Error = sqlite3.Error
IntegrityError = sqlite3.IntegrityError
NotSupportedError = sqlite3.NotSupportedError
OperationalError = sqlite3.OperationalError
ProgrammingError = sqlite3.ProgrammingError
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info


def _busy(error: sqlite3.OperationalError) -> bool:
    # SQLITE_BUSY only: SQLITE_BUSY_SNAPSHOT (517) cannot succeed by waiting.
    return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_BUSY


class Connection:
    """aiosqlite.Connection's surface, calls made in place."""

    def __init__(self, database: str, **kwargs: Any) -> None:
        self._database = database
        self._kwargs = kwargs
        self._conn: sqlite3.Connection | None = None
        self._thread = SimpleNamespace(daemon=True)  # SQLAlchemy sets .daemon on it
        self._tx = _Immediate()  # SQLAlchemy's isolation_level setter queues a call here

    def __await__(self) -> Generator[Any, None, Connection]:
        return self._open().__await__()

    async def _open(self) -> Connection:
        options = {**self._kwargs, "check_same_thread": False}  # waits run on a worker thread
        self._conn = sqlite3.connect(self._database, **options)
        self._conn.execute("PRAGMA busy_timeout=0")
        return self

    @property
    def _connection(self) -> sqlite3.Connection | None:
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._live.isolation_level

    @property
    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ValueError("no active connection")
        return self._conn

    async def call(self, function: Callable[..., T], *args: Any) -> T:
        try:
            return function(*args)
        except sqlite3.OperationalError as error:
            if not _busy(error):
                raise
        # Another process holds the write lock, for well under a millisecond as a rule: try
        # again after short sleeps on the loop (SQLite's own busy handler sleeps 1, 2, 5, 10 …
        # ms in a thread, which costs throughput under contention).
        delay, waited = RETRY_FIRST_S, 0.0
        while True:
            await asyncio.sleep(delay)
            waited += delay
            try:
                return function(*args)
            except sqlite3.OperationalError as error:
                if not _busy(error) or waited >= BUSY_TIMEOUT_MS / 1000:
                    raise
            delay = min(delay * 2, RETRY_MAX_S)

    def cursor(self) -> Cursor:
        return Cursor(self, self._live.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        cursor = self.cursor()
        await cursor.execute(sql, parameters)
        return cursor

    async def fetchone(self, sql: str, parameters: Any = ()) -> Any:
        """One statement and its first row (storage/user_reads.py's direct read)."""
        return await self.call(lambda: self._live.execute(sql, parameters).fetchone())

    async def run(self, sql: str, parameters: Any = ()) -> tuple[int, list[Any]]:
        """One statement: rows changed and rows returned (storage/driver_sql.py)."""

        def once() -> tuple[int, list[Any]]:
            cursor = self._live.execute(sql, parameters)
            try:
                return cursor.rowcount, cursor.fetchall()
            finally:
                cursor.close()

        return await self.call(once)

    async def commit(self) -> None:
        await self.call(self._live.commit)

    async def rollback(self) -> None:
        await self.call(self._live.rollback)

    async def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._live.create_function(*args, **kwargs)


class Cursor:
    def __init__(self, connection: Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> Cursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Any = ()) -> Cursor:
        await self._connection.call(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Any]) -> Cursor:
        await self._connection.call(self._cursor.executemany, sql, list(parameters))
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class _Immediate:
    """Stands in for aiosqlite's request queue: runs the queued call at once."""

    def put_nowait(self, item: tuple[asyncio.Future[Any], Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as error:  # handed to the awaiting adapter, which raises it
            future.set_exception(error)


def connect(database: str, **kwargs: Any) -> Connection:
    return Connection(database, **kwargs)


_READERS: weakref.WeakKeyDictionary[Any, Connection] = weakref.WeakKeyDictionary()


async def reader(engine: AsyncEngine) -> Connection | None:
    """This process's query-only connection to the engine's database file, for single-statement
    reads outside any transaction: no pool checkout, no reset on return (storage/user_reads.py).
    None for an in-memory database, which another connection would not see."""
    found = _READERS.get(engine.sync_engine)
    if found is None:
        database = engine.url.database
        if not database or database == ":memory:" or engine.url.query.get("mode") == "memory":
            return None
        found = await Connection(database, isolation_level=None)  # autocommit: no snapshot kept
        found._live.execute("PRAGMA query_only=1")
        _READERS[engine.sync_engine] = found
    return found


class InlineSQLiteDialect(SQLiteDialect_aiosqlite):
    driver = "keystead"
    supports_statement_cache = True

    @classmethod
    def import_dbapi(cls) -> AsyncAdapt_aiosqlite_dbapi:
        return AsyncAdapt_aiosqlite_dbapi(sys.modules[__name__], sqlite3)


registry.register("sqlite.keystead", __name__, "InlineSQLiteDialect")
