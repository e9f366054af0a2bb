"""Client authentication at /oauth/token and /oauth/revoke (contract §3.1, security CL-01, CL-02).

    presented = presented_client(params, authorization header)   what the request claims
    client = await clients.find(presented.client_id)             callers keep it (CORS)
    client = await authenticate_client(presented, client, clients,
                                       assertions=AssertionCheck(issuer, now))

Methods: `none` (public clients; a secret they send is ignored, as the contract says),
`client_secret_post` and `client_secret_basic`. A confidential client may use either secret
method: both are equally strong, and auth0-python posts the secret whatever the registration.
`private_key_jwt` (RFC 7523): a client with `client_authentication_methods.private_key_jwt`
authenticates with a signed assertion only (core/client_assertion.py), never with its secret.
A caller that passes no AssertionCheck refuses assertions.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote_plus

import jwt

from keystead.core.client_assertion import (
    ASSERTION_TYPE,
    MAX_ASSERTION,
    SEEN_JTIS,
    SeenJtis,
    assertion_audiences,
    verify_client_assertion,
)
from keystead.core.client_assertion import (
    LEEWAY as ASSERTION_LEEWAY,
)
from keystead.core.client_credentials import enabled_credentials, uses_private_key_jwt
from keystead.core.clients import Client
from keystead.deps import AppState
from keystead.errors import InvalidClient, InvalidRequest
from keystead.oauth.params import Params
from keystead.storage.repositories.used_assertions import use_assertion

MAX_CLIENT_ID = 64  # the column's size; longer ids cannot exist


class SecretChecker(Protocol):
    async def verify_secret(self, client_id: str, secret: str) -> bool: ...


@dataclass(frozen=True)
class PresentedClient:
    """The client a request names, and the secret it offers (if any)."""

    client_id: str
    secret: str | None = field(default=None, repr=False)
    basic: bool = False  # the secret came in an Authorization: Basic header
    assertion: str | None = field(default=None, repr=False)  # private_key_jwt


# Records a used (client_id, jti) until `expires_at`; False when it is already used.
UseJti = Callable[[str, str, float], Awaitable[bool]]


@dataclass(frozen=True)
class AssertionCheck:
    """What verifying a client assertion needs from the server: its issuer, the time, and
    where used jtis are kept: this process's memory (`seen`, checked first) and, through
    `use_jti`, the database every worker and replica shares."""

    issuer: str
    now: float
    seen: SeenJtis = field(default=SEEN_JTIS, repr=False)
    use_jti: UseJti | None = field(default=None, repr=False)


def assertion_check(state: AppState) -> AssertionCheck:
    """The check for a request now. A used jti is recorded and committed in a short unit of
    work of its own, so every worker and replica refuses it until it expires, even when the
    request fails later and rolls its own work back. Authenticate before the request's own
    writes: on SQLite this unit would otherwise wait for the request's write lock."""
    now = state.clock.now()

    async def use_jti(client_id: str, jti: str, expires_at: float) -> bool:
        async with state.transaction() as session:
            return await use_assertion(session, client_id, jti, expires_at=expires_at, now=now)

    return AssertionCheck(state.settings.issuer, now, use_jti=use_jti)


def presented_client(params: Params, authorization: str | None) -> PresentedClient:
    """Read client_id and secret from the body and a Basic header (RFC 6749 §2.3.1)."""
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    scheme, _, credentials = (authorization or "").strip().partition(" ")
    if "client_assertion" in params or "client_assertion_type" in params:
        if body_secret is not None or scheme.lower() == "basic":
            raise InvalidRequest("Use only one client authentication method")
        return _asserted(params, body_id)
    if scheme.lower() != "basic":
        if body_id is None:
            raise InvalidRequest("Missing required parameter: client_id")
        return PresentedClient(body_id, body_secret)
    if body_secret is not None:
        raise InvalidRequest("Use only one client authentication method")
    client_id, secret = _basic(credentials.strip())
    if body_id is not None and body_id != client_id:
        raise InvalidClient(basic=True, detail="client_id in the body differs from Basic")
    return PresentedClient(client_id, secret, basic=True)


def _asserted(params: Params, body_id: str | None) -> PresentedClient:
    """RFC 7523 §2.2: client_assertion_type and client_assertion; client_id is optional."""
    if params.get("client_assertion_type") != ASSERTION_TYPE:
        if "client_assertion_type" not in params:
            raise InvalidRequest("Missing required parameter: client_assertion_type")
        raise InvalidClient(detail="unsupported client_assertion_type")
    assertion = params.required("client_assertion")
    if len(assertion) > MAX_ASSERTION:
        raise InvalidClient(detail="client assertion too long")
    if body_id is None:
        try:  # who it claims to be; the signature is checked against that client's keys
            claimed = jwt.decode(assertion, options={"verify_signature": False}).get("sub")
        except (jwt.InvalidTokenError, RecursionError, AttributeError):
            raise InvalidClient(detail="client assertion is not a JWT") from None
        if not isinstance(claimed, str) or not claimed:
            raise InvalidClient(detail="client assertion without sub")
        body_id = claimed
    return PresentedClient(body_id, assertion=assertion)


def _basic(credentials: str) -> tuple[str, str]:
    try:
        decoded = b64decode(credentials, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidClient(basic=True, detail="Basic credentials are not base64") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id:
        raise InvalidClient(basic=True, detail="Basic credentials without id:secret")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
    return unquote_plus(client_id), unquote_plus(secret)


async def authenticate_client(
    presented: PresentedClient,
    client: Client | None,
    clients: SecretChecker,
    assertions: AssertionCheck | None = None,
) -> Client:
    """The authenticated client, or InvalidClient (401, WWW-Authenticate after Basic)."""
    if client is None or len(presented.client_id) > MAX_CLIENT_ID:
        raise InvalidClient(basic=presented.basic, detail="unknown client")
    if presented.assertion is not None:
        return await _check_assertion(presented.assertion, client, assertions)
    if client.is_public:
        return client
    if uses_private_key_jwt(client):
        raise InvalidClient(detail="this client authenticates with private_key_jwt only")
    if presented.secret is None:
        raise InvalidClient(basic=presented.basic, detail="confidential client without secret")
    if not await clients.verify_secret(client.client_id, presented.secret):
        raise InvalidClient(basic=presented.basic, detail="wrong client secret")
    return client


async def _check_assertion(assertion: str, client: Client, check: AssertionCheck | None) -> Client:
    if check is None:
        raise InvalidClient("Client assertions are not supported", detail="no AssertionCheck")
    if client.is_public or not uses_private_key_jwt(client):
        raise InvalidClient(detail="client assertion from a client without private_key_jwt")
    claims = verify_client_assertion(
        assertion,
        client_id=client.client_id,
        credentials=enabled_credentials(client, check.now),
        audiences=assertion_audiences(check.issuer),
        now=check.now,
        seen=check.seen,
    )
    if check.use_jti is not None and not await check.use_jti(
        client.client_id, claims["jti"], float(claims["exp"]) + ASSERTION_LEEWAY
    ):
        raise InvalidClient(detail="client assertion jti replayed (another worker saw it)")
    return client
