"""APIs (Auth0 "resource servers") and client grants (contract §10.3, §10.4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SigningAlg = Literal["RS256", "HS256"]
TokenDialect = Literal[
    "access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz"
]


@dataclass(frozen=True)
class Permission:
    value: str
    description: str = ""


@dataclass(frozen=True)
class ResourceServer:
    id: str
    identifier: str
    name: str
    scopes: tuple[Permission, ...] = ()
    signing_alg: SigningAlg = "RS256"
    signing_secret: str | None = None
    allow_offline_access: bool = False
    skip_consent_for_verifiable_first_party_clients: bool = True
    token_lifetime: int = 86_400
    token_lifetime_for_web: int = 7_200
    enforce_policies: bool = False
    token_dialect: TokenDialect = "access_token"
    is_system: bool = False

    @property
    def scope_values(self) -> frozenset[str]:
        return frozenset(p.value for p in self.scopes)


@dataclass(frozen=True)
class ClientGrant:
    id: str
    client_id: str
    audience: str
    scope: tuple[str, ...] = ()
    allow_all_scopes: bool = False
    subject_type: Literal["client", "user"] = "client"
