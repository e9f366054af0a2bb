"""Discovery, JWKS and probes: /.well-known/openid-configuration, /.well-known/jwks.json
(contract §1.1, §1.2, §0.3), /healthz, /readyz.

Hot paths: bodies and headers are encoded once (discovery per issuer, JWKS per key ring) and the
same response object is sent again; only the header list is copied per request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from keystead.core.client_credentials import ALGORITHMS
from keystead.deps import get_state
from keystead.storage.keys import keyring

log = logging.getLogger("keystead")

DISCOVERY_MAX_AGE = 3600
JWKS_MAX_AGE = 300  # below auth0-python's 600 s cache; `next` is published ahead of rotation
READY_TIMEOUT = 2.0  # seconds; a hung database must not hang the probe
RETRY_AFTER = "5"

SCOPES = [
    "openid",
    "profile",
    "offline_access",
    "name",
    "given_name",
    "family_name",
    "nickname",
    "email",
    "email_verified",
    "picture",
    "created_at",
    "identities",
    "phone",
    "address",
]
CLAIMS = [
    "aud",
    "auth_time",
    "created_at",
    "email",
    "email_verified",
    "exp",
    "family_name",
    "given_name",
    "iat",
    "identities",
    "iss",
    "name",
    "nickname",
    "phone_number",
    "picture",
    "sub",
]


def discovery_document(issuer: str) -> dict[str, Any]:
    """The OpenID Provider metadata for `issuer` (ends with "/"), in Auth0's spelling.

    Auth0 also advertises endpoints and methods Keystead does not serve (device code, MFA
    challenge, dynamic registration, implicit/hybrid response types, `plain` PKCE, HS256/PS256
    ID tokens); strict clients pick from this list, so only what works is here.
    """
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}authorize",
        "token_endpoint": f"{issuer}oauth/token",
        "userinfo_endpoint": f"{issuer}userinfo",
        "jwks_uri": f"{issuer}.well-known/jwks.json",
        "revocation_endpoint": f"{issuer}oauth/revoke",
        "end_session_endpoint": f"{issuer}oidc/logout",
        "scopes_supported": SCOPES,
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "token_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ],
        "revocation_endpoint_auth_signing_alg_values_supported": sorted(ALGORITHMS),
        "claims_supported": CLAIMS,
        "request_uri_parameter_supported": False,
        "request_parameter_supported": False,
    }


class StaticResponse(Response):
    """Encoded once, sent many times; the header list is copied because middleware may edit it."""

    def __init__(self, body: bytes, headers: Mapping[str, str], status_code: int = 200) -> None:
        super().__init__(body, status_code, dict(headers), "application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = {"type": "http.response.start", "status": self.status_code}
        await send({**start, "headers": list(self.raw_headers)})
        await send({"type": "http.response.body", "body": self.body})


def _public(max_age: int) -> dict[str, str]:
    return {"Cache-Control": f"public, max-age={max_age}", "Access-Control-Allow-Origin": "*"}


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@lru_cache(maxsize=16)  # keyed by issuer: one entry per app, tests build several
def _discovery_response(issuer: str) -> StaticResponse:
    return StaticResponse(_json(discovery_document(issuer)), _public(DISCOVERY_MAX_AGE))


# A preflight names the headers it wants; echo them only when they are plain header names.
_HEADER_LIST = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*$")


def _preflight(request: Request) -> Response:
    headers = {
        "Access-Control-Allow-Origin": "*",
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Max-Age": "86400",
    }
    wanted = request.headers.get("access-control-request-headers", "").strip()
    if wanted and _HEADER_LIST.match(wanted):
        headers["Access-Control-Allow-Headers"] = wanted
    return Response(status_code=204, headers=headers)


async def openid_configuration(request: Request) -> Response:
    if request.method == "OPTIONS":
        return _preflight(request)
    return _discovery_response(get_state(request).settings.issuer)


async def jwks(request: Request) -> Response:
    if request.method == "OPTIONS":
        return _preflight(request)
    state = get_state(request)
    ring = await keyring(state)
    cached = state.extras.get("jwks.response")
    if cached is None or cached[0] is not ring:
        cached = (ring, StaticResponse(ring.jwks_json, _public(JWKS_MAX_AGE)))
        state.extras["jwks.response"] = cached
    response: Response = cached[1]
    return response


_NO_STORE = {"Cache-Control": "no-store"}
_OK = StaticResponse(b'{"status":"ok"}', _NO_STORE)
_UNAVAILABLE = StaticResponse(
    b'{"status":"unavailable"}', {**_NO_STORE, "Retry-After": RETRY_AFTER}, status_code=503
)


async def healthz(_request: Request) -> Response:
    """Liveness: the process answers."""
    return _OK


async def readyz(request: Request) -> Response:
    """Readiness: the database answers `SELECT 1` within READY_TIMEOUT."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            async with get_state(request).engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:  # any failure, driver or timeout, means "not ready"
        log.warning("readiness check failed: %s", exc or type(exc).__name__)
        return _UNAVAILABLE
    return _OK
