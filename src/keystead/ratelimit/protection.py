"""Attack protection at the password checks (security AT-01, AT-03; rules in core/bruteforce.py).

    login_verdict            before any password is checked: pair blocked? IP throttled?
    note_login_failure       after a wrong password or an unknown identifier, alike: count the
                             pair and the IP; log `limit_wc` / `limit_mu` when a block starts
    forget_login_failures    after a successful login: the run of failures is over
    login_verdict(code=True), note_wrong_code, forget_wrong_codes
                             the same for a second factor's codes, which also count against
                             the identifier from every address at once (ANY_ADDRESS)
    clear_user_blocks        unblock every pair of a user (admin, password reset)
    signup_buckets           suspicious-IP signup bucket for the limiter (50 a day per IP)

Used by the hosted login page (web/login.py) and the password grants (oauth/grants/password.py).
"""

from __future__ import annotations

from typing import Any, Final

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

# A code has 10**6 values, three of them valid at a time: guesses spread over many addresses
# must not each get a fresh (identifier, IP) budget. Wrong codes also count for the identifier
# under this pseudo-address, whatever the connection says; only an accepted code clears it, and
# unblocking the user (Management API, password reset) clears it with the others.
ANY_ADDRESS: Final = "*"


class LoginRefused(TooManyAttempts):
    """429 too_many_attempts (§12.1), with Retry-After while an IP is throttled."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.message, detail=f"attack protection: {verdict.reason}")
        self.verdict = verdict
        self.headers = {"Retry-After": str(verdict.retry_after)} if verdict.retry_after else {}


async def login_verdict(
    state: AppState, ip: str | None, username: str, *, code: bool = False
) -> Verdict:
    """Before a password (or, `code`, a second factor's code) is checked: is the pair blocked,
    the IP throttled, or (codes) the identifier blocked from every address?"""
    policy = policy_of(state)
    if policy.is_exempt(ip):
        return ALLOWED
    key = identifier_key(username) if policy.max_attempts else None
    async with state.transaction() as session:
        blocks = SqlUserBlocks(session)
        pair = await blocks.pair(key, ip) if key else None
        address = await blocks.ip(ip) if policy.login_ip is not None else None
        everywhere = await blocks.pair(key, ANY_ADDRESS) if key and code else None
    now = state.clock.now()
    verdict = policy.verdict(pair, address, now, pair_protected=True)
    if verdict.allowed and everywhere is not None:
        return policy.verdict(everywhere, None, now, pair_protected=True)
    return verdict


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
        what = "failed logins from this IP address"
        await _count_pair(state, session, key, ip, connection, what, event)
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


async def forget_login_failures(
    session: AsyncSession, ip: str | None, username: str, connection: str
) -> None:
    key = identifier_key(username)
    if key is not None:
        await SqlUserBlocks(session).forget_pair(key, ip, connection)


async def clear_user_blocks(session: AsyncSession, user: User) -> int:
    return await SqlUserBlocks(session).clear(
        user_identifiers(user.email, user.username, user.phone_number)
    )


def signup_buckets(policy: BruteForcePolicy, ip: str | None) -> list[Bucket]:
    if policy.signup_ip is None or policy.is_exempt(ip):
        return []
    # The IP is the key's last segment, so its colons cannot run into another segment.
    return [Bucket(f"bf:signup:{(ip or '')[:64]}", policy.signup_ip, "suspiciousIp.signup")]


async def note_wrong_code(
    state: AppState,
    session: AsyncSession,
    *,
    ip: str | None,
    username: str,
    connection: Connection,
    user: User,
    client_id: str | None,
    user_agent: str | None = None,
) -> None:
    """Count a wrong or replayed code as a failed login, and for the identifier from every
    address (the caller's transaction, which must commit)."""
    await note_login_failure(
        state, session, ip=ip, username=username, connection=connection, user=user,
        client_id=client_id, user_agent=user_agent,
    )  # fmt: skip
    policy = policy_of(state)
    key = identifier_key(username)
    if key is None or not policy.max_attempts or policy.is_exempt(ip):
        return
    event = {"user_id": user.user_id, "client_id": client_id, "ip": ip,
             "user_agent": user_agent, "connection": connection.name}  # fmt: skip
    what = "wrong codes from any address"
    await _count_pair(state, session, key, ANY_ADDRESS, connection, what, event)


async def _count_pair(
    state: AppState,
    session: AsyncSession,
    key: str,
    ip: str | None,
    connection: Connection,
    what: str,
    event: dict[str, Any],
) -> None:
    """One more failure for (key, ip); `limit_wc` logged when it starts a block."""
    now = state.clock.now()
    blocks = SqlUserBlocks(session)
    count, blocked = policy_of(state).after_failure(
        await blocks.locked_pair(key, ip, connection.name, now), now
    )
    await blocks.save_pair(key, ip, count, now)
    if blocked:
        await state.logs(session).record(
            "limit_wc",
            description=f"Blocked after {count.failures} {what}",
            user_name=key,
            details={"failures": count.failures},
            **event,
        )


async def forget_wrong_codes(
    session: AsyncSession, ip: str | None, username: str, connection: str
) -> None:
    """An accepted code: both runs of failures end."""
    await forget_login_failures(session, ip, username, connection)
    key = identifier_key(username)
    if key is not None:
        await SqlUserBlocks(session).forget_pair(key, ANY_ADDRESS, connection)
