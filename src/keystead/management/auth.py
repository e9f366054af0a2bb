"""Bearer tokens of Management API requests (contract §8.1): header → verified claims.

    Authorization missing, or not Bearer, or Bearer without a token   401 Missing authentication
    more than two parts, or a token without three segments (opaque)  400 Bad HTTP authentication
                                                                          header format
    signature, alg, kid, iss, missing claims                          401 Invalid token
    exp in the past                                                   401 Expired token received …
    aud (string or array) without the Management API or an alias      401 Bad audience: …

Verification is `storage.keys.verify_token`: RS256 pinned to our own keys, our issuer and clock.
Nothing is cached per token; the key ring is the process's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from keystead.deps import AppState
from keystead.errors import BadRequest, InvalidToken, Unauthorized
from keystead.storage.keys import verify_token

MISSING: Final = "Missing authentication"
BAD_FORMAT: Final = "Bad HTTP authentication header format"
INVALID: Final = "Invalid token"
EXPIRED: Final = "Expired token received for JSON Web Token validation"
# The description core/keys.check_token_times gives an expired token; the only InvalidToken
# that gets its own message (tested, so a rewording there fails loudly here).
_EXPIRED_DESCRIPTION: Final = "token expired"


class TokenRejected(Unauthorized):
    """401 with Auth0's boom-style extras: `attributes.error` and a WWW-Authenticate challenge."""

    def __init__(self, message: str, *, detail: str = "") -> None:
        super().__init__(message, detail=detail)
        if message == MISSING:
            challenge = "Bearer"  # RFC 6750 §3.1: no error code when no credentials were sent
        else:
            challenge = f'Bearer error="invalid_token", error_description="{message}"'
        self.headers = {"WWW-Authenticate": challenge}

    def body(self) -> dict[str, Any]:
        return {**super().body(), "attributes": {"error": self.message}}


@dataclass(frozen=True)
class Token:
    """A verified Management API access token."""

    sub: str
    client_id: str | None  # azp (Auth0 dialect) or client_id (RFC 9068)
    scopes: frozenset[str]
    claims: Mapping[str, Any] = field(repr=False)

    @property
    def is_client_credentials(self) -> bool:
        return self.claims.get("gty") == "client-credentials" or self.sub.endswith("@clients")


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header, or the §8.1 error."""
    parts = (authorization or "").split()
    # RFC 9110 §11.1: the scheme is case-insensitive (JW-12).
    if not parts or parts[0].lower() != "bearer" or len(parts) == 1:
        raise TokenRejected(MISSING)  # MG-01: `Bearer ` with nothing after it is no credential
    if len(parts) != 2 or parts[1].count(".") != 2:
        # An opaque token (login without `audience`) lands here: Auth0 answers 400, not 401.
        raise BadRequest(BAD_FORMAT, error_code="Bearer")
    return parts[1]


def accepted_audiences(state: AppState) -> frozenset[str]:
    settings = state.settings
    return frozenset((settings.management_audience, *settings.management_audience_aliases))


def _audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


async def authenticate(state: AppState, authorization: str | None) -> Token:
    """Verify the request's bearer token for the Management API audience."""
    raw = bearer_token(authorization)
    try:
        claims = await verify_token(state, raw)
    except InvalidToken as exc:
        if exc.description == _EXPIRED_DESCRIPTION:
            raise TokenRejected(EXPIRED) from None
        raise TokenRejected(INVALID, detail=exc.description) from None
    audiences = _audiences(claims)
    # §8.1: an array is normal (SPA tokens carry [T/api/v2/, T/userinfo]); any entry may match.
    if not accepted_audiences(state) & set(audiences):
        raise TokenRejected("Bad audience: " + " ".join(audiences))
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise TokenRejected(INVALID, detail="token has no sub")
    scope = claims.get("scope")
    scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
    azp = claims.get("azp", claims.get("client_id"))
    return Token(
        sub=sub,
        client_id=azp if isinstance(azp, str) and azp else None,
        scopes=scopes,
        claims=claims,
    )
