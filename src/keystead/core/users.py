"""Users and their identities (contract §9.1)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

DATABASE_CONNECTION = "Username-Password-Authentication"


@dataclass(frozen=True)
class Identity:
    connection: str
    provider: str
    user_id: str
    is_social: bool = False
    profile_data: dict[str, Any] | None = None
    # A linked database identity keeps its own password (contract §9.6): it still logs in, as
    # the primary user, and takes it along when unlinked. Stored, never serialised.
    password_hash: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class User:
    user_id: str  # "{provider}|{id}"
    email: str | None = None
    email_verified: bool = False
    username: str | None = None
    phone_number: str | None = None
    phone_verified: bool = False
    name: str | None = None
    nickname: str | None = None
    given_name: str | None = None
    family_name: str | None = None
    picture: str | None = None
    user_metadata: dict[str, Any] = field(default_factory=dict)
    app_metadata: dict[str, Any] = field(default_factory=dict)
    identities: tuple[Identity, ...] = ()
    blocked: bool = False
    created_at: float = 0.0
    updated_at: float = 0.0
    last_login: float | None = None
    last_ip: str | None = None
    logins_count: int = 0
    last_password_reset: float | None = None
    password_hash: str | None = field(default=None, repr=False)  # never serialised
