"""Grant `authorization_code`, with PKCE (contract §3.2, security CD-01..CD-08, PK-03, PK-04).

    consume the code (single use) ── replayed → revoke the tokens it gave, 403, kept
    → the same client → the same redirect_uri → PKCE → user not blocked → API → tokens
      (+ a refresh token in the code's family when offline_access was granted)

A refusal after consumption rolls the consumption back, so a wrong verifier or another client's
credentials cannot destroy the rightful client's code.
"""

from __future__ import annotations

from typing import ClassVar, Final

from keystead.core.grants import AUTHORIZATION_CODE, requires_pkce
from keystead.core.pkce import VERIFY_FAILED, verify_code_verifier
from keystead.core.refresh_tokens import USER_BLOCKED
from keystead.errors import InvalidGrant
from keystead.oauth.issue import (
    FailAfterCommit,
    TokenContext,
    TokenPlan,
    new_refresh_token,
    resolve_audience,
    user_permissions,
    user_token_plan,
)
from keystead.storage.repositories.codes import SqlCodes
from keystead.storage.user_reads import find_user_in

INVALID_CODE: Final = "Invalid authorization code"  # contract §3.9


class AuthorizationCodeGrant:
    """RFC 6749 §4.1.3 and RFC 7636 §4.6."""

    grant_types: ClassVar[tuple[str, ...]] = (AUTHORIZATION_CODE,)
    success_event: ClassVar[str] = "seacft"
    failure_event: ClassVar[str] = "feacft"

    async def issue(self, ctx: TokenContext) -> TokenPlan:
        value = ctx.params.required("code")
        redirect_uri = ctx.params.get("redirect_uri")
        verifier = ctx.params.get("code_verifier")
        result = await SqlCodes(ctx.session, ctx.state.clock).consume(value)
        code = result.code
        if code is not None:
            ctx.event["user_id"] = code.user_id
        if result.replayed:
            # RFC 6749 §4.1.2: a reused code is refused and the tokens it issued are revoked.
            if code is not None and code.family_id:
                await ctx.refresh_tokens.revoke_family(code.family_id, now=ctx.now)
            raise FailAfterCommit(InvalidGrant(INVALID_CODE, detail="code replayed"))
        if code is None or code.expires_at <= ctx.now:
            raise InvalidGrant(INVALID_CODE, detail="unknown or expired code")
        if code.client_id != ctx.client.client_id:  # CD-03
            raise InvalidGrant(INVALID_CODE, detail="code issued to another client")
        if code.redirect_uri is not None and redirect_uri != code.redirect_uri:
            raise InvalidGrant(
                "redirect_uri must be the one sent to /authorize", detail="redirect_uri mismatch"
            )
        if code.code_challenge is None and requires_pkce(ctx.client):
            raise InvalidGrant(VERIFY_FAILED, detail="public client's code without a challenge")
        verify_code_verifier(verifier, code.code_challenge, code.code_challenge_method)
        user = await find_user_in(ctx.session, code.user_id)
        if user is None:
            raise InvalidGrant(INVALID_CODE, detail="the user no longer exists")
        if user.blocked:
            raise InvalidGrant(USER_BLOCKED)
        api = await resolve_audience(ctx, code.audience)
        permissions = await user_permissions(ctx, user.user_id, api)
        scopes = tuple(code.scope)
        refresh = await new_refresh_token(
            ctx,
            user_id=user.user_id,
            api=api,
            scopes=scopes,
            auth_time=code.auth_time,
            family_id=code.family_id,
            sid=code.sid,
            amr=code.amr,
        )
        return user_token_plan(
            ctx,
            user=user,
            api=api,
            scopes=scopes,
            auth_time=code.auth_time,
            permissions=permissions,
            nonce=code.nonce,
            sid=code.sid,
            refresh_token=refresh,
            amr=code.amr,
        )
