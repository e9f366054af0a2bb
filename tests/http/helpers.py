"""Shared fixtures and helpers of the HTTP tests: a module-scoped app and client, tokens minted
with the app's own keys, stored records, and Management API responses checked against Auth0's
OpenAPI response schema of the same operation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette

from keystead.app import create_app
from keystead.core.clients import Client
from keystead.core.users import User
from keystead.deps import AppState
from keystead.settings import Settings
from tests.conftest import ISSUER

OAS_PATH = Path("/work/shared/spec/auth0-management-api-oas.json")
MGMT = ISSUER + "api/v2/"
SPA = "SpaClient00000000000000000000001"
M2M = "M2mClient00000000000000000000001"
SPA_ORIGIN = "http://localhost:3000"
ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
USER_SCOPES = "openid profile email read:current_user update:current_user_metadata"
ALL_USER_SCOPES = "read:users create:users update:users delete:users"


def state_of(app: Starlette) -> AppState:
    state: AppState = app.state.keystead
    return state


def mint(
    app: Starlette,
    *,
    sub: str,
    scope: str,
    aud: str | list[str] = MGMT,
    iss: str = ISSUER,
    azp: str | None = M2M,
    ttl: int = 3600,
    **claims: Any,
) -> str:
    now = int(time.time())
    body: dict[str, Any] = {"iss": iss, "sub": sub, "aud": aud, "iat": now, "exp": now + ttl}
    body["scope"] = scope
    if azp is not None:
        body["azp"] = azp
    body.update(claims)
    return str(state_of(app).keys.sign(body))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def m2m(app: Starlette, scope: str = ALL_USER_SCOPES, **kw: Any) -> dict[str, str]:
    """Headers of a client-credentials token (sub `{client_id}@clients`)."""
    return bearer(mint(app, sub=f"{M2M}@clients", scope=scope, gty="client-credentials", **kw))


def user_token(app: Starlette, user_id: str, scope: str = USER_SCOPES, **kw: Any) -> dict[str, str]:
    """Headers of an SPA user's token: aud [api/v2, userinfo], as spa-js always gets (§8.1)."""
    kw.setdefault("aud", [MGMT, ISSUER + "userinfo"])
    kw.setdefault("azp", SPA)
    return bearer(mint(app, sub=user_id, scope=scope, **kw))


async def make_user(app: Starlette, **fields: Any) -> User:
    state = state_of(app)
    connection = fields.pop("connection", "Username-Password-Authentication")
    fields.setdefault("user_id", "")
    async with state.transaction() as session:
        return await state.repos(session).users.create(User(**fields), connection=connection)


async def get_user(app: Starlette, user_id: str) -> User | None:
    state = state_of(app)
    async with state.transaction() as session:
        return await state.repos(session).users.find(user_id)


async def make_client(app: Starlette, **fields: Any) -> Client:
    state = state_of(app)
    async with state.transaction() as session:
        return await state.repos(session).clients.create(Client(**fields))


async def make_spa(app: Starlette, **extra: Any) -> Client:
    return await make_client(
        app,
        client_id=SPA,
        name="SPA",
        app_type="spa",
        token_endpoint_auth_method="none",
        web_origins=(SPA_ORIGIN,),
        callbacks=(SPA_ORIGIN + "/callback",),
        extra=extra,
    )


async def set_tenant_setting(app: Starlette, name: str, value: dict[str, Any]) -> None:
    state = state_of(app)
    async with state.transaction() as session:
        await state.repos(session).tenant_settings.set(name, value)


async def sapi_events(app: Starlette) -> list[Any]:
    state = state_of(app)
    async with state.transaction() as session:
        return [e for e in await state.logs(session).list(limit=None) if e.type == "sapi"]


# --- Auth0's OpenAPI document -------------------------------------------------------------------

_BASE = "urn:auth0-management-oas"


@cache
def _oas() -> tuple[dict[str, Any], Registry[Any]]:
    """Loaded once per test session: 3.7 MB."""
    doc = json.loads(OAS_PATH.read_text(encoding="utf-8"))
    resource: Resource[Any] = Resource.from_contents(doc, default_specification=DRAFT202012)
    return doc, Registry().with_resource(_BASE, resource)


def oas_document() -> dict[str, Any]:
    """Auth0's Management API OpenAPI document, parsed once."""
    return _oas()[0]


@cache
def _validator(method: str, path: str, status: int) -> Draft202012Validator | None:
    doc, registry = _oas()
    response = doc["paths"][path][method.lower()]["responses"][str(status)]
    content = response.get("content")
    if not content:
        return None  # e.g. 204: no body
    schema = content["application/json"]["schema"]
    # Point local references at the whole document, where components live.
    anchored = json.loads(json.dumps(schema).replace('"#/', f'"{_BASE}#/'))
    return Draft202012Validator(anchored, registry=registry, format_checker=FormatChecker())


def check_oas(r: httpx.Response, method: str, path: str) -> Any:
    """Assert the response matches the OpenAPI response for (method, path, status); its JSON."""
    doc = _oas()[0]
    assert str(r.status_code) in doc["paths"][path][method.lower()]["responses"], r.status_code
    validator = _validator(method, path, r.status_code)
    if validator is None:
        assert r.content == b"", r.content
        return None
    body = r.json()
    errors = sorted(validator.iter_errors(body), key=str)
    assert not errors, errors[0]
    _check_dates(body)
    return body


def _check_dates(body: Any) -> None:
    """§0.6: every date field is ISO-8601 UTC with milliseconds."""
    if isinstance(body, list):
        for item in body:
            _check_dates(item)
    elif isinstance(body, dict):
        for key, value in body.items():
            if key in ("created_at", "updated_at", "last_login", "last_password_reset"):
                assert isinstance(value, str) and ISO_MS.match(value), (key, value)
            elif key in ("users",):
                _check_dates(value)


def check_error(
    r: httpx.Response, status: int, message: str, code: str | None = None
) -> dict[str, Any]:
    """Auth0's Management API error body (§8.2); the OpenAPI defines none."""
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    assert body["statusCode"] == status
    assert body["message"] == message, body["message"]
    assert isinstance(body["error"], str) and body["error"]
    if code is not None:
        assert body.get("errorCode") == code, body
    assert "Traceback" not in r.text
    return body


# --- one app per test module: starting an app (migrations, two RSA keys) takes most of a second


@dataclass
class WallClock:
    """The wall clock, on which the helpers mint tokens, moved by `shift` seconds when a test
    asks: for a module app (`module_app(fixed_clock=True)` with a `clock` fixture returning one)
    whose tests move time, where a FixedClock would fall behind the tokens' `iat`."""

    shift: float = 0.0

    def now(self) -> float:
        return time.time() + self.shift


def module_app(*, fixed_clock: bool = False, **settings: Any) -> Any:
    """`app = module_app()` in a test module: one app, its own database, for the module.

    With `fixed_clock=True` the app runs on the module's own module-scoped `clock` fixture."""

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def app(
        tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
    ) -> AsyncIterator[Starlette]:
        tmp = tmp_path_factory.mktemp("app")
        config = Settings(
            issuer=ISSUER,
            database_url=f"sqlite:///{tmp / 'keystead.db'}",
            data_dir=str(tmp),
            **settings,
        ).with_defaults()
        clock = request.getfixturevalue("clock") if fixed_clock else None
        application = create_app(config, clock=clock)
        async with application.router.lifespan_context(application):
            yield application

    return app


def module_http() -> Any:
    """`http = module_http()`: an in-process client of the module's app."""

    @pytest_asyncio.fixture(scope="module", loop_scope="module")
    async def http(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as client:
            yield client

    return http
