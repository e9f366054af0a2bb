"""Management API tenant settings (contract §10.9, issue 6): GET and PATCH /tenants/settings.

    GET   /tenants/settings   read:tenant_settings    the settings Keystead honours
    PATCH /tenants/settings   update:tenant_settings  200 with the settings after the change

Keystead honours `default_audience`, `default_directory` and `allowed_logout_urls`; every other
property of Auth0's request schema is accepted only when it asks for nothing (schemas/__init__).
`self_service` is Keystead's own (docs/self-service-profile.md): the response schema in Auth0's
OpenAPI document allows no additional properties, so it is shown only to callers who ask for it,
with `fields=self_service` or by setting it in the PATCH. Each setting is one tenant_settings row,
as a tenant file stores it; the next `--tenant` apply overwrites the keys that file names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.profile import ProfilePolicy
from keystead.core.redirects import callback_url_problem
from keystead.deps import AppState, get_state
from keystead.errors import BadRequest, ConfigError
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_body
from keystead.management.params import parse_projection
from keystead.management.schemas import ANY, refuse_unsupported, string
from keystead.management.schemas.audit import record_change
from keystead.storage.models import TenantSettingRow
from keystead.storage.repositories import Repositories

SELF_SERVICE: Final = "self_service"
# The settings Keystead reads at run time, under Auth0's names.
HONOURED: Final = frozenset({"default_audience", "default_directory", "allowed_logout_urls"})
# UpdateTenantSettingsRequestContent's other properties: accepted only when they ask for nothing.
UNSUPPORTED: Final = frozenset(
    {
        "change_password", "guardian_mfa_page", "error_page", "device_flow",
        "default_token_quota", "flags", "friendly_name", "picture_url", "support_email",
        "support_url", "session_lifetime", "idle_session_lifetime",
        "ephemeral_session_lifetime", "idle_ephemeral_session_lifetime", "sandbox_version",
        "legacy_sandbox_version", "default_redirection_uri", "enabled_locales",
        "security_headers", "session_cookie", "sessions", "oidc_logout",
        "allow_organization_name_in_authentication_api", "customize_mfa_in_postlogin_action",
        "acr_values_supported", "mtls", "pushed_authorization_requests_supported",
        "authorization_response_iss_parameter_supported",
        "skip_non_verifiable_callback_uri_confirmation_prompt", "resource_parameter_profile",
        "client_id_metadata_document_supported", "phone_consolidated_experience",
        "enable_ai_guide", "include_session_metadata_in_tenant_logs",
        "dynamic_client_registration_security_mode", "country_codes",
        "session_lifetime_in_minutes", "idle_session_lifetime_in_minutes",
        "ephemeral_session_lifetime_in_minutes", "idle_ephemeral_session_lifetime_in_minutes",
    }
)  # fmt: skip
# The OpenAPI request schema, property for property; tests compare them.
UPDATE_TENANT_SETTINGS: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "default_audience": string(),
        "default_directory": string(),
        "allowed_logout_urls": {"type": "array", "items": string(1, 2048)},
        **dict.fromkeys(sorted(UNSUPPORTED), ANY),
    },
}
# What PATCH reads: the OpenAPI schema plus Keystead's extension, checked by check_self_service.
UPDATE_BODY: Final[dict[str, Any]] = {
    **UPDATE_TENANT_SETTINGS,
    "properties": {
        **UPDATE_TENANT_SETTINGS["properties"],
        SELF_SERVICE: {"type": ["object", "null"]},
    },
}


async def get_tenant_settings(request: Request, caller: Caller) -> Response:
    projection = parse_projection(request.query_params)
    state = get_state(request)
    async with state.transaction() as session:
        doc = await _settings_json(state.repos(session))
    if projection is None:
        return json_response(_public(doc))
    # `fields=self_service` (include mode) is the way to ask for the extension.
    return json_response(projection.apply(doc if projection.include else _public(doc)))


async def update_tenant_settings(request: Request, caller: Caller) -> Response:
    body = await read_body(request, UPDATE_BODY)
    refuse_unsupported(body, UNSUPPORTED)
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await _check(state, repos, body)
        for name in sorted(body.keys() & {*HONOURED, SELF_SERVICE}):
            await _store(session, repos, name, body[name])
        await record_change(
            state, session, request, caller, "Update tenant settings",
            target={"tenant": "settings"}, fields=body,
        )  # fmt: skip
        doc = await _settings_json(repos)
    # The extension is echoed to the caller who set it; others get Auth0's shape only.
    return json_response(doc if SELF_SERVICE in body else _public(doc))


# --- validation -------------------------------------------------------------------------------


def check_self_service(block: object, where: str = SELF_SERVICE) -> None:
    """400 naming the path of the first problem in a `self_service` block (tenant or client).

    Both blocks have one grammar (core/profile), so one parse checks either.
    """
    if block is None:
        return
    try:
        ProfilePolicy.from_config(block)  # type: ignore[arg-type]  # the parse checks the type
    except ConfigError as exc:
        message = str(exc).replace("settings.self_service", where, 1)
        raise BadRequest(message, error_code="invalid_body") from None


async def _check(state: AppState, repos: Repositories, body: Mapping[str, Any]) -> None:
    audience = body.get("default_audience")
    if audience and not await _is_api(state, repos, audience):
        raise payload_error(f"No API with identifier {audience[:200]}", "default_audience")
    directory = body.get("default_directory")
    if directory:
        connection = await repos.connections.by_name(directory)
        if connection is None or connection.strategy != "auth0":
            raise payload_error(
                f"No database connection named {directory[:200]}", "default_directory"
            )
    for i, url in enumerate(body.get("allowed_logout_urls") or ()):
        problem = callback_url_problem(url)
        if problem:
            raise payload_error(
                f"Object didn't pass validation for format url-with-placeholders: "
                f"{url[:200]} ({problem})",
                f"allowed_logout_urls[{i}]",
            )
    if SELF_SERVICE in body:
        check_self_service(body[SELF_SERVICE])


async def _is_api(state: AppState, repos: Repositories, identifier: str) -> bool:
    settings = state.settings
    if identifier in (settings.management_audience, *settings.management_audience_aliases):
        return True
    return await repos.resource_servers.by_identifier(identifier) is not None


# --- storage and JSON ---------------------------------------------------------------------------


async def _store(session: AsyncSession, repos: Repositories, name: str, value: Any) -> None:
    if value is None:  # only self_service may be null: back to Auth0's behaviour
        row = await session.get(TenantSettingRow, name)
        if row is not None:
            await session.delete(row)
            await session.flush()
        return
    if name == "allowed_logout_urls":
        value = list(dict.fromkeys(value))
    await repos.tenant_settings.set(name, value)  # stored as given, as the tenant file does


async def _settings_json(repos: Repositories) -> dict[str, Any]:
    stored = await repos.tenant_settings.all()
    urls = stored.get("allowed_logout_urls")
    if isinstance(urls, Mapping):  # as oauth/logout.py reads it: a list, or a mapping of one
        urls = urls.get("allowed_logout_urls", urls.get("value"))
    doc: dict[str, Any] = {
        name: value if isinstance(value := stored.get(name), str) else ""
        for name in ("default_audience", "default_directory")
    }
    doc["allowed_logout_urls"] = _strings(urls if isinstance(urls, list) else [])
    doc[SELF_SERVICE] = stored.get(SELF_SERVICE)
    return doc


def _strings(values: Iterable[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _public(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Auth0's shape: the OpenAPI response allows no additional properties."""
    return {k: v for k, v in doc.items() if k != SELF_SERVICE}
