"""Access tokens and the token response (contract §3.7, §4.1); signing is the Signer's job.

    claims = access_token_claims(...)        user grants: code, refresh, password (§4.1)
           | client_access_token_claims(...) client_credentials (§4.1)
    access_token = signer.sign(claims, typ=access_token_typ(api))
    TokenResponse(access_token, expires_in=…, scope=granted.value, …).body()   the JSON

ID token and /userinfo claims: core/id_tokens.
Codes, refresh tokens and session ids are opaque: new_opaque_token(), stored as token_digest().
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final, Protocol

from keystead.core.apis import ResourceServer
from keystead.core.scopes import OPENID, format_scope

DEFAULT_ACCESS_TOKEN_LIFETIME: Final = 86_400  # no audience: a /userinfo-only token
TOKEN_TYPE: Final = "Bearer"

# `gty` per grant_type (contract §4.1): absent for the code grant. Note Auth0's hyphen in
# "client-credentials", although the grant_type has an underscore.
GTY_BY_GRANT_TYPE: Final[Mapping[str, str]] = MappingProxyType(
    {
        "password": "password",
        "http://auth0.com/oauth/grant-type/password-realm": "password",
        "refresh_token": "refresh_token",
        "client_credentials": "client-credentials",
        "http://auth0.com/oauth/grant-type/mfa-otp": "mfa",
    }
)


class Signer(Protocol):
    """Turns claims into a signed JWT (core/keys.KeyRing is one); `typ` is the JOSE header."""

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str: ...


# --- opaque tokens ---------------------------------------------------------------------------


def new_opaque_token() -> str:
    """256 bits from the CSPRNG, base64url (RFC 6749 Appendix A characters; security CD-06)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> bytes:
    """SHA-256 of an opaque token: what is stored and looked up, never the token itself."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


# --- helpers ---------------------------------------------------------------------------------


def userinfo_audience(issuer: str) -> str:
    """`{issuer}userinfo`: the audience that makes an access token good at /userinfo."""
    return f"{issuer}userinfo"


def access_token_typ(api: ResourceServer | None) -> str:
    """JOSE `typ` for an access token: `at+jwt` under the RFC 9068 dialects, else `JWT`."""
    return "at+jwt" if api is not None and _is_rfc9068(api) else "JWT"


def _is_rfc9068(api: ResourceServer) -> bool:
    return api.token_dialect.startswith("rfc9068_profile")


def _with_extra(claims: dict[str, Any], extra: Mapping[str, Any] | None) -> dict[str, Any]:
    """Custom (namespaced) claims never override the registered ones."""
    return {**extra, **claims} if extra else claims


# --- access tokens (contract §4.1) -----------------------------------------------------------


def access_token_claims(
    *,
    issuer: str,
    subject: str,
    client_id: str,
    api: ResourceServer | None,
    scopes: Iterable[str],
    grant_type: str,
    now: float,
    lifetime: int | None = None,
    permissions: Sequence[str] | None = None,
    session_id: str | None = None,
    org_id: str | None = None,
    org_name: str | None = None,
    jti: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Claims of an access token issued to a user (code, refresh, password grants).

    `api` None gives a token whose only audience is /userinfo. `lifetime` defaults to the API's
    `token_lifetime` (pass `token_lifetime_for_web` for implicit tokens from /authorize).
    `permissions` are the user's permissions on the API (RBAC); they are sent only under the
    `*_authz` dialects, and not intersected with the request (contract §3.8).
    """
    granted = tuple(scopes)
    userinfo = userinfo_audience(issuer)
    if api is None:
        audience: str | list[str] = userinfo
    elif OPENID in granted and api.signing_alg == "RS256":
        audience = [api.identifier, userinfo]
    else:
        audience = api.identifier
    if lifetime is None:
        lifetime = api.token_lifetime if api is not None else DEFAULT_ACCESS_TOKEN_LIFETIME
    claims = _common_access_claims(
        issuer=issuer,
        subject=subject,
        audience=audience,
        client_id=client_id,
        api=api,
        scopes=granted,
        gty=GTY_BY_GRANT_TYPE.get(grant_type),
        now=now,
        lifetime=lifetime,
        permissions=permissions,
        org_id=org_id,
        org_name=org_name,
        jti=jti,
    )
    if session_id:
        claims["sid"] = session_id
    return _with_extra(claims, extra)


def client_access_token_claims(
    *,
    issuer: str,
    client_id: str,
    api: ResourceServer,
    scopes: Iterable[str],
    now: float,
    lifetime: int | None = None,
    org_id: str | None = None,
    org_name: str | None = None,
    jti: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Claims of a client_credentials token: `sub` is `{client_id}@clients`, `aud` a string,
    `scope` absent when the grant has none; under `*_authz`, `permissions` = the granted scopes.
    """
    granted = tuple(scopes)
    return _with_extra(
        _common_access_claims(
            issuer=issuer,
            subject=f"{client_id}@clients",
            audience=api.identifier,
            client_id=client_id,
            api=api,
            scopes=granted,
            gty=GTY_BY_GRANT_TYPE["client_credentials"],
            now=now,
            lifetime=api.token_lifetime if lifetime is None else lifetime,
            permissions=granted,
            org_id=org_id,
            org_name=org_name,
            jti=jti,
        ),
        extra,
    )


def _common_access_claims(
    *,
    issuer: str,
    subject: str,
    audience: str | list[str],
    client_id: str,
    api: ResourceServer | None,
    scopes: tuple[str, ...],
    gty: str | None,
    now: float,
    lifetime: int,
    permissions: Sequence[str] | None,
    org_id: str | None,
    org_name: str | None,
    jti: str | None,
) -> dict[str, Any]:
    iat = int(now)
    claims: dict[str, Any] = {"iss": issuer, "sub": subject, "aud": audience}
    rfc9068 = api is not None and _is_rfc9068(api)
    if rfc9068:
        # RFC 9068 §2.2: client_id instead of azp, a jti, and no Auth0 gty.
        claims["client_id"] = client_id
        claims["jti"] = jti or secrets.token_urlsafe(16)
    else:
        claims["azp"] = client_id
    claims["iat"] = iat
    claims["exp"] = iat + int(lifetime)
    if scopes:
        claims["scope"] = format_scope(scopes)
    if gty and not rfc9068:
        claims["gty"] = gty
    if api is not None and api.token_dialect.endswith("_authz"):
        claims["permissions"] = list(permissions or ())
    if org_id:
        claims["org_id"] = org_id
    if org_name:
        claims["org_name"] = org_name
    return claims


# --- the token endpoint's answer (contract §3.7) ---------------------------------------------


@dataclass(frozen=True)
class TokenResponse:
    """The 200 body of /oauth/token; `expires_in` is the access token's `exp - iat`."""

    access_token: str
    expires_in: int
    scope: str = ""
    id_token: str | None = None
    refresh_token: str | None = None
    token_type: str = TOKEN_TYPE

    def body(self) -> dict[str, Any]:
        """JSON members in Auth0's order; absent ones are omitted, `expires_in` is an int."""
        out: dict[str, Any] = {"access_token": self.access_token}
        if self.refresh_token:
            out["refresh_token"] = self.refresh_token
        if self.id_token:
            out["id_token"] = self.id_token
        if self.scope:
            out["scope"] = self.scope
        out["expires_in"] = int(self.expires_in)
        out["token_type"] = self.token_type
        return out
