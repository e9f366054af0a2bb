"""Device credentials (contract §10.1): public keys, and refresh tokens seen as credentials.

Two stores, one view:
    public_key                 device_credentials rows, ids `dcr_…`
    refresh_token              refresh_tokens rows: one item per live family (the newest token),
    rotating_refresh_token     typed by the client's rotation setting; the id is that token's
                               public id, and deleting it revokes the whole family (a rotated
                               sibling could otherwise still be replayed within the leeway)
"""

from __future__ import annotations

import secrets
import string
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Select, case, false, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.sealing import Sealer
from keystead.errors import AlreadyExists, RecordNotFound
from keystead.storage.models import ClientRow, DeviceCredentialRow, RefreshTokenRow
from keystead.storage.repositories._common import delete_row, flush
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens

NOT_FOUND: Final = "The device credential does not exist."
DUPLICATE: Final = "A public key already exists for the device."
PUBLIC_KEY: Final = "public_key"
REFRESH_TOKEN: Final = "refresh_token"
ROTATING_REFRESH_TOKEN: Final = "rotating_refresh_token"
TYPES: Final = frozenset({PUBLIC_KEY, REFRESH_TOKEN, ROTATING_REFRESH_TOKEN})
_ALNUM: Final = string.ascii_letters + string.digits
_D = DeviceCredentialRow
_R = RefreshTokenRow


def new_device_credential_id() -> str:
    return "dcr_" + "".join(secrets.choice(_ALNUM) for _ in range(16))


@dataclass(frozen=True)
class DeviceCredential:
    id: str
    user_id: str
    client_id: str
    type: str
    created_at: float
    device_name: str | None = None
    device_id: str | None = None  # not kept for refresh tokens (Auth0 leaves it out too)


def _public_key(row: DeviceCredentialRow) -> DeviceCredential:
    return DeviceCredential(
        id=row.id,
        user_id=row.user_id,
        client_id=row.client_id,
        type=row.type,
        created_at=row.created_at,
        device_name=row.device_name,
        device_id=row.device_id,
    )


@dataclass
class SqlDeviceCredentials:
    session: AsyncSession
    clock: Clock

    # --- public keys ----------------------------------------------------------------------------

    async def create_public_key(
        self, *, user_id: str, client_id: str, device_name: str, device_id: str, value: str
    ) -> DeviceCredential:
        """One public key per (user, client, device); AlreadyExists otherwise.

        The read answers the usual case and leaves the transaction usable; the unique index
        ix_device_credentials_user_client_device settles two requests racing past it.
        """
        if await self._public_key_id(user_id, client_id, device_id) is not None:
            raise AlreadyExists(DUPLICATE)
        row = _D(
            id=new_device_credential_id(),
            user_id=user_id,
            client_id=client_id,
            device_name=device_name,
            device_id=device_id,
            type=PUBLIC_KEY,
            value=value,
            created_at=self.clock.now(),
        )
        self.session.add(row)
        await flush(self.session, DUPLICATE)
        return _public_key(row)

    async def _public_key_id(self, user_id: str, client_id: str, device_id: str) -> str | None:
        return await self.session.scalar(
            select(_D.id).where(
                _D.user_id == user_id,
                _D.client_id == client_id,
                _D.device_id == device_id,
                _D.type == PUBLIC_KEY,
            )
        )

    # --- both kinds -----------------------------------------------------------------------------

    async def find(self, id: str) -> DeviceCredential | None:
        """A public key by id, or a live refresh-token family by any of its tokens' ids."""
        row = await self.session.get(_D, id)
        if row is not None:
            return _public_key(row)
        token = await self.session.scalar(select(_R).where(_R.id == id))
        if token is None:
            return None
        rotating = await self._rotating_clients()
        for item in await self._families(family_id=token.family_id, rotating=rotating):
            return item
        return None

    async def delete(self, id: str) -> None:
        """Remove a public key, or revoke the refresh-token family behind a credential."""
        row = await self.session.get(_D, id)
        if row is not None:
            await delete_row(self.session, row)
            return
        found = await self.find(id)
        if found is None:
            raise RecordNotFound(NOT_FOUND)
        family_id = await self.session.scalar(select(_R.family_id).where(_R.id == id))
        # The sealer only opens kept rotation answers; revoking clears them without reading.
        tokens = SqlRefreshTokens(self.session, self.clock, Sealer())
        await tokens.revoke_family(str(family_id), now=self.clock.now())

    async def list(
        self,
        *,
        user_id: str | None = None,
        client_id: str | None = None,
        types: Collection[str] = TYPES,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[Sequence[DeviceCredential], int]:
        """A page of credentials, oldest first, and how many match in all."""
        items: list[DeviceCredential] = []
        total = 0
        wanted = offset + limit  # each source gives at most this many; merged, then cut
        if PUBLIC_KEY in types:
            stmt = select(_D).where(_D.type == PUBLIC_KEY)
            if user_id is not None:
                stmt = stmt.where(_D.user_id == user_id)
            if client_id is not None:
                stmt = stmt.where(_D.client_id == client_id)
            total += int(
                await self.session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
            )
            if wanted:
                rows = await self.session.scalars(stmt.order_by(_D.created_at, _D.id).limit(wanted))
                items.extend(_public_key(row) for row in rows)
        refresh_types = {REFRESH_TOKEN, ROTATING_REFRESH_TOKEN} & set(types)
        if refresh_types:
            rotating = await self._rotating_clients()
            only = None if len(refresh_types) == 2 else refresh_types.pop()
            families = self._live_families(user_id=user_id, client_id=client_id)
            families = _of_type(families, only, rotating)
            total += int(
                await self.session.scalar(select(func.count()).select_from(families.subquery()))
                or 0
            )
            if wanted:
                items.extend(await self._families_from(families, rotating=rotating, limit=wanted))
        items.sort(key=lambda c: (c.created_at, c.id))
        return items[offset : offset + limit], total

    # --- refresh tokens -------------------------------------------------------------------------

    async def _rotating_clients(self) -> frozenset[str]:
        """Clients whose refresh tokens rotate (a JSON setting; tenants have few clients)."""
        rows = await self.session.execute(select(ClientRow.client_id, ClientRow.config))
        return frozenset(
            client_id
            for client_id, config in rows
            if ((config or {}).get("refresh_token") or {}).get("rotation_type") == "rotating"
        )

    def _live_families(
        self, *, user_id: str | None = None, client_id: str | None = None,
        family_id: str | None = None,
    ) -> Select[Any]:  # fmt: skip
        """The newest unrevoked token of each family, if that token has not expired."""
        newest = func.row_number().over(
            partition_by=_R.family_id,
            # Same instant (a fixed clock, a fast rotation): the unrotated child comes first.
            order_by=(_R.created_at.desc(), case((_R.rotated_at.is_(None), 0), else_=1), _R.id),
        )
        inner = select(
            _R.id, _R.family_id, _R.client_id, _R.user_id, _R.device_name, _R.created_at,
            _R.family_expires_at, _R.idle_expires_at, newest.label("rank"),
        ).where(_R.revoked_at.is_(None))  # fmt: skip
        if user_id is not None:
            inner = inner.where(_R.user_id == user_id)
        if client_id is not None:
            inner = inner.where(_R.client_id == client_id)
        if family_id is not None:
            inner = inner.where(_R.family_id == family_id)
        live = inner.subquery()
        now = self.clock.now()
        return select(live).where(
            live.c.rank == 1,
            or_(live.c.family_expires_at.is_(None), live.c.family_expires_at > now),
            or_(live.c.idle_expires_at.is_(None), live.c.idle_expires_at > now),
        )

    async def _families(
        self, *, family_id: str, rotating: frozenset[str]
    ) -> Sequence[DeviceCredential]:
        return await self._families_from(
            self._live_families(family_id=family_id), rotating=rotating, limit=1
        )

    async def _families_from(
        self, stmt: Select[Any], *, rotating: frozenset[str], limit: int
    ) -> Sequence[DeviceCredential]:
        live = stmt.subquery()
        rows = await self.session.execute(
            select(live).order_by(live.c.created_at, live.c.id).limit(limit)
        )
        return [
            DeviceCredential(
                id=row.id,
                user_id=row.user_id,
                client_id=row.client_id,
                type=ROTATING_REFRESH_TOKEN if row.client_id in rotating else REFRESH_TOKEN,
                created_at=row.created_at,
                device_name=row.device_name,
            )
            for row in rows
        ]


def _of_type(stmt: Select[Any], only: str | None, rotating: frozenset[str]) -> Select[Any]:
    if only is None:
        return stmt
    live = stmt.subquery()
    in_rotating = live.c.client_id.in_(list(rotating)) if rotating else false()
    condition = in_rotating if only == ROTATING_REFRESH_TOKEN else ~in_rotating
    return select(live).where(condition)
