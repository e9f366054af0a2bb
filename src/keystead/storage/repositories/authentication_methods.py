"""Authentication methods (contract §9.2): MFA factors and passkeys of a user.

Guardian enrollments (GET /users/{id}/enrollments) are a view of these rows. `data` holds the
public properties (phone_number, email, key_id, …) under `props`, and secrets (totp_secret)
sealed under `secrets`: nothing in `secrets` ever leaves through `AuthenticationMethod`; only
`secret()` opens one, for the factor's own check at login.
"""

from __future__ import annotations

import base64
import secrets as random
import string
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.sealing import Sealer
from keystead.errors import ConfigError, RecordNotFound
from keystead.storage.models import AuthenticationMethodRow
from keystead.storage.repositories._common import doc, paged

NOT_FOUND: Final = "The authentication method could not be found."
_ALNUM: Final = string.ascii_letters + string.digits
_T = AuthenticationMethodRow


def new_method_id(type: str) -> str:
    """Auth0's form, `{type}|dev_{random}`: the type stays readable in logs and paths."""
    return f"{type}|dev_" + "".join(random.choice(_ALNUM) for _ in range(20))


@dataclass(frozen=True)
class AuthenticationMethod:
    id: str
    user_id: str
    type: str
    confirmed: bool
    created_at: float
    name: str | None = None
    last_auth_at: float | None = None
    properties: Mapping[str, Any] = field(default_factory=dict)  # public ones only
    has_secrets: frozenset[str] = frozenset()  # names of stored secrets, never their values


def _to_core(row: AuthenticationMethodRow) -> AuthenticationMethod:
    data = row.data or {}
    return AuthenticationMethod(
        id=row.id,
        user_id=row.user_id,
        type=row.type,
        confirmed=row.confirmed,
        created_at=row.created_at,
        name=row.name,
        last_auth_at=row.last_auth_at,
        properties=doc(data.get("props") or {}),
        has_secrets=frozenset(data.get("secrets") or {}),
    )


@dataclass
class SqlAuthenticationMethods:
    session: AsyncSession
    clock: Clock
    sealer: Sealer

    def _seal(self, values: Mapping[str, str]) -> dict[str, Any]:
        return {
            name: {
                "value": base64.b64encode(self.sealer.seal(value.encode())).decode(),
                "encrypted": self.sealer.encrypts,
            }
            for name, value in values.items()
        }

    async def _row(self, user_id: str, method_id: str) -> AuthenticationMethodRow:
        row = await self.session.get(_T, method_id)
        if row is None or row.user_id != user_id:
            raise RecordNotFound(NOT_FOUND)
        return row

    async def list(
        self, user_id: str, *, types: Iterable[str] | None = None, offset: int = 0,
        limit: int | None = None,
    ) -> Sequence[AuthenticationMethod]:  # fmt: skip
        stmt = select(_T).where(_T.user_id == user_id).order_by(_T.created_at, _T.id)
        if types is not None:
            stmt = stmt.where(_T.type.in_(list(types)))
        return [_to_core(row) for row in await self.session.scalars(paged(stmt, offset, limit))]

    async def count(self, user_id: str) -> int:
        stmt = select(func.count()).select_from(_T).where(_T.user_id == user_id)
        return int(await self.session.scalar(stmt) or 0)

    async def find(self, user_id: str, method_id: str) -> AuthenticationMethod | None:
        row = await self.session.get(_T, method_id)
        return _to_core(row) if row is not None and row.user_id == user_id else None

    async def create(
        self,
        user_id: str,
        type: str,
        *,
        name: str | None = None,
        confirmed: bool = True,
        properties: Mapping[str, Any] | None = None,
        secrets: Mapping[str, str] | None = None,
    ) -> AuthenticationMethod:
        row = _T(
            id=new_method_id(type),
            user_id=user_id,
            type=type,
            confirmed=confirmed,
            name=name,
            data={"props": doc(dict(properties or {})), "secrets": self._seal(secrets or {})},
            created_at=self.clock.now(),
        )
        self.session.add(row)
        await self.session.flush()
        return _to_core(row)

    async def update(
        self, user_id: str, method_id: str, *, name: str | None = None,
        properties: Mapping[str, Any] | None = None, confirmed: bool | None = None,
    ) -> AuthenticationMethod:  # fmt: skip
        """Set `name`, `confirmed` and the given properties (a None value removes one)."""
        row = await self._row(user_id, method_id)
        if name is not None:
            row.name = name
        if confirmed is not None:
            row.confirmed = confirmed
        if properties:
            data = doc(row.data or {})
            props = data.setdefault("props", {})
            for key, value in properties.items():
                if value is None:
                    props.pop(key, None)
                else:
                    props[key] = doc(value)
            row.data = data
        await self.session.flush()
        return _to_core(row)

    async def record_use(self, user_id: str, method_id: str) -> None:
        """A successful challenge: `last_auth_at` now."""
        row = await self._row(user_id, method_id)
        row.last_auth_at = self.clock.now()
        await self.session.flush()

    async def first_confirmed(self, user_id: str, type: str) -> AuthenticationMethod | None:
        """The user's oldest confirmed method of `type` (the factor a login asks for)."""
        stmt = (
            select(_T)
            .where(_T.user_id == user_id, _T.type == type, _T.confirmed.is_(True))
            .order_by(_T.created_at, _T.id)
            .limit(1)
        )
        row = await self.session.scalar(stmt)
        return _to_core(row) if row is not None else None

    async def spend(
        self, user_id: str, method_id: str, *, fresh_before: float, mark: float
    ) -> bool:
        """Compare-and-set for one-time codes: `last_auth_at` becomes `mark` only if it is unset
        or earlier than `fresh_before`. False: the code was spent already (or the method is gone),
        also when two requests race with the same code."""
        stmt = (
            update(_T)
            .where(
                _T.id == method_id,
                _T.user_id == user_id,
                or_(_T.last_auth_at.is_(None), _T.last_auth_at < fresh_before),
            )
            .values(last_auth_at=mark)
            .execution_options(synchronize_session=False)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount == 1)

    async def secret(self, user_id: str, method_id: str, name: str) -> str | None:
        """One stored secret in clear (e.g. `totp_secret` to check a code), or None."""
        row = await self._row(user_id, method_id)
        stored = ((row.data or {}).get("secrets") or {}).get(name)
        if not isinstance(stored, dict):
            return None
        try:
            raw = base64.b64decode(stored["value"])
            return self.sealer.open(raw, encrypted=bool(stored.get("encrypted"))).decode()
        except (ConfigError, KeyError, ValueError):  # sealed under another key, or damaged
            return None

    async def delete(self, user_id: str, method_id: str) -> None:
        row = await self._row(user_id, method_id)
        await self.session.delete(row)
        await self.session.flush()

    async def delete_all(self, user_id: str, *, types: Iterable[str] | None = None) -> int:
        stmt = delete(_T).where(_T.user_id == user_id)
        if types is not None:
            stmt = stmt.where(_T.type.in_(list(types)))
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        self.session.expire_all()
        return int(getattr(result, "rowcount", 0) or 0)
