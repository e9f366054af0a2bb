"""Connections (contract §10.6): where users come from. `config` holds the Auth0 fields other
than id, name, strategy and options (display_name, enabled_clients, realms, metadata, …)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.ports import Connection, ProtectedRecord
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.config_cache import cached_config
from keystead.storage.models import ConnectionRow, UserRow
from keystead.storage.repositories._common import delete_row, doc, flush, paged
from keystead.storage.repositories.ids import new_connection_id

NOT_FOUND = "The connection does not exist"
CONFLICT = "A connection with the same name already exists"


def to_connection(row: ConnectionRow) -> Connection:
    return Connection(
        id=row.id,
        name=row.name,
        strategy=row.strategy,
        options=doc(row.options),
        is_system=row.is_system,
        created_at=row.created_at,
        extra=doc(row.config),
    )


@dataclass
class SqlConnections:
    session: AsyncSession
    clock: Clock

    async def _row(self, id: str) -> ConnectionRow:
        row = await self.session.get(ConnectionRow, id)
        if row is None:
            raise RecordNotFound(NOT_FOUND)
        return row

    async def get(self, id: str) -> Connection:
        return to_connection(await self._row(id))

    async def by_name(self, name: str) -> Connection | None:
        if (config := await cached_config(self.session)) is not None:
            return config.connections.get(name)
        row = await self.session.scalar(select(ConnectionRow).where(ConnectionRow.name == name))
        return to_connection(row) if row else None

    async def list(
        self,
        *,
        strategies: Iterable[str] | None = None,
        name: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[Connection]:
        stmt = select(ConnectionRow).order_by(ConnectionRow.created_at, ConnectionRow.id)
        if strategies is not None:
            stmt = stmt.where(ConnectionRow.strategy.in_(list(strategies)))
        if name is not None:
            stmt = stmt.where(ConnectionRow.name == name)
        rows = await self.session.scalars(paged(stmt, offset, limit))
        return [to_connection(row) for row in rows]

    async def create(self, connection: Connection) -> Connection:
        if await self.by_name(connection.name) is not None:
            raise AlreadyExists(CONFLICT)
        if connection.id and await self.session.get(ConnectionRow, connection.id) is not None:
            raise AlreadyExists("A connection with this id already exists")
        row = ConnectionRow(
            id=connection.id or new_connection_id(),
            name=connection.name,
            strategy=connection.strategy,
            is_system=connection.is_system,
            options=doc(connection.options),
            config=doc(connection.extra),
            created_at=connection.created_at or self.clock.now(),
        )
        self.session.add(row)
        await flush(self.session, CONFLICT)
        return to_connection(row)

    async def update(self, connection: Connection) -> Connection:
        row = await self._row(connection.id)
        row.options = doc(connection.options)
        row.config = doc(connection.extra)
        await flush(self.session, CONFLICT)
        return to_connection(row)

    async def delete(self, id: str) -> None:
        row = await self._row(id)
        if row.is_system:
            raise ProtectedRecord("The default database connection cannot be deleted")
        await self.session.execute(delete(UserRow).where(UserRow.connection == row.name))
        await delete_row(self.session, row)
