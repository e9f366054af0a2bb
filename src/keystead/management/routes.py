"""Route table of the Management API, /api/v2/… (contract §8-§11).

One line an operation: `api(METHOD, path, handler)`. The accepted scopes come from core/policy's
table for that method and path (an operation Auth0 does not have fails at import), and
management/api.py checks them before the handler runs.
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from keystead.management import (
    assigned_permissions,
    authentication_methods,
    client_credentials,
    client_grants,
    clients,
    device_credentials,
    enrollments,
    guardian_policies,
    identities,
    jobs,
    logs,
    openapi,
    resource_servers,
    roles,
    sessions,
    signing_keys,
    stats,
    tenant_settings,
    tickets,
    user_blocks,
    users,
)
from keystead.management.api import PreflightRoute, api

_METHODS = "/users/{id}/authentication-methods"
_METHOD = "/users/{id}/authentication-methods/{authentication_method_id}"
_CREDENTIALS = "/clients/{client_id}/credentials"
_CREDENTIAL = _CREDENTIALS + "/{credential_id}"

routes: list[BaseRoute] = [
    PreflightRoute(),  # OPTIONS on any /api/v2 path (contract §0.3)
    # Keystead's own OpenAPI document of these routes (issue 4 item 6); public, no token
    Route("/api/v2/openapi.json", openapi.openapi_document, methods=["GET"]),
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
    # client credentials: private_key_jwt public keys (§10.2, §3.1)
    api("GET", _CREDENTIALS, client_credentials.list_client_credentials),
    api("POST", _CREDENTIALS, client_credentials.create_client_credential),
    api("GET", _CREDENTIAL, client_credentials.get_client_credential),
    api("PATCH", _CREDENTIAL, client_credentials.update_client_credential),
    api("DELETE", _CREDENTIAL, client_credentials.delete_client_credential),
    # identities: account linking (§9.6)
    api("POST", "/users/{id}/identities", identities.link_user_identity),
    api("DELETE", "/users/{id}/identities/{provider}/{user_id}", identities.unlink_user_identity),
    # MFA: enrollments, multifactor, authentication methods (§9.2)
    api("GET", "/users/{id}/enrollments", enrollments.get_enrollments),
    api("DELETE", "/users/{id}/multifactor/{provider}", enrollments.delete_multifactor_provider),
    api("GET", _METHODS, authentication_methods.list_authentication_methods),
    api("POST", _METHODS, authentication_methods.create_authentication_method),
    api("PUT", _METHODS, authentication_methods.replace_authentication_methods),
    api("DELETE", _METHODS, authentication_methods.delete_authentication_methods),
    api("GET", _METHOD, authentication_methods.get_authentication_method),
    api("PATCH", _METHOD, authentication_methods.update_authentication_method),
    api("DELETE", _METHOD, authentication_methods.delete_authentication_method),
    # the tenant's MFA policy: every login with a second factor, enrolled at the hosted login
    api("GET", "/guardian/policies", guardian_policies.get_policies),
    api("PUT", "/guardian/policies", guardian_policies.set_policies),
    # device credentials (§10.1)
    api("GET", "/device-credentials", device_credentials.list_device_credentials),
    api("POST", "/device-credentials", device_credentials.create_device_credential),
    api("DELETE", "/device-credentials/{id}", device_credentials.delete_device_credential),
    # resource servers (§10.3): {id} may be an identifier, slashes and all
    api("GET", "/resource-servers", resource_servers.list_resource_servers),
    api("POST", "/resource-servers", resource_servers.create_resource_server),
    api("GET", "/resource-servers/{id:path}", resource_servers.get_resource_server),
    api("PATCH", "/resource-servers/{id:path}", resource_servers.update_resource_server),
    api("DELETE", "/resource-servers/{id:path}", resource_servers.delete_resource_server),
    # client grants (§10.4)
    api("GET", "/client-grants", client_grants.list_client_grants),
    api("POST", "/client-grants", client_grants.create_client_grant),
    api("GET", "/client-grants/{id}", client_grants.get_client_grant),
    api("PATCH", "/client-grants/{id}", client_grants.update_client_grant),
    api("DELETE", "/client-grants/{id}", client_grants.delete_client_grant),
    # roles and permissions (§10.5, §9.2)
    api("GET", "/roles", roles.list_roles),
    api("POST", "/roles", roles.create_role),
    api("GET", "/roles/{id}", roles.get_role),
    api("PATCH", "/roles/{id}", roles.update_role),
    api("DELETE", "/roles/{id}", roles.delete_role),
    api("GET", "/roles/{id}/permissions", assigned_permissions.list_role_permissions),
    api("POST", "/roles/{id}/permissions", assigned_permissions.add_role_permissions),
    api("DELETE", "/roles/{id}/permissions", assigned_permissions.delete_role_permissions),
    api("GET", "/roles/{id}/users", roles.list_role_users),
    api("POST", "/roles/{id}/users", roles.assign_role_users),
    api("GET", "/users/{id}/roles", roles.list_user_roles),
    api("POST", "/users/{id}/roles", roles.assign_user_roles),
    api("DELETE", "/users/{id}/roles", roles.delete_user_roles),
    api("GET", "/users/{id}/permissions", assigned_permissions.list_user_permissions),
    api("POST", "/users/{id}/permissions", assigned_permissions.create_user_permissions),
    api("DELETE", "/users/{id}/permissions", assigned_permissions.delete_user_permissions),
    # logs (§10.7)
    api("GET", "/logs", logs.list_logs),
    api("GET", "/logs/{id}", logs.get_log),
    api("GET", "/users/{id}/logs", logs.list_user_logs),
    # sessions and refresh tokens (§10.8, §9.2)
    api("GET", "/sessions/{id}", sessions.get_session),
    api("DELETE", "/sessions/{id}", sessions.delete_session),
    api("POST", "/sessions/{id}/revoke", sessions.revoke_session),
    api("GET", "/refresh-tokens/{id}", sessions.get_refresh_token),
    api("DELETE", "/refresh-tokens/{id}", sessions.delete_refresh_token),
    api("GET", "/users/{id}/sessions", sessions.list_user_sessions),
    api("DELETE", "/users/{id}/sessions", sessions.delete_user_sessions),
    api("GET", "/users/{id}/refresh-tokens", sessions.list_user_refresh_tokens),
    api("DELETE", "/users/{id}/refresh-tokens", sessions.delete_user_refresh_tokens),
    # tenant settings (§10.9), with Keystead's `self_service` extension (issue 6)
    api("GET", "/tenants/settings", tenant_settings.get_tenant_settings),
    api("PATCH", "/tenants/settings", tenant_settings.update_tenant_settings),
    # brute-force blocks (§10.9, security AT-01)
    api("GET", "/user-blocks", user_blocks.get_user_blocks),
    api("DELETE", "/user-blocks", user_blocks.delete_user_blocks),
    api("GET", "/user-blocks/{id}", user_blocks.get_user_blocks_by_id),
    api("DELETE", "/user-blocks/{id}", user_blocks.delete_user_blocks_by_id),
    # tickets: links an administrator hands to a user (§10.9)
    api("POST", "/tickets/password-change", tickets.create_password_change_ticket),
    api("POST", "/tickets/email-verification", tickets.create_email_verification_ticket),
    # jobs: the verification email (§10.9)
    api("POST", "/jobs/verification-email", jobs.create_verification_email),
    api("GET", "/jobs/{id}", jobs.get_job),
    # statistics (§10.9)
    api("GET", "/stats/active-users", stats.get_active_users),
    # signing keys (§10.9, §1.2): public parts only
    api("GET", "/keys/signing", signing_keys.list_signing_keys),
    api("GET", "/keys/signing/{kid}", signing_keys.get_signing_key),
    api("POST", "/keys/signing/rotate", signing_keys.rotate_signing_key),
]
