"""The second factor where login meets storage (the rules are core/mfa.py's).

    owed_factor      the confirmed TOTP method a user must answer for, or None
    issue_challenge  after a good password: a signed challenge bound to a client or browser
    open_challenge   verify one (signature, audience, expiry, binding), or InvalidToken
    accept_code      the code matches a fresh step of the factor's secret, and that step is
                     spent in the same statement that checks it (two racing requests with one
                     code: one wins)

Used by the hosted login page (web/mfa.py) and the password and mfa-otp grants.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.mfa import (
    TOTP_SECRET,
    TOTP_TYPE,
    Challenge,
    challenge_audience,
    matching_step,
    new_challenge,
    read_challenge,
    spent_mark,
    step_start,
)
from keystead.deps import AppState
from keystead.errors import RecordNotFound
from keystead.storage.keys import keyring, verify_token
from keystead.storage.repositories.authentication_methods import (
    AuthenticationMethod,
    SqlAuthenticationMethods,
)


def _methods(state: AppState, session: AsyncSession) -> SqlAuthenticationMethods:
    return SqlAuthenticationMethods(session, state.clock, state.sealer)


async def owed_factor(
    state: AppState, session: AsyncSession, user_id: str
) -> AuthenticationMethod | None:
    return await _methods(state, session).first_confirmed(user_id, TOTP_TYPE)


async def issue_challenge(
    state: AppState,
    *,
    user_id: str,
    method_id: str,
    bound_to: str,
    extra: Mapping[str, Any] | None = None,
) -> str:
    return new_challenge(
        await keyring(state),
        issuer=state.settings.issuer,
        user_id=user_id,
        method_id=method_id,
        bound_to=bound_to,
        now=state.clock.now(),
        extra=extra,
    )


async def open_challenge(state: AppState, token: str, *, bound_to: str) -> Challenge:
    claims = await verify_token(state, token, audience=challenge_audience(state.settings.issuer))
    return read_challenge(claims, bound_to=bound_to)


async def accept_code(
    state: AppState, session: AsyncSession, challenge: Challenge, code: str
) -> bool:
    methods = _methods(state, session)
    method = await methods.find(challenge.user_id, challenge.method_id)
    if method is None or method.type != TOTP_TYPE or not method.confirmed:
        return False  # removed, or no longer confirmed, since the password step
    try:
        secret = await methods.secret(challenge.user_id, challenge.method_id, TOTP_SECRET)
    except RecordNotFound:  # removed in between
        return False
    now = state.clock.now()
    step = matching_step(secret, code, now) if secret else None
    if step is None:
        return False
    return await methods.spend(
        challenge.user_id,
        challenge.method_id,
        fresh_before=step_start(step),
        mark=spent_mark(step, now),
    )
