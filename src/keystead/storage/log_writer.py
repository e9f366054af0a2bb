"""Log events written in batches, off the request path.

A token request that only reads (client credentials) would otherwise become a write transaction
for its log event: one more statement, and on SQLite a turn at the single write lock. Instead
`SqlLogs.record` hands the row to this process's writer, which inserts what has gathered every
`interval` seconds (or as soon as `batch` rows wait) in one statement of its own.

    record → buffer ─(every interval, or batch rows)→ INSERT … VALUES (…), (…)   one transaction
    any read of the logs → flush() first, so this process reads what it wrote

What that costs: events of the last `interval` are lost if the process is killed (a clean stop
flushes), and another process sees them up to `interval` later — Auth0's log stream is not
immediate either. A failed insert keeps the rows for the next round, up to `max_pending`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from keystead.storage.models import LogEventRow

log = logging.getLogger("keystead")

WRITER_KEY = "keystead.log_writer"  # Session.info: the process's writer (session_factory)
_LOGS = cast(Table, LogEventRow.__table__)


class LogWriter:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = 0.1,
        batch: int = 500,
        max_pending: int = 50_000,
    ) -> None:
        self._sessions = sessions
        self._interval = interval
        self._batch = batch
        self._max_pending = max_pending
        self._pending: list[dict[str, Any]] = []
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.dropped = 0

    def add(self, row: dict[str, Any]) -> None:
        if len(self._pending) >= self._max_pending:  # the database is away: keep the newest
            self._pending.pop(0)
            self.dropped += 1
        self._pending.append(row)
        if len(self._pending) >= self._batch:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def flush(self) -> None:
        """Insert everything recorded so far (in this process); raises nothing."""
        async with self._lock:
            rows, self._pending = self._pending, []
            if not rows:
                return
            try:
                async with self._sessions() as session, session.begin():
                    await session.execute(insert(_LOGS), rows)
            except (SQLAlchemyError, OSError) as exc:
                log.warning(
                    "could not write %d log events (kept for the next try): %s", len(rows), exc
                )
                self._pending[:0] = rows[: self._max_pending - len(self._pending)]

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.flush()
        if self._pending:
            log.warning("%d log events could not be written before the stop", len(self._pending))

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            self._wake.clear()
            await self.flush()


async def flush_pending_logs(session: AsyncSession) -> None:
    """Before a read of the logs: write what this process has recorded, so that it is found."""
    writer: LogWriter | None = session.info.get(WRITER_KEY)
    if writer is not None:  # also waits for a batch the background task is writing
        await writer.flush()
