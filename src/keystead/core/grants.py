"""Client policy: which grants and response types a client may use (contract §2.2, §3.1-§3.5).

/oauth/token  check_grant_allowed(client, grant_type)            after client authentication
              check_client_credentials_target(aud, api, grant)   client_credentials only
/authorize    check_response_type_allowed(client, parse_response_type(value))
              requires_pkce(client)                               → pkce.check_challenge
both          client_may_get_refresh_tokens(client)               → scopes.grant_user_scopes
"""

from __future__ import annotations

from typing import Final

from keystead.core.apis import ClientGrant, ResourceServer
from keystead.core.clients import Client
from keystead.errors import (
    AccessDenied,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedResponseType,
)

# grant_type values as Auth0 spells them (contract §10.2).
AUTHORIZATION_CODE: Final = "authorization_code"
IMPLICIT: Final = "implicit"  # an /authorize response type family, never a token request
REFRESH_TOKEN: Final = "refresh_token"
CLIENT_CREDENTIALS: Final = "client_credentials"
PASSWORD: Final = "password"
PASSWORD_REALM: Final = "http://auth0.com/oauth/grant-type/password-realm"
PASSWORDLESS_OTP: Final = "http://auth0.com/oauth/grant-type/passwordless/otp"
DEVICE_CODE: Final = "urn:ietf:params:oauth:grant-type:device_code"
MFA_OTP: Final = "http://auth0.com/oauth/grant-type/mfa-otp"
MFA_OOB: Final = "http://auth0.com/oauth/grant-type/mfa-oob"
MFA_RECOVERY_CODE: Final = "http://auth0.com/oauth/grant-type/mfa-recovery-code"

# Grants a public client can never use, whatever its `grant_types` says: with no secret, the
# client would be a bearer of its own identity (RFC 6749 §4.4 requires client authentication).
CONFIDENTIAL_ONLY_GRANTS: Final = frozenset({CLIENT_CREDENTIALS})

GRANT_TYPES_DOC: Final = "https://auth0.com/docs/clients/client-grant-types"

# OAuth 2.0 Multiple Response Types §3 and OIDC Core §3: the combinations /authorize serves.
RESPONSE_TYPES: Final = frozenset(
    frozenset(value.split())
    for value in (
        "code",
        "token",
        "id_token",
        "id_token token",
        "code id_token",
        "code token",
        "code id_token token",
    )
)


def check_grant_allowed(client: Client, grant_type: str) -> None:
    """Raise UnauthorizedClient (403) unless `client` may use `grant_type` at /oauth/token.

    A grant is allowed only when listed in the client's `grant_types` (so password grants need
    explicit enabling: no default includes them), and client_credentials never for a public client.
    """
    allowed = client.allows_grant(grant_type)
    if grant_type in CONFIDENTIAL_ONLY_GRANTS and client.is_public:
        allowed = False
    if allowed:
        return
    # Auth0 points client_credentials failures at its grant-types page (contract §3.4).
    extra = {"error_uri": GRANT_TYPES_DOC} if grant_type == CLIENT_CREDENTIALS else None
    raise UnauthorizedClient(
        f"Grant type '{_printable(grant_type)}' not allowed for the client.", extra=extra
    )


def requires_pkce(client: Client) -> bool:
    """Public clients must use PKCE (RFC 9700 §2.1.1); for confidential ones it is optional."""
    return client.is_public


def client_may_get_refresh_tokens(client: Client) -> bool:
    """The `offline_allowed` input of grant_user_scopes (security case RT-11).

    The client must have the refresh_token grant, and an SPA must rotate: spa-js drops a stored
    refresh token whenever a refresh response carries none (contract §3.3).
    """
    if not client.allows_grant(REFRESH_TOKEN):
        return False
    return client.app_type != "spa" or client.refresh_token.rotation_type == "rotating"


def parse_response_type(value: str | None) -> frozenset[str]:
    """Parse /authorize `response_type` (space separated, any order)."""
    if not value:
        raise InvalidRequest("Missing required parameter: response_type")
    parsed = frozenset(value.split())
    if parsed not in RESPONSE_TYPES:
        # Not echoed: attacker-chosen text (security case AZ-09).
        raise UnsupportedResponseType("Unsupported response type")
    return parsed


def check_response_type_allowed(client: Client, response_type: frozenset[str]) -> None:
    """Raise UnauthorizedClient unless the client's grants cover `response_type` (AZ-08).

    `code` needs authorization_code; any `token` or `id_token` from /authorize needs implicit.
    """
    if "code" in response_type and not client.allows_grant(AUTHORIZATION_CODE):
        raise UnauthorizedClient("The client is not allowed the authorization_code grant")
    if response_type & {"token", "id_token"} and not client.allows_grant(IMPLICIT):
        raise UnauthorizedClient("The client is not allowed the implicit grant")


def check_client_credentials_target(
    audience: str | None, api: ResourceServer | None, grant: ClientGrant | None
) -> tuple[ResourceServer, ClientGrant]:
    """Steps 1-2 of contract §3.4: the audience names an API and the client holds a grant for it.

    The caller resolves `audience` (after the tenant `default_audience`) to `api` and looks up the
    client's grant for `api`; this raises Auth0's AccessDenied texts when either is missing, and
    returns both, narrowed, for grant_client_scopes.
    """
    if not audience:
        raise AccessDenied(
            "No audience parameter was provided, and no default audience has been configured"
        )
    if api is None:
        raise AccessDenied(f"Service not enabled within domain: {_printable(audience)}")
    # Only `client` subject grants authorise client_credentials; `user` ones are user-flow policy.
    if grant is None or grant.subject_type != "client" or grant.audience != api.identifier:
        raise AccessDenied(
            f'Client is not authorized to access "{_printable(audience)}". You need to create a '
            '"client-grant" associated to this API. See: '
            "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
        )
    return api, grant


def service_not_found(audience: str) -> AccessDenied:
    """The /authorize error for an unknown `audience` (contract §2.2 step 5, AZ-09)."""
    return AccessDenied(f"Service not found: {_printable(audience)}")


def _printable(text: str, limit: int = 300) -> str:
    """Request text echoed in an error_description: printable ASCII only, bounded (AZ-09)."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."
