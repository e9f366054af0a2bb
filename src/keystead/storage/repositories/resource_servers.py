"""APIs (contract §10.3): rows ↔ core `ResourceServer`.

`config` holds `scopes` as [{value, description}] and the other fields under their Auth0 names;
the HS256 `signing_secret` is sealed (`signing_secret_sealed`, `signing_secret_encrypted`).
Keys Keystead does not interpret (e.g. `consent_policy`) are kept across updates.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.apis import Permission, ResourceServer
from keystead.core.clock import Clock
from keystead.core.ports import ProtectedRecord
from keystead.core.sealing import Sealer
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.config_cache import cached_config
from keystead.storage.models import ResourceServerRow
from keystead.storage.repositories._common import delete_row, doc, flush, paged
from keystead.storage.repositories.ids import new_resource_server_id

_PLAIN = (
    "signing_alg",
    "allow_offline_access",
    "skip_consent_for_verifiable_first_party_clients",
    "token_lifetime",
    "token_lifetime_for_web",
    "enforce_policies",
    "token_dialect",
)
_SEALED, _ENCRYPTED = "signing_secret_sealed", "signing_secret_encrypted"
NOT_FOUND = "The resource server does not exist"


def api_config(api: ResourceServer, sealer: Sealer) -> dict[str, Any]:
    config: dict[str, Any] = {name: getattr(api, name) for name in _PLAIN}
    config["scopes"] = [{"value": p.value, "description": p.description} for p in api.scopes]
    if api.signing_secret is not None:
        config[_SEALED] = sealer.seal(api.signing_secret.encode()).decode()
        config[_ENCRYPTED] = sealer.encrypts
    return config


def to_api(row: ResourceServerRow, sealer: Sealer) -> ResourceServer:
    config = doc(row.config)
    secret = None
    if config.get(_SEALED) is not None:
        stored = config[_SEALED].encode()
        secret = sealer.open(stored, encrypted=config.get(_ENCRYPTED, False)).decode()
    return ResourceServer(
        id=row.id,
        identifier=row.identifier,
        name=row.name,
        scopes=tuple(
            Permission(s["value"], s.get("description", "")) for s in config.get("scopes", ())
        ),
        signing_secret=secret,
        is_system=row.is_system,
        **{name: config[name] for name in _PLAIN if name in config},
    )


@dataclass
class SqlResourceServers:
    session: AsyncSession
    clock: Clock
    sealer: Sealer

    async def _row(self, id: str) -> ResourceServerRow:
        row = await self.session.get(ResourceServerRow, id)
        if row is None:
            raise RecordNotFound(NOT_FOUND)
        return row

    async def by_identifier(self, identifier: str) -> ResourceServer | None:
        if (config := await cached_config(self.session)) is not None:
            return config.apis.get(identifier)
        row = await self.session.scalar(
            select(ResourceServerRow).where(ResourceServerRow.identifier == identifier)
        )
        return to_api(row, self.sealer) if row else None

    async def by_id(self, id: str) -> ResourceServer | None:
        row = await self.session.get(ResourceServerRow, id)
        return to_api(row, self.sealer) if row else None

    async def get(self, id_or_identifier: str) -> ResourceServer:
        row = await self.session.scalar(
            select(ResourceServerRow).where(
                or_(
                    ResourceServerRow.id == id_or_identifier,
                    ResourceServerRow.identifier == id_or_identifier,
                )
            )
        )
        if row is None:
            raise RecordNotFound(NOT_FOUND)
        return to_api(row, self.sealer)

    async def list(
        self,
        *,
        identifiers: Iterable[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[ResourceServer]:
        stmt = select(ResourceServerRow).order_by(
            ResourceServerRow.created_at, ResourceServerRow.id
        )
        if identifiers is not None:
            stmt = stmt.where(ResourceServerRow.identifier.in_(list(identifiers)))
        rows = await self.session.scalars(paged(stmt, offset, limit))
        return [to_api(row, self.sealer) for row in rows]

    async def create(self, api: ResourceServer) -> ResourceServer:
        conflict = "A resource server with the same identifier already exists"
        if await self.by_identifier(api.identifier) is not None:
            raise AlreadyExists(conflict)
        if api.id and await self.session.get(ResourceServerRow, api.id) is not None:
            raise AlreadyExists("A resource server with this id already exists")
        now = self.clock.now()
        row = ResourceServerRow(
            id=api.id or new_resource_server_id(),
            identifier=api.identifier,
            name=api.name,
            is_system=api.is_system,
            config=api_config(api, self.sealer),
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await flush(self.session, conflict)
        return to_api(row, self.sealer)

    async def update(self, api: ResourceServer) -> ResourceServer:
        row = await self._row(api.id)
        if row.is_system:
            raise ProtectedRecord("The system resource server cannot be changed")
        kept = {k: v for k, v in row.config.items() if k not in (*_PLAIN, "scopes")}
        kept.pop(_SEALED, None)
        kept.pop(_ENCRYPTED, None)
        row.name = api.name
        row.config = {**doc(kept), **api_config(api, self.sealer)}
        row.updated_at = self.clock.now()
        await flush(self.session, "The resource server conflicts with another")
        return to_api(row, self.sealer)

    async def delete(self, id: str) -> None:
        row = await self._row(id)
        if row.is_system:
            raise ProtectedRecord("The system resource server cannot be deleted")
        await delete_row(self.session, row)
