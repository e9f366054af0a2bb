"""Client grants (contract §10.4): which APIs a client may call, and with which scopes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.apis import ClientGrant
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.config_cache import cached_config
from keystead.storage.models import ClientGrantRow, ClientRow, ResourceServerRow
from keystead.storage.repositories._common import delete_row, flush, paged
from keystead.storage.repositories.ids import new_client_grant_id

NOT_FOUND = "The client grant does not exist"
CONFLICT = "A client grant for this client and audience already exists"


def to_grant(row: ClientGrantRow) -> ClientGrant:
    return ClientGrant(
        id=row.id,
        client_id=row.client_id,
        audience=row.audience,
        scope=tuple(row.scope),
        allow_all_scopes=row.allow_all_scopes,
        subject_type=row.subject_type,  # type: ignore[arg-type]
    )


@dataclass
class SqlClientGrants:
    session: AsyncSession

    async def _row(self, id: str) -> ClientGrantRow:
        row = await self.session.get(ClientGrantRow, id)
        if row is None:
            raise RecordNotFound(NOT_FOUND)
        return row

    async def get(self, id: str) -> ClientGrant:
        return to_grant(await self._row(id))

    async def for_client_audience(self, client_id: str, audience: str) -> ClientGrant | None:
        if (config := await cached_config(self.session)) is not None:
            return config.grants.get((client_id, audience))
        row = await self.session.scalar(
            select(ClientGrantRow).where(
                ClientGrantRow.client_id == client_id, ClientGrantRow.audience == audience
            )
        )
        return to_grant(row) if row else None

    async def list(
        self,
        *,
        client_id: str | None = None,
        audience: str | None = None,
        subject_type: str | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[ClientGrant]:
        stmt = select(ClientGrantRow).order_by(ClientGrantRow.id)
        if client_id is not None:
            stmt = stmt.where(ClientGrantRow.client_id == client_id)
        if audience is not None:
            stmt = stmt.where(ClientGrantRow.audience == audience)
        if subject_type is not None:
            stmt = stmt.where(ClientGrantRow.subject_type == subject_type)
        return [to_grant(row) for row in await self.session.scalars(paged(stmt, offset, limit))]

    async def create(self, grant: ClientGrant) -> ClientGrant:
        if await self.session.get(ClientRow, grant.client_id) is None:
            raise RecordNotFound("The client does not exist")
        api = select(ResourceServerRow.id).where(ResourceServerRow.identifier == grant.audience)
        if await self.session.scalar(api) is None:
            raise RecordNotFound("The resource server does not exist")
        if await self.for_client_audience(grant.client_id, grant.audience) is not None:
            raise AlreadyExists(CONFLICT)
        if grant.id and await self.session.get(ClientGrantRow, grant.id) is not None:
            raise AlreadyExists("A client grant with this id already exists")
        row = ClientGrantRow(
            id=grant.id or new_client_grant_id(),
            client_id=grant.client_id,
            audience=grant.audience,
            scope=list(grant.scope),
            allow_all_scopes=grant.allow_all_scopes,
            subject_type=grant.subject_type,
        )
        self.session.add(row)
        await flush(self.session, CONFLICT)
        return to_grant(row)

    async def update(self, grant: ClientGrant) -> ClientGrant:
        row = await self._row(grant.id)
        row.scope = list(grant.scope)
        row.allow_all_scopes = grant.allow_all_scopes
        row.subject_type = grant.subject_type
        await flush(self.session, CONFLICT)
        return to_grant(row)

    async def delete(self, id: str) -> None:
        await delete_row(self.session, await self._row(id))
