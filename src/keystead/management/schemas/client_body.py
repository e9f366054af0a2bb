"""POST and PATCH /clients bodies → the client they describe (contract §10.2; security case
AZ-05), with Keystead's rules: the four app types it serves, public clients without secrets or
client_credentials, callbacks and origins a browser may safely be sent to, refresh tokens that
rotate only when they expire. Every refusal is a 400 naming the field.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from typing import Any, Final, cast

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
from keystead.errors import BadRequest
from keystead.management.bodies import payload_error
from keystead.management.schemas.clients import STORED

SUPPORTED_APP_TYPES: Final = ("spa", "native", "regular_web", "non_interactive")
_URL_FIELDS: Final = ("callbacks", "allowed_logout_urls")
_ORIGIN_FIELDS: Final = ("web_origins", "allowed_origins")


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
        if method is None and body.get("client_authentication_methods"):
            # Auth0: null with credentials enabled means private_key_jwt; the secret method is
            # kept underneath, unused while credentials are enabled.
            method = base.token_endpoint_auth_method if base else "client_secret_post"
        elif method is None:
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
