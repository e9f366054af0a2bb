"""Attack-protection counts (contract §10.9): one `user_blocks` row per (identifier, IP) pair,
and one per IP (identifier "") for suspicious-IP throttling. The rules are core/bruteforce.py.

Rows are created by an `INSERT … ON CONFLICT DO NOTHING` and then read `FOR UPDATE`, so two
failures at once on one pair count twice, on PostgreSQL (row lock) and SQLite (write lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.bruteforce import IP_ROW, IpCount, PairCount
from keystead.storage.models import UserBlockRow

MAX_IP = 64
MAX_CONNECTION = 128


def _ip(ip: str | None) -> str:
    return (ip or "")[:MAX_IP]


@dataclass
class SqlUserBlocks:
    session: AsyncSession

    # --- reads ----------------------------------------------------------------------------------

    async def pair(self, identifier: str, ip: str | None) -> PairCount | None:
        row = await self._row(identifier, _ip(ip))
        return PairCount(row.failures, row.blocked_at) if row is not None else None

    async def ip(self, ip: str | None) -> IpCount | None:
        row = await self._row(IP_ROW, _ip(ip))
        return IpCount(row.failures, row.updated_at, row.blocked_at) if row is not None else None

    async def blocks(self, identifiers: Sequence[str]) -> list[tuple[str, str, str, PairCount]]:
        """(identifier, ip, connection, count) of every pair of these identifiers."""
        if not identifiers:
            return []
        rows = await self.session.scalars(
            select(UserBlockRow)
            .where(UserBlockRow.identifier.in_(identifiers))
            .order_by(UserBlockRow.id)
        )
        return [
            (r.identifier, r.ip, r.connection, PairCount(r.failures, r.blocked_at)) for r in rows
        ]

    # --- writes, each under a row lock ----------------------------------------------------------

    async def locked_pair(
        self, identifier: str, ip: str | None, connection: str, now: float
    ) -> PairCount:
        row = await self._locked(identifier, _ip(ip), connection, now)
        return PairCount(row.failures, row.blocked_at)

    async def locked_ip(self, ip: str | None, now: float) -> IpCount:
        row = await self._locked(IP_ROW, _ip(ip), "", now)
        return IpCount(row.failures, row.updated_at, row.blocked_at)

    async def save_pair(
        self, identifier: str, ip: str | None, count: PairCount, now: float
    ) -> None:
        await self._update(identifier, _ip(ip), count.failures, count.blocked_at, now)

    async def save_ip(self, ip: str | None, count: IpCount) -> None:
        await self._update(IP_ROW, _ip(ip), count.failures, count.throttled_at, count.stamp)

    async def forget_pair(self, identifier: str, ip: str | None, connection: str) -> None:
        """A successful login ends the run of failures (Auth0 counts them consecutively), of
        the connection it logged in to only: a run begun in another connection (another
        account with the same identifier) goes on."""
        found = await self.session.scalar(
            select(UserBlockRow.id).where(
                UserBlockRow.identifier == identifier,
                UserBlockRow.ip == _ip(ip),
                UserBlockRow.connection == connection[:MAX_CONNECTION],
            )
        )
        if found is not None:  # a DELETE that matches nothing still takes SQLite's write lock
            await self.session.execute(delete(UserBlockRow).where(UserBlockRow.id == found))

    async def clear(self, identifiers: Sequence[str]) -> int:
        """Unblock: drop every pair of these identifiers, counts and blocks alike."""
        wanted = [i for i in identifiers if i != IP_ROW]
        if not wanted:
            return 0
        found = list(
            await self.session.scalars(
                select(UserBlockRow.id).where(UserBlockRow.identifier.in_(wanted))
            )
        )
        if found:
            await self.session.execute(delete(UserBlockRow).where(UserBlockRow.id.in_(found)))
        return len(found)

    # --- rows -----------------------------------------------------------------------------------

    async def _row(self, identifier: str, ip: str) -> UserBlockRow | None:
        return await self.session.scalar(
            select(UserBlockRow).where(UserBlockRow.identifier == identifier, UserBlockRow.ip == ip)
        )

    async def _locked(self, identifier: str, ip: str, connection: str, now: float) -> UserBlockRow:
        values: dict[str, Any] = {
            "identifier": identifier,
            "ip": ip,
            "connection": connection[:MAX_CONNECTION],
            "failures": 0,
            "blocked_at": None,
            "updated_at": now,
        }
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(UserBlockRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["identifier", "ip"])
        )
        row = await self.session.scalar(
            select(UserBlockRow)
            .where(UserBlockRow.identifier == identifier, UserBlockRow.ip == ip)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert row is not None  # inserted above, or already there
        return row

    async def _update(
        self, identifier: str, ip: str, failures: int, blocked_at: float | None, stamp: float
    ) -> None:
        await self.session.execute(
            update(UserBlockRow)
            .where(UserBlockRow.identifier == identifier, UserBlockRow.ip == ip)
            .values(failures=failures, blocked_at=blocked_at, updated_at=stamp)
        )
