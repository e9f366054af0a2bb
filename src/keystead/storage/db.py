"""Database engine, naming convention and URL handling (SQLite by default, PostgreSQL in prod)."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import JSON, MetaData, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase

from keystead.errors import ConfigError
from keystead.storage import sqlite_inline as _sqlite_inline  # noqa: F401  (registers the driver)

# Constraint names are fixed here so that SQLite batch migrations and PostgreSQL agree.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable), JSON text elsewhere.
JsonDoc = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JsonDoc, list[Any]: JsonDoc}


def async_url(database_url: str) -> URL:
    """Map a user-facing URL (sqlite:///x.db, postgresql://…) to its async driver."""
    try:
        url = make_url(database_url)
    except ArgumentError:
        raise ConfigError(f"malformed database URL: {database_url!r}") from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        return url.set(drivername="sqlite+keystead")  # storage/sqlite_inline.py
    if backend in ("postgresql", "postgres"):
        return url.set(drivername="postgresql+asyncpg")
    raise ConfigError(f"unsupported database {backend!r}: use sqlite:/// or postgresql://")


def check_sqlite_file(url: URL) -> None:
    """Refuse a file that exists but is not a SQLite database, rather than overwrite it."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return
    path = Path(database)
    if not path.exists() or path.stat().st_size == 0:
        return
    try:
        with path.open("rb") as f:
            header = f.read(16)
    except OSError as exc:
        raise ConfigError(f"cannot read database file {path}: {exc.strerror}") from None
    if header != b"SQLite format 3\x00":
        raise ConfigError(f"{path} exists but is not a SQLite database; refusing to touch it")
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            con.execute("PRAGMA schema_version").fetchone()
            ok = con.execute("PRAGMA quick_check").fetchone()
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise ConfigError(f"{path} is corrupted ({exc}); refusing to touch it") from None
    if ok is None or ok[0] != "ok":
        raise ConfigError(f"{path} failed its integrity check; refusing to touch it")


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # 1 MiB of page cache per connection (SQLite's default is 2 MiB) keeps 40 pooled
    # connections well inside a worker's memory budget; the OS caches the file for all of them.
    cursor.execute("PRAGMA cache_size=-1024")
    # No busy_timeout here: storage/sqlite_inline.py makes calls on the event loop with none
    # and waits for a busy database with asyncio sleeps (SQLite's own wait would stall it).
    cursor.close()


def create_engine(database_url: str) -> AsyncEngine:
    url = async_url(database_url)
    check_sqlite_file(url)
    if url.get_backend_name() == "sqlite":
        # Connections are cheap and statements run in place (storage/sqlite_inline.py), but a
        # request holds its connection across awaits: keep enough that bursts do not open and
        # close connections (each open also sets the pragmas below).
        in_memory = not url.database or url.database == ":memory:"
        pool: dict[str, Any] = {} if in_memory else {"pool_size": 20, "max_overflow": 20}
        engine = create_async_engine(url, **pool)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    # No pre-ping (a round trip per checkout): connections are recycled after 30 minutes, and a
    # connection found dead invalidates the pool, so only the request that met it fails (503).
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800)


def session_factory(engine: AsyncEngine, **info: Any) -> async_sessionmaker[Any]:
    """Sessions for one process. `info` rides on each session (`Session.info`): the process's
    configuration cache (storage/config_cache.py) and log writer (storage/log_writer.py)."""
    return async_sessionmaker(engine, expire_on_commit=False, info=info)
