"""Log events (contract §10.7): append-only rows; listing for the Management API.

A session from the app's factory carries the process's `LogWriter` (storage/log_writer.py):
`record` then hands the row to it instead of writing in the caller's transaction, and every read
flushes it first."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.logs import EVENT_TYPES, LogEvent
from keystead.storage.log_writer import WRITER_KEY, LogWriter, flush_pending_logs
from keystead.storage.models import LogEventRow
from keystead.storage.repositories._common import paged

_sequence = itertools.count()


def _new_log_id(now: float) -> str:
    # Time-ordered (like Auth0's ids): sorting by id follows the date, which checkpoint paging
    # uses; within one millisecond, this process's events keep the order they were recorded in.
    return f"{int(now * 1000):013d}{next(_sequence) % 1_000_000:06d}{secrets.token_hex(5)}"


@dataclass
class SqlLogs:
    session: AsyncSession
    clock: Clock

    async def record(
        self,
        type: str,
        *,
        description: str | None = None,
        user_id: str | None = None,
        client_id: str | None = None,
        **data: Any,
    ) -> LogEvent:
        """Append one event; `data` holds ip, user_agent, connection, audience, details …"""
        now = self.clock.now()
        body = {k: v for k, v in data.items() if v is not None}
        body["description"] = description or EVENT_TYPES.get(type, type)
        log_id = _new_log_id(now)
        values: dict[str, Any] = {
            "log_id": log_id,
            "date": now,
            "type": type,
            "user_id": user_id,
            "client_id": client_id,
            "data": body,
        }
        writer: LogWriter | None = self.session.info.get(WRITER_KEY)
        if writer is not None:
            writer.add(values)
        else:
            self.session.add(LogEventRow(**values))
            await self.session.flush()
        data = dict(body)
        return LogEvent(
            log_id=log_id,
            date=now,
            type=type,
            description=str(data.pop("description")),
            user_id=user_id,
            client_id=client_id,
            data=data,
        )

    async def get(self, log_id: str) -> LogEvent | None:
        await flush_pending_logs(self.session)
        row = await self.session.get(LogEventRow, log_id)
        return _to_core(row) if row else None

    async def list(
        self,
        *,
        user_id: str | None = None,
        offset: int = 0,
        limit: int | None = 50,
        newest_first: bool = True,
        after_id: str | None = None,
    ) -> list[LogEvent]:
        await flush_pending_logs(self.session)
        stmt = select(LogEventRow)
        if user_id is not None:
            stmt = stmt.where(LogEventRow.user_id == user_id)
        if after_id is not None:
            stmt = stmt.where(LogEventRow.log_id > after_id)
        order = LogEventRow.log_id.desc() if newest_first else LogEventRow.log_id.asc()
        stmt = paged(stmt.order_by(order), offset, limit)
        return [_to_core(row) for row in (await self.session.scalars(stmt)).all()]

    async def count(self, *, user_id: str | None = None) -> int:
        await flush_pending_logs(self.session)
        stmt = select(func.count()).select_from(LogEventRow)
        if user_id is not None:
            stmt = stmt.where(LogEventRow.user_id == user_id)
        return int(await self.session.scalar(stmt) or 0)


def _to_core(row: LogEventRow) -> LogEvent:
    data = dict(row.data or {})
    description = str(data.pop("description", ""))
    return LogEvent(
        log_id=row.log_id,
        date=row.date,
        type=row.type,
        description=description,
        user_id=row.user_id,
        client_id=row.client_id,
        data=data,
    )
