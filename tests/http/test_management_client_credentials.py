"""/api/v2/clients/{client_id}/credentials (contract §10.2) and what they are for: private_key_jwt
at /oauth/revoke (§3.1, §7.1). Responses checked against the OpenAPI schema."""

from __future__ import annotations

import hmac
import json
import time
import uuid
from functools import cache
from typing import Any

import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keystead.core.client_credentials import (
    enabled_ids,
    spki_pem,
    thumbprint,
    uses_private_key_jwt,
    with_enabled,
)
from keystead.errors import BadRequest
from keystead.management.client_credentials import apply_authentication_methods
from tests.conftest import ISSUER
from tests.http.helpers import (
    M2M,
    check_error,
    check_oas,
    m2m,
    make_client,
    module_app,
    module_http,
    sapi_events,
    state_of,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

WEB = "PkjwtWeb000000000000000000000001"
SECRET = "pkjwt-web-secret"
SCOPES = ("read:client_credentials create:client_credentials update:client_credentials "
          "delete:client_credentials")  # fmt: skip
PATH = f"/api/v2/clients/{WEB}/credentials"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@cache
def private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_pem(key: Any = None) -> str:
    return spki_pem((key or private_key()).public_key())


def assertion(key: Any = None, alg: str = "RS256", **over: Any) -> str:
    now = int(time.time())
    body = {"iss": WEB, "sub": WEB, "aud": ISSUER, "iat": now, "exp": now + 60,
            "jti": str(uuid.uuid4()), **over}  # fmt: skip
    return jwt.encode(body, key or private_key(), algorithm=alg)


def hmac_forged(secret: bytes) -> str:
    """An HS256 JWT keyed with `secret`, built by hand: PyJWT refuses a PEM as HMAC key."""
    head = jwt.utils.base64url_encode(b'{"alg":"HS256","typ":"JWT"}')
    now = int(time.time())
    body = json.dumps({"iss": WEB, "sub": WEB, "aud": ISSUER, "exp": now + 60, "jti": "h"})
    signing_input = head + b"." + jwt.utils.base64url_encode(body.encode())
    mac = hmac.new(secret, signing_input, "sha256").digest()
    return (signing_input + b"." + jwt.utils.base64url_encode(mac)).decode()


def admin(app: Any, scope: str = SCOPES) -> dict[str, str]:
    return m2m(app, scope)


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")
    await make_client(app, client_id=WEB, name="Web", app_type="regular_web", client_secret=SECRET)


async def enable(app: Any, ids: list[str] | None) -> None:
    """client_authentication_methods.private_key_jwt, set as PATCH /clients would set it."""
    state = state_of(app)
    async with state.transaction() as session:
        clients = state.repos(session).clients
        await clients.update(with_enabled(await clients.get(WEB), ids))


async def revoke(http: Any, **body: str) -> Any:
    return await http.post("/oauth/revoke", data={"token": "unknown-token", **body})


# --- the Management API -------------------------------------------------------------------------


async def test_register_list_get_patch_delete(http: Any, app: Any) -> None:
    r = await http.post(
        PATH,
        json={"credential_type": "public_key", "name": "ci key", "pem": public_pem()},
        headers=admin(app),
    )
    created = check_oas(r, "POST", "/clients/{client_id}/credentials")
    assert set(created) == {"id", "name", "kid", "alg", "credential_type", "created_at",
                            "updated_at"}  # fmt: skip
    assert created["id"].startswith("cred_") and created["alg"] == "RS256"
    assert created["kid"] == thumbprint(private_key().public_key())
    assert "pem" not in r.text  # the key is stored, not echoed
    one = f"{PATH}/{created['id']}"
    listed = check_oas(
        await http.get(PATH, headers=admin(app)), "GET", "/clients/{client_id}/credentials"
    )
    assert listed == [created]
    got = check_oas(
        await http.get(one, headers=admin(app)),
        "GET",
        "/clients/{client_id}/credentials/{credential_id}",
    )
    assert got == created
    r = await http.patch(one, json={"expires_at": "2999-01-01T00:00:00.000Z"}, headers=admin(app))
    patched = check_oas(r, "PATCH", "/clients/{client_id}/credentials/{credential_id}")
    assert patched["expires_at"] == "2999-01-01T00:00:00.000Z" and r.status_code == 201
    r = await http.patch(one, json={"expires_at": None}, headers=admin(app))
    assert "expires_at" not in r.json()
    r = await http.delete(one, headers=admin(app))
    assert check_oas(r, "DELETE", "/clients/{client_id}/credentials/{credential_id}") is None
    assert (await http.get(PATH, headers=admin(app))).json() == []
    assert (await http.delete(one, headers=admin(app))).status_code == 204  # already gone
    check_error(await http.get(one, headers=admin(app)), 404, "The credential does not exist.",
                "inexistent_credential")  # fmt: skip
    described = [e.description for e in await sapi_events(app)]
    assert {"Create a client credential", "Update a client credential",
            "Delete a client credential"} <= set(described)  # fmt: skip


async def test_choices_kid_alg_and_ec_keys(http: Any, app: Any) -> None:
    r = await http.post(
        PATH,
        json={"credential_type": "public_key", "pem": public_pem(), "alg": "PS256",
              "kid": "my-key-0001", "expires_at": "2999-06-01T00:00:00Z"},
        headers=admin(app),
    )  # fmt: skip
    made = check_oas(r, "POST", "/clients/{client_id}/credentials")
    assert (made["kid"], made["alg"], made["expires_at"]) == (
        "my-key-0001", "PS256", "2999-06-01T00:00:00.000Z")  # fmt: skip
    r = await http.post(
        PATH, json={"credential_type": "public_key", "pem": public_pem(), "kid": "my-key-0001"},
        headers=admin(app),
    )  # fmt: skip
    check_error(r, 409, "A credential with kid my-key-0001 already exists.", "already_exists")
    ec_pem = spki_pem(ec.generate_private_key(ec.SECP256R1()).public_key())
    r = await http.post(PATH, json={"credential_type": "public_key", "pem": ec_pem},
                        headers=admin(app))  # fmt: skip
    assert r.status_code == 201 and r.json()["alg"] == "ES256"  # Keystead's addition
    for gone in (await http.get(PATH, headers=admin(app))).json():
        await http.delete(f"{PATH}/{gone['id']}", headers=admin(app))


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"pem": "x"}, 400, "Payload validation error: 'Missing required property: "
                            "credential_type'."),
        ({"credential_type": "public_key"}, 400, "Payload validation error: 'Missing required "
                                                  "property: pem'."),
        ({"credential_type": "public_key", "pem": "garbage"}, 400, "Payload validation error: "
         "'pem is not a PEM public key or X.509 certificate' on property pem."),
        ({"credential_type": "public_key", "pem": "PEM", "alg": "HS256"}, 400, "Payload "
         "validation error: ''HS256' is not one of"),
        ({"credential_type": "public_key", "pem": "PEM", "alg": "ES256"}, 400, "Payload "
         "validation error: 'alg ES256 does not fit an RSA key; use one of RS256, RS384, PS256'"
         " on property pem."),
        ({"credential_type": "public_key", "pem": "SMALL"}, 400, "Payload validation error: "
         "'RSA keys need at least 2048 bits' on property pem."),
        ({"credential_type": "public_key", "pem": "PEM", "expires_at": "2001-01-01T00:00:00Z"},
         400, "Payload validation error: 'expires_at must be in the future' on property "
         "expires_at."),
        ({"credential_type": "public_key", "pem": "PEM", "expires_at": "tomorrow"}, 400,
         "Payload validation error: 'Object didn't pass validation for format date-time: "
         "tomorrow' on property expires_at."),
        ({"credential_type": "cert_subject_dn", "subject_dn": "CN=x"}, 400, "credential_type "
         "cert_subject_dn (mutual TLS) is not supported; use public_key."),
        ({"credential_type": "public_key", "pem": "PEM", "extra": 1}, 400, "Payload validation "
         "error: 'Additional properties not allowed: extra'."),
    ],
)  # fmt: skip
async def test_bad_registrations(
    http: Any, app: Any, body: dict[str, Any], status: int, message: str
) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    body = {k: {"PEM": public_pem(), "SMALL": public_pem(small)}.get(v, v) if k == "pem" else v
            for k, v in body.items()}  # fmt: skip
    r = await http.post(PATH, json=body, headers=admin(app))
    assert r.status_code == status, r.text
    assert r.json()["message"].startswith(message), r.json()["message"]
    assert (await http.get(PATH, headers=admin(app))).json() == []


async def test_scopes_and_unknown_client(http: Any, app: Any) -> None:
    r = await http.get(PATH, headers=admin(app, "read:clients"))
    check_error(r, 403, "Insufficient scope, expected any of: read:client_credentials",
                "insufficient_scope")  # fmt: skip
    r = await http.post(PATH, json={}, headers=admin(app, "read:client_credentials"))
    assert r.status_code == 403
    r = await http.get("/api/v2/clients/nobody/credentials", headers=admin(app))
    check_error(r, 404, "The client does not exist.", "inexistent_client")
    r = await http.patch(f"{PATH}/cred_x", json={"expires_at": None}, headers=admin(app))
    check_error(r, 404, "The credential does not exist.", "inexistent_credential")
    r = await http.patch(f"{PATH}/cred_x", json={}, headers=admin(app))
    assert r.status_code == 400


# --- private_key_jwt at /oauth/revoke ------------------------------------------------------------


async def test_revoke_with_an_enabled_credential(http: Any, app: Any) -> None:
    r = await http.post(PATH, json={"credential_type": "public_key", "pem": public_pem()},
                        headers=admin(app))  # fmt: skip
    cred = r.json()["id"]
    signed = assertion()
    # registered but not enabled: the secret still works, the assertion does not
    assert (await revoke(http, client_id=WEB, client_secret=SECRET)).status_code == 200
    r = await revoke(http, client_id=WEB, client_assertion_type=ASSERTION_TYPE,
                     client_assertion=signed)  # fmt: skip
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    await enable(app, [cred])
    try:
        r = await revoke(http, client_id=WEB, client_assertion_type=ASSERTION_TYPE,
                         client_assertion=signed)  # fmt: skip
        assert r.status_code == 200, r.text
        # the same assertion again: a replay
        r = await revoke(http, client_id=WEB, client_assertion_type=ASSERTION_TYPE,
                         client_assertion=signed)  # fmt: skip
        assert r.status_code == 401 and r.json() == {
            "error": "invalid_client",
            "error_description": "Unauthorized",
        }
        # client_id may be left out (RFC 7523 §3); https aud and the token endpoint are accepted
        for aud in ("https://" + ISSUER.removeprefix("http://"), ISSUER + "oauth/token"):
            r = await revoke(http, client_assertion_type=ASSERTION_TYPE,
                             client_assertion=assertion(aud=aud))  # fmt: skip
            assert r.status_code == 200, (aud, r.text)
        # with private_key_jwt enabled the secret no longer authenticates
        assert (await revoke(http, client_id=WEB, client_secret=SECRET)).status_code == 401
    finally:
        await enable(app, None)
        await http.delete(f"{PATH}/{cred}", headers=admin(app))


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"client_assertion": "x"}, 400, "invalid_request"),  # no type
        ({"client_assertion_type": ASSERTION_TYPE}, 400, "invalid_request"),  # no assertion
        ({"client_assertion_type": "urn:other", "client_assertion": "x"}, 401, "invalid_client"),
        ({"client_assertion_type": ASSERTION_TYPE, "client_assertion": "x",
          "client_secret": SECRET}, 400, "invalid_request"),  # two methods
        ({"client_assertion_type": ASSERTION_TYPE, "client_assertion": "not-a-jwt"}, 401,
         "invalid_client"),
    ],
)  # fmt: skip
async def test_malformed_assertion_requests(
    http: Any, app: Any, body: dict[str, str], status: int, error: str
) -> None:
    r = await revoke(http, client_id=WEB, **body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error and "Traceback" not in r.text


async def test_forged_assertions_are_refused(http: Any, app: Any) -> None:
    r = await http.post(PATH, json={"credential_type": "public_key", "pem": public_pem()},
                        headers=admin(app))  # fmt: skip
    cred = r.json()["id"]
    await enable(app, [cred])
    pem = public_pem().encode()
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    try:
        for forged in (
            assertion(other),  # another key
            hmac_forged(pem),  # the public key as an HMAC secret
            assertion(alg="PS256"),  # registered for RS256
            assertion(exp=int(time.time()) - 3600),
            assertion(iss="SomeoneElse"),
            assertion(aud="https://other.example/"),
        ):
            r = await revoke(http, client_id=WEB, client_assertion_type=ASSERTION_TYPE,
                             client_assertion=forged)  # fmt: skip
            assert r.status_code == 401 and r.json()["error"] == "invalid_client", forged
    finally:
        await enable(app, None)
        await http.delete(f"{PATH}/{cred}", headers=admin(app))


async def test_client_authentication_methods_for_patch_clients(http: Any, app: Any) -> None:
    r = await http.post(PATH, json={"credential_type": "public_key", "pem": public_pem()},
                        headers=admin(app))  # fmt: skip
    cred = r.json()["id"]
    state = state_of(app)
    async with state.transaction() as session:
        client = await state.repos(session).clients.get(WEB)
    on = apply_authentication_methods(client, {"private_key_jwt": {"credentials": [{"id": cred}]}})
    assert enabled_ids(on) == [cred] and uses_private_key_jwt(on)
    assert not uses_private_key_jwt(apply_authentication_methods(on, None))
    for bad, why in [
        ({"private_key_jwt": {"credentials": [{"id": "cred_nope"}]}},
         "credential cred_nope does not belong to this client"),
        ({"tls_client_auth": {"credentials": []}},
         "Only private_key_jwt with a credentials list is supported"),
        ({"private_key_jwt": {"credentials": [7]}},
         "Each credential must be an object with a string id"),
    ]:  # fmt: skip
        with pytest.raises(BadRequest) as caught:
            apply_authentication_methods(client, bad)
        assert caught.value.message == (
            f"Payload validation error: '{why}' on property client_authentication_methods."
        )
    await http.delete(f"{PATH}/{cred}", headers=admin(app))


async def test_enabled_through_patch_clients_then_a_token_with_an_assertion(
    http: Any, app: Any
) -> None:
    r = await http.post(PATH, json={"credential_type": "public_key", "pem": public_pem()},
                        headers=admin(app))  # fmt: skip
    cred = r.json()["id"]
    methods = {"private_key_jwt": {"credentials": [{"id": cred}]}}
    patch = {"token_endpoint_auth_method": None, "client_authentication_methods": methods}
    client_path = f"/api/v2/clients/{WEB}"
    try:
        # the field needs its own scope (§8.3 item 4)
        r = await http.patch(client_path, json=patch, headers=admin(app, "update:clients"))
        assert r.status_code == 403, r.text
        writer = admin(app, "update:clients update:client_credentials")
        r = await http.patch(client_path, json=patch, headers=writer)
        assert r.status_code == 200, r.text
        r = await http.get(client_path, headers=admin(app, "read:clients read:client_keys"))
        shown = r.json()
        assert shown["client_authentication_methods"] == methods
        assert "token_endpoint_auth_method" not in shown
        check_oas(r, "get", "/clients/{id}")

        grant = {
            "grant_type": "client_credentials",
            "audience": ISSUER + "api/v2/",
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion(),
        }
        r = await http.post("/oauth/token", data=grant)
        # authenticated by the assertion (a bad one is 401); a web client may not use this grant
        assert r.status_code == 403 and r.json()["error"] == "unauthorized_client", r.text
        other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        r = await http.post("/oauth/token", data={**grant, "client_assertion": assertion(other)})
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        secret = {"grant_type": "client_credentials", "audience": ISSUER + "api/v2/",
                  "client_id": WEB, "client_secret": SECRET}  # fmt: skip
        r = await http.post("/oauth/token", data=secret)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"

        off = {"client_authentication_methods": None}
        r = await http.patch(client_path, json=off, headers=writer)
        assert r.status_code == 200 and "client_authentication_methods" not in r.json()
        assert r.json()["token_endpoint_auth_method"] == "client_secret_post"
    finally:
        await enable(app, None)
        await http.delete(f"{PATH}/{cred}", headers=admin(app))


async def test_a_replay_is_refused_by_another_worker_too(http: Any, app: Any) -> None:
    from keystead.core.client_assertion import SEEN_JTIS

    r = await http.post(PATH, json={"credential_type": "public_key", "pem": public_pem()},
                        headers=admin(app))  # fmt: skip
    cred = r.json()["id"]
    await enable(app, [cred])
    signed = assertion()
    try:
        r = await revoke(http, client_assertion_type=ASSERTION_TYPE, client_assertion=signed)
        assert r.status_code == 200, r.text
        SEEN_JTIS._seen.clear()  # another worker: this process's memory does not know the jti
        r = await revoke(http, client_assertion_type=ASSERTION_TYPE, client_assertion=signed)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client"
        SEEN_JTIS._seen.clear()
        r = await revoke(http, client_assertion_type=ASSERTION_TYPE, client_assertion=assertion())
        assert r.status_code == 200, r.text  # a fresh jti is fine
    finally:
        await enable(app, None)
        await http.delete(f"{PATH}/{cred}", headers=admin(app))


async def test_a_used_jti_stays_used_when_the_request_fails_afterwards(http: Any, app: Any) -> None:
    from keystead.core.client_assertion import SEEN_JTIS

    r = await http.post(PATH, json={"credential_type": "public_key", "pem": public_pem()},
                        headers=admin(app))  # fmt: skip
    cred = r.json()["id"]
    await enable(app, [cred])
    exchange = {
        "grant_type": "authorization_code",
        "code": "no-such-code",
        "redirect_uri": "https://web.example/callback",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(),
    }
    try:
        r = await http.post("/oauth/token", data=exchange)
        # authenticated, then refused (a web client without this grant): the request's own
        # work rolls back …
        assert r.status_code == 403 and r.json()["error"] == "unauthorized_client", r.text
        SEEN_JTIS._seen.clear()  # … and another worker, which never saw the jti,
        r = await http.post("/oauth/token", data=exchange)
        assert r.status_code == 401 and r.json()["error"] == "invalid_client", r.text
    finally:
        await enable(app, None)
        await http.delete(f"{PATH}/{cred}", headers=admin(app))
