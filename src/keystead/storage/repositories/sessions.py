"""SSO sessions (contract §2.5): rows keyed by the SHA-256 of the cookie value, never the value."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.sessions import LoginSession, new_session_expiry
from keystead.core.tokens import new_opaque_token, token_digest
from keystead.storage.models import LoginSessionRow

# Cookie values are base64url of 32 bytes (43 characters); anything far longer is not ours and
# is not worth hashing.
_MAX_COOKIE = 100


@dataclass(frozen=True)
class StartedSession:
    cookie: str  # the value for the browser; shown once, stored only as a digest
    session: LoginSession


def to_session(row: LoginSessionRow) -> LoginSession:
    return LoginSession(
        sid=row.sid,
        user_id=row.user_id,
        authenticated_at=row.authenticated_at,
        created_at=row.created_at,
        last_seen_at=row.last_seen_at,
        expires_at=row.expires_at,
        ip=row.ip,
        user_agent=row.user_agent,
        amr=tuple(row.amr.split()) if row.amr else (),
    )


def _digest(cookie: str | None) -> bytes | None:
    if not cookie or len(cookie) > _MAX_COOKIE:
        return None
    return token_digest(cookie)


@dataclass
class SqlLoginSessions:
    session: AsyncSession
    clock: Clock

    async def create(
        self,
        user_id: str,
        *,
        ip: str | None = None,
        user_agent: str | None = None,
        amr: tuple[str, ...] = (),
    ) -> StartedSession:
        """A new session for a user who just gave credentials: new cookie value, new sid; `amr`
        the methods beyond the password the login used (("mfa",) after a code).

        The user's sessions past their absolute lifetime are dropped on the way, so rows do not
        pile up for users who log in often.
        """
        now = self.clock.now()
        await self.session.execute(
            delete(LoginSessionRow).where(
                LoginSessionRow.user_id == user_id, LoginSessionRow.expires_at <= now
            )
        )
        cookie = new_opaque_token()
        row = LoginSessionRow(
            id_digest=token_digest(cookie),
            sid=secrets.token_urlsafe(24),
            user_id=user_id,
            authenticated_at=now,
            created_at=now,
            last_seen_at=now,
            expires_at=new_session_expiry(now),
            ip=ip[:64] if ip else None,
            user_agent=user_agent[:512] if user_agent else None,
            amr=" ".join(amr) or None,
        )
        self.session.add(row)
        await self.session.flush()
        return StartedSession(cookie, to_session(row))

    async def get_by_cookie(self, cookie: str | None) -> LoginSession | None:
        """The live session behind `cookie`; None when unknown, expired or idle too long."""
        digest = _digest(cookie)
        if digest is None:
            return None
        row = await self.session.get(LoginSessionRow, digest)
        if row is None:
            return None
        found = to_session(row)
        return None if found.is_expired(self.clock.now()) else found

    async def touch(self, cookie: str | None) -> None:
        """Record use (the idle timeout counts from here); at most once a TOUCH_INTERVAL."""
        digest = _digest(cookie)
        if digest is None:
            return
        row = await self.session.get(LoginSessionRow, digest)
        now = self.clock.now()
        if row is not None and to_session(row).needs_touch(now):
            row.last_seen_at = now
            await self.session.flush()

    async def delete(self, cookie: str | None) -> LoginSession | None:
        """End the session behind `cookie`; returns it (for the log), or None if there was none."""
        digest = _digest(cookie)
        if digest is None:
            return None
        row = await self.session.get(LoginSessionRow, digest)
        if row is None:
            return None
        ended = to_session(row)
        await self.session.delete(row)
        await self.session.flush()
        return ended

    async def delete_for_user(self, user_id: str) -> int:
        """End every session of a user (blocked, deleted, password changed); returns how many."""
        result = await self.session.execute(
            delete(LoginSessionRow).where(LoginSessionRow.user_id == user_id)
        )
        self.session.expire_all()
        return int(result.rowcount or 0)  # type: ignore[attr-defined]

    async def list_for_user(self, user_id: str) -> list[LoginSession]:
        rows = await self.session.scalars(
            select(LoginSessionRow)
            .where(LoginSessionRow.user_id == user_id)
            .order_by(LoginSessionRow.created_at)
        )
        return [to_session(row) for row in rows]

    async def delete_expired(self) -> int:
        """Housekeeping: drop sessions past their absolute lifetime."""
        result = await self.session.execute(
            delete(LoginSessionRow).where(LoginSessionRow.expires_at <= self.clock.now())
        )
        return int(result.rowcount or 0)  # type: ignore[attr-defined]
