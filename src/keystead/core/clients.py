"""Applications (Auth0 "clients"): who may ask for tokens, and how (contract §10.2)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AppType = Literal["spa", "native", "regular_web", "non_interactive"]
AuthMethod = Literal["none", "client_secret_post", "client_secret_basic"]

PUBLIC_APP_TYPES = frozenset({"spa", "native"})

# Auth0's defaults when a client is created without `grant_types`.
DEFAULT_GRANT_TYPES: dict[str, tuple[str, ...]] = {
    "spa": ("authorization_code", "implicit", "refresh_token"),
    "native": ("authorization_code", "implicit", "refresh_token"),
    "regular_web": ("authorization_code", "implicit", "refresh_token", "client_credentials"),
    "non_interactive": ("client_credentials",),
}


@dataclass(frozen=True)
class RefreshTokenPolicy:
    rotation_type: Literal["rotating", "non-rotating"] = "non-rotating"
    expiration_type: Literal["expiring", "non-expiring"] = "non-expiring"
    leeway: int = 0
    token_lifetime: int = 2_592_000
    infinite_token_lifetime: bool = True
    idle_token_lifetime: int = 1_296_000
    infinite_idle_token_lifetime: bool = True


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str
    app_type: AppType = "regular_web"
    # argon2/sha256 digest of the secret; the secret itself is shown once (and encrypted copy
    # kept only so that `read:client_keys` can show it, as Auth0 does).
    client_secret: str | None = field(default=None, repr=False)
    token_endpoint_auth_method: AuthMethod = "client_secret_post"
    description: str = ""
    is_first_party: bool = True
    callbacks: tuple[str, ...] = ()
    allowed_logout_urls: tuple[str, ...] = ()
    web_origins: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    jwt_lifetime_in_seconds: int = 36_000
    refresh_token: RefreshTokenPolicy = field(default_factory=RefreshTokenPolicy)
    client_metadata: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # other Auth0 fields, stored as given

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == "none"

    def allows_grant(self, grant_type: str) -> bool:
        return grant_type in self.grant_types
