"""The in-place SQLite driver: calls run on the event loop, a write that meets another process's
lock waits without blocking the loop and succeeds once the lock is free, and gives up with
SQLite's own error when the lock stays taken."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from keystead.storage import sqlite_inline
from keystead.storage.db import create_engine


def _locker(path: Path, hold: float, locked: threading.Event) -> None:
    """Another process's writer, stood in for by a thread with its own connection."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO t VALUES ('other')")
    locked.set()
    time.sleep(hold)
    conn.execute("COMMIT")
    conn.close()


@contextmanager
def other_writer(path: Path, hold: float) -> Iterator[None]:
    """Inside the block another connection holds the write lock, for `hold` seconds."""
    locked = threading.Event()
    other = threading.Thread(target=_locker, args=(path, hold, locked))
    other.start()
    locked.wait()
    try:
        yield
    finally:
        other.join()


async def _engine_on(path: Path) -> AsyncEngine:
    engine = create_engine(f"sqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE IF NOT EXISTS t (v TEXT)"))
    return engine


async def test_a_write_waits_for_the_lock_without_blocking_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = await _engine_on(path)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    running = asyncio.create_task(ticker())
    try:
        with other_writer(path, 0.3):
            started = time.monotonic()
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES ('ours')"))
            waited = time.monotonic() - started
        async with engine.connect() as conn:
            values = sorted((await conn.execute(text("SELECT v FROM t"))).scalars())
    finally:
        running.cancel()
        await engine.dispose()
    assert values == ["other", "ours"]
    assert waited > 0.2  # it did wait for the other writer (and not the full busy timeout)
    assert ticks >= 10  # the loop kept running while the write waited


async def test_a_lock_that_stays_taken_is_sqlites_busy_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT_MS", 100)
    path = tmp_path / "db.sqlite"
    engine = await _engine_on(path)
    try:
        with other_writer(path, 1.0), pytest.raises(Exception, match="database is locked"):
            async with engine.begin() as conn:
                await conn.execute(text("INSERT INTO t VALUES ('ours')"))
    finally:
        await engine.dispose()


async def test_reads_while_another_process_writes(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = await _engine_on(path)
    try:
        with other_writer(path, 0.2):
            async with engine.connect() as conn:  # WAL: a reader never waits for a writer
                count = (await conn.execute(text("SELECT count(*) FROM t"))).scalar_one()
        assert count == 0  # read before the other writer committed: it did not wait
    finally:
        await engine.dispose()


async def test_the_workers_reader_sees_commits_and_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    engine = await _engine_on(path)
    try:
        reader = await sqlite_inline.reader(engine)
        assert reader is not None and await sqlite_inline.reader(engine) is reader  # one each
        assert await reader.fetchone("SELECT count(*) FROM t") == (0,)
        async with engine.begin() as conn:
            await conn.execute(text("INSERT INTO t VALUES ('committed')"))
        assert await reader.fetchone("SELECT v FROM t") == ("committed",)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            await reader.fetchone("DELETE FROM t")
    finally:
        await engine.dispose()
    memory = create_engine("sqlite:///:memory:")
    try:
        assert await sqlite_inline.reader(memory) is None  # another connection would see nothing
    finally:
        await memory.dispose()
