"""Management API signing keys (contract §10.9, §1.2): the keys that sign every token.

    GET  /keys/signing           read:signing_keys                     200 [key, …]
    GET  /keys/signing/{kid}     read:signing_keys                     200 key / 404
    POST /keys/signing/rotate    create:signing_keys+update:signing_keys 201 {cert, kid} of the
                                 new next key; 409 while the previous key may still have signed
                                 unexpired tokens (`keystead keys rotate --force` overrides)

Reads select the public columns only: the private key never leaves storage. Rotation is
`keystead keys rotate` (storage/keys.rotate_keys): next → current → previous → retired and a
new next; other workers pick it up within storage/keys.REFRESH_INTERVAL. A retired key is
listed as revoked: it is no longer published and tokens it signed no longer verify.
"""

from __future__ import annotations

import hashlib
from typing import Any, Final, Protocol

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, pkcs7
from sqlalchemy import case, select
from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import AppState, get_state
from keystead.errors import ConfigError, Conflict, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import iso
from keystead.storage.keys import rotate_keys
from keystead.storage.models import SigningKeyRow


class _KeyColumns(Protocol):
    """A row of _COLUMNS."""

    kid: str
    state: str
    cert_der: bytes
    created_at: float
    rotated_at: float | None


KEY_NOT_FOUND: Final = "Signing key not found."
_COLUMNS: Final = (
    SigningKeyRow.kid,
    SigningKeyRow.state,
    SigningKeyRow.cert_der,
    SigningKeyRow.created_at,
    SigningKeyRow.rotated_at,
)  # never private_pem
_ORDER: Final = case({"current": 0, "next": 1, "previous": 2}, value=SigningKeyRow.state, else_=3)


async def list_signing_keys(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.sessions() as session:
        query = select(*_COLUMNS).order_by(_ORDER, SigningKeyRow.created_at.desc())
        rows = (await session.execute(query)).all()
    return json_response([signing_key_json(row) for row in rows])


async def get_signing_key(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    kid = request.path_params["kid"]
    row = None
    if "\x00" not in kid:  # PostgreSQL cannot compare such a string
        async with state.sessions() as session:
            query = select(*_COLUMNS).where(SigningKeyRow.kid == kid)
            row = (await session.execute(query)).first()
    if row is None:
        raise NotFound(KEY_NOT_FOUND, error_code="inexistent_signing_key")
    return json_response(signing_key_json(row))


async def rotate_signing_key(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    try:
        ring = await rotate_keys(state)  # never forced here: dropping a live key is the CLI's
    except ConfigError as exc:
        raise Conflict(str(exc), error_code="too_soon_to_rotate") from None
    new_next = ring.next
    assert new_next is not None  # rotate_keys always makes one
    await _record_rotation(state, request, caller, ring.current.kid, new_next.kid)
    cert = _certificate(await _cert_der(state, new_next.kid))
    return json_response({"cert": _pem(cert), "kid": new_next.kid}, 201)


# --- pieces -----------------------------------------------------------------------------------


def signing_key_json(row: _KeyColumns) -> dict[str, Any]:
    cert = _certificate(row.cert_der)
    sha1 = hashlib.sha1(row.cert_der).hexdigest().upper()  # Auth0's fingerprint is SHA-1
    body: dict[str, Any] = {
        "kid": row.kid,
        "cert": _pem(cert),
        "pkcs7": pkcs7.serialize_certificates([cert], Encoding.PEM).decode("ascii"),
        "current": row.state == "current",
        "next": row.state == "next",
        "previous": row.state == "previous",
        "fingerprint": ":".join(sha1[i : i + 2] for i in range(0, len(sha1), 2)),
        "thumbprint": sha1,
        "revoked": row.state == "retired",
    }
    if row.state == "current":
        body["current_since"] = iso(row.rotated_at or row.created_at)
    elif row.state == "previous" and row.rotated_at is not None:
        body["current_until"] = iso(row.rotated_at)
    elif row.state == "retired" and row.rotated_at is not None:
        body["revoked_at"] = iso(row.rotated_at)
    return body


def _certificate(der: bytes) -> x509.Certificate:
    return x509.load_der_x509_certificate(der)


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(Encoding.PEM).decode("ascii")


async def _cert_der(state: AppState, kid: str) -> bytes:
    async with state.sessions() as session:
        der = await session.scalar(select(SigningKeyRow.cert_der).where(SigningKeyRow.kid == kid))
    if der is None:  # another process rotated again in between: vanishingly rare
        raise NotFound(KEY_NOT_FOUND, error_code="inexistent_signing_key")
    return der


async def _record_rotation(
    state: AppState, request: Request, caller: Caller, current: str, new_next: str
) -> None:
    async with state.transaction() as session:
        await record_change(
            state,
            session,
            request,
            caller,
            "Rotate the signing key",
            target={"current": current, "next": new_next},
        )
