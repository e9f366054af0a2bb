"""The ceiling of bench/http_bench.py --floor: the least a Python token endpoint can do here.

A bare ASGI app, served by the same uvicorn (uvloop, httptools) with the same worker count as
Keystead, that reads and parses the form body and answers a token response of the same size
with RS256 JWTs signed as Keystead signs them (PyJWT on `cryptography`, RSA-2048, header
{alg, kid, typ}). No framework, no database, no client check, no rate limit, no log:

    POST /1   one signature: an access token (the client-credentials answer)
    POST /2   two signatures: access token and ID token, plus an opaque refresh token (what
              code exchange and refresh with rotation answer)
    POST /2r  the same, and the refresh token rotated in SQLite as the least a server that keeps
              them must do: read the presented one, mark it rotated, insert its successor (the
              columns and indexes of Keystead's refresh_tokens), commit; one connection per
              worker on FLOOR_DB (WAL, synchronous NORMAL), plain sqlite3

What it serves per second bounds any Python server on this stack: Keystead's rate divided by
it is the share left after everything an identity server must do besides signing.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import sqlite3
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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS refresh_tokens (
    token_digest BLOB PRIMARY KEY, id TEXT UNIQUE, family_id TEXT, client_id TEXT,
    user_id TEXT, params TEXT, created_at REAL, family_expires_at REAL,
    idle_expires_at REAL, rotated_at REAL, rotation_result BLOB, revoked_at REAL,
    device_name TEXT);
CREATE INDEX IF NOT EXISTS ix_rt_family ON refresh_tokens (family_id);
CREATE INDEX IF NOT EXISTS ix_rt_user ON refresh_tokens (user_id);
"""
_db: sqlite3.Connection | None = None
_presented = ""  # this worker's last issued refresh token: the next request rotates it


def _database() -> sqlite3.Connection:
    global _db
    if _db is None:
        _db = sqlite3.connect(os.environ.get("FLOOR_DB", "floor.db"), isolation_level=None)
        _db.execute("PRAGMA journal_mode=WAL")
        _db.execute("PRAGMA synchronous=NORMAL")
        _db.execute("PRAGMA busy_timeout=5000")
        _db.executescript(_SCHEMA)
    return _db


def _rotate(successor: str, client: str) -> None:
    global _presented
    db, now = _database(), time.time()
    old = hashlib.sha256(_presented.encode()).digest()
    db.execute("BEGIN IMMEDIATE")
    db.execute("SELECT * FROM refresh_tokens WHERE token_digest = ?", (old,)).fetchall()
    db.execute(
        "UPDATE refresh_tokens SET rotated_at = ? WHERE token_digest = ? AND rotated_at IS NULL",
        (now, old),
    )
    db.execute(
        "INSERT INTO refresh_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL)",
        (
            hashlib.sha256(successor.encode()).digest(),
            secrets.token_hex(16),
            "family-" + str(os.getpid()),
            client,
            "auth0|floor-user",
            '{"scope":["openid","profile","email","offline_access"],"auth_time":0}',
            now,
            now + 86400 * 30,
            now + 86400 * 15,
        ),
    )
    db.execute("COMMIT")
    _presented = successor


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    signatures = 2 if scope["path"] in ("/2", "/2r") else 1
    form = dict(parse_qsl(body.decode()))
    answer = _answer(form, signatures)
    if scope["path"] == "/2r":
        _rotate(answer["refresh_token"], form.get("client_id", "client"))
    out = json.dumps(answer).encode()
    await send({"type": "http.response.start", "status": 200, "headers": RESPONSE_HEADERS})
    await send({"type": "http.response.body", "body": out})
