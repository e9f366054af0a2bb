"""/authorize steps 4-5 (contract §2.2): the checks of single parameters.

    check_prompt, check_max_age        step 4, the request itself
    Request(Uri)NotSupported           step 4, request objects are refused (AZ-17)
    check_connection                   step 4, a database connection enabled for the client
    check_audience                     step 5, the API the access token is for
    is_management_api                  the Management API, whose scopes a user flow narrows

Each raises an OAuthError; validate_authorize (authorize_request.py) runs them in order and
delivers the error to the validated target.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from keystead.core.apis import ResourceServer
from keystead.core.clients import Client
from keystead.core.grants import service_not_found
from keystead.core.ports import Connection
from keystead.core.users import DATABASE_CONNECTION
from keystead.errors import InvalidRequest, OAuthError
from keystead.settings import Settings
from keystead.storage.repositories import Repositories

if TYPE_CHECKING:  # a type only: authorize_request.py imports this module
    from keystead.oauth.authorize_request import AuthorizeParams

PROMPTS: Final = frozenset({"none", "login", "consent", "select_account"})


class RequestNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: request objects are not supported (AZ-17)."""

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: nothing is ever fetched from a request_uri (AZ-17, no SSRF)."""

    error = "request_uri_not_supported"


def check_prompt(value: str | None) -> frozenset[str]:
    # Unknown values are ignored (OIDC Core §3.1.2.1 lists these four; Auth0 ignores others).
    prompt = frozenset(value.split()) & PROMPTS if value else frozenset()
    if "none" in prompt and len(prompt) > 1:
        raise InvalidRequest("prompt=none must not be combined with other values")  # AZ-14
    return prompt


def check_max_age(value: str | None) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        raise InvalidRequest("max_age must be a non-negative integer")
    return int(value)


async def check_connection(name: str | None, client: Client, repos: Repositories) -> Connection:
    connection = await repos.connections.by_name(name or DATABASE_CONNECTION)
    if connection is None:
        raise InvalidRequest("the connection was not found")
    if connection.strategy != "auth0":
        # TODO(when social and passwordless connections land): hand off to their flows.
        raise InvalidRequest("Only database connections can be used with the login page")
    enabled = connection.extra.get("enabled_clients")
    if isinstance(enabled, list) and enabled and client.client_id not in enabled:
        raise InvalidRequest("the connection is not enabled for this application")
    return connection


async def check_audience(
    params: AuthorizeParams, repos: Repositories, settings: Settings
) -> ResourceServer | None:
    requested = params.get("audience") or params.get("resource")
    audience = requested
    if audience is None:
        default = await repos.tenant_settings.get("default_audience")
        audience = default if isinstance(default, str) and default else None  # stored as given
    if audience is None:
        return None  # the access token is good for /userinfo only (contract §3.8)
    if audience in settings.management_audience_aliases:
        audience = settings.management_audience
    api = await repos.resource_servers.by_identifier(audience) if len(audience) <= 600 else None
    if api is None:
        raise service_not_found(requested or audience)
    return api


def is_management_api(api: ResourceServer | None, settings: Settings) -> bool:
    """The Management API: a user flow gets only the current-user scopes for it (§3.8)."""
    if api is None:
        return False
    return (
        api.identifier == settings.management_audience
        or api.identifier in settings.management_audience_aliases
    )
