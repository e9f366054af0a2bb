"""Grants `password` and `…/grant-type/password-realm` (contract §3.5, security CL-06, SE-10).

realm (password-realm) or the tenant's default_directory → a database connection enabled
for the client → brute-force check (blocked pair, throttled IP; failures counted) → verify the
password in a worker thread, with the same work when the user is unknown → blocked? → the login
recorded (core/login_success.py, as /u/login does) → audience, scopes (implied trust when none
were requested) → tokens, with `gty: password`
"""

from __future__ import annotations

from typing import ClassVar

from keystead.core.grants import PASSWORD, PASSWORD_REALM
from keystead.core.login_success import check_password, find_credential, password_login_succeeded
from keystead.core.ports import Connection
from keystead.core.refresh_tokens import USER_BLOCKED
from keystead.core.scopes import grant_user_scopes, parse_scope
from keystead.core.users import DATABASE_CONNECTION, User
from keystead.errors import InvalidGrant, UnauthorizedClient
from keystead.oauth.issue import (
    TokenContext,
    TokenPlan,
    current_user_tokens_enabled,
    new_refresh_token,
    offline_allowed,
    requested_audience,
    resolve_audience,
    user_permissions,
    user_token_plan,
)
from keystead.ratelimit.protection import (
    LoginRefused,
    forget_login_failures,
    login_verdict,
    note_login_failure,
)
from keystead.storage.login_records import SqlLoginRecords

WRONG_CREDENTIALS = "Wrong email or password."  # contract §3.5
CONNECTION_NOT_ENABLED = "The connection is not enabled for this client."


async def check_brute_force(ctx: TokenContext, username: str, connection: str) -> None:
    """Refuse before any password check when this identifier/IP is blocked or throttled:
    429 too_many_attempts (security AT-01, AT-03; ratelimit/protection.py)."""
    verdict = await login_verdict(ctx.state, ctx.ip, username)
    if not verdict.allowed:
        raise LoginRefused(verdict)


async def count_failure(
    ctx: TokenContext, username: str, connection: Connection, user: User | None
) -> None:
    """A wrong password or an unknown user, alike; in a transaction of its own, because the
    grant's is rolled back with the refusal."""
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


class PasswordGrant:
    """Resource Owner Password Credentials (RFC 6749 §4.3), Auth0's realm variant included.

    Only clients that list the grant get here (core/grants.check_grant_allowed): no default
    grant list includes it (RFC 9700 §2.4).
    """

    grant_types: ClassVar[tuple[str, ...]] = (PASSWORD, PASSWORD_REALM)
    success_event: ClassVar[str] = "sepft"
    failure_event: ClassVar[str] = "fepft"

    async def issue(self, ctx: TokenContext) -> TokenPlan:
        username = ctx.params.required("username")
        password = ctx.params.required("password")
        requested = parse_scope(ctx.params.raw("scope"))
        if ctx.forwarded_for and ctx.client.extra.get("is_token_endpoint_ip_header_trusted"):
            ctx.ip = ctx.forwarded_for  # the end user's address, from a trusted backend
        connection = await self._connection(ctx)
        ctx.event["connection"] = connection.name
        await check_brute_force(ctx, username, connection.name)
        records = SqlLoginRecords(ctx.session)
        credential = await find_credential(ctx.repos.users, records, connection.name, username)
        matched = await check_password(credential, password)  # a dummy hash when unknown
        if credential is None or not matched:
            await count_failure(ctx, username, connection, credential.user if credential else None)
            raise InvalidGrant(WRONG_CREDENTIALS)
        user = credential.user
        ctx.event["user_id"] = user.user_id
        if user.blocked:  # after the password check: a wrong password learns nothing (SE-10)
            raise InvalidGrant(USER_BLOCKED)
        await forget_login_failures(ctx.session, ctx.ip, username)  # the run of failures ends
        await password_login_succeeded(records, credential, password, at=ctx.now, ip=ctx.ip)
        api = await resolve_audience(ctx, await requested_audience(ctx))
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
            ctx, user_id=user.user_id, api=api, scopes=granted.scopes, auth_time=ctx.now
        )
        return user_token_plan(
            ctx,
            user=user,
            api=api,
            scopes=granted.scopes,
            auth_time=ctx.now,
            permissions=permissions,
            refresh_token=refresh,
        )

    async def _connection(self, ctx: TokenContext) -> Connection:
        """The database connection named by `realm`, or the tenant's default directory."""
        name = ctx.params.get("realm") if ctx.grant_type == PASSWORD_REALM else None
        if name is None:
            default = await ctx.repos.tenant_settings.get("default_directory")
            name = default if isinstance(default, str) and default else DATABASE_CONNECTION
        connection = await ctx.repos.connections.by_name(name)
        if connection is None or connection.strategy != "auth0":
            raise UnauthorizedClient(CONNECTION_NOT_ENABLED, detail="no such database connection")
        enabled = connection.extra.get("enabled_clients")
        if isinstance(enabled, list) and ctx.client.client_id not in enabled:
            raise UnauthorizedClient(CONNECTION_NOT_ENABLED, detail="client not enabled")
        return connection
