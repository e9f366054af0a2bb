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

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.refresh_tokens import NewRefreshToken, RefreshToken
from keystead.core.sealing import Sealer
from keystead.core.tokens import token_digest
from keystead.errors import ConfigError
from keystead.storage.driver_sql import Outcome, Statement, execute
from keystead.storage.models import RefreshTokenRow

_TABLE = cast(Table, RefreshTokenRow.__table__)
_C = _TABLE.c
# Built once: constructing a statement per request costs more than running it.
_BY_DIGEST = Statement(select(_TABLE).where(_C.token_digest == bindparam("digest")))
_INSERT = Statement(insert(_TABLE))
_ROTATE = Statement(
    update(_TABLE)
    .where(_C.token_digest == bindparam("digest"), _C.rotated_at.is_(None), _C.revoked_at.is_(None))
    .values(rotated_at=bindparam("at"), rotation_result=bindparam("result"))
)
_TOUCH = Statement(
    update(_TABLE)
    .where(_C.token_digest == bindparam("digest"), _C.revoked_at.is_(None))
    .values(idle_expires_at=bindparam("idle"))
)
_CLEAR_RESULT = Statement(
    update(_TABLE)
    .where(_C.id == bindparam("token_id"), _C.rotation_result.is_not(None))
    .values(rotation_result=None)
)
_REVOKE_FAMILY = Statement(
    update(_TABLE)
    .where(_C.family_id == bindparam("family"), _C.revoked_at.is_(None))
    .values(revoked_at=bindparam("at"), rotation_result=None)
)


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
        amr=tuple(params.get("amr") or ()),
    )


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
        row = (await self._execute(_BY_DIGEST, {"digest": token_digest(token)})).first()
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
        if new.amr:
            params["amr"] = list(new.amr)
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
        await self._execute(_INSERT, values)
        return _to_core(cast(Any, SimpleNamespace(**values)), None)

    async def rotate(self, token: str, *, now: float, result: bytes | None) -> bool:
        sealed = None if result is None else self.sealer.seal(result)
        params = {"digest": token_digest(token), "at": now, "result": sealed}
        return (await self._execute(_ROTATE, params)).rowcount == 1

    async def touch(self, token: str, *, idle_expires_at: float) -> None:
        await self._execute(_TOUCH, {"digest": token_digest(token), "idle": idle_expires_at})

    async def clear_result(self, token_id: str) -> None:
        await self._execute(_CLEAR_RESULT, {"token_id": token_id})

    async def revoke_family(self, family_id: str, *, now: float) -> int:
        return (await self._execute(_REVOKE_FAMILY, {"family": family_id, "at": now})).rowcount

    async def _execute(self, statement: Statement, params: dict[str, Any]) -> Outcome:
        # On the driver itself (storage/driver_sql.py), inside the session's transaction.
        return await execute(self.session, statement, params)
