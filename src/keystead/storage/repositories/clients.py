"""Applications (contract §10.2): rows ↔ core `Client`, secrets hashed and sealed.

`config` holds every field but id, name, app type, auth method and secret, under its Auth0
name (`callbacks`, `grant_types`, `refresh_token`, `jwt_configuration`, …); Auth0 fields
Keystead does not interpret sit beside them and come back in `Client.extra`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clients import Client, RefreshTokenPolicy
from keystead.core.clock import Clock
from keystead.core.ports import ProtectedRecord
from keystead.core.sealing import Sealer
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.config_cache import cached_config
from keystead.storage.models import ClientRow
from keystead.storage.repositories._common import delete_row, doc, flush
from keystead.storage.repositories.ids import new_client_id, new_client_secret

_TUPLES = ("callbacks", "allowed_logout_urls", "web_origins", "allowed_origins", "grant_types")
_KNOWN = frozenset({*_TUPLES, "description", "is_first_party", "refresh_token", "client_metadata"})
# Compared against when the client is unknown, so that a miss costs what a hit costs.
_NO_DIGEST = hashlib.sha256(b"keystead: no such client").digest()


def secret_digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def client_config(client: Client) -> dict[str, Any]:
    jwt = {**client.extra.get("jwt_configuration", {})}
    jwt["lifetime_in_seconds"] = client.jwt_lifetime_in_seconds
    config: dict[str, Any] = doc(
        {
            **client.extra,
            "description": client.description,
            "is_first_party": client.is_first_party,
            **{name: list(getattr(client, name)) for name in _TUPLES},
            "refresh_token": asdict(client.refresh_token),
            "jwt_configuration": jwt,
            "client_metadata": client.client_metadata,
        }
    )
    return config


def to_client(row: ClientRow, secret: str | None = None) -> Client:
    config = doc(row.config)
    jwt = config.get("jwt_configuration") or {}
    refresh = config.get("refresh_token") or {}
    policy_fields = RefreshTokenPolicy.__dataclass_fields__
    return Client(
        client_id=row.client_id,
        name=row.name,
        app_type=row.app_type,  # type: ignore[arg-type]
        client_secret=secret,
        token_endpoint_auth_method=row.token_endpoint_auth_method,  # type: ignore[arg-type]
        description=config.get("description", ""),
        is_first_party=config.get("is_first_party", True),
        **{name: tuple(config.get(name) or ()) for name in _TUPLES},
        jwt_lifetime_in_seconds=jwt.get("lifetime_in_seconds", 36_000),
        refresh_token=RefreshTokenPolicy(
            **{k: v for k, v in refresh.items() if k in policy_fields}
        ),
        client_metadata=config.get("client_metadata") or {},
        extra={k: v for k, v in config.items() if k not in _KNOWN},
    )


@dataclass
class SqlClients:
    session: AsyncSession
    clock: Clock
    sealer: Sealer

    async def _row(self, client_id: str) -> ClientRow:
        row = await self.session.get(ClientRow, client_id)
        if row is None:
            raise RecordNotFound("The client does not exist")
        return row

    def _open(self, row: ClientRow) -> str | None:
        if row.secret_stored is None:
            return None
        return self.sealer.open(row.secret_stored, encrypted=row.secret_encrypted).decode()

    async def get(self, client_id: str, *, reveal_secret: bool = False) -> Client:
        row = await self._row(client_id)
        return to_client(row, self._open(row) if reveal_secret else None)

    async def find(self, client_id: str) -> Client | None:
        if (config := await cached_config(self.session)) is not None:
            return config.clients.get(client_id)
        row = await self.session.get(ClientRow, client_id)
        return to_client(row) if row else None

    async def list(
        self,
        *,
        app_types: Iterable[str] | None = None,
        is_first_party: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[Client]:
        stmt = select(ClientRow).order_by(ClientRow.created_at, ClientRow.client_id)
        if app_types is not None:
            stmt = stmt.where(ClientRow.app_type.in_(list(app_types)))
        clients = [to_client(row) for row in await self.session.scalars(stmt)]
        if is_first_party is not None:  # a JSON field: filtered here, tenants have few clients
            clients = [c for c in clients if c.is_first_party == is_first_party]
        return clients[offset:] if limit is None else clients[offset : offset + limit]

    def _store_secret(self, row: ClientRow, secret: str | None) -> None:
        row.secret_digest = secret_digest(secret) if secret is not None else None
        row.secret_stored = self.sealer.seal(secret.encode()) if secret is not None else None
        row.secret_encrypted = secret is not None and self.sealer.encrypts

    async def create(self, client: Client) -> Client:
        client_id = client.client_id or new_client_id()
        if await self.session.get(ClientRow, client_id) is not None:
            raise AlreadyExists("A client with this client_id already exists")
        secret = client.client_secret
        if secret is None and not client.is_public:
            secret = new_client_secret()
        now = self.clock.now()
        row = ClientRow(
            client_id=client_id,
            name=client.name,
            app_type=client.app_type,
            token_endpoint_auth_method=client.token_endpoint_auth_method,
            is_system=False,
            config=client_config(client),
            created_at=now,
            updated_at=now,
        )
        self._store_secret(row, secret)
        self.session.add(row)
        await flush(self.session, "A client with this client_id already exists")
        return to_client(row, secret)

    async def update(self, client: Client) -> Client:
        row = await self._row(client.client_id)
        row.name = client.name
        row.app_type = client.app_type
        row.token_endpoint_auth_method = client.token_endpoint_auth_method
        row.config = client_config(client)
        row.updated_at = self.clock.now()
        await flush(self.session, "The client conflicts with another")
        return to_client(row)

    async def rotate_secret(self, client_id: str, secret: str | None = None) -> Client:
        row = await self._row(client_id)
        secret = secret if secret is not None else new_client_secret()
        self._store_secret(row, secret)
        row.updated_at = self.clock.now()
        await flush(self.session, "The client conflicts with another")
        return replace(to_client(row), client_secret=secret)

    async def delete(self, client_id: str) -> None:
        row = await self._row(client_id)
        if row.is_system:
            raise ProtectedRecord("A system client cannot be deleted")
        await delete_row(self.session, row)

    async def verify_secret(self, client_id: str, secret: str) -> bool:
        if (config := await cached_config(self.session)) is not None:
            stored = config.secret_digests.get(client_id)
        else:
            stored = await self.session.scalar(
                select(ClientRow.secret_digest).where(ClientRow.client_id == client_id)
            )
        # Both sides are SHA-256 digests: equal length, compared in constant time.
        matches = hmac.compare_digest(stored or _NO_DIGEST, secret_digest(secret))
        return matches and stored is not None
