"""Attack protection at the password checks (security AT-01, AT-03; rules in core/bruteforce.py).

    login_verdict            before any password is checked: pair blocked? IP throttled?
    note_login_failure       after a wrong password or an unknown identifier, alike: count the
                             pair and the IP; log `limit_wc` / `limit_mu` when a block starts
    forget_login_failures    after a successful login: the run of failures is over
    clear_user_blocks        unblock every pair of a user (admin, password reset)
    signup_buckets           suspicious-IP signup bucket for the limiter (50 a day per IP)

Used by the hosted login page (web/login.py) and the password grants (oauth/grants/password.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.bruteforce import (
    ALLOWED,
    BruteForcePolicy,
    Verdict,
    identifier_key,
    user_identifiers,
)
from keystead.core.ports import Connection
from keystead.core.ratelimit import Bucket
from keystead.core.users import User
from keystead.deps import AppState
from keystead.errors import TooManyAttempts
from keystead.ratelimit.wiring import policy_of
from keystead.storage.repositories.user_blocks import SqlUserBlocks


class LoginRefused(TooManyAttempts):
    """429 too_many_attempts (§12.1), with Retry-After while an IP is throttled."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message, detail=f"attack protection: {verdict.reason}")
        self.verdict = verdict
        self.headers = {"Retry-After": str(verdict.retry_after)} if verdict.retry_after else {}


async def login_verdict(state: AppState, ip: str | None, username: str) -> Verdict:
    policy = policy_of(state)
    if policy.is_exempt(ip):
        return ALLOWED
    key = identifier_key(username)
    async with state.transaction() as session:
        blocks = SqlUserBlocks(session)
        pair = await blocks.pair(key, ip) if key and policy.max_attempts else None
        address = await blocks.ip(ip) if policy.login_ip is not None else None
    return policy.verdict(pair, address, state.clock.now(), pair_protected=True)


def protected(connection: Connection) -> bool:
    """Auth0's per-connection switch, on unless the connection turns it off."""
    return connection.options.get("brute_force_protection", True) is not False


async def note_login_failure(
    state: AppState,
    session: AsyncSession,
    *,
    ip: str | None,
    username: str,
    connection: Connection,
    user: User | None,
    client_id: str | None,
    user_agent: str | None = None,
) -> None:
    """Count one failed login in `session` (the caller's transaction, which must commit)."""
    policy = policy_of(state)
    if policy.is_exempt(ip):
        return
    now = state.clock.now()
    blocks = SqlUserBlocks(session)
    event: dict[str, Any] = {
        "user_id": user.user_id if user is not None else None,
        "client_id": client_id,
        "ip": ip,
        "user_agent": user_agent,
        "connection": connection.name,
    }
    key = identifier_key(username)
    if key is not None and policy.max_attempts and protected(connection):
        count, blocked = policy.after_failure(
            await blocks.locked_pair(key, ip, connection.name, now), now
        )
        await blocks.save_pair(key, ip, count, now)
        if blocked:
            await state.logs(session).record(
                "limit_wc",
                description=f"Blocked after {count.failures} failed logins from this IP address",
                user_name=key,
                details={"failures": count.failures},
                **event,
            )
    if policy.login_ip is not None:
        address, throttled = policy.after_ip_failure(await blocks.locked_ip(ip, now), now)
        await blocks.save_ip(ip, address)
        if throttled:
            await state.logs(session).record(
                "limit_mu",
                description="Too many failed logins from this IP address across accounts",
                details={"failures": address.failures, "limit": str(policy.login_ip)},
                **{**event, "user_id": None},
            )


async def forget_login_failures(session: AsyncSession, ip: str | None, username: str) -> None:
    key = identifier_key(username)
    if key is not None:
        await SqlUserBlocks(session).forget_pair(key, ip)


async def clear_user_blocks(session: AsyncSession, user: User) -> int:
    return await SqlUserBlocks(session).clear(
        user_identifiers(user.email, user.username, user.phone_number)
    )


def signup_buckets(policy: BruteForcePolicy, ip: str | None) -> list[Bucket]:
    if policy.signup_ip is None or policy.is_exempt(ip):
        return []
    # The IP is the key's last segment, so its colons cannot run into another segment.
    return [Bucket(f"bf:signup:{(ip or '')[:64]}", policy.signup_ip, "suspiciousIp.signup")]
