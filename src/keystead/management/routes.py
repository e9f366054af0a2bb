"""Route table of the Management API, /api/v2/… (contract §8-§11).

One line an operation: `api(METHOD, path, handler)`. The accepted scopes come from core/policy's
table for that method and path (an operation Auth0 does not have fails at import), and
management/api.py checks them before the handler runs.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from keystead.management import clients, users
from keystead.management.api import PreflightRoute, api

routes: list[BaseRoute] = [
    PreflightRoute(),  # OPTIONS on any /api/v2 path (contract §0.3)
    # users (§9.2)
    api("GET", "/users", users.list_users),
    api("POST", "/users", users.create_user),
    api("GET", "/users/{id}", users.get_user),
    api("PATCH", "/users/{id}", users.update_user),
    api("DELETE", "/users/{id}", users.delete_user),
    api("GET", "/users-by-email", users.get_users_by_email),
    # clients (§10.2)
    api("GET", "/clients", clients.list_clients),
    api("POST", "/clients", clients.create_client),
    api("GET", "/clients/{id}", clients.get_client),
    api("PATCH", "/clients/{id}", clients.update_client),
    api("DELETE", "/clients/{id}", clients.delete_client),
    api("POST", "/clients/{id}/rotate-secret", clients.rotate_client_secret),
]
