"""Tenant file sections → specs: settings, resourceServers, clientGrants, roles and users."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, cast
from urllib.parse import urlsplit

from keystead.core.apis import Permission, SigningAlg, TokenDialect
from keystead.core.passwords import PasswordPolicy, is_supported_hash
from keystead.core.tenant_clients import _ClientParser
from keystead.core.tenant_fields import _check_metadata_keys, _Entry, check_json, email_error
from keystead.core.tenant_specs import (
    MANAGEMENT_API_PLACEHOLDER,
    ClientGrantSpec,
    ResourceServerSpec,
    RolePermission,
    RoleSpec,
    UserSpec,
)
from keystead.core.users import DATABASE_CONNECTION
from keystead.errors import ConfigError

RESOURCE_SERVER_PASSTHROUGH = frozenset({"consent_policy", "allow_online_access"})
USER_FIELDS_150 = ("given_name", "family_name")
USER_FIELDS_300 = ("name", "nickname")
_USER_ID_RE = re.compile(r"^\S{1,255}$")
_PHONE_RE = re.compile(r"^\+[0-9]{1,15}$")
_APP_METADATA_RESERVED = frozenset(
    {
        "__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
        "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin",
        "loginsCount", "metadata", "multifactor_last_modified", "multifactor", "updated_at",
        "user_id",
    }
)  # fmt: skip
_DIALECTS: tuple[str, ...] = (
    "access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz",
)  # fmt: skip


@dataclass(frozen=True)
class _Parser(_ClientParser):
    """Reads every section of one file; the `clients:` entries are _ClientParser's."""

    policy: PasswordPolicy = field(default_factory=PasswordPolicy)

    def section(self, doc: dict[str, Any], name: str, parse: Any) -> list[Any]:
        items = doc.get(name)
        if items is None:
            return []
        if not isinstance(items, list):
            raise ConfigError(f"{self.source}: {name}: must be a list")
        return [parse(_Entry(self.source, f"{name}[{i}]", item)) for i, item in enumerate(items)]

    def settings(self, value: Any) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{self.source}: settings: must be a mapping")
        for key in value:
            if not isinstance(key, str) or not 0 < len(key) <= 100:
                raise ConfigError(f"{self.source}: settings: {key!r} must be a name of 1-100 chars")
        check_json(value, "settings", self.source)
        if "default_audience" in value and not isinstance(value["default_audience"], str):
            raise ConfigError(f"{self.source}: settings.default_audience: must be a string")
        return dict(value)

    def resource_server(self, e: _Entry) -> ResourceServerSpec:
        identifier = e.required("identifier", 600)
        if identifier == MANAGEMENT_API_PLACEHOLDER:
            raise e.error(
                "identifier",
                "the Management API is built in and cannot be redefined "
                "(give clients access to it with clientGrants)",
            )
        alg = e.choice("signing_alg", ("RS256", "HS256"), "RS256")
        secret = e.optional("signing_secret", 1024)
        if alg == "HS256" and (secret is None or len(secret) < 16):
            raise e.error(
                "signing_secret", "HS256 needs a signing_secret of at least 16 characters"
            )
        if alg != "HS256" and secret is not None:
            raise e.error("signing_secret", "is only used with signing_alg HS256")
        enforce = e.boolean("enforce_policies", False)
        dialect = e.choice("token_dialect", _DIALECTS, "access_token")
        if dialect.endswith("_authz") and not enforce:
            raise e.error("token_dialect", f"{dialect} needs enforce_policies: true")
        return ResourceServerSpec(
            at=e.at,
            identifier=identifier,
            name=e.text("name", 255, default=identifier),
            scopes=self.scopes(e),
            signing_alg=cast(SigningAlg, alg),
            signing_secret=secret,
            allow_offline_access=e.boolean("allow_offline_access", False),
            skip_consent_for_verifiable_first_party_clients=e.boolean(
                "skip_consent_for_verifiable_first_party_clients", True
            ),
            token_lifetime=e.integer("token_lifetime", 86_400, 1, 2_592_000),
            token_lifetime_for_web=e.integer("token_lifetime_for_web", 7_200, 1, 2_592_000),
            enforce_policies=enforce,
            token_dialect=cast(TokenDialect, dialect),
            extra=e.finish(RESOURCE_SERVER_PASSTHROUGH),
        )

    def scopes(self, e: _Entry) -> tuple[Permission, ...]:
        value = e.raw("scopes")
        if value is None:
            return ()
        if not isinstance(value, list):
            raise e.error("scopes", "must be a list of {value, description}")
        out: dict[str, Permission] = {}
        for i, item in enumerate(value):
            s = _Entry(self.source, f"{e.at}.scopes[{i}]", item)
            name = s.required("value", 280)
            if any(c.isspace() for c in name):
                raise s.error("value", "must not contain spaces")
            if name in out:
                raise s.error("value", f"{name!r} is listed twice")
            out[name] = Permission(name, s.text("description", 500))
            s.finish()
        return tuple(out.values())

    def client_grant(self, e: _Entry) -> ClientGrantSpec:
        client_id = e.required("client_id", 64)
        audience = e.required("audience", 600)
        scope = e.strings("scope", max_len=280)
        for i, s in enumerate(scope):
            if any(c.isspace() for c in s):
                raise e.error(f"scope[{i}]", "must be one scope without spaces")
        spec = ClientGrantSpec(
            at=e.at,
            client_id=client_id,
            audience=audience,
            scope=scope,
            allow_all_scopes=e.boolean("allow_all_scopes", False),
            subject_type=e.choice("subject_type", ("client", "user"), "client"),
        )
        e.finish()
        return spec

    def role(self, e: _Entry) -> RoleSpec:
        name = e.required("name")
        description = e.text("description", 1000)
        perms = e.raw("permissions")
        if perms is not None and not isinstance(perms, list):
            raise e.error(
                "permissions", "must be a list of {resource_server_identifier, permission_name}"
            )
        permissions: list[RolePermission] = []
        for i, item in enumerate(perms or []):
            p = _Entry(self.source, f"{e.at}.permissions[{i}]", item)
            permissions.append(
                RolePermission(
                    p.required("resource_server_identifier", 600),
                    p.required("permission_name", 280),
                )
            )
            p.finish()
        members: list[str] = []
        for i, member in enumerate(e.strings("users", max_len=320)):
            if "|" in member:
                members.append(member)
                continue
            problem = email_error(member)
            if problem:
                raise e.error(f"users[{i}]", f"{problem} (give emails or user ids)")
            members.append(member.lower())
        e.finish()
        return RoleSpec(e.at, name, description, tuple(permissions), tuple(members))

    def user(self, e: _Entry) -> UserSpec:
        email = e.required("email", 320)
        problem = email_error(email)
        if problem:
            raise e.error("email", problem)
        email = email.lower()
        connection = e.text("connection", 128, default=DATABASE_CONNECTION)
        if connection != DATABASE_CONNECTION:
            raise e.error("connection", f"only {DATABASE_CONNECTION} users can be defined here")
        password = e.optional("password", 4096)
        password_hash = e.optional("password_hash", 1000)
        if password is not None and password_hash is not None:
            raise e.error("password_hash", "give either password or password_hash, not both")
        if password is None and password_hash is None:
            raise e.error("password", "is required (or give an imported password_hash)")
        if password is not None:
            problems = self.policy.check(password, email)
            if problems:
                raise e.error("password", "; ".join(problems))
        if password_hash is not None and not is_supported_hash(password_hash):
            raise e.error("password_hash", "must be a bcrypt ($2a$, $2b$, $2y$) or argon2 hash")
        names = {k: e.optional(k, 150) for k in USER_FIELDS_150}
        names |= {k: e.optional(k, 300) for k in USER_FIELDS_300}
        picture = e.optional("picture", 2048)
        if picture is not None:
            parts = urlsplit(picture)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise e.error("picture", "must be an absolute http(s) URL")
        phone = e.optional("phone_number", 20)
        if phone is not None and not _PHONE_RE.match(phone):
            raise e.error("phone_number", "must be in E.164 format, like +14155550100")
        user_metadata = e.mapping("user_metadata")
        app_metadata = e.mapping("app_metadata")
        for key, meta in (("user_metadata", user_metadata), ("app_metadata", app_metadata)):
            _check_metadata_keys(meta, f"{e.at}.{key}", self.source)
        for key in app_metadata or {}:
            if key in _APP_METADATA_RESERVED:
                raise e.error(f"app_metadata.{key}", "is a reserved name")
        spec = UserSpec(
            at=e.at,
            email=email,
            user_id=self.user_id(e),
            password=password,
            password_hash=password_hash,
            email_verified=e.optional_bool("email_verified"),
            user_metadata=user_metadata,
            app_metadata=app_metadata,
            picture=picture,
            phone_number=phone,
            phone_verified=e.optional_bool("phone_verified"),
            blocked=e.optional_bool("blocked"),
            **names,
        )
        e.finish()
        return spec

    def user_id(self, e: _Entry) -> str | None:
        value = e.optional("user_id", 300)
        if value is None:
            return None
        provider, bar, local = value.rpartition("|")
        if bar and provider != "auth0":
            raise e.error("user_id", "database users' ids start with auth0|")
        if not _USER_ID_RE.match(local):
            raise e.error("user_id", "must be 1-255 characters without spaces")
        return "auth0|" + local
