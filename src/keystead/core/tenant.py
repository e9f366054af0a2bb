"""Tenant file: YAML or JSON text → a validated `TenantSpec`, with Auth0 Management API field names.

    settings:         {default_audience, self_service, rateLimits, …}  one tenant_settings row a key
    clients:          POST /api/v2/clients bodies, plus a fixed `client_id` / `client_secret`
    resourceServers:  POST /api/v2/resource-servers bodies
    clientGrants:     POST /api/v2/client-grants bodies
    roles:            POST /api/v2/roles bodies, plus `permissions` and `users` (emails or user ids)
    users:            POST /api/v2/users bodies, or an imported `password_hash` (bcrypt/argon2)

Every error names the file, the entry and the field: `tenant.yaml: clients[2].callbacks[0]: …`.
String values may use `${VAR}`, `${VAR:-default}` (environment) and `$${` for a literal `${`.
Identifiers and audiences may start with `{issuer}`, resolved by `TenantSpec.with_issuer` when
the file is applied, so one file works for any host and port.

Here: TenantSpec, parse_tenant and the whole-file checks. The steps before them live beside it:
tenant_load (text → data, `${VAR}`), tenant_fields (entry reader, value checks), tenant_clients
and tenant_sections (one entry → its spec in tenant_specs). Public names are re-exported here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from keystead.core.profile import ProfilePolicy
from keystead.core.ratelimit import parse_rate_limits
from keystead.core.tenant_clients import CLIENT_PASSTHROUGH, GRANT_TYPES
from keystead.core.tenant_fields import (
    _hint,
    _list,
    check_json,
    email_error,
    missing_scopes,
    url_error,
)
from keystead.core.tenant_load import _load, _substitute, expand_env
from keystead.core.tenant_sections import (
    RESOURCE_SERVER_PASSTHROUGH,
    USER_FIELDS_150,
    USER_FIELDS_300,
    _Parser,
)
from keystead.core.tenant_specs import (
    ISSUER_PLACEHOLDER,
    MANAGEMENT_API_PLACEHOLDER,
    ClientGrantSpec,
    ClientSpec,
    ResourceServerSpec,
    RolePermission,
    RoleSpec,
    UserSpec,
)
from keystead.errors import ConfigError

__all__ = [
    "CLIENT_PASSTHROUGH", "GRANT_TYPES", "ISSUER_PLACEHOLDER", "MANAGEMENT_API_PLACEHOLDER",
    "RESOURCE_SERVER_PASSTHROUGH", "SECTIONS", "USER_FIELDS_150", "USER_FIELDS_300",
    "ClientGrantSpec", "ClientSpec", "ResourceServerSpec", "RolePermission", "RoleSpec",
    "TenantSpec", "UserSpec", "check_json", "email_error", "expand_env", "missing_scopes",
    "parse_tenant", "url_error",
]  # fmt: skip

SECTIONS = ("settings", "clients", "resourceServers", "clientGrants", "roles", "users")


@dataclass(frozen=True)
class TenantSpec:
    source: str = "tenant file"
    settings: dict[str, Any] = field(default_factory=dict)
    clients: tuple[ClientSpec, ...] = ()
    resource_servers: tuple[ResourceServerSpec, ...] = ()
    client_grants: tuple[ClientGrantSpec, ...] = ()
    roles: tuple[RoleSpec, ...] = ()
    users: tuple[UserSpec, ...] = ()

    def error(self, at: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {at}: {message}")

    def with_issuer(self, issuer: str) -> TenantSpec:
        """Resolve `{issuer}` in identifiers, audiences and `settings.default_audience`."""

        def sub(value: str) -> str:
            return value.replace(ISSUER_PLACEHOLDER, issuer)

        settings = dict(self.settings)
        if isinstance(settings.get("default_audience"), str):
            settings["default_audience"] = sub(settings["default_audience"])
        return replace(
            self,
            settings=settings,
            resource_servers=tuple(
                replace(r, identifier=sub(r.identifier)) for r in self.resource_servers
            ),
            client_grants=tuple(replace(g, audience=sub(g.audience)) for g in self.client_grants),
            roles=tuple(
                replace(
                    r,
                    permissions=tuple(
                        replace(p, resource_server_identifier=sub(p.resource_server_identifier))
                        for p in r.permissions
                    ),
                )
                for r in self.roles
            ),
        )


# --- parsing -----------------------------------------------------------------------------------


def parse_tenant(
    text: str, *, source: str = "tenant.yaml", environ: Mapping[str, str] | None = None
) -> TenantSpec:
    """Parse and validate a tenant file. Raises ConfigError naming file, entry and field."""
    doc = _load(text, source)
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{source}: the top level must be a mapping with keys {_list(SECTIONS)}")
    for key in doc:
        if key not in SECTIONS:
            raise ConfigError(f"{source}: {key}: unknown section{_hint(str(key), SECTIONS)}")
    doc = _substitute(doc, "", source, environ or {})
    p = _Parser(source)
    spec = TenantSpec(
        source=source,
        settings=p.settings(doc.get("settings")),
        clients=tuple(p.section(doc, "clients", p.client)),
        resource_servers=tuple(p.section(doc, "resourceServers", p.resource_server)),
        client_grants=tuple(p.section(doc, "clientGrants", p.client_grant)),
        roles=tuple(p.section(doc, "roles", p.role)),
        users=tuple(p.section(doc, "users", p.user)),
    )
    _check_unique(spec)
    _check_references_within_file(spec)
    _check_policies(spec)
    return spec


# --- whole-file checks -------------------------------------------------------------------------


def _check_unique(spec: TenantSpec) -> None:
    def once(items: Any, key: Any, what: str, field_name: str) -> None:
        seen: dict[Any, str] = {}
        for item in items:
            k = key(item)
            if k is None:
                continue
            if k in seen:
                raise spec.error(
                    f"{item.at}.{field_name}", f"{what} is already defined by {seen[k]}"
                )
            seen[k] = item.at

    once(spec.clients, lambda c: c.client_id, "this client_id", "client_id")
    # A client without a client_id is found by name, so its name must be unique in the file.
    for c in spec.clients:
        twin = next((o for o in spec.clients if o is not c and o.name == c.name), None)
        if c.client_id is None and twin is not None:
            raise spec.error(
                f"{c.at}.name",
                f"{twin.at} has the same name: give this entry a client_id "
                "(clients without one are found by name)",
            )
    once(spec.resource_servers, lambda r: r.identifier, "this identifier", "identifier")
    once(
        spec.client_grants,
        lambda g: (g.client_id, g.audience),
        "a grant for this client and audience",
        "audience",
    )
    once(spec.roles, lambda r: r.name, "a role of this name", "name")
    once(spec.users, lambda u: u.email, "this email", "email")
    once(spec.users, lambda u: u.user_id, "this user_id", "user_id")


def _check_references_within_file(spec: TenantSpec) -> None:
    """Scopes named for an API defined in the same file must exist there; references to things
    already in the database are checked when the file is applied."""
    apis = {r.identifier: r.scope_values for r in spec.resource_servers}
    for g in spec.client_grants:
        if g.audience in apis:
            missing = missing_scopes(g.scope, apis[g.audience])
            if missing:
                raise spec.error(f"{g.at}.scope", f"not defined by {g.audience}: {_list(missing)}")
    for role in spec.roles:
        for i, p in enumerate(role.permissions):
            scopes = apis.get(p.resource_server_identifier)
            if scopes is not None and p.permission_name not in scopes:
                raise spec.error(
                    f"{role.at}.permissions[{i}].permission_name",
                    f"{p.permission_name!r} is not a scope of {p.resource_server_identifier}",
                )


def _check_policies(spec: TenantSpec) -> None:
    """Settings other modules read at run time must already be valid when the file is applied."""
    overrides = {
        c.client_id or c.name: c.extra["self_service"]
        for c in spec.clients
        if c.extra.get("self_service") is not None
    }
    try:
        ProfilePolicy.from_config(spec.settings.get("self_service"), clients=overrides)
    except ConfigError as exc:
        raise ConfigError(f"{spec.source}: {exc}") from None
    if "rateLimits" in spec.settings:
        try:
            parse_rate_limits(spec.settings["rateLimits"])
        except ConfigError as exc:
            where = "settings." if str(exc).startswith("rateLimits") else "settings.rateLimits: "
            raise ConfigError(f"{spec.source}: {where}{exc}") from None
