"""Bodies of POST /clients and PATCH /clients/{id} (CreateClientRequestContent,
UpdateClientRequestContent; contract §10.2)."""

from __future__ import annotations

from typing import Any, Final

from keystead.management.schemas import ANY, boolean, choice, string, strings

# Fields Keystead reads (core/clients.Client); semantic checks live in management/clients.py.
_URLS: Final = {"type": "array", "items": string(1, 2048)}
_REFRESH_TOKEN: Final[dict[str, Any]] = {
    "type": ["object", "null"],
    "additionalProperties": False,
    "required": ["rotation_type", "expiration_type"],
    "properties": {
        "rotation_type": choice("rotating", "non-rotating"),
        "expiration_type": choice("expiring", "non-expiring"),
        "leeway": {"type": "integer", "minimum": 0, "maximum": 60},
        "token_lifetime": {"type": "integer", "minimum": 1, "maximum": 157_788_000},
        "infinite_token_lifetime": boolean(),
        "idle_token_lifetime": {"type": "integer", "minimum": 1, "maximum": 157_788_000},
        "infinite_idle_token_lifetime": boolean(),
        "policies": ANY,  # refresh-token policies per API: not supported (must be null)
    },
}
_JWT_CONFIGURATION: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,  # the OpenAPI allows more; unknown keys would be ignored
    "properties": {
        "lifetime_in_seconds": {"type": "integer", "minimum": 1, "maximum": 2_592_000},
        "secret_encoded": boolean(),
        "scopes": {"type": "object"},
        "alg": choice("HS256", "RS256", "RS512", "PS256"),
    },
}


def _metadata(*, null: bool) -> dict[str, Any]:
    return {
        "type": "object",
        "maxProperties": 10,
        "propertyNames": {"maxLength": 255},
        "additionalProperties": string(0, 255, null=null),
    }


APP_TYPES: Final = (
    "native", "spa", "regular_web", "non_interactive", "resource_server", "express_configuration",
    "rms", "box", "cloudbees", "concur", "dropbox", "mscrm", "echosign", "egnyte", "newrelic",
    "office365", "salesforce", "sentry", "sharepoint", "slack", "springcm", "zendesk", "zoom",
    "sso_integration", "oag",
)  # fmt: skip
AUTH_METHODS: Final = ("none", "client_secret_post", "client_secret_basic")


def _interpreted(*, update: bool) -> dict[str, Any]:
    return {
        "name": {"type": "string", "pattern": "^[^<>]+$", "maxLength": 255},
        "description": string(None, 140),
        "app_type": choice(*APP_TYPES),
        "token_endpoint_auth_method": choice(*AUTH_METHODS, null=update),
        "is_first_party": boolean(),
        "callbacks": _URLS,
        "allowed_logout_urls": _URLS,
        "web_origins": _URLS,
        "allowed_origins": _URLS,
        "grant_types": strings(1, 255),
        "refresh_token": _REFRESH_TOKEN,
        "jwt_configuration": _JWT_CONFIGURATION,
        "client_metadata": _metadata(null=update),
    }


# Auth0 fields Keystead stores and returns as given (core/tenant.CLIENT_PASSTHROUGH).
def _stored(*, update: bool) -> dict[str, Any]:
    return {
        "oidc_conformant": boolean(),
        "cross_origin_authentication": boolean(),
        "cross_origin_loc": string(1, 2048, null=update),
        "initiate_login_uri": string(0, 2048),
        "logo_uri": string(0, 2048),
        "sso": boolean(),
        "sso_disabled": boolean(),
        "organization_usage": choice("deny", "allow", "require", null=update),
        "organization_require_behavior": choice(
            "no_prompt", "pre_login_prompt", "post_login_prompt", null=update
        ),
        "is_token_endpoint_ip_header_trusted": boolean(),
        "custom_login_page_on": boolean(),
        "allowed_clients": strings(1),
        "client_aliases": strings(1),
        "native_social_login": {"type": ["object", "null"] if update else "object"},
        "mobile": {"type": "object"},
        "oidc_logout": {"type": "object"},
    }


STORED: Final = frozenset(_stored(update=False))

# In the OpenAPI document, not in Keystead: allowed only when they ask for nothing.
UNSUPPORTED: Final = frozenset(
    {
        "addons", "async_approval_notification_channels", "client_authentication_methods",
        "compliance_level", "custom_login_page", "custom_login_page_preview",
        "default_organization", "encryption_key", "express_configuration", "fedcm_login",
        "form_template", "my_organization_configuration", "oidc_backchannel_logout",
        "organization_discovery_methods", "par_request_expiry", "redirection_policy",
        "require_proof_of_possession", "require_pushed_authorization_requests",
        "session_transfer", "signed_request_object",
        "skip_non_verifiable_callback_uri_confirmation_prompt", "third_party_security_mode",
        "token_exchange", "token_quota", "token_vault_privileged_access",
    }
)  # fmt: skip
CREATE_ONLY_UNSUPPORTED: Final = frozenset({"resource_server_identifier"})

CREATE_CLIENT: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["name"],
    "properties": {
        **_interpreted(update=False),
        **_stored(update=False),
        **dict.fromkeys(sorted(UNSUPPORTED | CREATE_ONLY_UNSUPPORTED), ANY),
    },
}

UPDATE_CLIENT: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "minProperties": 1,
    "properties": {
        **_interpreted(update=True),
        "client_secret": string(1, 1024),
        **_stored(update=True),
        **dict.fromkeys(sorted(UNSUPPORTED), ANY),
    },
}


# Keystead's own client fields, not in the OpenAPI document (so not in the schemas above, which
# tests compare with it); management/clients.py checks their values.
EXTENSIONS: Final[dict[str, Any]] = {"self_service": {"type": ["object", "null"]}}  # issue 6
CREATE_CLIENT_BODY: Final = {
    **CREATE_CLIENT,
    "properties": {**CREATE_CLIENT["properties"], **EXTENSIONS},
}
UPDATE_CLIENT_BODY: Final = {
    **UPDATE_CLIENT,
    "properties": {**UPDATE_CLIENT["properties"], **EXTENSIONS},
}
