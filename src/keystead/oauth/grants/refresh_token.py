"""Grant `refresh_token`: rotation, the reuse leeway and reuse detection (contract §3.3).

find by digest → judge (core/refresh_tokens.py)
  INVALID  403 "Unknown or invalid refresh token."
  REUSE    revoke the family, log `ferrt`, the same 403 (committed although refused)
  REPLAY   the pair this token's rotation gave, again (parallel tabs within the leeway)
  USE      user still there and not blocked → scopes may only narrow → sign →
           rotating: compare-and-set the old token, store the successor
           non-rotating: restart its idle expiry; no refresh_token in the answer
"""

from __future__ import annotations

from typing import Any, ClassVar

from keystead.core.grants import REFRESH_TOKEN
from keystead.core.refresh_tokens import (
    INVALID_REFRESH_TOKEN,
    USER_BLOCKED,
    NewRefreshToken,
    RefreshToken,
    Verdict,
    judge,
    open_rotation,
    rotated_lifetimes,
    seal_rotation,
)
from keystead.core.scopes import grant_user_scopes, narrow_scopes, parse_scope
from keystead.core.tokens import TokenResponse, new_opaque_token
from keystead.errors import InvalidGrant
from keystead.oauth.issue import (
    FailAfterCommit,
    TokenContext,
    TokenPlan,
    current_user_tokens_enabled,
    device_name,
    offline_allowed,
    resolve_audience,
    user_permissions,
    user_token_plan,
)
from keystead.storage.user_reads import find_user_in

MAX_TOKEN = 512  # ours are 43 characters; anything much longer is not worth hashing


def _invalid(detail: str) -> InvalidGrant:
    return InvalidGrant(INVALID_REFRESH_TOKEN, detail=detail)


class RefreshTokenGrant:
    """RFC 6749 §6 with OAuth 2.0 Security BCP §4.14 rotation."""

    grant_types: ClassVar[tuple[str, ...]] = (REFRESH_TOKEN,)
    success_event: ClassVar[str] = "sertft"
    failure_event: ClassVar[str] = "fertft"

    async def issue(self, ctx: TokenContext) -> TokenPlan:
        token = ctx.params.required("refresh_token")
        requested = parse_scope(ctx.params.raw("scope"))
        stored = await ctx.refresh_tokens.find(token) if len(token) <= MAX_TOKEN else None
        verdict = self._judge(ctx, stored)
        if verdict is Verdict.USE:
            assert stored is not None
            plan = await self._exchange(ctx, token, stored, requested)
            if plan is not None:
                return plan
            # Another request rotated it first: judge the token again as it is now.
            stored = await ctx.refresh_tokens.find(token)
            verdict = self._judge(ctx, stored)
        assert stored is not None or verdict is Verdict.INVALID
        if verdict is Verdict.REPLAY and stored is not None:
            return self._replay(ctx, token, stored)
        if verdict is Verdict.REUSE and stored is not None:
            # RFC 9700 §4.14.2: a rotated token used again means one copy was stolen.
            await ctx.refresh_tokens.revoke_family(stored.family_id, now=ctx.now)
            raise FailAfterCommit(_invalid("rotated refresh token reused"), event="ferrt")
        raise _invalid("unknown, revoked, expired, or another client's refresh token")

    def _judge(self, ctx: TokenContext, stored: RefreshToken | None) -> Verdict:
        if stored is not None:
            ctx.event["user_id"] = stored.user_id
            ctx.event["audience"] = stored.audience
        policy = ctx.client.refresh_token
        leeway = policy.leeway if policy.rotation_type == "rotating" else 0
        return judge(stored, client_id=ctx.client.client_id, now=ctx.now, leeway=leeway)

    def _replay(self, ctx: TokenContext, token: str, stored: RefreshToken) -> TokenPlan:
        answer = open_rotation(token, stored.rotation_result or b"")
        if answer is None:
            raise _invalid("kept rotation answer does not open")
        ctx.event["scope"] = answer.get("scope")
        signed = TokenResponse(
            access_token=answer["access_token"],
            expires_in=max(0, int(answer["exp"]) - int(ctx.now)),
            scope=answer.get("scope") or "",
            id_token=answer.get("id_token"),
            refresh_token=answer.get("refresh_token"),
        )
        return TokenPlan(signed=signed)

    async def _exchange(
        self, ctx: TokenContext, token: str, stored: RefreshToken, requested: Any
    ) -> TokenPlan | None:
        """The new answer; None when a concurrent request rotated the token first."""
        user = await find_user_in(ctx.session, stored.user_id)
        if user is None:
            raise _invalid("the user no longer exists")
        if user.blocked:
            raise InvalidGrant(USER_BLOCKED)
        audience = ctx.params.get("audience")
        if audience is not None and audience != stored.audience:
            # TODO(when multi-resource refresh lands): exchange for another allowed API.
            raise _invalid("refresh token issued for another audience")
        scopes = narrow_scopes(stored.scope, requested)  # RT-05: never widen
        api = await resolve_audience(ctx, stored.audience)
        permissions = await user_permissions(ctx, user.user_id, api)
        # Re-checked at every refresh: revoked roles or a disabled API scope do not linger.
        granted = grant_user_scopes(
            scopes,
            api,
            is_management_api=api is not None and api.is_system,
            user_permissions=permissions,
            offline_allowed=offline_allowed(ctx.client, api),
            implied_trust=False,
            current_user_scopes_enabled=await current_user_tokens_enabled(ctx, api),
        )
        policy = ctx.client.refresh_token
        rotating = policy.rotation_type == "rotating"
        successor = new_opaque_token() if rotating else None
        plan = user_token_plan(
            ctx,
            user=user,
            api=api,
            scopes=granted.scopes,
            auth_time=stored.auth_time,  # RT-10: the original authentication time
            permissions=permissions,
            sid=stored.sid,
            refresh_token=successor,
            amr=stored.amr,  # the family's login: a refresh is no new authentication
        )
        if successor is None:
            _, idle = rotated_lifetimes(policy, stored, ctx.now)
            if idle is not None:
                await ctx.refresh_tokens.touch(token, idle_expires_at=idle)
            return plan
        # Signed before the first write, so no write lock is held while RSA works.
        response = await plan.response(ctx.state)
        kept = seal_rotation(token, _kept_answer(response, plan)) if policy.leeway > 0 else None
        if not await ctx.refresh_tokens.rotate(token, now=ctx.now, result=kept):
            return None
        if stored.parent_id is not None:
            await ctx.refresh_tokens.clear_result(stored.parent_id)  # RT-03: one generation only
        absolute, idle = rotated_lifetimes(policy, stored, ctx.now)
        await ctx.refresh_tokens.create(
            successor,
            NewRefreshToken(
                family_id=stored.family_id,
                client_id=stored.client_id,
                user_id=stored.user_id,
                scope=stored.scope,  # RT-05: the successor keeps the original grant
                audience=stored.audience,
                auth_time=stored.auth_time,
                sid=stored.sid,
                parent_id=stored.id,
                family_expires_at=absolute,
                idle_expires_at=idle,
                device_name=device_name(ctx),
                amr=stored.amr,
            ),
        )
        return plan


def _kept_answer(response: TokenResponse, plan: TokenPlan) -> dict[str, Any]:
    return {
        "access_token": response.access_token,
        "id_token": response.id_token,
        "refresh_token": response.refresh_token,
        "scope": response.scope,
        "exp": plan.access_claims["exp"],
    }
