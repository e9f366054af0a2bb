"""Authorization codes (contract §2.2 step 9, §3.2): stored by digest, redeemed exactly once.

Single use is one conditional UPDATE (`… WHERE code_digest = ? AND used_at IS NULL`): the
database lets exactly one of two concurrent exchanges change the row (PostgreSQL re-checks the
WHERE after the row lock; SQLite serialises writers), and the other sees rowcount 0 (CD-01).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.codes import AuthorizationCode, ConsumeResult
from keystead.core.tokens import new_opaque_token, token_digest
from keystead.storage.driver_sql import Statement, execute
from keystead.storage.models import AuthorizationCodeRow

_TABLE = cast(Table, AuthorizationCodeRow.__table__)
# Built once: constructing a statement per request costs more than running it.
_REDEEM = Statement(
    update(_TABLE)
    .where(
        _TABLE.c.code_digest == bindparam("digest"),
        _TABLE.c.used_at.is_(None),
        _TABLE.c.expires_at > bindparam("now"),
    )
    .values(used_at=bindparam("now"))
)
_BY_DIGEST = Statement(select(_TABLE).where(_TABLE.c.code_digest == bindparam("digest")))
# Issued codes are 43 characters; a longer "code" is not one of ours and is not hashed.
_MAX_CODE = 100


def _params(code: AuthorizationCode) -> dict[str, Any]:
    params: dict[str, Any] = {
        "redirect_uri": code.redirect_uri,
        "scope": list(code.scope),
        "audience": code.audience,
        "nonce": code.nonce,
        "code_challenge": code.code_challenge,
        "code_challenge_method": code.code_challenge_method,
        "auth_time": code.auth_time,
        "sid": code.sid,
    }
    if code.amr:
        params["amr"] = list(code.amr)
    return params


def to_code(row: AuthorizationCodeRow) -> AuthorizationCode:
    p = row.params or {}
    return AuthorizationCode(
        client_id=row.client_id,
        user_id=row.user_id,
        redirect_uri=p.get("redirect_uri"),
        scope=tuple(p.get("scope") or ()),
        audience=p.get("audience"),
        nonce=p.get("nonce"),
        code_challenge=p.get("code_challenge"),
        code_challenge_method=p.get("code_challenge_method"),
        auth_time=int(p.get("auth_time") or 0),
        sid=str(p.get("sid") or ""),
        family_id=row.family_id or "",
        expires_at=row.expires_at,
        amr=tuple(p.get("amr") or ()),
    )


@dataclass
class SqlCodes:
    session: AsyncSession
    clock: Clock

    async def create(self, code: AuthorizationCode) -> str:
        """Store `code`; returns the opaque value for the redirect (only its digest is kept)."""
        value = new_opaque_token()
        self.session.add(
            AuthorizationCodeRow(
                code_digest=token_digest(value),
                client_id=code.client_id,
                user_id=code.user_id,
                params=_params(code),
                expires_at=code.expires_at,
                family_id=code.family_id,
            )
        )
        await self.session.flush()
        return value

    async def consume(self, code: str) -> ConsumeResult:
        """Redeem `code` once. A second redemption returns the stored code with `replayed`, so
        the caller can revoke the refresh-token family the first one started; an unknown or
        expired code returns `code=None`."""
        if not code or len(code) > _MAX_CODE:
            return ConsumeResult(None)
        digest = token_digest(code)
        now = self.clock.now()
        # On the driver itself (storage/driver_sql.py): the token endpoint pays no ORM cost.
        won = (await execute(self.session, _REDEEM, {"digest": digest, "now": now})).rowcount == 1
        row = (await execute(self.session, _BY_DIGEST, {"digest": digest})).first()
        if row is None:
            return ConsumeResult(None)
        if won:
            return ConsumeResult(to_code(row))
        if row.used_at is not None:
            return ConsumeResult(to_code(row), replayed=True)
        return ConsumeResult(None)  # expired, never used
