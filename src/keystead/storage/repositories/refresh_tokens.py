"""Refresh tokens at rest (contract §3.3, §7.1): rows ↔ core `RefreshToken`, found by digest.

Writes are single statements whose WHERE clause is the check (compare-and-set), so two requests
racing on one token cannot both rotate it, on SQLite or PostgreSQL. The kept rotation answer is
already encrypted by core under the rotated token; it is sealed once more with the server key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import Table, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.refresh_tokens import NewRefreshToken, RefreshToken
from keystead.core.sealing import Sealer
from keystead.core.tokens import token_digest
from keystead.errors import ConfigError
from keystead.storage.models import RefreshTokenRow

_T = RefreshTokenRow
_TABLE = cast(Table, RefreshTokenRow.__table__)


def _to_core(row: RefreshTokenRow, result: bytes | None) -> RefreshToken:
    params: dict[str, Any] = row.params or {}
    return RefreshToken(
        id=row.id,
        family_id=row.family_id,
        client_id=row.client_id,
        user_id=row.user_id,
        scope=tuple(params.get("scope") or ()),
        audience=params.get("audience"),
        created_at=row.created_at,
        auth_time=float(params.get("auth_time") or row.created_at),
        sid=params.get("sid"),
        parent_id=params.get("parent"),
        family_expires_at=row.family_expires_at,
        idle_expires_at=row.idle_expires_at,
        rotated_at=row.rotated_at,
        revoked_at=row.revoked_at,
        rotation_result=result,
    )


def _rowcount(result: Any) -> int:
    return result.rowcount if isinstance(result, CursorResult) else 0


@dataclass
class SqlRefreshTokens:
    session: AsyncSession
    clock: Clock
    sealer: Sealer

    def _open(self, stored: bytes | None) -> bytes | None:
        if stored is None:
            return None
        try:
            return self.sealer.open(stored, encrypted=self.sealer.encrypts)
        except ConfigError:
            # Sealed under a secret key that has changed since: not replayable, but not the
            # client's fault either, so an answer that will not open (refused, family kept)
            # rather than none (which would read as reuse and revoke the family).
            return b""

    async def find(self, token: str) -> RefreshToken | None:
        # Core on the session's connection: no identity map, so a re-read after a lost
        # compare-and-set sees the winner's write, and no ORM cost on the token endpoint.
        conn = await self.session.connection()
        found = await conn.execute(
            select(_TABLE).where(_TABLE.c.token_digest == token_digest(token))
        )
        row = found.first()
        return _to_core(cast(Any, row), self._open(row.rotation_result)) if row else None

    async def create(self, token: str, new: NewRefreshToken) -> RefreshToken:
        params: dict[str, Any] = {"scope": list(new.scope), "auth_time": int(new.auth_time)}
        for name, value in (
            ("audience", new.audience),
            ("sid", new.sid),
            ("parent", new.parent_id),
        ):
            if value is not None:
                params[name] = value
        values: dict[str, Any] = {
            "token_digest": token_digest(token),
            "id": secrets.token_hex(16),
            "family_id": new.family_id,
            "client_id": new.client_id,
            "user_id": new.user_id,
            "params": params,
            "created_at": self.clock.now(),
            "family_expires_at": new.family_expires_at,
            "idle_expires_at": new.idle_expires_at,
            "device_name": new.device_name,
            "rotated_at": None,
            "revoked_at": None,
            "rotation_result": None,
        }
        conn = await self.session.connection()
        await conn.execute(insert(_TABLE).values(**values))
        return _to_core(cast(Any, SimpleNamespace(**values)), None)

    async def rotate(self, token: str, *, now: float, result: bytes | None) -> bool:
        outcome = await self.session.execute(
            update(_T)
            .where(
                _T.token_digest == token_digest(token),
                _T.rotated_at.is_(None),
                _T.revoked_at.is_(None),
            )
            .values(
                rotated_at=now, rotation_result=None if result is None else self.sealer.seal(result)
            )
            .execution_options(synchronize_session=False)
        )
        return _rowcount(outcome) == 1

    async def touch(self, token: str, *, idle_expires_at: float) -> None:
        await self.session.execute(
            update(_T)
            .where(_T.token_digest == token_digest(token), _T.revoked_at.is_(None))
            .values(idle_expires_at=idle_expires_at)
            .execution_options(synchronize_session=False)
        )

    async def clear_result(self, token_id: str) -> None:
        await self.session.execute(
            update(_T)
            .where(_T.id == token_id, _T.rotation_result.is_not(None))
            .values(rotation_result=None)
            .execution_options(synchronize_session=False)
        )

    async def revoke_family(self, family_id: str, *, now: float) -> int:
        outcome = await self.session.execute(
            update(_T)
            .where(_T.family_id == family_id, _T.revoked_at.is_(None))
            .values(revoked_at=now, rotation_result=None)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(outcome)
