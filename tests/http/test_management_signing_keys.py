"""GET /api/v2/keys/signing[/{kid}] and POST /api/v2/keys/signing/rotate (contract §10.9, §1.2):
public certificates only, rotation as `keystead keys rotate` does it, answers checked against
Auth0's OpenAPI."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.http.helpers import (
    check_error,
    check_oas,
    m2m,
    module_app,
    module_http,
    sapi_events,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

READ = "read:signing_keys"
ROTATE = "create:signing_keys update:signing_keys"


async def keys(http: httpx.AsyncClient, app: Any) -> list[dict[str, Any]]:
    r = await http.get("/api/v2/keys/signing", headers=m2m(app, READ))
    assert r.status_code == 200
    body: list[dict[str, Any]] = check_oas(r, "GET", "/keys/signing")
    return body


def no_private_material(text: str) -> None:
    assert "PRIVATE" not in text and '"d"' not in text and "private" not in text.lower()


async def test_keys_are_the_published_ones_with_their_certificates(
    http: httpx.AsyncClient, app: Any
) -> None:
    body = await keys(http, app)
    ring = state_of(app).keys
    assert [k["kid"] for k in body] == [ring.current.kid, ring.next.kid]
    assert [(k["current"], k["next"], k["previous"], k["revoked"]) for k in body] == [
        (True, False, False, False),
        (False, True, False, False),
    ]
    assert "current_since" in body[0]
    for key in body:
        cert = x509.load_pem_x509_certificate(key["cert"].encode())
        der = base64.b64decode(ring.get(key["kid"]).jwk["x5c"][0])
        assert cert.public_bytes(Encoding.DER) == der
        sha1 = hashlib.sha1(der).hexdigest().upper()
        assert key["thumbprint"] == sha1 and key["fingerprint"].replace(":", "") == sha1
        assert key["pkcs7"].startswith("-----BEGIN PKCS7-----")
    r = await http.get(f"/api/v2/keys/signing/{body[0]['kid']}", headers=m2m(app, READ))
    assert check_oas(r, "GET", "/keys/signing/{kid}") == body[0]
    no_private_material(r.text)


async def test_an_unknown_kid_is_404(http: httpx.AsyncClient, app: Any) -> None:
    r = await http.get("/api/v2/keys/signing/nope", headers=m2m(app, READ))
    check_error(r, 404, "Signing key not found.")
    r = await http.get("/api/v2/keys/signing/a%00b", headers=m2m(app, READ))
    check_error(r, 400, "Path validation error: 'String must not contain NUL characters'.")


async def test_scopes(http: httpx.AsyncClient, app: Any) -> None:
    r = await http.get("/api/v2/keys/signing", headers=m2m(app, "read:users"))
    check_error(r, 403, "Insufficient scope, expected any of: read:signing_keys")
    r = await http.post("/api/v2/keys/signing/rotate", headers=m2m(app, READ))
    assert r.status_code == 403


async def test_rotate_moves_every_key_and_signs_with_the_old_next(
    http: httpx.AsyncClient, app: Any
) -> None:
    before = {k["kid"]: k for k in await keys(http, app)}
    old_current = next(k for k, v in before.items() if v["current"])
    old_next = next(k for k, v in before.items() if v["next"])
    r = await http.post("/api/v2/keys/signing/rotate", headers=m2m(app, ROTATE))
    assert r.status_code == 201, r.text
    rotated = check_oas(r, "POST", "/keys/signing/rotate")
    no_private_material(r.text)
    after = {k["kid"]: k for k in await keys(http, app)}
    assert after[old_next]["current"] and after[old_current]["previous"]
    assert "current_until" in after[old_current]
    assert after[rotated["kid"]]["next"] and after[rotated["kid"]]["cert"] == rotated["cert"]
    ring = state_of(app).keys
    assert ring.current.kid == old_next and ring.next is not None
    assert ring.next.kid == rotated["kid"]
    # tokens signed by the new current key are accepted at once
    r = await http.get("/api/v2/keys/signing", headers=m2m(app, READ))
    assert r.status_code == 200
    events = [e for e in await sapi_events(app) if e.description == "Rotate the signing key"]
    assert events and events[-1].data["details"]["target"]["next"] == rotated["kid"]

    # A second rotation would retire a key whose tokens may still be live: refused, nothing moves.
    r = await http.post("/api/v2/keys/signing/rotate", headers=m2m(app, ROTATE))
    body = check_error(r, 409, r.json().get("message", ""))
    assert "may still have signed unexpired tokens" in body["message"]
    assert {k["kid"]: k for k in await keys(http, app)} == after
