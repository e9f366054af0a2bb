"""Tenant file specs: one frozen dataclass per entry, with Auth0 Management API field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from keystead.core.apis import Permission, SigningAlg, TokenDialect
from keystead.core.clients import AppType, AuthMethod, RefreshTokenPolicy

ISSUER_PLACEHOLDER = "{issuer}"
MANAGEMENT_API_PLACEHOLDER = ISSUER_PLACEHOLDER + "api/v2/"


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
