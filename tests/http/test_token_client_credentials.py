"""POST /oauth/token, grant_type=client_credentials (contract §3.4, §4.1; security CL-03, CD-08)."""

from __future__ import annotations

from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette

from keystead.core.apis import ClientGrant
from tests.conftest import ISSUER
from tests.http.token_helpers import (
    API,
    HS_API,
    HS_SECRET,
    MGMT,
    Tenant,
    assert_token_headers,
    basic,
    claims,
    header,
    logs,
    prepared_tenant_fixtures,
    state_of,
)

M2M_SECRET = "m2m-secret"


prepared, database_url, tenant = prepared_tenant_fixtures()


def form(tenant: Tenant, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": tenant.m2m.client_id,
        "client_secret": M2M_SECRET,
        **extra,
    }


async def test_issues_a_client_token(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    r = await http.post("/oauth/token", data=form(tenant, audience=API))
    assert r.status_code == 200
    assert_token_headers(r)
    body = r.json()
    assert list(body) == ["access_token", "scope", "expires_in", "token_type"]
    assert body["scope"] == "read:messages"
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    token = body["access_token"]
    assert header(token) == {"alg": "RS256", "kid": state_of(app).keys.current.kid, "typ": "JWT"}
    c = claims(app, token, API)
    assert c == {
        "iss": ISSUER,
        "sub": f"{tenant.m2m.client_id}@clients",
        "aud": API,
        "azp": tenant.m2m.client_id,
        "iat": c["iat"],
        "exp": c["iat"] + 3600,
        "scope": "read:messages",
        "gty": "client-credentials",
    }


async def test_json_body_as_auth0_python_sends_it(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    body: dict[str, Any] = {**form(tenant, audience=MGMT), "organization": None}
    r = await http.post("/oauth/token", json=body)
    assert r.status_code == 200
    assert r.json()["scope"] == "read:users create:users"
    assert claims(app, r.json()["access_token"], MGMT)["aud"] == MGMT


async def test_basic_authentication(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await http.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "audience": API},
        headers=basic(tenant.m2m.client_id, M2M_SECRET),
    )
    assert r.status_code == 200


async def test_requested_scope_narrows(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await http.post("/oauth/token", data=form(tenant, audience=MGMT, scope="read:users"))
    assert r.status_code == 200
    assert r.json()["scope"] == "read:users"


async def test_hs256_api_signs_with_its_secret(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).client_grants.create(
            ClientGrant(id="", client_id=tenant.m2m.client_id, audience=HS_API, scope=("read:hs",))
        )
    r = await http.post("/oauth/token", data=form(tenant, audience=HS_API))
    assert r.status_code == 200
    token = r.json()["access_token"]
    assert header(token) == {"alg": "HS256", "typ": "JWT"}
    decoded = jwt.decode(token, HS_SECRET, algorithms=["HS256"], audience=HS_API)
    assert decoded["scope"] == "read:hs"


async def test_default_audience(http: httpx.AsyncClient, app: Starlette, tenant: Tenant) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set("default_audience", API)  # type: ignore[arg-type]
    r = await http.post("/oauth/token", data=form(tenant))
    assert r.status_code == 200
    assert claims(app, r.json()["access_token"], API)["aud"] == API


NOT_AUTHORIZED = (
    'Client is not authorized to access "https://orders.example/". You need to create a '
    '"client-grant" associated to this API. See: '
    "https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
)


@pytest.mark.parametrize(
    ("extra", "status", "body"),
    [
        (
            {"audience": "https://nope.example/"},
            403,
            {
                "error": "access_denied",
                "error_description": "Service not enabled within domain: https://nope.example/",
            },
        ),
        (
            {},
            403,
            {
                "error": "access_denied",
                "error_description": "No audience parameter was provided, and no default "
                "audience has been configured",
            },
        ),
        (
            {"audience": API, "scope": "read:messages write:messages"},
            403,
            {
                "error": "access_denied",
                "error_description": "Client has not been granted scopes: write:messages",
            },
        ),
        (
            {"audience": API, "scope": "read:messages\x01"},
            400,
            {
                "error": "invalid_scope",
                "error_description": "Scope contains characters that are not allowed",
            },
        ),
    ],
)
async def test_refusals(
    http: httpx.AsyncClient, tenant: Tenant, extra: dict[str, str], status: int, body: Any
) -> None:
    r = await http.post("/oauth/token", data=form(tenant, **extra))
    assert r.status_code == status
    assert_token_headers(r)
    assert r.json() == body


async def test_api_without_a_client_grant(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    from keystead.core.apis import ResourceServer

    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).resource_servers.create(
            ResourceServer(id="", identifier="https://orders.example/", name="Orders")
        )
    r = await http.post("/oauth/token", data=form(tenant, audience="https://orders.example/"))
    assert r.status_code == 403
    assert r.json() == {"error": "access_denied", "error_description": NOT_AUTHORIZED}


async def test_public_client_may_not_use_it(http: httpx.AsyncClient, tenant: Tenant) -> None:
    r = await http.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": tenant.spa.client_id,
            "audience": API,
        },
    )
    assert r.status_code == 403
    assert r.json() == {
        "error": "unauthorized_client",
        "error_description": "Grant type 'client_credentials' not allowed for the client.",
        "error_uri": "https://auth0.com/docs/clients/client-grant-types",
    }


async def test_logs_success_and_failure(
    http: httpx.AsyncClient, app: Starlette, tenant: Tenant
) -> None:
    await http.post("/oauth/token", data=form(tenant, audience=API), headers={"user-agent": "t/1"})
    await http.post("/oauth/token", data=form(tenant, audience="https://nope.example/"))
    await http.post("/oauth/token", data=form(tenant, audience=API, client_secret="wrong"))
    events = sorted(await logs(app, "seccft", "feccft"), key=lambda e: (e.type, e.description))
    assert [(e.type, e.client_id) for e in events] == [
        ("feccft", tenant.m2m.client_id),
        ("feccft", tenant.m2m.client_id),
        ("seccft", tenant.m2m.client_id),
    ]
    assert events[0].description == "Service not enabled within domain: https://nope.example/"
    assert events[1].description == "Unauthorized"
    assert events[2].data["audience"] == API and events[2].data["scope"] == "read:messages"
    assert events[2].data["user_agent"] == "t/1"
    assert all("m2m-secret" not in repr(e) and "wrong" not in repr(e) for e in events)
