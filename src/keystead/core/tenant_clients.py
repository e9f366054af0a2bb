"""Tenant file `clients:` entries → ClientSpec, by the rules of POST /api/v2/clients."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from keystead.core.clients import (
    DEFAULT_GRANT_TYPES,
    PUBLIC_APP_TYPES,
    AppType,
    AuthMethod,
    RefreshTokenPolicy,
)
from keystead.core.tenant_fields import _Entry
from keystead.core.tenant_specs import ClientSpec

GRANT_TYPES = frozenset(
    {
        "authorization_code", "implicit", "refresh_token", "client_credentials", "password",
        "http://auth0.com/oauth/grant-type/password-realm",
        "urn:ietf:params:oauth:grant-type:device_code",
        "http://auth0.com/oauth/grant-type/passwordless/otp",
        "http://auth0.com/oauth/grant-type/mfa-oob",
        "http://auth0.com/oauth/grant-type/mfa-otp",
        "http://auth0.com/oauth/grant-type/mfa-recovery-code",
    }
)  # fmt: skip
# Auth0 client fields Keystead stores as given without interpreting them.
CLIENT_PASSTHROUGH = frozenset(
    {
        "oidc_conformant", "cross_origin_authentication", "cross_origin_loc",
        "initiate_login_uri", "logo_uri", "sso", "sso_disabled", "organization_usage",
        "organization_require_behavior", "is_token_endpoint_ip_header_trusted",
        "custom_login_page_on", "allowed_clients", "client_aliases", "native_social_login",
        "mobile", "oidc_logout", "self_service",
    }
)  # fmt: skip
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_APP_TYPES: tuple[str, ...] = ("spa", "native", "regular_web", "non_interactive")
_AUTH_METHODS: tuple[str, ...] = ("none", "client_secret_post", "client_secret_basic")


@dataclass(frozen=True)
class _ClientParser:
    """Reads `clients[i]`; _Parser (core/tenant_sections.py) adds the other sections."""

    source: str

    def client(self, e: _Entry) -> ClientSpec:
        client_id = e.optional("client_id", 64)
        if client_id is not None and not _CLIENT_ID_RE.match(client_id):
            raise e.error("client_id", "must be 1-64 letters, digits, '.', '_' or '-'")
        name = e.required("name")
        if "<" in name or ">" in name:
            raise e.error("name", "must not contain < or >")
        app_type = e.choice("app_type", _APP_TYPES, "regular_web")
        is_public_type = app_type in PUBLIC_APP_TYPES
        method = e.choice(
            "token_endpoint_auth_method",
            _AUTH_METHODS,
            "none" if is_public_type else "client_secret_post",
        )
        if is_public_type and method != "none":
            raise e.error(
                "token_endpoint_auth_method",
                f"a {app_type} client cannot keep a secret: use none (it authenticates with PKCE)",
            )
        if app_type == "non_interactive" and method == "none":
            raise e.error(
                "token_endpoint_auth_method",
                "a non_interactive client must authenticate: "
                "use client_secret_post or client_secret_basic",
            )
        secret = e.optional("client_secret", 1024)
        if secret is not None and method == "none":
            raise e.error(
                "client_secret", "a public client (token_endpoint_auth_method none) has no secret"
            )
        if secret is not None and not secret:
            raise e.error("client_secret", "must not be empty")
        grant_types = e.strings("grant_types", DEFAULT_GRANT_TYPES[app_type])
        for i, grant in enumerate(grant_types):
            if grant not in GRANT_TYPES:
                raise e.error(f"grant_types[{i}]", f"unknown grant type {grant!r}")
        if method == "none" and "client_credentials" in grant_types:
            raise e.error("grant_types", "client_credentials needs a confidential client")
        refresh_token = self.refresh_token(e, public=method == "none")
        jwt_configuration = self.jwt_configuration(e)
        if jwt_configuration["alg"] == "HS256" and method == "none":
            raise e.error("jwt_configuration.alg", "HS256 needs a client secret: use RS256")
        return ClientSpec(
            at=e.at,
            client_id=client_id,
            client_secret=secret,
            name=name,
            app_type=cast(AppType, app_type),
            token_endpoint_auth_method=cast(AuthMethod, method),
            description=e.text("description", 140),
            is_first_party=e.boolean("is_first_party", True),
            callbacks=e.urls("callbacks"),
            allowed_logout_urls=e.urls("allowed_logout_urls"),
            web_origins=e.urls("web_origins", origin=True),
            allowed_origins=e.urls("allowed_origins", origin=True),
            grant_types=grant_types,
            refresh_token=refresh_token,
            jwt_configuration=jwt_configuration,
            client_metadata=self.client_metadata(e),
            extra=e.finish(CLIENT_PASSTHROUGH),
        )

    def refresh_token(self, e: _Entry, *, public: bool) -> RefreshTokenPolicy:
        # Public clients rotate, with a leeway so parallel tabs stay logged in (contract §14 #4).
        base = (
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
        value = e.raw("refresh_token")
        if value is None:
            return base
        r = _Entry(self.source, f"{e.at}.refresh_token", value)
        rotation = r.choice("rotation_type", ("rotating", "non-rotating"), base.rotation_type)
        expiration = r.choice(
            "expiration_type",
            ("expiring", "non-expiring"),
            "expiring" if rotation == "rotating" else base.expiration_type,
        )
        if rotation == "rotating" and expiration != "expiring":
            raise r.error("expiration_type", "rotating refresh tokens must be expiring")
        year = 31_557_600
        policy = RefreshTokenPolicy(
            rotation_type=cast(Any, rotation),
            expiration_type=cast(Any, expiration),
            leeway=r.integer("leeway", base.leeway, 0, 60),
            token_lifetime=r.integer("token_lifetime", base.token_lifetime, 1, 10 * year),
            infinite_token_lifetime=r.boolean(
                "infinite_token_lifetime", base.infinite_token_lifetime
            ),
            idle_token_lifetime=r.integer(
                "idle_token_lifetime", base.idle_token_lifetime, 1, 10 * year
            ),
            infinite_idle_token_lifetime=r.boolean(
                "infinite_idle_token_lifetime", base.infinite_idle_token_lifetime
            ),
        )
        r.finish()
        return policy

    def jwt_configuration(self, e: _Entry) -> dict[str, Any]:
        j = _Entry(self.source, f"{e.at}.jwt_configuration", e.raw("jwt_configuration") or {})
        out: dict[str, Any] = {
            "lifetime_in_seconds": j.integer("lifetime_in_seconds", 36_000, 1, 2_592_000),
            "alg": j.choice("alg", ("RS256", "HS256", "PS256"), "RS256"),
            "secret_encoded": j.boolean("secret_encoded", False),
        }
        scopes = j.mapping("scopes")
        if scopes is not None:
            out["scopes"] = scopes
        j.finish()
        return out

    def client_metadata(self, e: _Entry) -> dict[str, str]:
        value = e.mapping("client_metadata") or {}
        if len(value) > 10:
            raise e.error("client_metadata", "must have at most 10 keys")
        for k, v in value.items():
            if len(k) > 255 or not isinstance(v, str) or len(v) > 255:
                raise e.error(f"client_metadata.{k}", "must be a string of at most 255 characters")
        return dict(value)
