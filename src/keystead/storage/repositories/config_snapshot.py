"""Load the whole tenant configuration into a `ConfigSnapshot` (storage/config_cache.py)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.sealing import Sealer
from keystead.storage.config_cache import ConfigSnapshot, Loader
from keystead.storage.models import (
    ClientGrantRow,
    ClientRow,
    ConnectionRow,
    ResourceServerRow,
    TenantSettingRow,
)
from keystead.storage.repositories._common import doc
from keystead.storage.repositories.client_grants import to_grant
from keystead.storage.repositories.clients import to_client
from keystead.storage.repositories.connections import to_connection
from keystead.storage.repositories.resource_servers import to_api


def snapshot_loader(sealer: Sealer) -> Loader:
    async def load(session: AsyncSession, version: int) -> ConfigSnapshot:
        clients = list(await session.scalars(select(ClientRow)))
        apis = [to_api(row, sealer) for row in await session.scalars(select(ResourceServerRow))]
        grants = [to_grant(row) for row in await session.scalars(select(ClientGrantRow))]
        connections = [to_connection(row) for row in await session.scalars(select(ConnectionRow))]
        settings = list(await session.scalars(select(TenantSettingRow)))
        return ConfigSnapshot(
            version=version,
            clients={row.client_id: to_client(row) for row in clients},
            secret_digests={row.client_id: row.secret_digest for row in clients},
            apis={api.identifier: api for api in apis},
            grants={(grant.client_id, grant.audience): grant for grant in grants},
            connections={connection.name: connection for connection in connections},
            settings={row.name: doc(row.value) for row in settings},
        )

    return load
