"""What the password grants and the mfa-otp grant share: the end user's address, the database
connection, brute-force bookkeeping, and the tokens a user login ends with (contract §3.5, §3.8).

    end_user_ip(ctx)                   `auth0-forwarded-for` from a trusted backend, else the peer
    database_connection(ctx, name)     an `auth0` connection enabled for the client, else 403
    check_brute_force / count_failure  ratelimit/protection.py, per (IP, username)
    plan_user_tokens(ctx, user, …)     scopes (implied trust when none were requested) → tokens
"""

from __future__ import annotations

from keystead.core.apis import ResourceServer
from keystead.core.ports import Connection
from keystead.core.scopes import grant_user_scopes
from keystead.core.users import User
from keystead.errors import UnauthorizedClient
from keystead.oauth.issue import (
    TokenContext,
    TokenPlan,
    current_user_tokens_enabled,
    new_refresh_token,
    offline_allowed,
    user_permissions,
    user_token_plan,
)
from keystead.ratelimit.protection import LoginRefused, login_verdict, note_login_failure

CONNECTION_NOT_ENABLED = "The connection is not enabled for this client."


def end_user_ip(ctx: TokenContext) -> None:
    """Take the end user's address from `auth0-forwarded-for` when the client is a trusted
    backend (`is_token_endpoint_ip_header_trusted`); brute-force counting is per that address."""
    if ctx.forwarded_for and ctx.client.extra.get("is_token_endpoint_ip_header_trusted"):
        ctx.ip = ctx.forwarded_for


async def database_connection(ctx: TokenContext, name: str) -> Connection:
    """The database connection `name`, enabled for the client; else 403 unauthorized_client."""
    connection = await ctx.repos.connections.by_name(name)
    if connection is None or connection.strategy != "auth0":
        raise UnauthorizedClient(CONNECTION_NOT_ENABLED, detail="no such database connection")
    enabled = connection.extra.get("enabled_clients")
    if isinstance(enabled, list) and ctx.client.client_id not in enabled:
        raise UnauthorizedClient(CONNECTION_NOT_ENABLED, detail="client not enabled")
    return connection


async def check_brute_force(ctx: TokenContext, username: str) -> None:
    """Refuse before any password or code check when this identifier/IP is blocked or
    throttled: 429 too_many_attempts (security AT-01, AT-03; ratelimit/protection.py)."""
    verdict = await login_verdict(ctx.state, ctx.ip, username)
    if not verdict.allowed:
        raise LoginRefused(verdict)


async def count_failure(
    ctx: TokenContext, username: str, connection: Connection, user: User | None
) -> None:
    """A wrong password or an unknown user, alike; in a transaction of its own, because the
    grant's is rolled back with the refusal. (A wrong code is counted in the mfa-otp grant's own
    transaction, which commits: ratelimit/protection.note_wrong_code.)"""
    async with ctx.state.transaction() as session:
        await note_login_failure(
            ctx.state,
            session,
            ip=ctx.ip,
            username=username,
            connection=connection,
            user=user,
            client_id=ctx.client.client_id,
            user_agent=ctx.user_agent,
        )


async def plan_user_tokens(
    ctx: TokenContext,
    user: User,
    api: ResourceServer | None,
    requested: tuple[str, ...] | None,
    *,
    amr: tuple[str, ...] = (),
) -> TokenPlan:
    """The tokens of a login at the token endpoint: `requested` None grants every scope of the
    audience ("implied trust", §3.5); a refresh token when `offline_access` is granted."""
    permissions = await user_permissions(ctx, user.user_id, api)
    granted = grant_user_scopes(
        requested,
        api,
        is_management_api=api is not None and api.is_system,
        user_permissions=permissions,
        offline_allowed=offline_allowed(ctx.client, api),
        implied_trust=requested is None,
        current_user_scopes_enabled=await current_user_tokens_enabled(ctx, api),
    )
    refresh = await new_refresh_token(
        ctx, user_id=user.user_id, api=api, scopes=granted.scopes, auth_time=ctx.now, amr=amr
    )
    return user_token_plan(
        ctx,
        user=user,
        api=api,
        scopes=granted.scopes,
        auth_time=ctx.now,
        permissions=permissions,
        refresh_token=refresh,
        amr=amr,
    )
