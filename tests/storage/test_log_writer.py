"""Log events written in batches: buffered until a flush, found by every read in the process
that recorded them, kept for the next try when the database refuses them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from keystead.core.clock import FixedClock
from keystead.storage.db import create_engine, session_factory
from keystead.storage.log_writer import WRITER_KEY, LogWriter
from keystead.storage.migrate import upgrade_to_head
from keystead.storage.models import LogEventRow
from keystead.storage.repositories.logs import SqlLogs


async def _rows(sessions: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(LogEventRow)) or 0)


async def test_events_wait_in_the_buffer_until_a_read_flushes_them(
    fresh_url: str, clock: FixedClock
) -> None:
    engine = create_engine(fresh_url)
    await upgrade_to_head(engine)
    plain = session_factory(engine)
    writer = LogWriter(plain, interval=3600)  # no background task: only reads flush
    sessions = session_factory(engine, **{WRITER_KEY: writer})
    try:
        async with sessions() as session, session.begin():
            event = await SqlLogs(session, clock).record("seccft", client_id="c1", ip="10.0.0.1")
            await session.rollback()  # the request's work is undone; its log event is not
        assert event.type == "seccft" and event.data == {"ip": "10.0.0.1"}
        assert writer.pending == 1 and await _rows(plain) == 0

        async with sessions() as session:
            found = await SqlLogs(session, clock).list()
        assert [(e.log_id, e.type, e.client_id) for e in found] == [(event.log_id, "seccft", "c1")]
        assert writer.pending == 0 and await _rows(plain) == 1
    finally:
        await engine.dispose()


async def test_a_failed_write_keeps_the_events_and_stop_writes_them(
    fresh_url: str, clock: FixedClock, monkeypatch: Any
) -> None:
    engine = create_engine(fresh_url)
    await upgrade_to_head(engine)
    plain = session_factory(engine)
    writer = LogWriter(plain, interval=3600)
    sessions = session_factory(engine, **{WRITER_KEY: writer})
    try:
        async with sessions() as session:
            for n in range(3):
                await SqlLogs(session, clock).record("f", user_id=f"auth0|{n}")

        real_sessions = writer._sessions

        def refusing() -> Any:
            raise OperationalError("INSERT", {}, Exception("database is locked"))

        monkeypatch.setattr(writer, "_sessions", refusing)
        await writer.flush()  # refused: nothing lost
        assert writer.pending == 3 and await _rows(plain) == 0

        monkeypatch.setattr(writer, "_sessions", real_sessions)
        writer.start()
        await writer.stop()  # a clean stop writes what is left
        assert writer.pending == 0 and await _rows(plain) == 3
    finally:
        await engine.dispose()
