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
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast
from urllib.parse import urlsplit

import yaml

from keystead.core.apis import Permission, SigningAlg, TokenDialect
from keystead.core.clients import (
    DEFAULT_GRANT_TYPES,
    PUBLIC_APP_TYPES,
    AppType,
    AuthMethod,
    RefreshTokenPolicy,
)
from keystead.core.passwords import PasswordPolicy, is_supported_hash
from keystead.core.profile import ProfilePolicy
from keystead.core.ratelimit import parse_rate_limits
from keystead.core.redirects import callback_url_problem, host_matches, is_loopback_host, split_url
from keystead.core.users import DATABASE_CONNECTION
from keystead.errors import ConfigError

ISSUER_PLACEHOLDER = "{issuer}"
MANAGEMENT_API_PLACEHOLDER = ISSUER_PLACEHOLDER + "api/v2/"
SECTIONS = ("settings", "clients", "resourceServers", "clientGrants", "roles", "users")

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
RESOURCE_SERVER_PASSTHROUGH = frozenset({"consent_policy", "allow_online_access"})
USER_FIELDS_150 = ("given_name", "family_name")
USER_FIELDS_300 = ("name", "nickname")
_CLIENT_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_USER_ID_RE = re.compile(r"^\S{1,255}$")
_PHONE_RE = re.compile(r"^\+[0-9]{1,15}$")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# --- the typed spec ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientSpec:
    at: str  # "clients[0]": where the entry is, for error messages
    name: str
    app_type: AppType
    token_endpoint_auth_method: AuthMethod
    client_id: str | None = None  # None: reuse the client of that name, or generate one
    client_secret: str | None = field(default=None, repr=False)  # None: keep or generate
    description: str = ""
    is_first_party: bool = True
    callbacks: tuple[str, ...] = ()
    allowed_logout_urls: tuple[str, ...] = ()
    web_origins: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    refresh_token: RefreshTokenPolicy = field(default_factory=RefreshTokenPolicy)
    jwt_configuration: dict[str, Any] = field(default_factory=dict)
    client_metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # CLIENT_PASSTHROUGH fields as given

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def config(self) -> dict[str, Any]:
        """Every field but id, name, type, auth method and secret, under its Auth0 name."""
        rt = self.refresh_token
        return {
            **self.extra,
            "description": self.description,
            "is_first_party": self.is_first_party,
            "callbacks": list(self.callbacks),
            "allowed_logout_urls": list(self.allowed_logout_urls),
            "web_origins": list(self.web_origins),
            "allowed_origins": list(self.allowed_origins),
            "grant_types": list(self.grant_types),
            "refresh_token": {k: getattr(rt, k) for k in RefreshTokenPolicy.__dataclass_fields__},
            "jwt_configuration": dict(self.jwt_configuration),
            "client_metadata": dict(self.client_metadata),
        }


@dataclass(frozen=True)
class ResourceServerSpec:
    at: str
    identifier: str
    name: str
    scopes: tuple[Permission, ...] = ()
    signing_alg: SigningAlg = "RS256"
    signing_secret: str | None = field(default=None, repr=False)
    allow_offline_access: bool = False
    skip_consent_for_verifiable_first_party_clients: bool = True
    token_lifetime: int = 86_400
    token_lifetime_for_web: int = 7_200
    enforce_policies: bool = False
    token_dialect: TokenDialect = "access_token"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def scope_values(self) -> frozenset[str]:
        return frozenset(p.value for p in self.scopes)

    def config(self) -> dict[str, Any]:
        """Stored configuration, without the signing secret (sealed separately)."""
        return {
            **self.extra,
            "scopes": [{"value": p.value, "description": p.description} for p in self.scopes],
            "signing_alg": self.signing_alg,
            "allow_offline_access": self.allow_offline_access,
            "skip_consent_for_verifiable_first_party_clients": (
                self.skip_consent_for_verifiable_first_party_clients
            ),
            "token_lifetime": self.token_lifetime,
            "token_lifetime_for_web": self.token_lifetime_for_web,
            "enforce_policies": self.enforce_policies,
            "token_dialect": self.token_dialect,
        }


@dataclass(frozen=True)
class ClientGrantSpec:
    at: str
    client_id: str
    audience: str
    scope: tuple[str, ...] = ()
    allow_all_scopes: bool = False
    subject_type: str = "client"


@dataclass(frozen=True)
class RolePermission:
    resource_server_identifier: str
    permission_name: str


@dataclass(frozen=True)
class RoleSpec:
    at: str
    name: str
    description: str = ""
    permissions: tuple[RolePermission, ...] = ()
    users: tuple[str, ...] = ()  # emails (lower-cased) or user ids ("auth0|…"); added, not set


@dataclass(frozen=True)
class UserSpec:
    """A database user. Optional fields are None when the file leaves them out: applying a file
    to an existing user changes only what the file states."""

    at: str
    email: str  # lower-cased
    user_id: str | None = None  # full id, "auth0|…"
    password: str | None = field(default=None, repr=False)
    password_hash: str | None = field(default=None, repr=False)
    email_verified: bool | None = None
    user_metadata: dict[str, Any] | None = None
    app_metadata: dict[str, Any] | None = None
    name: str | None = None
    nickname: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture: str | None = None
    phone_number: str | None = None
    phone_verified: bool | None = None
    blocked: bool | None = None

    def given(self) -> dict[str, Any]:
        """The profile fields the file sets (password, ids and email excluded)."""
        skip = {"at", "email", "user_id", "password", "password_hash"}
        return {
            k: getattr(self, k)
            for k in self.__dataclass_fields__
            if k not in skip and getattr(self, k) is not None
        }


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


def _load(text: str, source: str) -> Any:
    if source.endswith(".json"):
        try:
            return json.loads(text, object_pairs_hook=_unique_pairs)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"{source}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
            ) from None
        except ValueError as exc:  # duplicate key, from _unique_pairs
            raise ConfigError(f"{source}: invalid JSON: {exc}") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark else source
        raise ConfigError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys and keeps dates as strings (JSON has no dates)."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_StrictLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_unique_mapping,
)
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _substitute(node: Any, at: str, source: str, environ: Mapping[str, str]) -> Any:
    """Expand `${VAR}` in every string value (values only: keys and structure stay as written)."""
    if isinstance(node, dict):
        return {
            k: _substitute(v, f"{at}.{k}" if at else str(k), source, environ)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute(v, f"{at}[{i}]", source, environ) for i, v in enumerate(node)]
    if isinstance(node, str) and "$" in node:
        return expand_env(node, environ, lambda msg: ConfigError(f"{source}: {at}: {msg}"))
    return node


def expand_env(
    value: str,
    environ: Mapping[str, str],
    error: Callable[[str], Exception] = ConfigError,
) -> str:
    """`${VAR}` → environ[VAR] (must be set); `${VAR:-default}` → VAR when set and non-empty,
    else default; `$${` → a literal `${`; any other `$` stays."""
    out: list[str] = []
    i = 0
    while (j := value.find("$", i)) >= 0:
        out.append(value[i:j])
        if value.startswith("$${", j):
            out.append("${")
            i = j + 3
            continue
        if not value.startswith("${", j):
            out.append("$")
            i = j + 1
            continue
        end = value.find("}", j + 2)
        if end < 0:
            raise error("unterminated ${ (write $${ for a literal ${)")
        name, sep, default = value[j + 2 : end].partition(":-")
        if not _ENV_NAME_RE.match(name):
            raise error(f"${{{value[j + 2 : end]}}} is not a variable reference like ${{NAME}}")
        found = environ.get(name)
        if sep:
            out.append(found or default)
        elif found is None:
            raise error(f"environment variable {name} is not set (or write ${{{name}:-default}})")
        else:
            out.append(found)
        i = end + 1
    out.append(value[i:])
    return "".join(out)


# --- field checks ------------------------------------------------------------------------------


def url_error(url: str, *, origin: bool = False) -> str | None:
    """Why `url` cannot be registered as a callback or logout URL (or, with `origin`, as a web
    origin); None when it can. The Management API's rules (core/redirects.py, security case
    AZ-05): no fragment, no script schemes, http only for loopback hosts, `*` only as Auth0's
    left-most-label wildcard."""
    if not origin:
        problem = callback_url_problem(url)
        return f"{url!r} {problem}" if problem else None
    parts = split_url(url)
    if parts is None or parts.scheme.lower() not in ("http", "https"):
        return f"{url!r} must be an http(s) origin like https://app.example.com"
    if parts.path or parts.query is not None or parts.fragment is not None:
        return (
            f"{url!r} must be an origin: scheme, host and port only, like https://app.example.com"
        )
    if "*" in parts.host and not host_matches(parts.host, parts.host.replace("*", "x", 1)):
        return f"{url!r} may only use * in the left-most label of a host with at least three labels"
    if parts.scheme.lower() == "http" and not is_loopback_host(parts.host):
        return f"{url!r} must use https unless the host is a loopback address"
    return None


def email_error(email: str) -> str | None:
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in email):
        return f"{email!r} is not an email address"
    if len(email) > 320:
        return "must be at most 320 characters"
    return None


def missing_scopes(requested: tuple[str, ...], available: frozenset[str]) -> list[str]:
    return [s for s in requested if s not in available]


def _list(items: Any) -> str:
    return ", ".join(str(i) for i in items)


def _hint(key: str, known: Any) -> str:
    names = sorted(str(k) for k in known)
    close = difflib.get_close_matches(key, names, n=1) or [n for n in names if n.startswith(key)]
    return f" (did you mean {close[0]}?)" if close else ""


_APP_METADATA_RESERVED = frozenset(
    {
        "__tenant", "_id", "blocked", "clientID", "created_at", "email_verified", "email",
        "globalClientID", "global_client_id", "identities", "lastIP", "lastLogin",
        "loginsCount", "metadata", "multifactor_last_modified", "multifactor", "updated_at",
        "user_id",
    }
)  # fmt: skip


# --- entry reader ------------------------------------------------------------------------------


class _Entry:
    """One mapping of the file; reads typed fields and reports errors at `{at}.{field}`."""

    def __init__(self, source: str, at: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {at}: must be a mapping")
        self.source, self.at, self.data = source, at, data
        self.known: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.at}.{key}: {message}")

    def raw(self, key: str) -> Any:
        self.known.add(key)
        return self.data.get(key)

    def optional(self, key: str, max_len: int = 255) -> str | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if len(value) > max_len:
            raise self.error(key, f"must be at most {max_len} characters")
        return value

    def required(self, key: str, max_len: int = 255) -> str:
        value = self.optional(key, max_len)
        if value is None:
            raise self.error(key, "is required")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def text(self, key: str, max_len: int = 255, default: str = "") -> str:
        value = self.optional(key, max_len)
        return default if value is None else value

    def optional_bool(self, key: str) -> bool | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.optional_bool(key)
        return default if value is None else value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.raw(key)
        if value is None:
            return default
        if value not in options:
            raise self.error(key, f"must be one of {_list(options)}, got {value!r}")
        return str(value)

    def strings(
        self, key: str, default: tuple[str, ...] = (), max_len: int = 600
    ) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, list):
            raise self.error(key, "must be a list of strings")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{key}[{i}]", "must be a non-empty string")
            if len(item) > max_len:
                raise self.error(f"{key}[{i}]", f"must be at most {max_len} characters")
            if item not in out:
                out.append(item)
        return tuple(out)

    def urls(self, key: str, *, origin: bool = False) -> tuple[str, ...]:
        value = self.raw(key)
        if value is not None and not isinstance(value, list):
            raise self.error(
                key, "must be a list of origins" if origin else "must be a list of URLs"
            )
        urls = self.strings(key, max_len=2048)
        for i, url in enumerate(urls):
            problem = url_error(url, origin=origin)
            if problem:
                raise self.error(f"{key}[{i}]", problem)
        return urls

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        check_json(value, f"{self.at}.{key}", self.source)
        return value

    def finish(self, passthrough: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Refuse unknown fields (typos must not pass silently); return passthrough ones."""
        extra: dict[str, Any] = {}
        for key, value in self.data.items():
            if key in self.known:
                continue
            if key in passthrough:
                check_json(value, f"{self.at}.{key}", self.source)
                extra[key] = value
                continue
            hint = _hint(str(key), self.known | passthrough)
            raise self.error(str(key), f"unknown field{hint}")
        return extra


def check_json(value: Any, at: str, source: str) -> None:
    """Only JSON values may be stored (YAML also has sets, binary, non-string keys…)."""
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, f"{at}[{i}]", source)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{source}: {at}: key {k!r} must be a string")
            check_json(item, f"{at}.{k}", source)
        return
    raise ConfigError(f"{source}: {at}: {type(value).__name__} is not a JSON value")


def _check_metadata_keys(value: Any, at: str, source: str) -> None:
    if isinstance(value, dict):
        for k, item in value.items():
            if "." in k or "$" in k:
                raise ConfigError(f"{source}: {at}.{k}: metadata keys must not contain . or $")
            _check_metadata_keys(item, f"{at}.{k}", source)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_metadata_keys(item, f"{at}[{i}]", source)


# --- sections ----------------------------------------------------------------------------------

_APP_TYPES: tuple[str, ...] = ("spa", "native", "regular_web", "non_interactive")
_AUTH_METHODS: tuple[str, ...] = ("none", "client_secret_post", "client_secret_basic")
_DIALECTS: tuple[str, ...] = (
    "access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz",
)  # fmt: skip


@dataclass(frozen=True)
class _Parser:
    source: str
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
