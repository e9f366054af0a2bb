"""Grant `client_credentials`: a confidential client gets a token for itself (contract §3.4).

audience → API (or "Service not enabled within domain") → the client's grant for it (or
"Client is not authorized to access") → scopes within the grant → {client_id}@clients token
"""

from __future__ import annotations

from typing import ClassVar

from keystead.core.grants import CLIENT_CREDENTIALS, check_client_credentials_target
from keystead.core.scopes import grant_client_scopes, parse_scope
from keystead.core.tokens import client_access_token_claims
from keystead.oauth.issue import TokenContext, TokenPlan, requested_audience


class ClientCredentialsGrant:
    """RFC 6749 §4.4; public clients never reach here (core/grants.check_grant_allowed)."""

    grant_types: ClassVar[tuple[str, ...]] = (CLIENT_CREDENTIALS,)
    success_event: ClassVar[str] = "seccft"
    failure_event: ClassVar[str] = "feccft"

    async def issue(self, ctx: TokenContext) -> TokenPlan:
        requested = parse_scope(ctx.params.raw("scope"))
        # TODO(when organizations land): `organization` → org_id/org_name (contract §3.4).
        audience = await requested_audience(ctx)
        ctx.event["audience"] = audience
        api = grant = None
        if audience is not None:
            api = await ctx.repos.resource_servers.by_identifier(audience)
        if api is not None:
            grant = await ctx.repos.client_grants.for_client_audience(
                ctx.client.client_id, api.identifier
            )
        api, grant = check_client_credentials_target(audience, api, grant)
        granted = grant_client_scopes(requested, grant, api)
        ctx.event["scope"] = granted.value
        claims = client_access_token_claims(
            issuer=ctx.issuer,
            client_id=ctx.client.client_id,
            api=api,
            scopes=granted.scopes,
            now=ctx.now,
        )
        return TokenPlan(claims, api, granted.value)
