"""Signing keys at rest: created on first start, turned by `keystead keys rotate` (contract §1.2).

Concurrency: every change runs in one transaction that first takes a write lock on the table
(PostgreSQL: LOCK TABLE … SHARE ROW EXCLUSIVE; SQLite: a no-op UPDATE, which takes the database's
write lock) and only then reads, so two processes starting at once create one key pair.

Running processes: `keyring(state)` re-reads the (kid, state) pairs at most every
REFRESH_INTERVAL seconds and reloads the ring when another process rotated, so a rotation reaches
every worker within a minute; `verify_token` re-checks sooner on an unknown kid, but at most every
UNKNOWN_KID_RECHECK seconds. Because `next` is published, and loaded by every worker, before it
signs, tokens signed right after a rotation verify everywhere at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.keys import (
    PUBLISHED_STATES,
    KeyRing,
    KeyState,
    SigningKey,
    UnknownKey,
    generate_signing_key,
)
from keystead.core.sealing import Sealer
from keystead.deps import AppState
from keystead.errors import ConfigError, KeysteadError
from keystead.storage.models import SigningKeyRow

log = logging.getLogger("keystead")

REFRESH_INTERVAL = 60.0  # seconds between checks for a rotation made by another process
UNKNOWN_KID_RECHECK = 5.0  # an unknown kid re-checks sooner, but never more often than this
_CHECKED_AT = "keys.checked_at"  # key in AppState.extras
_ATTEMPTS = 5
T = TypeVar("T")


async def load_keyring(state: AppState) -> KeyRing:
    """Load the published keys, creating current and next on first start; sets `state.keys`."""
    sealer = Sealer(state.settings.secret_key)
    if not sealer.encrypts:
        log.warning(
            "WARNING: signing keys are stored unencrypted; set KEYSTEAD_SECRET_KEY to encrypt them"
        )
    async with state.sessions() as session:
        rows = await _published_rows(session)
    if not {"current", "next"} <= {row.state for row in rows}:
        rows = await _locked(state, lambda session: _ensure_keys(session, state, sealer))
    if sealer.encrypts and (clear := [row.kid for row in rows if not row.encrypted]):
        log.warning(
            "signing keys %s are stored unencrypted; rotate twice to replace them", ", ".join(clear)
        )
    return _install(state, _build(rows, sealer))


async def rotate_keys(state: AppState, *, force: bool = False) -> KeyRing:
    """next → current, current → previous, previous → retired, and a new next; sets `state.keys`.

    Refuses (ConfigError) to retire a previous key that may still have signed unexpired tokens
    (the longest token lifetime plus one refresh interval since it stopped signing), unless
    `force`: the way to drop a compromised key.
    """
    sealer = Sealer(state.settings.secret_key)

    async def rotate(session: AsyncSession) -> list[SigningKeyRow]:
        now = state.clock.now()
        by_state = {row.state: row for row in await _ensure_keys(session, state, sealer)}
        previous = by_state.get("previous")
        if previous is not None and not force:
            lifetime = max(state.settings.access_token_ttl, state.settings.id_token_ttl)
            stopped = previous.rotated_at or previous.created_at
            if now < stopped + lifetime + REFRESH_INTERVAL:
                raise ConfigError(
                    f"signing key {previous.kid} may still have signed unexpired tokens; "
                    f"rotate again in {int(stopped + lifetime + REFRESH_INTERVAL - now) + 1} s "
                    "or run `keystead keys rotate --force` (tokens it signed stop verifying)"
                )
        if previous is not None:
            _move(previous, "retired", now)
        _move(by_state["current"], "previous", now)
        _move(by_state["next"], "current", now)
        new_next = _new_row("next", now, sealer)
        session.add(new_next)
        await session.flush()
        return [by_state["current"], by_state["next"], new_next]

    rows = await _locked(state, rotate)
    ring = _install(state, _build(rows, sealer, known=state.keys))
    log.info(
        "signing keys rotated: current %s, next %s", ring.current.kid, ring.next and ring.next.kid
    )
    return ring


async def list_keys(state: AppState) -> list[dict[str, Any]]:
    """Every stored key, newest first, without private material (`keystead keys list`)."""
    async with state.sessions() as session:
        rows = (
            await session.scalars(select(SigningKeyRow).order_by(SigningKeyRow.created_at.desc()))
        ).all()
    return [
        {
            "kid": row.kid,
            "alg": row.alg,
            "state": row.state,
            "created_at": row.created_at,
            "rotated_at": row.rotated_at,
            "encrypted": row.encrypted,
        }
        for row in rows
    ]


async def keyring(state: AppState) -> KeyRing:
    """The process's ring, re-checked against the database at most every REFRESH_INTERVAL s."""
    ring = cast(KeyRing, state.keys)
    if state.clock.now() - state.extras.get(_CHECKED_AT, 0.0) < REFRESH_INTERVAL:
        return ring
    return await refresh_keyring(state)


async def verify_token(
    state: AppState,
    token: str,
    *,
    audience: str | Sequence[str] | None = None,
    leeway: float = 0,
) -> dict[str, Any]:
    """`KeyRing.verify` against our issuer and clock; an unknown kid triggers one reload, at most
    every UNKNOWN_KID_RECHECK seconds, so a flood of made-up kids cannot flood the database."""
    ring = await keyring(state)
    issuer = state.settings.issuer
    try:
        return ring.verify(
            token, issuer=issuer, audience=audience, leeway=leeway, now=state.clock.now()
        )
    except UnknownKey:
        if state.clock.now() - state.extras.get(_CHECKED_AT, 0.0) < UNKNOWN_KID_RECHECK:
            raise
    ring = await refresh_keyring(state)
    return ring.verify(
        token, issuer=issuer, audience=audience, leeway=leeway, now=state.clock.now()
    )


async def refresh_keyring(state: AppState) -> KeyRing:
    """Reload the ring if another process rotated; on any failure keep serving the old one."""
    ring = cast(KeyRing, state.keys)
    state.extras[_CHECKED_AT] = state.clock.now()  # first, so concurrent callers don't pile up
    try:
        async with state.sessions() as session:
            pairs = (
                await session.execute(
                    select(SigningKeyRow.kid, SigningKeyRow.state).where(
                        SigningKeyRow.state.in_(PUBLISHED_STATES)
                    )
                )
            ).all()
            if frozenset((kid, key_state) for kid, key_state in pairs) == ring.fingerprint:
                return ring
            rows = await _published_rows(session)
        new = _build(rows, Sealer(state.settings.secret_key), known=ring)
    except (SQLAlchemyError, OSError, KeysteadError) as exc:
        log.warning("could not reload signing keys, keeping the loaded ones: %s", exc)
        return ring
    log.info("signing keys reloaded: current %s", new.current.kid)
    state.keys = new
    return new


# --- internals ---------------------------------------------------------------------------------


def _install(state: AppState, ring: KeyRing) -> KeyRing:
    state.keys = ring
    state.extras[_CHECKED_AT] = state.clock.now()
    return ring


async def _published_rows(session: AsyncSession) -> list[SigningKeyRow]:
    query = select(SigningKeyRow).where(SigningKeyRow.state.in_(PUBLISHED_STATES))
    return list((await session.scalars(query)).all())


async def _locked(state: AppState, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run `work` in a transaction holding the signing_keys write lock; retry on conflicts."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            async with state.transaction() as session:
                if session.get_bind().dialect.name == "postgresql":
                    # Conflicts with itself, not with plain reads: writers queue, readers don't.
                    await session.execute(
                        text("LOCK TABLE signing_keys IN SHARE ROW EXCLUSIVE MODE")
                    )
                else:
                    # SQLite: the first write of a transaction takes the database write lock
                    # (waiting out busy_timeout), so the reads below see the latest commit.
                    await session.execute(text("UPDATE signing_keys SET kid = kid WHERE 0 = 1"))
                return await work(session)
        except (IntegrityError, OperationalError) as exc:
            if attempt == _ATTEMPTS:
                raise
            log.info("signing keys busy (%s), retrying", type(exc).__name__)
            await asyncio.sleep(0.05 * attempt)
    raise AssertionError("unreachable")


async def _ensure_keys(
    session: AsyncSession, state: AppState, sealer: Sealer
) -> list[SigningKeyRow]:
    """Inside the locked transaction: make sure a current and a next key exist."""
    rows = await _published_rows(session)
    by_state = {row.state: row for row in rows}
    now = state.clock.now()
    if "current" not in by_state:
        if "next" in by_state:  # e.g. after a current key was deleted by hand
            current = by_state.pop("next")
            _move(current, "current", now)
        else:
            current = _new_row("current", now, sealer)
            session.add(current)
            log.info("created signing key %s", current.kid)
        by_state["current"] = current
    if "next" not in by_state:
        by_state["next"] = _new_row("next", now, sealer)
        session.add(by_state["next"])
    await session.flush()
    return list(by_state.values())


def _new_row(key_state: str, now: float, sealer: Sealer) -> SigningKeyRow:
    private_pem, cert_der, kid = generate_signing_key(now)
    return SigningKeyRow(
        kid=kid,
        alg="RS256",
        state=key_state,
        private_pem=sealer.seal(private_pem),
        encrypted=sealer.encrypts,
        cert_der=cert_der,
        created_at=now,
        rotated_at=None,
    )


def _move(row: SigningKeyRow, key_state: str, now: float) -> None:
    row.state = key_state
    row.rotated_at = now


def _build(
    rows: Sequence[SigningKeyRow], sealer: Sealer, *, known: KeyRing | None = None
) -> KeyRing:
    """Rows → KeyRing, reusing already parsed keys; ConfigError when a key cannot be opened."""
    keys = []
    for row in rows:
        key_state = cast(KeyState, row.state)
        loaded = known.get(row.kid) if known is not None else None
        if loaded is not None:
            keys.append(loaded.with_state(key_state))
            continue
        private_pem = sealer.open(row.private_pem, encrypted=row.encrypted)  # ConfigError
        try:
            key = SigningKey.load(
                kid=row.kid,
                state=key_state,
                private_pem=private_pem,
                cert_der=row.cert_der,
                created_at=row.created_at,
            )
        except (ValueError, TypeError) as exc:  # not PEM, not RSA, passphrase-protected
            raise ConfigError(f"signing key {row.kid} cannot be loaded: {exc}") from None
        keys.append(key)
    try:
        return KeyRing(keys)
    except ValueError as exc:
        raise ConfigError(f"stored signing keys are inconsistent: {exc}") from None
