"""private_key_jwt: a client proves itself with a JWT it signed (RFC 7523 §2.2, §3; contract §3.1).

    verify_client_assertion(assertion, client_id, credentials, audiences, now, seen) -> claims

Checked, each failure an InvalidClient whose detail (logged, never sent) names the check:
  1. size, and a header with an asymmetric `alg` (never `none`, never HMAC)
  2. the signature, with a key the client registered FOR that alg (the kid picks it if given)
  3. iss = sub = client_id; aud names the issuer or the token endpoint (string or array)
  4. exp required, not past, at most MAX_LIFETIME ahead; iat and nbf not in the future
  5. jti required and single-use until exp (SeenJtis here, the database across workers)

Times allow LEEWAY seconds of clock skew either way (security case RE-07).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import jwt

from keystead.core.client_credentials import ALGORITHMS, Credential
from keystead.errors import InvalidClient

ASSERTION_TYPE: Final = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
MAX_ASSERTION: Final = 8192  # characters; an RSA-4096 assertion is under 1.5 KB
MAX_LIFETIME: Final = 600  # seconds from now to exp; the SDKs use 60 (openid-client) and 180
LEEWAY: Final = 60
MAX_JTI: Final = 256


def assertion_audiences(issuer: str) -> frozenset[str]:
    """What `aud` may name: the issuer and the token endpoint, also under https:// for an
    issuer served over http, since auth0-python and node-auth0 hard-code https (§3.1)."""
    issuers = {issuer}
    if issuer.startswith("http://"):
        issuers.add("https://" + issuer[len("http://") :])
    return frozenset({*issuers, *(i + "oauth/token" for i in issuers)})


class SeenJtis:
    """jti values already used, kept until their assertion expires: this process's quick first
    check. Workers and replicas share the database's record (oauth/client_auth.assertion_check,
    storage/repositories/used_assertions.py), which refuses a replay wherever it arrives."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self.max_entries = max_entries

    def use(self, client_id: str, jti: str, exp: float, now: float) -> bool:
        """Record the jti; False if it was already used and has not expired."""
        key = (client_id, jti)
        with self._lock:
            known = self._seen.get(key)
            if known is not None and known + LEEWAY > now:
                return False
            if len(self._seen) >= self.max_entries:
                self._prune(now)
            if len(self._seen) >= self.max_entries:  # all live: refuse rather than forget one
                return False
            self._seen[key] = exp
            return True

    def _prune(self, now: float) -> None:
        self._seen = {k: exp for k, exp in self._seen.items() if exp + LEEWAY > now}


SEEN_JTIS: Final = SeenJtis()


def verify_client_assertion(
    assertion: str,
    *,
    client_id: str,
    credentials: Sequence[Credential],
    audiences: Iterable[str],
    now: float,
    seen: SeenJtis = SEEN_JTIS,
) -> dict[str, Any]:
    """The assertion's claims once every check holds; InvalidClient otherwise."""
    # 1. header
    if len(assertion) > MAX_ASSERTION:
        raise _refused("client assertion too long")
    try:
        header = jwt.get_unverified_header(assertion)
    except (jwt.InvalidTokenError, RecursionError):
        raise _refused("client assertion is not a JWT") from None
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(alg, str) or alg not in ALGORITHMS:
        raise _refused(f"client assertion alg {str(alg)[:20]!r} is not accepted")
    # 2. signature: only keys registered for this alg (and this kid, when one is named)
    keys = [c for c in credentials if c.alg == alg and (kid is None or c.kid == kid)]
    claims = _verified_claims(assertion, alg, keys)
    # 3. who and for whom
    if claims.get("iss") != client_id or claims.get("sub") != client_id:
        raise _refused("client assertion iss and sub must both be the client_id")
    aud = claims.get("aud")
    named = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if not set(audiences) & {a for a in named if isinstance(a, str)}:
        raise _refused("client assertion aud names neither the issuer nor the token endpoint")
    # 4. time
    exp = _number(claims, "exp")
    if exp is None:
        raise _refused("client assertion without exp")
    if exp + LEEWAY <= now:
        raise _refused("client assertion expired")
    if exp > now + MAX_LIFETIME + LEEWAY:
        raise _refused(f"client assertion lives longer than {MAX_LIFETIME} s")
    for name in ("iat", "nbf"):
        at = _number(claims, name)
        if at is not None and at > now + LEEWAY:
            raise _refused(f"client assertion {name} is in the future")
    # 5. single use
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI:
        raise _refused("client assertion without a usable jti")
    if not seen.use(client_id, jti, exp, now):
        raise _refused("client assertion jti replayed")
    return claims


def _verified_claims(assertion: str, alg: str, keys: Sequence[Credential]) -> dict[str, Any]:
    if not keys:
        raise _refused(f"no enabled credential of the client for alg {alg}")
    for credential in keys:
        try:  # the signature only: every claim is checked by verify_client_assertion
            payload = jwt.api_jws.decode(assertion, credential.public_key(), algorithms=[alg])
        except (jwt.InvalidTokenError, ValueError, TypeError):
            continue
        try:
            claims = json.loads(payload)
        except (ValueError, RecursionError):
            raise _refused("client assertion payload is not JSON") from None
        if not isinstance(claims, dict):
            raise _refused("client assertion payload is not an object")
        return claims
    raise _refused("client assertion signature matches no enabled credential")


def _number(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _refused(detail: str) -> InvalidClient:
    return InvalidClient(detail=detail)
