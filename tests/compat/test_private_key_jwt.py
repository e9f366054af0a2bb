"""private_key_jwt with the real SDKs (contract §3.1): auth0-python's client_assertion_signing_key
and openid-client's PrivateKeyJwt against a live `keystead serve`, at /oauth/revoke.

The server here has its own database, prepared before it starts with one client whose public key
is registered and enabled (the tenant file cannot express credentials).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from auth0.authentication import GetToken, RevokeToken
from auth0.authentication.exceptions import Auth0Error
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from keystead.app import create_app
from keystead.core.apis import ClientGrant, Permission, ResourceServer
from keystead.core.client_credentials import (
    Credential,
    spki_pem,
    thumbprint,
    with_credentials,
    with_enabled,
)
from keystead.core.clients import Client
from keystead.settings import Settings
from tests.compat.conftest import need_node_sdks, run_node_script
from tests.compat.serving import free_port, keystead_serve

CLIENT_ID = "PkjwtCompat000000000000000000001"
API = "https://api.pkjwt.test/"
SECRET_KEY = "compat-pkjwt-secret-key"


@dataclass(frozen=True)
class PkjwtServer:
    issuer: str
    domain: str
    keys: dict[str, Any]  # alg → private key registered for it


def pkcs8(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


async def _prepare(settings: Settings, keys: dict[str, Any]) -> None:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        state = app.state.keystead
        credentials = [
            Credential(id=f"cred_{alg}", kid=thumbprint(key.public_key()), alg=alg,
                       pem=spki_pem(key.public_key()), created_at=time.time())
            for alg, key in keys.items()
        ]  # fmt: skip
        client = Client(
            client_id=CLIENT_ID,
            name="pkjwt",
            app_type="non_interactive",
            client_secret="unused-secret",
            grant_types=("client_credentials",),
        )
        client = with_enabled(with_credentials(client, credentials), [c.id for c in credentials])
        async with state.transaction() as session:
            repos = state.repos(session)
            await repos.clients.create(client)
            await repos.resource_servers.create(
                ResourceServer(
                    id="", identifier=API, name="pkjwt api", scopes=(Permission("read:things"),)
                )
            )
            await repos.client_grants.create(
                ClientGrant(id="", client_id=CLIENT_ID, audience=API, scope=("read:things",))
            )


@pytest.fixture(scope="module")
def pkjwt_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PkjwtServer]:
    tmp = tmp_path_factory.mktemp("pkjwt")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}/"
    database_url = f"sqlite:///{tmp / 'pkjwt.db'}"
    keys: dict[str, Any] = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "PS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
    }
    settings = Settings(issuer=issuer, database_url=database_url, data_dir=str(tmp / "data"),
                        secret_key=SECRET_KEY).with_defaults()  # fmt: skip
    asyncio.run(_prepare(settings, keys))
    env = {
        **os.environ,
        "KEYSTEAD_DATABASE_URL": database_url,
        "KEYSTEAD_DATA_DIR": str(tmp / "data"),
        "KEYSTEAD_SECRET_KEY": SECRET_KEY,
        "KEYSTEAD_LOG_LEVEL": "warning",
    }
    args = ["--host", "127.0.0.1", "--port", str(port)]
    with keystead_serve(args, env=env, issuer=issuer, log_path=tmp / "server.log"):
        yield PkjwtServer(issuer=issuer, domain=f"127.0.0.1:{port}", keys=keys)


def revoker(server: PkjwtServer, key: Any, alg: str = "RS256") -> RevokeToken:
    return RevokeToken(server.domain, CLIENT_ID, client_assertion_signing_key=pkcs8(key),
                       client_assertion_signing_alg=alg, protocol="http")  # fmt: skip


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_auth0_python_revokes_with_an_assertion(pkjwt_server: PkjwtServer, alg: str) -> None:
    # auth0-python signs aud https://{domain}/ even over http (§3.1); 200 for an unknown token
    revoker(pkjwt_server, pkjwt_server.keys[alg], alg).revoke_refresh_token("no-such-token")


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_auth0_python_client_credentials_with_an_assertion(
    pkjwt_server: PkjwtServer, alg: str
) -> None:
    getter = GetToken(pkjwt_server.domain, CLIENT_ID, protocol="http",
                      client_assertion_signing_key=pkcs8(pkjwt_server.keys[alg]),
                      client_assertion_signing_alg=alg)  # fmt: skip
    issued = getter.client_credentials(API)
    claims = jwt.decode(issued["access_token"], options={"verify_signature": False})
    assert claims["sub"] == f"{CLIENT_ID}@clients" and claims["aud"] == API
    assert claims["scope"] == "read:things" and claims["gty"] == "client-credentials"


def test_auth0_python_with_a_wrong_key_is_invalid_client(pkjwt_server: PkjwtServer) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(Auth0Error) as caught:
        revoker(pkjwt_server, stranger).revoke_refresh_token("no-such-token")
    assert caught.value.status_code == 401 and caught.value.error_code == "invalid_client"
    # the key registered for PS256 does not sign RS256 assertions (the alg is pinned)
    with pytest.raises(Auth0Error) as caught:
        revoker(pkjwt_server, pkjwt_server.keys["PS256"], "RS256").revoke_refresh_token("x")
    assert caught.value.status_code == 401


def test_the_secret_no_longer_authenticates(pkjwt_server: PkjwtServer) -> None:
    body = {"client_id": CLIENT_ID, "client_secret": "unused-secret", "token": "x"}
    r = httpx.post(pkjwt_server.issuer + "oauth/revoke", data=body)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_openid_client_private_key_jwt(pkjwt_server: PkjwtServer, alg: str) -> None:
    need_node_sdks("openid-client")
    stranger: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if alg == "RS256"
        else ec.generate_private_key(ec.SECP256R1())
    )
    out = run_node_script(
        "private_key_jwt.mjs",
        {
            "issuer": pkjwt_server.issuer,
            "clientId": CLIENT_ID,
            "alg": alg,
            "privateKeyPem": pkcs8(pkjwt_server.keys[alg]),
            "otherKeyPem": pkcs8(stranger),
        },
    )
    steps = out["steps"]
    assert steps["metadata"] == {"ok": True, "value": ["client_secret_basic",
                                 "client_secret_post", "private_key_jwt"]}  # fmt: skip
    assert steps["revoke_with_assertion"] == {"ok": True, "value": None}, steps
    assert steps["revoke_again"] == {"ok": True, "value": None}, steps
    refused = steps["revoke_with_unregistered_key"]
    assert not refused["ok"] and refused["oauth_error"] == "invalid_client", refused
    assert refused["status"] == 401
