"""What every grant shares: the request context, audience resolution, and the tokens it signs
(contract §3.7, §3.8, §4).

    ctx = TokenContext(...)                         one per /oauth/token request (token.py)
    api = await resolve_audience(ctx, audience)     param → tenant default_audience → None
    plan = await user_token_plan(ctx, user, …)      claims of the access and ID tokens
    response = await plan.response(ctx.state)       signed once: RS256 with the key ring, or the
                                                    API's HS256 secret (algorithm pinned)

Grants return a TokenPlan and token.py signs it after the transaction commits, so the database
write lock (SQLite has one for the whole file) is never held while RSA signs. A grant that needs
the signed answer first (refresh rotation keeps it) calls `plan.response` itself.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar, Final, Protocol

import jwt
from sqlalchemy.ext.asyncio import AsyncSession

from keystead import self_service
from keystead.core.apis import ResourceServer
from keystead.core.clients import Client
from keystead.core.grants import client_may_get_refresh_tokens, service_not_found
from keystead.core.id_tokens import id_token_claims
from keystead.core.keys import KeyRing
from keystead.core.refresh_tokens import NewRefreshToken, new_lifetimes
from keystead.core.scopes import OFFLINE_ACCESS, OPENID
from keystead.core.tokens import (
    TokenResponse,
    access_token_claims,
    access_token_typ,
    new_opaque_token,
)
from keystead.core.users import User
from keystead.deps import AppState
from keystead.errors import OAuthError, ServerError
from keystead.oauth.params import Params, printable
from keystead.storage.keys import keyring
from keystead.storage.repositories import Repositories
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens

MAX_DEVICE_NAME: Final = 255


@dataclass
class TokenContext:
    """One token request: the parsed body, the authenticated client, the unit of work."""

    state: AppState
    session: AsyncSession
    params: Params
    client: Client
    grant_type: str
    now: float
    ip: str | None = None
    user_agent: str | None = None
    forwarded_for: str | None = None  # `auth0-forwarded-for`, honoured by password grants only
    # Who and what, for the log event token.py records (never secrets).
    event: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def repos(self) -> Repositories:
        return self.state.repos(self.session)

    @cached_property
    def refresh_tokens(self) -> SqlRefreshTokens:
        return SqlRefreshTokens(self.session, self.state.clock, self.state.sealer)

    @property
    def issuer(self) -> str:
        return self.state.settings.issuer


class FailAfterCommit(Exception):
    """A refusal whose side effects must persist (a revoked family after reuse is detected)."""

    def __init__(self, error: OAuthError, *, event: str | None = None) -> None:
        super().__init__(error.description)
        self.error = error
        self.event = event  # logged instead of the grant's failure event (e.g. `ferrt`)


class Grant(Protocol):
    """One token-endpoint grant; GRANTS (grants/__init__.py) maps grant_type values to these."""

    grant_types: ClassVar[tuple[str, ...]]
    success_event: ClassVar[str]  # Auth0 log event codes (core/logs.py)
    failure_event: ClassVar[str]

    async def issue(self, ctx: TokenContext) -> TokenPlan: ...


@dataclass
class TokenPlan:
    """Claims to sign, or an answer already signed (a leeway replay, a rotation)."""

    access_claims: dict[str, Any] = field(default_factory=dict)
    api: ResourceServer | None = None
    scope: str = ""
    id_claims: dict[str, Any] | None = None
    refresh_token: str | None = None
    signed: TokenResponse | None = None

    async def response(self, state: AppState) -> TokenResponse:
        if self.signed is None:
            claims = self.access_claims
            ring = await keyring(state) if self.id_claims is not None or _rs256(self.api) else None
            access = sign_access_token(ring, claims, self.api)
            self.signed = TokenResponse(
                access_token=access,
                expires_in=int(claims["exp"]) - int(claims["iat"]),
                scope=self.scope,
                id_token=ring.sign(self.id_claims) if ring and self.id_claims else None,
                refresh_token=self.refresh_token,
            )
        return self.signed


def _rs256(api: ResourceServer | None) -> bool:
    return api is None or api.signing_alg == "RS256"


def sign_access_token(
    ring: KeyRing | None, claims: dict[str, Any], api: ResourceServer | None
) -> str:
    """RS256 with the current key, or HS256 with the API's own secret; nothing else."""
    typ = access_token_typ(api)
    if api is None or api.signing_alg == "RS256":
        assert ring is not None
        return ring.sign(claims, typ=typ)
    if api.signing_alg != "HS256" or not api.signing_secret:
        raise ServerError(detail=f"API {api.identifier} cannot sign: {api.signing_alg} without key")
    return jwt.encode(claims, api.signing_secret, algorithm="HS256", headers={"typ": typ})


# --- audience and scopes (contract §3.8) --------------------------------------------------------


async def requested_audience(ctx: TokenContext) -> str | None:
    """`audience` (or RFC 8707 `resource`), else the tenant's `default_audience`."""
    audience = ctx.params.get("audience") or ctx.params.get("resource")
    if audience is None:
        default = await ctx.repos.tenant_settings.get("default_audience")
        audience = default if isinstance(default, str) and default else None
    if audience in ctx.state.settings.management_audience_aliases:
        audience = ctx.state.settings.management_audience  # custom domains (contract §0.1)
    return audience


async def resolve_audience(ctx: TokenContext, audience: str | None) -> ResourceServer | None:
    """The API a user token is for; None for a /userinfo-only token. Unknown → access_denied."""
    if audience is None:
        return None
    api = await ctx.repos.resource_servers.by_identifier(audience)
    if api is None:
        raise service_not_found(audience)
    ctx.event["audience"] = api.identifier
    return api


async def user_permissions(
    ctx: TokenContext, user_id: str, api: ResourceServer | None
) -> frozenset[str]:
    """The user's permissions on `api`; read only when RBAC or a `permissions` claim needs them."""
    if api is None or api.is_system:
        return frozenset()
    if not (api.enforce_policies or api.token_dialect.endswith("_authz")):
        return frozenset()
    return await ctx.repos.roles.effective_permissions(user_id, api.identifier)


async def current_user_tokens_enabled(ctx: TokenContext, api: ResourceServer | None) -> bool:
    """The self-service switch; it only ever concerns the Management API (the system API)."""
    if api is None or not api.is_system:
        return True
    return await self_service.current_user_tokens_enabled(ctx.repos, ctx.client)


def offline_allowed(client: Client, api: ResourceServer | None) -> bool:
    """Refresh tokens need the client's refresh grant (and rotation for SPAs) and the API's
    `allow_offline_access`, or no API at all (contract §3.2, security RT-11)."""
    return client_may_get_refresh_tokens(client) and (api is None or api.allow_offline_access)


# --- tokens -------------------------------------------------------------------------------------


def user_token_plan(
    ctx: TokenContext,
    *,
    user: User,
    api: ResourceServer | None,
    scopes: tuple[str, ...],
    auth_time: float,
    permissions: frozenset[str] = frozenset(),
    nonce: str | None = None,
    sid: str | None = None,
    refresh_token: str | None = None,
    amr: tuple[str, ...] = (),
) -> TokenPlan:
    """Access token (and ID token when `openid` was granted) for `user` (contract §4.1, §4.3).

    `amr` (RFC 8176 values, e.g. `("mfa",)` after a second factor) goes into both tokens.
    """
    settings = ctx.state.settings
    extra = {"amr": list(amr)} if amr else None
    access = access_token_claims(
        issuer=ctx.issuer,
        subject=user.user_id,
        client_id=ctx.client.client_id,
        api=api,
        scopes=scopes,
        grant_type=ctx.grant_type,
        now=ctx.now,
        lifetime=None if api is not None else settings.access_token_ttl,
        permissions=sorted(permissions),
        extra=extra,
    )
    id_claims = None
    if OPENID in scopes:
        id_claims = id_token_claims(
            issuer=ctx.issuer,
            user=user,
            client_id=ctx.client.client_id,
            scopes=scopes,
            now=ctx.now,
            auth_time=auth_time,
            lifetime=ctx.client.jwt_lifetime_in_seconds,
            nonce=nonce,
            session_id=sid,
            extra=extra,
        )
    ctx.event["scope"] = " ".join(scopes)
    return TokenPlan(access, api, " ".join(scopes), id_claims, refresh_token)


async def new_refresh_token(
    ctx: TokenContext,
    *,
    user_id: str,
    api: ResourceServer | None,
    scopes: tuple[str, ...],
    auth_time: float,
    family_id: str | None = None,
    sid: str | None = None,
    amr: tuple[str, ...] = (),
) -> str | None:
    """Store and return a refresh token when `offline_access` was granted and is allowed; its
    family keeps the login's `amr` for the tokens later refreshes sign."""
    if OFFLINE_ACCESS not in scopes or not offline_allowed(ctx.client, api):
        return None
    token = new_opaque_token()
    absolute, idle = new_lifetimes(ctx.client.refresh_token, ctx.now)
    await ctx.refresh_tokens.create(
        token,
        NewRefreshToken(
            family_id=family_id or secrets.token_hex(16),
            client_id=ctx.client.client_id,
            user_id=user_id,
            scope=scopes,
            audience=api.identifier if api is not None else None,
            auth_time=auth_time,
            sid=sid,
            family_expires_at=absolute,
            idle_expires_at=idle,
            device_name=device_name(ctx),
            amr=amr,
        ),
    )
    return token


def device_name(ctx: TokenContext) -> str | None:
    """The User-Agent, shown when listing a user's refresh tokens."""
    return printable(ctx.user_agent, MAX_DEVICE_NAME) if ctx.user_agent else None
