"""Signing keys, the published JWK set and RS256 token signing/verification (contract §1.2, §1.3).

Key states, one key each:  next ──rotate──▶ current ──rotate──▶ previous ──rotate──▶ retired
`current` signs; `next` is published before it signs so that clients caching the JWKS (auth0-python
keeps it 600 s) already know it; `previous` stays published so that tokens it signed still verify.
Storage decides which key is in which state; this module never touches SQL.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from keystead.errors import InvalidToken

KeyState = Literal["next", "current", "previous"]
PUBLISHED_STATES: Final[tuple[KeyState, ...]] = ("current", "next", "previous")
ALG: Final = "RS256"
CERT_LIFETIME: Final = timedelta(days=3650)
VERIFIED_TOKENS_KEPT: Final = 4096  # per process; ~1 KB each


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _uint_b64url(value: int) -> str:
    return b64url(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def jwk_thumbprint(public_key: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint (SHA-256, base64url): a kid that is stable and unique per key."""
    numbers = public_key.public_numbers()
    canonical = json.dumps(
        {"e": _uint_b64url(numbers.e), "kty": "RSA", "n": _uint_b64url(numbers.n)},
        separators=(",", ":"),
        sort_keys=True,
    )
    return b64url(hashlib.sha256(canonical.encode()).digest())


def generate_signing_key(now: float) -> tuple[bytes, bytes, str]:
    """A new RSA-2048 key: (private PKCS#8 PEM, self-signed certificate DER, kid)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    kid = jwk_thumbprint(key.public_key())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Keystead signing key {kid}")])
    start = datetime.fromtimestamp(math.floor(now), tz=UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + CERT_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, cert.public_bytes(serialization.Encoding.DER), kid


class UnknownKey(InvalidToken):
    """The token's kid is not in the ring: maybe retired, maybe rotated in by another process."""


@dataclass(frozen=True, eq=False)
class SigningKey:
    """One key pair, parsed once: signing is the hot path and must not re-read PEM."""

    kid: str
    state: KeyState
    private_key: rsa.RSAPrivateKey = field(repr=False)
    public_key: rsa.RSAPublicKey = field(repr=False)
    jwk: Mapping[str, Any] = field(repr=False)  # public members only
    created_at: float = 0.0
    alg: str = ALG

    @classmethod
    def load(
        cls,
        *,
        kid: str,
        state: KeyState,
        private_pem: bytes,
        cert_der: bytes,
        created_at: float = 0.0,
    ) -> SigningKey:
        """Parse stored material; ValueError when it is not a matching RSA key and certificate."""
        # Our own keys read back from our own store: whoever can change them there can replace
        # them anyway, and OpenSSL's RSA check costs 50-200 ms per key at every start.
        private_key = serialization.load_pem_private_key(
            private_pem, password=None, unsafe_skip_rsa_key_validation=True
        )
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError(f"signing key {kid} is not an RSA key")
        public_key = private_key.public_key()
        cert = x509.load_der_x509_certificate(cert_der)
        cert_key = cert.public_key()
        if (
            not isinstance(cert_key, rsa.RSAPublicKey)
            or cert_key.public_numbers() != public_key.public_numbers()
        ):
            raise ValueError(f"certificate of signing key {kid} does not match its private key")
        numbers = public_key.public_numbers()
        jwk = {
            "kty": "RSA",
            "use": "sig",
            "alg": ALG,
            "kid": kid,
            "n": _uint_b64url(numbers.n),
            "e": _uint_b64url(numbers.e),
            "x5c": [base64.b64encode(cert_der).decode("ascii")],  # standard base64, RFC 7517 §4.7
            "x5t": b64url(hashlib.sha1(cert_der).digest()),  # RFC 7517 §4.8: SHA-1 is the spec's
        }
        return cls(kid, state, private_key, public_key, jwk, created_at)

    def with_state(self, state: KeyState) -> SigningKey:
        return replace(self, state=state)


class KeyRing:
    """The keys one process signs and verifies with; immutable, swapped whole on rotation."""

    def __init__(self, keys: Iterable[SigningKey]) -> None:
        by_state: dict[str, SigningKey] = {}
        for key in keys:
            if key.state not in PUBLISHED_STATES:
                raise ValueError(f"unknown key state {key.state!r}")
            if key.state in by_state:
                raise ValueError(f"two {key.state} signing keys")
            by_state[key.state] = key
        if "current" not in by_state:
            raise ValueError("a key ring needs a current key")
        self.current: SigningKey = by_state["current"]
        self.next: SigningKey | None = by_state.get("next")
        self.previous: SigningKey | None = by_state.get("previous")
        self.keys: tuple[SigningKey, ...] = tuple(
            by_state[s] for s in PUBLISHED_STATES if s in by_state
        )
        self._by_kid = {key.kid: key for key in self.keys}
        self._verified: dict[str, dict[str, Any]] = {}  # token → claims whose signature held
        if len(self._by_kid) != len(self.keys):
            raise ValueError("signing keys must have distinct kids")
        # Serialized once: the JWKS endpoint sends these bytes as they are.
        self.jwks_json: bytes = json.dumps(self.jwks(), separators=(",", ":")).encode()

    @property
    def fingerprint(self) -> frozenset[tuple[str, str]]:
        """(kid, state) pairs: equal fingerprints mean nothing was rotated."""
        return frozenset((key.kid, key.state) for key in self.keys)

    def get(self, kid: str) -> SigningKey | None:
        return self._by_kid.get(kid)

    def jwks(self) -> dict[str, Any]:
        """`{"keys": [...]}` with current, next and previous; every entry RSA with a kid."""
        return {"keys": [{**key.jwk, "x5c": list(key.jwk["x5c"])} for key in self.keys]}

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        """A compact JWS of `claims` signed by the current key, header {alg, kid, typ}."""
        key = self.current
        return jwt.encode(
            claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid, "typ": typ}
        )

    def verify(
        self,
        token: str,
        *,
        issuer: str,
        audience: str | Sequence[str] | None = None,
        leeway: float = 0,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Claims of a token signed by one of our keys, or InvalidToken saying what is wrong.

        The algorithm is pinned to the key's own (RS256), never taken from the token, so `none`
        and HS256 forged with the public key as secret fail. `audience` None skips the aud check;
        a sequence accepts any of its values (aliases). Time checks use `now` (default: the
        system clock) and require an integer-valued `exp`.

        A token whose signature verified is remembered (SPAs send the same token on every
        call), so a repeat costs a dictionary lookup; issuer, audience and times are checked on
        every call. The memory goes with the ring when keys rotate.
        """
        claims = self._verified.get(token)
        if claims is None:
            claims = self._verify_signature(token)
            if len(self._verified) >= VERIFIED_TOKENS_KEPT:
                del self._verified[next(iter(self._verified))]  # the oldest
            self._verified[token] = claims
        if claims.get("iss") != issuer:
            raise InvalidToken("invalid issuer")
        if audience is not None:
            _check_audience(claims, audience)
        check_token_times(claims, time.time() if now is None else now, leeway)
        return dict(claims)

    def _verify_signature(self, token: str) -> dict[str, Any]:
        header = _unverified_header(token)
        kid = header.get("kid")
        key = self._by_kid.get(kid) if isinstance(kid, str) else None
        if key is None:
            raise UnknownKey("token signed with an unknown key")
        if header.get("alg") != key.alg:
            raise InvalidToken(f"token must be signed with {key.alg}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.public_key,
                algorithms=[key.alg],
                options={
                    "verify_aud": False,  # these four are checked by `verify`, on every call
                    "verify_iss": False,
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "iss"],
                },
            )
        except jwt.InvalidSignatureError:
            raise InvalidToken("invalid signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise InvalidToken(f'token has no "{exc.claim}" claim') from None
        except jwt.PyJWTError:
            raise InvalidToken("malformed token") from None
        return claims


def _check_audience(claims: Mapping[str, Any], audience: str | Sequence[str]) -> None:
    if "aud" not in claims:
        raise InvalidToken('token has no "aud" claim')
    found = claims["aud"]
    found = [found] if isinstance(found, str) else found
    if not isinstance(found, list) or not all(isinstance(a, str) for a in found):
        raise InvalidToken("invalid audience")
    wanted = [audience] if isinstance(audience, str) else audience
    if not any(a in found for a in wanted):
        raise InvalidToken("invalid audience")


def _numeric(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidToken(f'"{name}" claim must be a number')
    return float(value)


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, only to pick the key: a third of PyJWT's cost for the same read, and
    `jwt.decode` still checks the whole token (header included) against that key."""
    head = token.partition(".")[0]
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, TypeError, RecursionError):  # RecursionError: "[[[[…" headers
        raise InvalidToken("malformed token") from None
    if not isinstance(header, dict):
        raise InvalidToken("malformed token")
    return header


def check_token_times(claims: Mapping[str, Any], now: float, leeway: float = 0) -> None:
    """RFC 7519 §4.1.4-6: expired, not yet valid, or issued in the future → InvalidToken."""
    exp = _numeric(claims, "exp")
    if exp is not None and exp <= now - leeway:
        raise InvalidToken("token expired")
    nbf = _numeric(claims, "nbf")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("token not yet valid")
    iat = _numeric(claims, "iat")
    if iat is not None and iat > now + leeway:
        raise InvalidToken("token issued in the future")
