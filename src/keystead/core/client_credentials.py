"""Public keys a client registers for private_key_jwt (contract §3.1, §10.2; RFC 7523).

A client's credentials live in its `config` document (Client.extra), no table of their own:

    extra[CREDENTIALS_KEY]                  [{id, name, kid, alg, credential_type, pem,
                                              created_at, updated_at, expires_at}], epoch times
    extra["client_authentication_methods"]  Auth0's field: {"private_key_jwt": {"credentials":
                                              [{"id": …}]}}, the credentials that are enabled

A credential authenticates only while it is enabled and unexpired. Keys: RSA of 2048 bits or
more (RS256, RS384, PS256, as Auth0) and EC P-256 (ES256, Keystead's addition); the algorithm is
fixed when the key is registered, so an assertion cannot pick another (no algorithm confusion).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keystead.core.clients import Client
from keystead.core.keys import b64url

CREDENTIALS_KEY: Final = "keystead_credentials"
METHODS_KEY: Final = "client_authentication_methods"
RSA_ALGS: Final = ("RS256", "RS384", "PS256")
EC_ALGS: Final = ("ES256",)
ALGORITHMS: Final = frozenset({*RSA_ALGS, *EC_ALGS})
MIN_RSA_BITS: Final = 2048
MAX_PEM: Final = 8192
KID: Final = re.compile(r"[0-9A-Za-z_-]{10,64}")

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


class CredentialError(ValueError):
    """A key or field that cannot be registered; the message says why, for a 400."""


@dataclass(frozen=True)
class Credential:
    id: str
    kid: str
    alg: str
    pem: str = field(repr=False)  # the public key, SPKI PEM
    name: str = ""
    credential_type: str = "public_key"
    created_at: float = 0.0
    updated_at: float = 0.0
    expires_at: float | None = None

    def is_expired(self, now: float) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def public_key(self) -> PublicKey:
        return load_public_key(self.pem)[0]


# --- keys ---------------------------------------------------------------------------------------


def load_public_key(pem: str) -> tuple[PublicKey, x509.Certificate | None]:
    """The public key of an SPKI or PKCS#1 PEM, or of an X.509 certificate PEM."""
    if len(pem) > MAX_PEM:
        raise CredentialError(f"pem is longer than {MAX_PEM} characters")
    data = pem.strip().encode("ascii", errors="replace")
    cert = None
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            cert = x509.load_pem_x509_certificate(data)
            key: Any = cert.public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise CredentialError("pem is not a PEM public key or X.509 certificate") from None
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise CredentialError(f"RSA keys need at least {MIN_RSA_BITS} bits")
        return key, cert
    if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1):
        return key, cert
    raise CredentialError("only RSA keys and EC P-256 keys are supported")


def algorithm_for(key: PublicKey, requested: str | None) -> str:
    """The algorithm the key will be used with: the requested one if the key type allows it."""
    allowed = RSA_ALGS if isinstance(key, rsa.RSAPublicKey) else EC_ALGS
    alg = requested or allowed[0]
    if alg not in allowed:
        kind = "an RSA" if allowed is RSA_ALGS else "an EC P-256"
        raise CredentialError(f"alg {alg} does not fit {kind} key; use one of {', '.join(allowed)}")
    return alg


def spki_pem(key: PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def thumbprint(key: PublicKey) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): the kid when none is given."""
    if isinstance(key, rsa.RSAPublicKey):
        n = key.public_numbers()
        members = {"e": _b64_int(n.e), "kty": "RSA", "n": _b64_int(n.n)}
    else:
        p = key.public_numbers()
        members = {"crv": "P-256", "kty": "EC", "x": _b64_int(p.x, 32), "y": _b64_int(p.y, 32)}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


def _b64_int(value: int, size: int = 0) -> str:
    return b64url(value.to_bytes(max(size, (value.bit_length() + 7) // 8, 1), "big"))


# --- a client's credentials ---------------------------------------------------------------------


def credentials_of(client: Client) -> list[Credential]:
    fields = Credential.__dataclass_fields__
    stored = client.extra.get(CREDENTIALS_KEY) or []
    return [Credential(**{k: v for k, v in c.items() if k in fields}) for c in stored]


def enabled_ids(client: Client) -> list[str]:
    """Ids in client_authentication_methods.private_key_jwt.credentials, in order."""
    methods = client.extra.get(METHODS_KEY)
    pkjwt = methods.get("private_key_jwt") if isinstance(methods, Mapping) else None
    listed = pkjwt.get("credentials") if isinstance(pkjwt, Mapping) else None
    if not isinstance(listed, list):
        return []
    return [str(c["id"]) for c in listed if isinstance(c, Mapping) and "id" in c]


def uses_private_key_jwt(client: Client) -> bool:
    """The client authenticates with assertions only (Auth0: exclusive with a secret)."""
    return isinstance(client.extra.get(METHODS_KEY), Mapping) and bool(
        client.extra[METHODS_KEY].get("private_key_jwt") is not None
    )


def enabled_credentials(client: Client, now: float) -> list[Credential]:
    wanted = set(enabled_ids(client))
    return [c for c in credentials_of(client) if c.id in wanted and not c.is_expired(now)]


def with_credentials(client: Client, credentials: Sequence[Credential]) -> Client:
    """The client storing exactly `credentials`; enabled ids that no longer exist are dropped."""
    extra = dict(client.extra)
    extra[CREDENTIALS_KEY] = [asdict(c) for c in credentials]
    if not credentials:
        extra.pop(CREDENTIALS_KEY)
    ids = {c.id for c in credentials}
    methods = extra.get(METHODS_KEY)
    if isinstance(methods, Mapping) and isinstance(methods.get("private_key_jwt"), Mapping):
        kept = [{"id": i} for i in enabled_ids(client) if i in ids]
        extra[METHODS_KEY] = {**methods, "private_key_jwt": {"credentials": kept}}
    return replace(client, extra=extra)


def with_enabled(client: Client, ids: Sequence[str] | None) -> Client:
    """The client with private_key_jwt enabled for `ids` (None: disabled); unknown ids refused."""
    extra = dict(client.extra)
    if ids is None:
        extra.pop(METHODS_KEY, None)
        return replace(client, extra=extra)
    known = {c.id for c in credentials_of(client)}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise CredentialError(f"credential {unknown[0]} does not belong to this client")
    extra[METHODS_KEY] = {
        "private_key_jwt": {"credentials": [{"id": i} for i in dict.fromkeys(ids)]}
    }
    return replace(client, extra=extra)
