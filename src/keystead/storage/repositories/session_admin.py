"""Sessions and refresh tokens as the Management API sees them (contract §10.8, §9.2).

Reads and revocations for administrators, beside the stores the login and token endpoints use
(sessions.py, refresh_tokens.py). A refresh-token family (one original grant and its rotations)
is one item: its public id is that of its newest token, and any id of the family finds it, so an
id read before a rotation still names the grant. Revoking marks every token of the family, as
reuse detection does; a login session ends by deleting its row, as logout does.

Tokens are found through the indexed `user_id` and `family_id` columns; their `sid` lives in the
JSON `params` and is matched here rather than in SQL (a user has few tokens).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.sessions import IDLE_TIMEOUT, LoginSession
from keystead.storage.models import LoginSessionRow, RefreshTokenRow

_SESSIONS = cast(Table, LoginSessionRow.__table__)
_S = _SESSIONS.c
_TOKENS = cast(Table, RefreshTokenRow.__table__)
_T = _TOKENS.c
# Never the digest nor the kept rotation answer: nothing here can leak a token.
_TOKEN_COLUMNS = (
    _T.id, _T.family_id, _T.client_id, _T.user_id, _T.params, _T.created_at,
    _T.family_expires_at, _T.idle_expires_at, _T.rotated_at, _T.revoked_at, _T.device_name,
)  # fmt: skip
_SESSION_COLUMNS = (
    _S.sid, _S.user_id, _S.authenticated_at, _S.created_at, _S.last_seen_at, _S.expires_at,
    _S.ip, _S.user_agent,
)  # fmt: skip


@dataclass(frozen=True)
class TokenFamily:
    """One live refresh-token grant: what GET /refresh-tokens/{id} describes."""

    id: str  # the newest token's public id
    family_id: str
    user_id: str
    client_id: str
    sid: str | None
    scope: tuple[str, ...]
    audience: str | None
    created_at: float  # the grant's first token
    last_exchanged_at: float | None  # the newest token's issue, when the family has rotated
    expires_at: float | None
    idle_expires_at: float | None
    initial_user_agent: str | None
    last_user_agent: str | None


def session_idle_expiry(found: LoginSession) -> float:
    return min(found.last_seen_at + IDLE_TIMEOUT, found.expires_at)


def _session(row: Any) -> LoginSession:
    return LoginSession(
        sid=row.sid,
        user_id=row.user_id,
        authenticated_at=row.authenticated_at,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
    )


def _families(rows: Iterable[Any], now: float) -> list[TokenFamily]:
    """The live families among `rows` (all tokens of each), oldest grant first."""
    by_family: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_family[row.family_id].append(row)
    found = [f for f in (_family(tokens, now) for tokens in by_family.values()) if f is not None]
    found.sort(key=lambda f: (f.created_at, f.id))
    return found


def _family(tokens: list[Any], now: float) -> TokenFamily | None:
    if any(t.revoked_at is not None for t in tokens):
        return None  # revocation marks the whole family
    # Newest first; at one instant (a fixed clock, a fast rotation) the unrotated child wins.
    tokens = sorted(tokens, key=lambda t: (-t.created_at, t.rotated_at is not None, t.id))
    newest, first = tokens[0], tokens[-1]
    for limit in (newest.family_expires_at, newest.idle_expires_at):
        if limit is not None and limit <= now:
            return None
    params: dict[str, Any] = newest.params or {}
    return TokenFamily(
        id=newest.id,
        family_id=newest.family_id,
        user_id=newest.user_id,
        client_id=newest.client_id,
        sid=params.get("sid"),
        scope=tuple(params.get("scope") or ()),
        audience=params.get("audience"),
        created_at=first.created_at,
        last_exchanged_at=newest.created_at if len(tokens) > 1 else None,
        expires_at=newest.family_expires_at,
        idle_expires_at=newest.idle_expires_at,
        initial_user_agent=first.device_name,
        last_user_agent=newest.device_name,
    )


@dataclass
class SqlSessionAdmin:
    session: AsyncSession
    clock: Clock

    # --- login sessions -------------------------------------------------------------------------

    async def find_session(self, sid: str) -> LoginSession | None:
        """The live session with this public id; None when unknown, expired or idle too long."""
        row = (await self.session.execute(select(*_SESSION_COLUMNS).where(_S.sid == sid))).first()
        if row is None:
            return None
        found = _session(row)
        return None if found.is_expired(self.clock.now()) else found

    async def user_sessions(self, user_id: str) -> list[LoginSession]:
        """A user's live sessions, oldest first."""
        rows = await self.session.execute(
            select(*_SESSION_COLUMNS).where(_S.user_id == user_id).order_by(_S.created_at, _S.sid)
        )
        now = self.clock.now()
        return [s for s in map(_session, rows) if not s.is_expired(now)]

    async def delete_session(self, sid: str) -> str | None:
        """End a session, live or expired; whose it was, or None when there was none."""
        user_id = await self.session.scalar(select(_S.user_id).where(_S.sid == sid))
        if user_id is not None:
            await self.session.execute(delete(_SESSIONS).where(_S.sid == sid))
        return user_id

    async def delete_user_sessions(self, user_id: str) -> int:
        result = await self.session.execute(delete(_SESSIONS).where(_S.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def session_clients(self, user_id: str) -> dict[str, list[str]]:
        """sid → the applications given live refresh tokens under it, in order of first grant."""
        clients: dict[str, list[str]] = defaultdict(list)
        for family in await self.user_token_families(user_id):
            if family.sid is not None and family.client_id not in clients[family.sid]:
                clients[family.sid].append(family.client_id)
        return clients

    # --- refresh tokens -------------------------------------------------------------------------

    async def find_token_family(self, token_id: str) -> TokenFamily | None:
        """The live family holding the token with this public id (any of its tokens)."""
        family_id = await self.session.scalar(select(_T.family_id).where(_T.id == token_id))
        if family_id is None:
            return None
        rows = await self.session.execute(select(*_TOKEN_COLUMNS).where(_T.family_id == family_id))
        found = _families(rows, self.clock.now())
        return found[0] if found else None

    async def user_token_families(self, user_id: str) -> list[TokenFamily]:
        """A user's live refresh-token families, oldest grant first."""
        rows = await self.session.execute(select(*_TOKEN_COLUMNS).where(_T.user_id == user_id))
        return _families(rows, self.clock.now())

    async def session_token_families(self, user_id: str, sid: str) -> list[TokenFamily]:
        return [f for f in await self.user_token_families(user_id) if f.sid == sid]

    async def revoke_families(self, family_ids: Sequence[str]) -> int:
        """Revoke every token of these families (kept rotation answers dropped); tokens marked."""
        if not family_ids:
            return 0
        result = await self.session.execute(
            update(_TOKENS)
            .where(_T.family_id.in_(list(family_ids)), _T.revoked_at.is_(None))
            .values(revoked_at=self.clock.now(), rotation_result=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def revoke_user_tokens(self, user_id: str) -> int:
        """Revoke every refresh token of a user, live or not."""
        result = await self.session.execute(
            update(_TOKENS)
            .where(_T.user_id == user_id, _T.revoked_at.is_(None))
            .values(revoked_at=self.clock.now(), rotation_result=None)
        )
        return int(getattr(result, "rowcount", 0) or 0)
