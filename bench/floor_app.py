"""The ceiling of bench/http_bench.py --floor: the least a Python token endpoint can do here.

A bare ASGI app, served by the same uvicorn (uvloop, httptools) with the same worker count as
Keystead, that reads and parses the form body and answers a token response of the same size
with RS256 JWTs signed as Keystead signs them (PyJWT on `cryptography`, RSA-2048, header
{alg, kid, typ}). No framework, no database, no client check, no rate limit, no log:

    POST /1   one signature: an access token (the client-credentials answer)
    POST /2   two signatures: access token and ID token, plus an opaque refresh token (what
              code exchange and refresh with rotation answer)

What it serves per second bounds any Python server on this stack: Keystead's rate divided by
it is the share left after everything an identity server must do besides signing.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "http://127.0.0.1/"
KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
HEADERS = {"kid": "floor-key", "typ": "JWT"}
RESPONSE_HEADERS = [
    (b"content-type", b"application/json"),
    (b"cache-control", b"no-store"),
    (b"pragma", b"no-cache"),
]


def _sign(claims: dict[str, Any]) -> str:
    return jwt.encode(claims, KEY, algorithm="RS256", headers=HEADERS)


def _answer(form: dict[str, str], signatures: int) -> dict[str, Any]:
    now = int(time.time())
    client = form.get("client_id", "client")
    access = {
        "iss": ISSUER,
        "sub": "auth0|floor-user",
        "aud": ["https://api.bench.test/", ISSUER + "userinfo"],
        "iat": now,
        "exp": now + 86400,
        "scope": "openid profile email offline_access read:things",
        "azp": client,
        "jti": secrets.token_urlsafe(16),
    }
    answer: dict[str, Any] = {"access_token": _sign(access), "token_type": "Bearer"}
    answer |= {"expires_in": 86400, "scope": access["scope"]}
    if signatures > 1:
        identity = {
            "iss": ISSUER,
            "sub": access["sub"],
            "aud": client,
            "iat": now,
            "exp": now + 36000,
            "name": "Floor User",
            "email": "floor@example.test",
            "email_verified": True,
            "sid": "floor-session",
        }
        answer["id_token"] = _sign(identity)
        answer["refresh_token"] = secrets.token_urlsafe(32)
    return answer


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    signatures = 2 if scope["path"] == "/2" else 1
    form = dict(parse_qsl(body.decode()))
    out = json.dumps(_answer(form, signatures)).encode()
    await send({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
    await send({"type": "http.response.body", "body": out})
