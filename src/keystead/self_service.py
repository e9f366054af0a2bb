"""The tenant's self-service profile policy (issue 6), loaded once per configuration.

Every path that needs it — /authorize and the token grants (the current-user token switch),
PATCH /api/v2/users (the metadata check), /dbconnections/signup — reads it here, so they cannot
disagree, and a schema is compiled once per distinct configuration rather than per request.
"""

from __future__ import annotations

import json
import logging
from functools import lru_cache

from keystead.core.clients import Client
from keystead.core.profile import ProfilePolicy
from keystead.errors import ConfigError
from keystead.storage.repositories import Repositories

log = logging.getLogger("keystead")


async def profile_policy(
    repos: Repositories, client_id: str | None, *, client: Client | None = None
) -> ProfilePolicy:
    """The tenant's `self_service` policy with the client's own override applied.

    Pass `client` when the caller already holds it, to save the lookup."""
    tenant = await repos.tenant_settings.get("self_service")
    if client is None and client_id:
        client = await repos.clients.find(client_id)
    override = client.extra.get("self_service") if client else None
    return _policy(
        json.dumps(tenant, sort_keys=True), client_id, json.dumps(override, sort_keys=True)
    )


async def current_user_tokens_enabled(repos: Repositories, client: Client) -> bool:
    """The tenant's (or the client's) switch for Management API tokens for users (§14 #1).
    Stored settings are validated on write; if one is broken anyway, the switch fails closed."""
    try:
        policy = await profile_policy(repos, client.client_id, client=client)
    except ConfigError:
        log.warning("self_service settings are invalid; current-user tokens are off")
        return False
    return policy.current_user_tokens


@lru_cache(maxsize=64)
def _policy(tenant: str, client_id: str | None, override: str) -> ProfilePolicy:
    # Keyed by the configuration itself: a schema compiles once, and a changed one is new.
    overrides = json.loads(override)
    clients = {client_id: overrides} if client_id and isinstance(overrides, dict) else None
    return ProfilePolicy.from_config(json.loads(tenant), clients=clients).policy_for_client(
        client_id
    )
