"""Grants `password` and `…/grant-type/password-realm` (contract §3.5, security CL-06, SE-10).

realm (password-realm) or the tenant's default_directory → a database connection enabled
for the client → brute-force check (blocked pair, throttled IP; failures counted) → verify the
password in a worker thread, with the same work when the user is unknown → blocked? → failures
forgotten → the audience → then either
  a confirmed second factor: 403 `mfa_required` with an `mfa_token` (committed, not rolled back;
  no login recorded); the mfa-otp grant (mfa_otp.py) finishes the login, or
  no factor while the tenant's MFA policy is ["all-applications"] (keystead/mfa_policy.py):
  403 `mfa_required` *without* an `mfa_token`, so no code can finish it; a factor is enrolled
  only through the hosted login (/authorize → /u/login → /u/mfa-enroll, web/mfa_enrol.py),
  and the grant works with a code once it is; or
  the login recorded (core/login_success.py, as /u/login does) → scopes (implied trust when
  none were requested) → tokens, with `gty: password`
"""

from __future__ import annotations

from typing import ClassVar

from keystead.core.grants import PASSWORD, PASSWORD_REALM
from keystead.core.login_success import (
    check_password,
    find_credential,
    password_checked,
    password_login_succeeded,
)
from keystead.core.mfa import client_binding
from keystead.core.ports import Connection
from keystead.core.refresh_tokens import USER_BLOCKED
from keystead.core.scopes import parse_scope
from keystead.core.users import DATABASE_CONNECTION
from keystead.errors import InvalidGrant, MfaRequired
from keystead.mfa import issue_challenge, owed_factor
from keystead.mfa_policy import enrolment_required
from keystead.oauth.grants.user_login import (
    check_brute_force,
    count_failure,
    database_connection,
    end_user_ip,
    plan_user_tokens,
)
from keystead.oauth.issue import (
    FailAfterCommit,
    TokenContext,
    TokenPlan,
    requested_audience,
    resolve_audience,
)
from keystead.ratelimit.protection import forget_login_failures
from keystead.storage.login_records import SqlLoginRecords

WRONG_CREDENTIALS = "Wrong email or password."  # contract §3.5
MFA_REQUIRED = "Multifactor authentication required"  # contract §3.5


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
        end_user_ip(ctx)
        connection = await self._connection(ctx)
        ctx.event["connection"] = connection.name
        await check_brute_force(ctx, username)
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
        audience = await requested_audience(ctx)
        api = await resolve_audience(ctx, audience)  # an unknown API fails before any challenge
        factor = await owed_factor(ctx.state, ctx.session, user.user_id)
        if factor is not None:
            await password_checked(records, credential, password)  # no login recorded yet
            challenge = await issue_challenge(
                ctx.state,
                user_id=user.user_id,
                method_id=factor.id,
                bound_to=client_binding(ctx.client.client_id),
                extra={
                    "audience": audience,
                    "scope": list(requested) if requested is not None else None,
                    "realm": connection.name,
                    "username": username,
                },
            )
            # Committed, not rolled back: an upgraded hash stays. Failures are not forgotten
            # until the code is accepted, or the password would reset the count of wrong codes.
            raise FailAfterCommit(MfaRequired(MFA_REQUIRED, extra={"mfa_token": challenge}))
        if await enrolment_required(ctx.repos):  # a factor is owed that the user has not got
            await password_checked(records, credential, password)  # no login recorded
            raise FailAfterCommit(MfaRequired(MFA_REQUIRED))
        await forget_login_failures(
            ctx.session, ctx.ip, username, connection.name
        )  # the run of failures ends
        await password_login_succeeded(records, credential, password, at=ctx.now, ip=ctx.ip)
        return await plan_user_tokens(ctx, user, api, requested)

    async def _connection(self, ctx: TokenContext) -> Connection:
        """The database connection named by `realm`, or the tenant's default directory."""
        name = ctx.params.get("realm") if ctx.grant_type == PASSWORD_REALM else None
        if name is None:
            default = await ctx.repos.tenant_settings.get("default_directory")
            name = default if isinstance(default, str) and default else DATABASE_CONNECTION
        return await database_connection(ctx, name)
