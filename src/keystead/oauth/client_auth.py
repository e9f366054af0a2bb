"""Client authentication at /oauth/token and /oauth/revoke (contract §3.1, security CL-01, CL-02).

    presented = presented_client(params, authorization header)   what the request claims
    client = await clients.find(presented.client_id)             callers keep it (CORS)
    client = await authenticate_client(presented, client, clients)

Methods: `none` (public clients; a secret they send is ignored, as the contract says),
`client_secret_post` and `client_secret_basic`. A confidential client may use either secret
method: both are equally strong, and auth0-python posts the secret whatever the registration.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import unquote_plus

from keystead.core.clients import Client
from keystead.errors import InvalidClient, InvalidRequest
from keystead.oauth.params import Params

MAX_CLIENT_ID = 64  # the column's size; longer ids cannot exist


class SecretChecker(Protocol):
    async def verify_secret(self, client_id: str, secret: str) -> bool: ...


@dataclass(frozen=True)
class PresentedClient:
    """The client a request names, and the secret it offers (if any)."""

    client_id: str
    secret: str | None = field(default=None, repr=False)
    basic: bool = False  # the secret came in an Authorization: Basic header


def presented_client(params: Params, authorization: str | None) -> PresentedClient:
    """Read client_id and secret from the body and a Basic header (RFC 6749 §2.3.1)."""
    body_id = params.get("client_id")
    body_secret = params.get("client_secret")
    if "client_assertion" in params:
        # TODO(when private_key_jwt lands): verify the assertion against the client's keys.
        raise InvalidClient("Client assertions are not supported", detail="private_key_jwt")
    scheme, _, credentials = (authorization or "").strip().partition(" ")
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
    presented: PresentedClient, client: Client | None, clients: SecretChecker
) -> Client:
    """The authenticated client, or InvalidClient (401, WWW-Authenticate after Basic)."""
    if client is None or len(presented.client_id) > MAX_CLIENT_ID:
        raise InvalidClient(basic=presented.basic, detail="unknown client")
    if client.is_public:
        return client
    if presented.secret is None:
        raise InvalidClient(basic=presented.basic, detail="confidential client without secret")
    if not await clients.verify_secret(client.client_id, presented.secret):
        raise InvalidClient(basic=presented.basic, detail="wrong client secret")
    return client
