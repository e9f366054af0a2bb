"""Grant `http://auth0.com/oauth/grant-type/mfa-otp` (contract §3.5, §3.6): the second step of a
password-grant login whose user has a confirmed TOTP factor (core/mfa.py, mfa.py).

mfa_token (the challenge the password grant answered with, bound to this client) → brute-force
check for its (IP, username) → the user, reloaded: gone or blocked? → the code accepted and its
time step spent (a wrong or replayed code counts as a failed login, like a wrong password) → the
login recorded → the tokens the password grant would have issued for the audience, scopes and
realm it carried, with `amr: ["mfa"]`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from keystead.core.grants import MFA_OTP
from keystead.core.mfa import MFA_AMR, Challenge, client_binding
from keystead.core.refresh_tokens import USER_BLOCKED
from keystead.core.scopes import parse_scope
from keystead.errors import InvalidGrant, InvalidToken
from keystead.mfa import accept_code, open_challenge
from keystead.oauth.grants.user_login import (
    database_connection,
    end_user_ip,
    plan_user_tokens,
)
from keystead.oauth.issue import FailAfterCommit, TokenContext, TokenPlan, resolve_audience
from keystead.ratelimit.protection import (
    LoginRefused,
    forget_wrong_codes,
    login_verdict,
    note_wrong_code,
)
from keystead.storage.login_records import SqlLoginRecords
from keystead.storage.user_reads import find_user_in

MALFORMED_TOKEN = "Malformed mfa_token"
EXPIRED_TOKEN = "mfa_token is expired"
INVALID_CODE = "Invalid otp_code."
_EXPIRED = "token expired"  # core/keys.check_token_times: only after the signature verified


@dataclass(frozen=True)
class _Carried:
    """What the password step put in the challenge to issue the same tokens."""

    username: str
    realm: str
    audience: str | None
    scope: tuple[str, ...] | None


def _carried(extra: Mapping[str, Any]) -> _Carried:
    username, realm, audience = extra.get("username"), extra.get("realm"), extra.get("audience")
    if not (isinstance(username, str) and username and isinstance(realm, str) and realm):
        raise InvalidGrant(MALFORMED_TOKEN, detail="challenge without username or realm")
    if audience is not None and not isinstance(audience, str):
        raise InvalidGrant(MALFORMED_TOKEN, detail="challenge with a malformed audience")
    return _Carried(username, realm, audience, parse_scope(extra.get("scope")))


class MfaOtpGrant:
    """Auth0's MFA API grant for one-time passwords from an authenticator app."""

    grant_types: ClassVar[tuple[str, ...]] = (MFA_OTP,)
    success_event: ClassVar[str] = "seotpft"
    failure_event: ClassVar[str] = "feotpft"

    async def issue(self, ctx: TokenContext) -> TokenPlan:
        token = ctx.params.required("mfa_token")
        otp = ctx.params.required("otp")
        end_user_ip(ctx)
        challenge = await self._challenge(ctx, token)
        carried = _carried(challenge.extra)
        ctx.event["user_id"] = challenge.user_id
        ctx.event["connection"] = carried.realm
        verdict = await login_verdict(ctx.state, ctx.ip, carried.username, code=True)
        if not verdict.allowed:
            raise LoginRefused(verdict)
        connection = await database_connection(ctx, carried.realm)
        user = await find_user_in(ctx.session, challenge.user_id)
        if user is None:
            raise InvalidGrant(MALFORMED_TOKEN, detail="the user no longer exists")
        if user.blocked:
            raise InvalidGrant(USER_BLOCKED)
        if not await accept_code(ctx.state, ctx.session, challenge, otp):
            # Counted and logged in this transaction, which commits: the failed compare-and-set
            # changed nothing, but on SQLite it holds the write lock a second one would wait for.
            await note_wrong_code(
                ctx.state,
                ctx.session,
                ip=ctx.ip,
                username=carried.username,
                connection=connection,
                user=user,
                client_id=ctx.client.client_id,
                user_agent=ctx.user_agent,
            )
            raise FailAfterCommit(InvalidGrant(INVALID_CODE))
        await forget_wrong_codes(ctx.session, ctx.ip, carried.username, connection.name)
        await SqlLoginRecords(ctx.session).record_login(user.user_id, at=ctx.now, ip=ctx.ip)
        api = await resolve_audience(ctx, carried.audience)
        return await plan_user_tokens(ctx, user, api, carried.scope, amr=MFA_AMR)

    async def _challenge(self, ctx: TokenContext, token: str) -> Challenge:
        try:
            return await open_challenge(
                ctx.state, token, bound_to=client_binding(ctx.client.client_id)
            )
        except InvalidToken as exc:
            expired = exc.description == _EXPIRED
            raise InvalidGrant(
                EXPIRED_TOKEN if expired else MALFORMED_TOKEN, detail=exc.description
            ) from None
