"""Route table of the Management API, /api/v2/… (contract §8-§11).

One line an operation: `api(METHOD, path, handler)`. The accepted scopes come from core/policy's
table for that method and path (an operation Auth0 does not have fails at import), and
management/api.py checks them before the handler runs.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from keystead.management import clients, device_credentials, enrollments, identities, users
from keystead.management.api import PreflightRoute, api

_METHOD = "/users/{id}/authentication-methods/{authentication_method_id}"

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
    # identities: account linking (§9.6)
    api("POST", "/users/{id}/identities", identities.link_user_identity),
    api("DELETE", "/users/{id}/identities/{provider}/{user_id}", identities.unlink_user_identity),
    # MFA: enrollments, multifactor, authentication methods (§9.2)
    api("GET", "/users/{id}/enrollments", enrollments.get_enrollments),
    api("DELETE", "/users/{id}/multifactor/{provider}", enrollments.delete_multifactor_provider),
    api("GET", "/users/{id}/authentication-methods", enrollments.list_authentication_methods),
    api("POST", "/users/{id}/authentication-methods", enrollments.create_authentication_method),
    api("PUT", "/users/{id}/authentication-methods", enrollments.replace_authentication_methods),
    api("DELETE", "/users/{id}/authentication-methods", enrollments.delete_authentication_methods),
    api("GET", _METHOD, enrollments.get_authentication_method),
    api("PATCH", _METHOD, enrollments.update_authentication_method),
    api("DELETE", _METHOD, enrollments.delete_authentication_method),
    # device credentials (§10.1)
    api("GET", "/device-credentials", device_credentials.list_device_credentials),
    api("POST", "/device-credentials", device_credentials.create_device_credential),
    api("DELETE", "/device-credentials/{id}", device_credentials.delete_device_credential),
]
