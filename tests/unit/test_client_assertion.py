"""private_key_jwt in the core (core/client_assertion.py, core/client_credentials.py): which
assertions authenticate a client, which are refused and why, and which keys can be registered."""

from __future__ import annotations

import base64
import hmac
import json
import uuid
from functools import cache
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keystead.core.client_assertion import (
    LEEWAY,
    MAX_LIFETIME,
    SeenJtis,
    assertion_audiences,
    verify_client_assertion,
)
from keystead.core.client_credentials import (
    Credential,
    CredentialError,
    algorithm_for,
    credentials_of,
    enabled_credentials,
    enabled_ids,
    load_public_key,
    spki_pem,
    thumbprint,
    uses_private_key_jwt,
    with_credentials,
    with_enabled,
)
from keystead.core.clients import Client
from keystead.errors import InvalidClient

ISSUER = "http://localhost:3000/"
CLIENT = "PkjwtClient000000000000000000001"
NOW = 1_700_000_000.0


@cache
def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def credential(key: Any = None, alg: str = "RS256", **kw: Any) -> Credential:
    key = key or rsa_key()
    pem = spki_pem(key.public_key())
    return Credential(
        id=kw.pop("id", "cred_1"), kid=kw.pop("kid", "kid-000001"), alg=alg, pem=pem, **kw
    )


def claims(**over: Any) -> dict[str, Any]:
    body = {"iss": CLIENT, "sub": CLIENT, "aud": "https://localhost:3000/", "iat": NOW,
            "exp": NOW + 180, "jti": str(uuid.uuid4())}  # fmt: skip
    body.update(over)
    return {k: v for k, v in body.items() if v is not None}


def sign(body: dict[str, Any], key: Any = None, alg: str = "RS256", **headers: Any) -> str:
    return jwt.encode(body, key or rsa_key(), algorithm=alg, headers=headers or None)


def verify(assertion: str, creds: list[Credential] | None = None, **kw: Any) -> dict[str, Any]:
    return verify_client_assertion(
        assertion,
        client_id=CLIENT,
        credentials=[credential()] if creds is None else creds,
        audiences=assertion_audiences(ISSUER),
        now=kw.pop("now", NOW),
        seen=kw.pop("seen", SeenJtis()),
    )


def refused(assertion: str, detail: str, **kw: Any) -> None:
    with pytest.raises(InvalidClient) as caught:
        verify(assertion, **kw)
    assert caught.value.detail == detail
    assert caught.value.description == "Unauthorized"  # the reason stays in the log


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_sdk_shaped_assertions_pass() -> None:
    for aud in ("https://localhost:3000/", ISSUER, ISSUER + "oauth/token", [ISSUER, "x"]):
        assert verify(sign(claims(aud=aud)))["aud"] == aud
    ps = credential(alg="PS256")
    assert verify(sign(claims(), alg="PS256"), [ps])["sub"] == CLIENT
    es = credential(ec_key(), "ES256")
    assert verify(sign(claims(), ec_key(), "ES256"), [es])["sub"] == CLIENT
    # openid-client sends nbf = iat = now and a 60 s life; clocks may differ by LEEWAY
    assert verify(sign(claims(nbf=NOW + LEEWAY, iat=NOW + LEEWAY, exp=NOW + 60)))


def test_the_kid_picks_the_key_and_other_keys_are_tried_without_one() -> None:
    other = rsa_key(3072)
    creds = [credential(id="a", kid="kid-aaaaaaa"), credential(other, id="b", kid="kid-bbbbbbb")]
    assert verify(sign(claims(), other), creds)
    assert verify(sign(claims(), other, kid="kid-bbbbbbb"), creds)
    refused(sign(claims(), other, kid="kid-aaaaaaa"), "client assertion signature matches no "
            "enabled credential", creds=creds)  # fmt: skip


def test_algorithm_is_pinned_to_the_key() -> None:
    # alg none, and HMAC keyed with the public PEM (the classic algorithm confusion)
    unsigned = b64(b'{"alg":"none","typ":"JWT"}') + "." + b64(json.dumps(claims()).encode()) + "."
    refused(unsigned, "client assertion alg 'none' is not accepted")
    pem = credential().pem.encode()
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims()).encode())
    forged = head + "." + b64(hmac.new(pem, head.encode(), "sha256").digest())
    refused(forged, "client assertion alg 'HS256' is not accepted")
    # a key registered for RS256 does not verify PS256, RS384 or ES256 assertions
    refused(sign(claims(), alg="PS256"), "no enabled credential of the client for alg PS256")
    refused(sign(claims(), alg="RS384"), "no enabled credential of the client for alg RS384")
    refused("not.a.jwt", "client assertion is not a JWT")
    refused("x" * 9000, "client assertion too long")
    refused(sign(claims(), rsa_key(3072)), "client assertion signature matches no enabled "
            "credential")  # fmt: skip


@pytest.mark.parametrize(
    ("over", "detail"),
    [
        ({"iss": "someone"}, "client assertion iss and sub must both be the client_id"),
        ({"sub": None}, "client assertion iss and sub must both be the client_id"),
        ({"aud": "https://elsewhere.example/"}, "client assertion aud names neither the issuer "
                                                "nor the token endpoint"),
        ({"aud": ISSUER + "oauth/revoke"}, "client assertion aud names neither the issuer nor "
                                           "the token endpoint"),
        ({"aud": None}, "client assertion aud names neither the issuer nor the token endpoint"),
        ({"exp": None}, "client assertion without exp"),
        ({"exp": "soon"}, "client assertion without exp"),
        ({"exp": NOW - LEEWAY}, "client assertion expired"),
        ({"exp": NOW + MAX_LIFETIME + LEEWAY + 1}, f"client assertion lives longer than "
                                                   f"{MAX_LIFETIME} s"),
        ({"iat": NOW + LEEWAY + 1}, "client assertion iat is in the future"),
        ({"nbf": NOW + LEEWAY + 1}, "client assertion nbf is in the future"),
        ({"jti": None}, "client assertion without a usable jti"),
        ({"jti": 7}, "client assertion without a usable jti"),
        ({"jti": "j" * 257}, "client assertion without a usable jti"),
    ],
)  # fmt: skip
def test_claims_are_checked(over: dict[str, Any], detail: str) -> None:
    refused(sign(claims(**over)), detail)


def test_a_jti_is_single_use_until_it_expires() -> None:
    seen = SeenJtis()
    assertion = sign(claims(jti="once", exp=NOW + 100))
    verify(assertion, seen=seen)
    refused(assertion, "client assertion jti replayed", seen=seen)
    refused(sign(claims(jti="once", exp=NOW + 200)), "client assertion jti replayed", seen=seen)
    # another client may use the same jti; after expiry the value is free again
    assert seen.use("other", "once", NOW + 100, NOW)
    assert seen.use(CLIENT, "once", NOW + 500, NOW + 100 + LEEWAY)


def test_a_full_jti_store_prunes_then_refuses() -> None:
    seen = SeenJtis(max_entries=2)
    assert seen.use(CLIENT, "a", NOW + 10, NOW) and seen.use(CLIENT, "b", NOW + 500, NOW)
    assert not seen.use(CLIENT, "c", NOW + 500, NOW)  # both live: nothing is forgotten
    assert seen.use(CLIENT, "c", NOW + 500, NOW + 10 + LEEWAY)  # "a" expired and was pruned
    assert not seen.use(CLIENT, "b", NOW + 500, NOW + 20 + LEEWAY)


def test_registered_keys() -> None:
    key, cert = load_public_key(spki_pem(rsa_key().public_key()))
    assert cert is None and algorithm_for(key, None) == "RS256"
    assert algorithm_for(key, "PS256") == "PS256"
    with pytest.raises(CredentialError, match="alg ES256 does not fit an RSA key"):
        algorithm_for(key, "ES256")
    pkcs1 = (
        rsa_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
    )
    assert thumbprint(load_public_key(pkcs1.decode())[0]) == thumbprint(key)
    ec_public = load_public_key(spki_pem(ec_key().public_key()))[0]
    assert algorithm_for(ec_public, None) == "ES256" and len(thumbprint(ec_public)) == 43
    for bad, why in [
        (spki_pem(rsa_key(1024).public_key()), "RSA keys need at least 2048 bits"),
        (spki_pem(ec.generate_private_key(ec.SECP384R1()).public_key()), "only RSA keys and EC"),
        ("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----", "pem is not a PEM"),
        ("x" * 9000, "pem is longer than 8192 characters"),
    ]:
        with pytest.raises(CredentialError, match=why):
            load_public_key(bad)


def test_credentials_in_the_client_config() -> None:
    client = Client(client_id=CLIENT, name="k")
    a, b = credential(id="a"), credential(id="b", expires_at=NOW)
    stored = with_credentials(client, [a, b])
    assert credentials_of(stored) == [a, b] and not uses_private_key_jwt(stored)
    enabled = with_enabled(stored, ["a", "b", "a"])
    assert enabled_ids(enabled) == ["a", "b"] and uses_private_key_jwt(enabled)
    assert enabled_credentials(enabled, NOW) == [a]  # b expired at NOW
    assert enabled_ids(with_credentials(enabled, [b])) == ["b"]  # a deleted: disabled too
    with pytest.raises(CredentialError, match="credential c does not belong"):
        with_enabled(stored, ["c"])
    assert not uses_private_key_jwt(with_enabled(enabled, None))
    assert "keystead_credentials" not in with_credentials(stored, []).extra
