"""core/keys.py: key material, the JWK set, RS256 signing and verification that cannot be fooled."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
import requests
from auth0.authentication.token_verifier import (
    AsymmetricSignatureVerifier,
    JwksFetcher,
    TokenVerifier,
)
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from keystead.core.keys import (
    KeyRing,
    SigningKey,
    b64url,
    check_token_times,
    generate_signing_key,
    jwk_thumbprint,
)
from keystead.errors import InvalidToken

ISSUER = "http://keystead.test/"
NOW = 1_700_000_000


@pytest.fixture(scope="module")
def material() -> list[tuple[bytes, bytes, str]]:
    """Four generated keys, shared: RSA generation is the slow part of this file."""
    return [generate_signing_key(NOW) for _ in range(4)]


def load(material: list[tuple[bytes, bytes, str]], i: int, state: Any) -> SigningKey:
    pem, cert, kid = material[i]
    return SigningKey.load(kid=kid, state=state, private_pem=pem, cert_der=cert)


@pytest.fixture(scope="module")
def ring(material: list[tuple[bytes, bytes, str]]) -> KeyRing:
    return KeyRing([load(material, 0, "current"), load(material, 1, "next")])


def claims(**over: Any) -> dict[str, Any]:
    base = {"iss": ISSUER, "sub": "auth0|1", "aud": "api", "iat": NOW, "exp": NOW + 3600}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


def segment(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value).encode())


# --- material ------------------------------------------------------------------------------------


def test_rfc7638_thumbprint_example() -> None:
    # RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 and its SHA-256 thumbprint.
    n = (
        "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_B"
        "JECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_F"
        "DW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4"
        "vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
    )
    modulus = int.from_bytes(base64.urlsafe_b64decode(n + "=" * (-len(n) % 4)), "big")
    public = rsa.RSAPublicNumbers(65537, modulus).public_key()
    assert jwk_thumbprint(public) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


def test_generated_key_is_rsa_2048_with_its_thumbprint_as_kid(material: Any) -> None:
    pem, _cert, kid = material[0]
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    assert private.public_key().public_numbers().e == 65537
    assert kid == jwk_thumbprint(private.public_key())
    assert len({m[2] for m in material}) == 4  # every key its own kid


def test_public_jwk_members(material: Any) -> None:
    key = load(material, 0, "current")
    jwk = dict(key.jwk)
    assert set(jwk) == {"kty", "use", "alg", "kid", "n", "e", "x5c", "x5t"}
    assert (jwk["kty"], jwk["use"], jwk["alg"], jwk["kid"], jwk["e"]) == (
        "RSA",
        "sig",
        "RS256",
        key.kid,
        "AQAB",
    )
    cert_der = base64.b64decode(jwk["x5c"][0], validate=True)  # standard base64, not url
    assert cert_der == material[0][1]
    cert = x509.load_der_x509_certificate(cert_der)
    public = cert.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    from_jwk = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
    assert isinstance(from_jwk, rsa.RSAPublicKey)
    assert from_jwk.public_numbers() == public.public_numbers()
    assert jwk["x5t"] == b64url(hashlib.sha1(cert_der).digest())
    assert cert.not_valid_before_utc.timestamp() == NOW
    assert "d" not in jwk and "p" not in jwk  # no private members


def test_load_refuses_a_certificate_of_another_key(material: Any) -> None:
    with pytest.raises(ValueError, match="does not match"):
        SigningKey.load(
            kid="x", state="current", private_pem=material[0][0], cert_der=material[1][1]
        )


@pytest.mark.parametrize(
    ("states", "message"),
    [
        (["next"], "needs a current key"),
        (["current", "current"], "two current"),
    ],
)
def test_keyring_shape_is_checked(material: Any, states: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        KeyRing([load(material, i, s) for i, s in enumerate(states)])


# --- JWKS ----------------------------------------------------------------------------------------


def test_jwks_publishes_current_next_previous_all_rsa_with_kid(material: Any) -> None:
    ring = KeyRing(
        [load(material, 0, "previous"), load(material, 1, "current"), load(material, 2, "next")]
    )
    keys = ring.jwks()["keys"]
    assert [k["kid"] for k in keys] == [material[1][2], material[2][2], material[0][2]]
    assert all(k["kty"] == "RSA" and k["kid"] for k in keys)
    assert json.loads(ring.jwks_json) == ring.jwks()
    ring.jwks()["keys"][0]["x5c"].append("tampered")  # callers get copies
    assert json.loads(ring.jwks_json) == ring.jwks()


def test_jwks_of_a_new_ring_has_current_and_next(ring: KeyRing) -> None:
    assert len(ring.jwks()["keys"]) == 2
    assert ring.fingerprint == {(ring.current.kid, "current"), (ring.next.kid, "next")}  # type: ignore[union-attr]


def test_auth0_python_parses_every_published_key(material: Any) -> None:
    ring = KeyRing(
        [load(material, 0, "previous"), load(material, 1, "current"), load(material, 2, "next")]
    )
    parsed = JwksFetcher._parse_jwks(json.loads(ring.jwks_json))
    assert set(parsed) == {m[2] for m in material[:3]}


# --- signing and verification --------------------------------------------------------------------


def test_sign_verify_roundtrip(ring: KeyRing) -> None:
    token = ring.sign(claims(aud=["api", f"{ISSUER}userinfo"]))
    assert jwt.get_unverified_header(token) == {
        "alg": "RS256",
        "kid": ring.current.kid,
        "typ": "JWT",
    }
    got = ring.verify(token, issuer=ISSUER, audience="api", now=NOW + 10)
    assert got == claims(aud=["api", f"{ISSUER}userinfo"])
    # An audience alias list accepts any member; None skips the check.
    assert ring.verify(token, issuer=ISSUER, audience=["x", f"{ISSUER}userinfo"], now=NOW)
    assert ring.verify(token, issuer=ISSUER, now=NOW)


def test_rfc9068_typ(ring: KeyRing) -> None:
    token = ring.sign(claims(), typ="at+jwt")
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    assert ring.verify(token, issuer=ISSUER, now=NOW)["sub"] == "auth0|1"


def forged_hs256(ring: KeyRing, _material: Any) -> str:
    # Algorithm confusion: HS256 keyed with the public key's PEM, which anyone can fetch.
    public_pem = ring.current.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = (
        f"{segment({'alg': 'HS256', 'typ': 'JWT', 'kid': ring.current.kid})}.{segment(claims())}"
    )
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64url(mac)}"


def unsigned(ring: KeyRing, _material: Any) -> str:
    return f"{segment({'alg': 'none', 'kid': ring.current.kid})}.{segment(claims())}."


def tampered(ring: KeyRing, _material: Any) -> str:
    header, _payload, signature = ring.sign(claims()).split(".")
    return f"{header}.{segment(claims(sub='auth0|admin'))}.{signature}"


def other_key(_ring: KeyRing, material: Any) -> str:
    # Signed by a key that is not in the ring, under a kid that is.
    stranger = serialization.load_pem_private_key(
        material[3][0], password=None, unsafe_skip_rsa_key_validation=True
    )
    return jwt.encode(
        claims(),
        stranger,  # type: ignore[arg-type]
        algorithm="RS256",
        headers={"kid": material[0][2]},
    )


def with_kid(material: Any, kid: str | None) -> str:
    private = serialization.load_pem_private_key(
        material[0][0], password=None, unsafe_skip_rsa_key_validation=True
    )
    headers = {} if kid is None else {"kid": kid}
    return jwt.encode(claims(), private, algorithm="RS256", headers=headers)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "description"),
    [
        (unsigned, "token must be signed with RS256"),
        (forged_hs256, "token must be signed with RS256"),
        (tampered, "invalid signature"),
        (other_key, "invalid signature"),
        (lambda _r, m: with_kid(m, "unknown"), "token signed with an unknown key"),
        (lambda _r, m: with_kid(m, None), "token signed with an unknown key"),
        (lambda r, _m: r.sign(claims(exp=NOW - 61)), "token expired"),
        (lambda r, _m: r.sign(claims(exp=None)), 'token has no "exp" claim'),
        (lambda r, _m: r.sign(claims(exp="tomorrow")), '"exp" claim must be a number'),
        (lambda r, _m: r.sign(claims(nbf=NOW + 61)), "token not yet valid"),
        (lambda r, _m: r.sign(claims(iat=NOW + 61)), "token issued in the future"),
        (lambda r, _m: r.sign(claims(iss="https://evil.test/")), "invalid issuer"),
        (lambda r, _m: r.sign(claims(iss="http://keystead.test")), "invalid issuer"),
        (lambda r, _m: r.sign(claims(iss=None)), 'token has no "iss" claim'),
        (lambda r, _m: r.sign(claims(aud="other")), "invalid audience"),
        (lambda _r, _m: "not.a.jwt", "malformed token"),
        (lambda _r, _m: "", "malformed token"),
    ],
)
def test_verify_rejects(ring: KeyRing, material: Any, make: Any, description: str) -> None:
    token = make(ring, material)
    with pytest.raises(InvalidToken) as raised:
        ring.verify(token, issuer=ISSUER, audience="api", leeway=60, now=NOW)
    assert raised.value.description == description
    assert raised.value.status == 401


def test_verify_expiry_against_given_time_with_leeway(ring: KeyRing) -> None:
    token = ring.sign(claims(exp=NOW + 100))
    assert ring.verify(token, issuer=ISSUER, now=NOW + 99)
    assert ring.verify(token, issuer=ISSUER, now=NOW + 150, leeway=60)
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(token, issuer=ISSUER, now=NOW + 100)
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(token, issuer=ISSUER)  # default: the system clock, long after NOW


@pytest.mark.parametrize("skew", [8, 59])
def test_small_clock_skew_is_accepted_within_leeway(skew: int) -> None:
    check_token_times({"iat": NOW + skew, "nbf": NOW + skew, "exp": NOW + 600}, NOW, leeway=60)


def test_rotation_keeps_tokens_of_the_old_current_key_valid(material: Any) -> None:
    before = KeyRing([load(material, 0, "current"), load(material, 1, "next")])
    old_token = before.sign(claims())
    after = KeyRing(
        [
            before.current.with_state("previous"),
            before.next.with_state("current"),  # type: ignore[union-attr]
            load(material, 2, "next"),
        ]
    )
    assert after.verify(old_token, issuer=ISSUER, now=NOW)["sub"] == "auth0|1"
    new_token = after.sign(claims())
    assert jwt.get_unverified_header(new_token)["kid"] == material[1][2]
    assert before.verify(new_token, issuer=ISSUER, now=NOW)  # old rings already knew `next`
    retired = KeyRing([after.current.with_state("previous"), load(material, 2, "current")])
    with pytest.raises(InvalidToken, match="unknown key"):
        retired.verify(old_token, issuer=ISSUER, now=NOW)


# --- the real auth0-python verifier ---------------------------------------------------------


def test_auth0_python_verifies_our_id_token(ring: KeyRing, monkeypatch: pytest.MonkeyPatch) -> None:
    jwks_uri = f"{ISSUER}.well-known/jwks.json"
    fetched: list[str] = []

    class FakeResponse:
        ok = True

        def json(self) -> Any:
            return json.loads(ring.jwks_json)

    def fake_get(url: str, *args: Any, **kwargs: Any) -> FakeResponse:
        fetched.append(url)
        return FakeResponse()

    monkeypatch.setattr(requests, "get", fake_get)  # what JwksFetcher calls
    now = int(time.time())  # auth0-python checks exp/iat against the system clock
    id_token = ring.sign(
        {
            "iss": ISSUER,
            "sub": "auth0|507f1f77bcf86cd799439020",
            "aud": "client-123",
            "iat": now,
            "exp": now + 36_000,
            "nonce": "n-0S6_WzA2Mj",
        }
    )
    verifier = TokenVerifier(
        signature_verifier=AsymmetricSignatureVerifier(jwks_uri),
        issuer=ISSUER,
        audience="client-123",
    )
    payload = verifier.verify(id_token, nonce="n-0S6_WzA2Mj")
    assert payload["sub"] == "auth0|507f1f77bcf86cd799439020"
    assert fetched == [jwks_uri]


@pytest.mark.parametrize(
    "header",
    [b"[" * 5000, b"not json", b'"a string"', b"\xff\xfe", b"{}"],
)
def test_hostile_headers_are_invalid_tokens_not_crashes(ring: KeyRing, header: bytes) -> None:
    token = base64.urlsafe_b64encode(header).rstrip(b"=").decode() + ".e30.sig"
    with pytest.raises(InvalidToken):
        ring.verify(token, issuer=ISSUER, now=NOW)


def test_a_remembered_token_is_still_checked_for_issuer_audience_and_time(ring: KeyRing) -> None:
    token = ring.sign(claims(exp=NOW + 100))
    first = ring.verify(token, issuer=ISSUER, audience="api", now=NOW)
    first["sub"] = "changed by a caller"  # callers get a copy: the remembered claims stay
    assert ring.verify(token, issuer=ISSUER, audience="api", now=NOW)["sub"] == claims()["sub"]
    with pytest.raises(InvalidToken, match="invalid audience"):
        ring.verify(token, issuer=ISSUER, audience="other", now=NOW)
    with pytest.raises(InvalidToken, match="invalid issuer"):
        ring.verify(token, issuer="https://elsewhere.test/", audience="api", now=NOW)
    with pytest.raises(InvalidToken, match="expired"):
        ring.verify(token, issuer=ISSUER, audience="api", now=NOW + 101)
    assert ring.verify(token, issuer=ISSUER, audience=["other", "api"], now=NOW)


def test_a_refused_token_is_not_remembered(ring: KeyRing) -> None:
    header, _payload, signature = ring.sign(claims()).split(".")
    forged = f"{header}.{segment(claims(sub='auth0|admin'))}.{signature}"
    for _ in range(2):
        with pytest.raises(InvalidToken, match="invalid signature"):
            ring.verify(forged, issuer=ISSUER, now=NOW)
