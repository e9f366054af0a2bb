"""Management API clients (contract §10.2, §8.3 item 4; security case AZ-05).

    GET    /clients                    list: offset, include_totals, or checkpoint from/take
    POST   /clients                    201, the new secret shown once
    GET    /clients/{id}               secrets only with read:client_keys / read:client_credentials
    PATCH  /clients/{id}               200; client_secret needs update:client_keys
    DELETE /clients/{id}               204 (also when it did not exist: the OpenAPI lists no 404)
    POST   /clients/{id}/rotate-secret 200, the new secret shown once

Every URL a browser may be sent to is checked on write (core/redirects); a bad one answers 400
naming the field and the client stays as it was. Nothing caches clients: the next /authorize or
/oauth/token reads the new version. Every write logs `sapi`, never a secret.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Final, cast

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core import policy
from keystead.core.clients import (
    DEFAULT_GRANT_TYPES,
    PUBLIC_APP_TYPES,
    AppType,
    AuthMethod,
    Client,
    RefreshTokenPolicy,
)
from keystead.core.grants import CLIENT_CREDENTIALS
from keystead.core.redirects import callback_url_problem, split_url
from keystead.core.tenant import GRANT_TYPES, url_error
from keystead.deps import get_state
from keystead.errors import BadRequest, Forbidden, NotFound, RecordNotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_body
from keystead.management.params import Projection, parse_bool, parse_page, parse_projection
from keystead.management.schemas import read_patch, refuse_unsupported
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.clients import (
    CREATE_CLIENT,
    CREATE_ONLY_UNSUPPORTED,
    STORED,
    UNSUPPORTED,
    UPDATE_CLIENT,
)
from keystead.management.schemas.query import parse_checkpoint
from keystead.storage.models import ClientRow
from keystead.storage.repositories import Repositories

NOT_FOUND: Final = "The client does not exist."
SYSTEM: Final = "This is a system client: it cannot be changed or deleted through the API."
PUBLIC_HAS_NO_SECRET: Final = (
    "A public client (token_endpoint_auth_method none) has no secret to rotate or set."
)
SUPPORTED_APP_TYPES: Final = ("spa", "native", "regular_web", "non_interactive")
# §8.3 item 4: fields that need their own scope on PATCH; every other field needs update:clients.
FIELD_SCOPES: Final = {
    "client_secret": "update:client_keys",
    "encryption_key": "update:client_keys",
    "client_authentication_methods": "update:client_credentials",
    "token_vault_privileged_access": "update:client_token_vault_privileged_access",
}
_URL_FIELDS: Final = ("callbacks", "allowed_logout_urls")
_ORIGIN_FIELDS: Final = ("web_origins", "allowed_origins")


# --- JSON ---------------------------------------------------------------------------------------


def client_json(client: Client) -> dict[str, Any]:
    """The client as Auth0 sends it; `client_secret` only when the Client carries it."""
    jwt = {"alg": "RS256", "secret_encoded": False, **client.extra.get("jwt_configuration", {})}
    jwt["lifetime_in_seconds"] = client.jwt_lifetime_in_seconds
    out: dict[str, Any] = {
        "client_id": client.client_id,
        "name": client.name,
        "description": client.description,
        "global": False,
        "app_type": client.app_type,
        "is_first_party": client.is_first_party,
        "oidc_conformant": True,  # Keystead only speaks OIDC-conformant flows
        "callbacks": list(client.callbacks),
        "allowed_origins": list(client.allowed_origins),
        "web_origins": list(client.web_origins),
        "allowed_logout_urls": list(client.allowed_logout_urls),
        "grant_types": list(client.grant_types),
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "jwt_configuration": jwt,
        "refresh_token": asdict(client.refresh_token),
        "client_metadata": dict(client.client_metadata),
    }
    for name in sorted(STORED | {"self_service"}):  # self_service: Keystead's (issue 6)
        if name in client.extra:
            out[name] = client.extra[name]
    if client.client_secret is not None:
        out["client_secret"] = client.client_secret
    return out


def _show(client: Client, caller: Caller, projection: Projection | None = None) -> dict[str, Any]:
    doc = policy.visible_client_fields(caller.scopes).apply(client_json(client))
    return projection.apply(doc) if projection else doc


def _reveals(caller: Caller) -> bool:
    return bool(caller.scopes & policy.CLIENT_KEY_SCOPES)


# --- reads --------------------------------------------------------------------------------------


async def list_clients(request: Request, caller: Caller) -> Response:
    query = request.query_params
    projection = parse_projection(query)
    if query.get("q"):
        raise BadRequest(
            "Client search (q) is not supported; filter with app_type and is_first_party.",
            error_code="operation_not_supported",
        )
    first_party = parse_bool(query, "is_first_party", True) if query.get("is_first_party") else None
    only_global = parse_bool(query, "is_global", False)
    app_types = [t.strip() for t in query["app_type"].split(",")] if query.get("app_type") else None
    checkpoint = parse_checkpoint(query)
    page = None if checkpoint else parse_page(query, min_per_page=0)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        found = list(await repos.clients.list(app_types=app_types, is_first_party=first_party))
        if only_global or query.get("external_client_id"):
            found = []  # Keystead has no global client and no metadata-document clients
        next_key = None
        if checkpoint is not None:
            ordered = sorted(found, key=lambda c: c.client_id)
            chosen, next_key = checkpoint.slice(ordered, key=lambda c: c.client_id)
        else:
            assert page is not None
            chosen = found[page.start : page.start + page.limit]
        if _reveals(caller):
            chosen = [await repos.clients.get(c.client_id, reveal_secret=True) for c in chosen]
    items = [_show(c, caller, projection) for c in chosen]
    if checkpoint is not None:
        return json_response(checkpoint.body("clients", items, next_key))
    assert page is not None
    return json_response(page.body("clients", items, len(found), length=False))


async def get_client(request: Request, caller: Caller) -> Response:
    projection = parse_projection(request.query_params)
    state = get_state(request)
    async with state.transaction() as session:
        client = await _find(state.repos(session), request, reveal=_reveals(caller))
    return json_response(_show(client, caller, projection))


# --- writes -------------------------------------------------------------------------------------


async def create_client(request: Request, caller: Caller) -> Response:
    body = await read_body(request, CREATE_CLIENT)
    refuse_unsupported(body, UNSUPPORTED | CREATE_ONLY_UNSUPPORTED)
    client = build_client(None, body)
    state = get_state(request)
    async with state.transaction() as session:
        created = await state.repos(session).clients.create(client)
        await record_change(
            state, session, request, caller, "Create a client",
            target={"client_id": created.client_id}, fields=body,
        )  # fmt: skip
    return json_response(client_json(created), 201)  # the secret, shown this once


async def update_client(request: Request, caller: Caller) -> Response:
    body = await read_patch(request, UPDATE_CLIENT)
    _check_field_scopes(body, caller)
    refuse_unsupported(body, UNSUPPORTED)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        base = await _find(repos, request, reveal=True)
        changed = build_client(base, body)
        secret = body.get("client_secret")
        if secret is not None and changed.is_public:
            raise BadRequest(PUBLIC_HAS_NO_SECRET)
        updated = await repos.clients.update(changed)
        # A public client turned confidential needs a secret: rotate_secret(None) makes one.
        if secret is not None or (not changed.is_public and base.client_secret is None):
            updated = await repos.clients.rotate_secret(base.client_id, secret)
        await record_change(
            state, session, request, caller, "Update a client",
            target={"client_id": base.client_id}, fields=body,
        )  # fmt: skip
    shown = _show(updated, caller)
    if updated.client_secret is not None:
        shown["client_secret"] = updated.client_secret  # set or made by this request
    return json_response(shown)


async def delete_client(request: Request, caller: Caller) -> Response:
    client_id = request.path_params["id"]
    state = get_state(request)
    async with state.transaction() as session:
        row = await session.get(ClientRow, client_id)
        if row is None:
            return Response(status_code=204)
        if row.is_system:
            raise BadRequest(SYSTEM, error_code="operation_not_supported")
        await state.repos(session).clients.delete(client_id)  # its grants go with it (cascade)
        await record_change(
            state, session, request, caller, "Delete a client", target={"client_id": client_id}
        )
    return Response(status_code=204)


async def rotate_client_secret(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check_changeable(session, request)
        client = await _find(repos, request)
        if client.is_public:
            raise BadRequest(PUBLIC_HAS_NO_SECRET, error_code="operation_not_supported")
        rotated = await repos.clients.rotate_secret(client.client_id)
        await record_change(
            state, session, request, caller, "Rotate a client secret",
            target={"client_id": client.client_id}, fields=["client_secret"],
        )  # fmt: skip
    return json_response(client_json(rotated))  # the new secret, shown this once


# --- shared steps -------------------------------------------------------------------------------


async def _find(repos: Repositories, request: Request, *, reveal: bool = False) -> Client:
    try:
        return await repos.clients.get(request.path_params["id"], reveal_secret=reveal)
    except RecordNotFound:
        raise NotFound(NOT_FOUND, error_code="inexistent_client") from None


async def _check_changeable(session: AsyncSession, request: Request) -> None:
    row = await session.get(ClientRow, request.path_params["id"])
    if row is None:
        raise NotFound(NOT_FOUND, error_code="inexistent_client")
    if row.is_system:
        raise BadRequest(SYSTEM, error_code="operation_not_supported")


def _check_field_scopes(body: dict[str, Any], caller: Caller) -> None:
    matched = caller.decision.matched
    refused = sorted(
        name for name in body if FIELD_SCOPES.get(name, "update:clients") not in matched
    )
    if refused:
        raise Forbidden(
            "You cannot update the following fields: " + ", ".join(refused),
            error_code="insufficient_scope",
        )


# --- the client after a body (POST: from nothing; PATCH: from the stored one) -------------------


def build_client(base: Client | None, body: dict[str, Any]) -> Client:
    """The client `body` describes, over `base`; 400 for anything Keystead cannot honour."""
    app_type = body.get("app_type", base.app_type if base else "regular_web")
    if app_type not in SUPPORTED_APP_TYPES:
        raise BadRequest(
            f"app_type {app_type} is not supported; use spa, native, regular_web or "
            "non_interactive.",
            error_code="operation_not_supported",
        )
    method = _auth_method(base, body, app_type)
    grant_types = _grant_types(base, body, app_type, method)
    extra = dict(base.extra) if base else {}
    for name in sorted(STORED & body.keys()):
        _check_stored_url(name, body[name])
        if body[name] is None:
            extra.pop(name, None)  # PATCH with null: back to Auth0's default
        else:
            extra[name] = body[name]
    jwt, lifetime = _jwt_configuration(base, body, method)
    extra["jwt_configuration"] = jwt
    urls: dict[str, tuple[str, ...]] = {
        name: _urls(name, body[name]) for name in (*_URL_FIELDS, *_ORIGIN_FIELDS) if name in body
    }
    fields: dict[str, Any] = {
        "name": body.get("name", base.name if base else ""),
        "app_type": cast(AppType, app_type),
        "token_endpoint_auth_method": cast(AuthMethod, method),
        "description": body.get("description", base.description if base else ""),
        "is_first_party": body.get("is_first_party", base.is_first_party if base else True),
        "grant_types": grant_types,
        "jwt_lifetime_in_seconds": lifetime,
        "refresh_token": _refresh_token(base, body, public=method == "none"),
        "client_metadata": _metadata(base, body),
        "extra": extra,
        **urls,
    }
    if base is None:
        return Client(client_id="", **fields)
    return replace(base, client_secret=None, **fields)


def _auth_method(base: Client | None, body: dict[str, Any], app_type: str) -> str:
    public_type = app_type in PUBLIC_APP_TYPES
    if "token_endpoint_auth_method" in body:
        method = body["token_endpoint_auth_method"]
        if method is None:  # Auth0: null means private_key_jwt credentials instead
            raise BadRequest(
                "token_endpoint_auth_method null (private_key_jwt) is not supported.",
                error_code="operation_not_supported",
            )
    elif base is not None:
        method = base.token_endpoint_auth_method
    else:
        method = "none" if public_type else "client_secret_post"
    if public_type and method != "none":
        raise payload_error(
            f"A {app_type} client cannot keep a secret: use none (it authenticates with PKCE)",
            "token_endpoint_auth_method",
        )
    if app_type == "non_interactive" and method == "none":
        raise payload_error(
            "A non_interactive client must authenticate: use client_secret_post or "
            "client_secret_basic",
            "token_endpoint_auth_method",
        )
    return str(method)


def _grant_types(
    base: Client | None, body: dict[str, Any], app_type: str, method: str
) -> tuple[str, ...]:
    if "grant_types" in body:
        for i, grant in enumerate(body["grant_types"]):
            if grant not in GRANT_TYPES:
                raise payload_error(f"Unknown grant type: {grant[:100]}", f"grant_types[{i}]")
        grants = tuple(dict.fromkeys(body["grant_types"]))
    elif base is not None:
        grants = base.grant_types
    else:
        grants = DEFAULT_GRANT_TYPES[app_type]
        if method == "none":
            grants = tuple(g for g in grants if g != CLIENT_CREDENTIALS)
    if method == "none" and CLIENT_CREDENTIALS in grants:
        raise payload_error(
            "client_credentials needs a confidential client (token_endpoint_auth_method "
            "client_secret_post or client_secret_basic)",
            "grant_types",
        )
    return grants


def _urls(name: str, values: list[str]) -> tuple[str, ...]:
    """AZ-05: no fragment, no script schemes, http only for loopback hosts; origins bare."""
    origin = name in _ORIGIN_FIELDS
    for i, url in enumerate(values):
        problem = url_error(url, origin=True) if origin else callback_url_problem(url)
        if problem:
            reason = problem.removeprefix(repr(url) + " ")
            kind = "url-with-placeholders" if origin else "callback-url"
            raise payload_error(
                f"Object didn't pass validation for format {kind}: {url[:200]} ({reason})",
                f"{name}[{i}]",
            )
    return tuple(dict.fromkeys(values))


def _check_stored_url(name: str, value: Any) -> None:
    """Stored URLs a page may link to: http(s) only (a login link must be https, as Auth0 says)."""
    if name not in ("initiate_login_uri", "logo_uri", "cross_origin_loc") or not value:
        return
    parts = split_url(value)
    schemes = ("https",) if name == "initiate_login_uri" else ("http", "https")
    if parts is None or parts.scheme.lower() not in schemes or parts.fragment is not None:
        wanted = "an https URL" if name == "initiate_login_uri" else "an http(s) URL"
        raise payload_error(f"Must be {wanted} without a fragment: {value[:200]}", name)


def _jwt_configuration(
    base: Client | None, body: dict[str, Any], method: str
) -> tuple[dict[str, Any], int]:
    old = dict(base.extra.get("jwt_configuration", {})) if base else {}
    old.pop("lifetime_in_seconds", None)
    given = dict(body.get("jwt_configuration") or {})
    lifetime = given.pop("lifetime_in_seconds", base.jwt_lifetime_in_seconds if base else 36_000)
    jwt = {"alg": "RS256", "secret_encoded": False, **old, **given}
    if jwt["alg"] not in ("RS256", "HS256", "PS256"):
        raise BadRequest(
            f"jwt_configuration.alg {jwt['alg']} is not supported; use RS256, PS256 or HS256.",
            error_code="operation_not_supported",
        )
    if jwt["alg"] == "HS256" and method == "none":
        raise payload_error("HS256 needs a client secret: use RS256", "jwt_configuration.alg")
    return jwt, int(lifetime)


def _refresh_token(
    base: Client | None, body: dict[str, Any], *, public: bool
) -> RefreshTokenPolicy:
    # Public clients rotate, with a leeway so parallel tabs stay signed in (contract §14 #4).
    default = (
        RefreshTokenPolicy(
            rotation_type="rotating",
            expiration_type="expiring",
            leeway=10,
            infinite_token_lifetime=False,
            infinite_idle_token_lifetime=False,
        )
        if public
        else RefreshTokenPolicy()
    )
    if "refresh_token" not in body:
        return base.refresh_token if base else default
    given = body["refresh_token"]
    if given is None:
        return default
    if given.get("policies") not in (None, []):
        raise BadRequest(
            "refresh_token.policies is not supported; leave it out or send null.",
            error_code="operation_not_supported",
        )
    start = base.refresh_token if base else default
    fields = {k: v for k, v in given.items() if k != "policies"}
    result = RefreshTokenPolicy(**{**asdict(start), **fields})
    if result.rotation_type == "rotating" and result.expiration_type != "expiring":
        raise payload_error(
            "Rotating refresh tokens must be expiring", "refresh_token.expiration_type"
        )
    return result


def _metadata(base: Client | None, body: dict[str, Any]) -> dict[str, str]:
    """Merged at the root as Auth0 does: a key set to null is removed."""
    out = dict(base.client_metadata) if base else {}
    for key, value in (body.get("client_metadata") or {}).items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    if len(out) > 10:
        raise payload_error("Too many properties defined (over 10), maximum 10", "client_metadata")
    return out
