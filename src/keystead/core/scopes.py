"""Scopes: parsing, the OIDC claim table, and what a token may be granted (contract §3.4, §3.8).

Two grant rules, one per kind of subject:

    grant_user_scopes(...)    code, refresh, password grants and /authorize (contract §3.8)
    grant_client_scopes(...)  client_credentials, bounded by the client grant (contract §3.4)

Both keep the requested order and return GrantedScopes; the token's `scope` claim and the
response's `scope` field are `granted.value`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from keystead.core.apis import ClientGrant, ResourceServer
from keystead.errors import AccessDenied, InvalidScope

OPENID: Final = "openid"
OFFLINE_ACCESS: Final = "offline_access"
OIDC_SCOPES: Final = frozenset({OPENID, "profile", "email", "address", "phone", OFFLINE_ACCESS})

# OIDC Core §5.4: the claims each scope releases in ID tokens and at /userinfo (contract §4.3, §5).
CLAIMS_BY_SCOPE: Final[Mapping[str, tuple[str, ...]]] = MappingProxyType(
    {
        "openid": ("sub",),
        "profile": (
            "name",
            "nickname",
            "picture",
            "updated_at",
            "given_name",
            "family_name",
            "middle_name",
            "preferred_username",
            "profile",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
        ),
        "email": ("email", "email_verified"),
        "address": ("address",),
        "phone": ("phone_number", "phone_number_verified"),
    }
)

# The only Management API scopes a user flow can ever be granted (contract §3.8): a token for
# the signed-in user to read and change their own profile. `delete:current_user` is deliberately
# absent: it is not in Auth0's grantable set.
CURRENT_USER_SCOPES: Final[tuple[str, ...]] = (
    "read:current_user",
    "update:current_user_metadata",
    "create:current_user_metadata",
    "delete:current_user_metadata",
    "update:current_user_identities",
    "create:current_user_device_credentials",
    "delete:current_user_device_credentials",
)

MALFORMED_SCOPE: Final = "Scope must be an array or a string"  # contract §3.9


def parse_scope(value: object) -> tuple[str, ...] | None:
    """Parse a `scope` parameter: a space-separated string, or a list of strings (JSON bodies).

    None, "" and whitespace-only mean "absent" and give None, so callers can tell "not sent" from
    an explicit list. Order is kept, duplicates dropped. Raises InvalidScope for other types and
    for characters outside RFC 6749 §3.3's scope-token (controls, space inside, `"`, `\\`,
    non-ASCII).
    """
    if value is None:
        return None
    if isinstance(value, str):
        parts: list[str] = value.split(" ")
    elif isinstance(value, list | tuple):
        if not all(isinstance(item, str) for item in value):
            raise InvalidScope(MALFORMED_SCOPE)
        parts = [token for item in value for token in item.split(" ")]
    else:
        raise InvalidScope(MALFORMED_SCOPE)
    scopes = tuple(dict.fromkeys(p for p in parts if p))
    for scope in scopes:
        if not all(0x21 <= ord(c) <= 0x7E and c not in '"\\' for c in scope):
            raise InvalidScope("Scope contains characters that are not allowed")
    return scopes or None


def format_scope(scopes: Iterable[str]) -> str:
    """The wire form: space separated, in the given order."""
    return " ".join(scopes)


def claims_for(scopes: Iterable[str]) -> tuple[str, ...]:
    """The OIDC claim names the scopes release, in CLAIMS_BY_SCOPE order."""
    wanted = set(scopes)
    return tuple(c for scope, claims in CLAIMS_BY_SCOPE.items() if scope in wanted for c in claims)


@dataclass(frozen=True)
class GrantedScopes:
    """The outcome of a scope decision.

    `scopes` go into the token and response; `dropped` were requested but not granted (silently,
    as Auth0 does; log them, show them on a consent page, never send them).
    """

    scopes: tuple[str, ...] = ()
    dropped: tuple[str, ...] = ()

    def __contains__(self, scope: object) -> bool:
        return scope in self.scopes

    def __iter__(self) -> Iterator[str]:
        return iter(self.scopes)

    def __len__(self) -> int:
        return len(self.scopes)

    @property
    def value(self) -> str:
        """The `scope` claim / response field."""
        return format_scope(self.scopes)

    @property
    def openid(self) -> bool:
        """An ID token is issued, and the access token also reaches /userinfo."""
        return OPENID in self.scopes

    @property
    def offline_access(self) -> bool:
        """A refresh token is issued."""
        return OFFLINE_ACCESS in self.scopes

    @property
    def api_scopes(self) -> tuple[str, ...]:
        """The scopes that are not OIDC scopes: what the resource server checks."""
        return tuple(s for s in self.scopes if s not in OIDC_SCOPES)


def grantable_user_scopes(
    api: ResourceServer | None,
    *,
    is_management_api: bool,
    user_permissions: AbstractSet[str],
    current_user_scopes_enabled: bool = True,
) -> tuple[str, ...]:
    """Every API scope a user flow could get for `api` (before looking at the request)."""
    if api is None:
        return ()
    if is_management_api:
        # Never the full Management scopes to a user: those only come through client_credentials.
        return CURRENT_USER_SCOPES if current_user_scopes_enabled else ()
    defined = tuple(p.value for p in api.scopes)
    if api.enforce_policies:  # RBAC: only what the user holds, directly or through roles
        return tuple(s for s in defined if s in user_permissions)
    return defined


def grant_user_scopes(
    requested: Sequence[str] | None,
    api: ResourceServer | None,
    *,
    is_management_api: bool,
    user_permissions: AbstractSet[str],
    offline_allowed: bool,
    implied_trust: bool,
    current_user_scopes_enabled: bool = True,
) -> GrantedScopes:
    """Scopes for a token issued to a user (contract §3.8).

    requested          `parse_scope(...)` of the request; None when not sent.
    api                the resolved audience, or None (token good only for /userinfo).
    is_management_api  `api` is the Management API (`{issuer}api/v2/` or an alias).
    user_permissions   the user's effective permissions on `api` (used when RBAC is on).
    offline_allowed    the client may hold refresh tokens (`client_may_get_refresh_tokens`);
                       `offline_access` is further limited by the API's `allow_offline_access`.
    implied_trust      a password grant that sent no `scope`: grant every grantable API scope.
    current_user_scopes_enabled
                       the tenant/client switch (contract §14 #1); False grants a user flow no
                       Management API scope at all.

    Everything not grantable is dropped silently, never an error: Auth0 does so at /authorize,
    and the contract allows it at the token endpoint.
    """
    grantable = grantable_user_scopes(
        api,
        is_management_api=is_management_api,
        user_permissions=user_permissions,
        current_user_scopes_enabled=current_user_scopes_enabled,
    )
    if requested is None:
        return GrantedScopes(grantable if implied_trust else ())
    offline_ok = offline_allowed and (api is None or api.allow_offline_access)
    granted: list[str] = []
    dropped: list[str] = []
    for scope in dict.fromkeys(requested):
        keep = scope in grantable or (
            scope in OIDC_SCOPES and (scope != OFFLINE_ACCESS or offline_ok)
        )
        (granted if keep else dropped).append(scope)
    return GrantedScopes(tuple(granted), tuple(dropped))


def narrow_scopes(original: Sequence[str], requested: Sequence[str] | None) -> tuple[str, ...]:
    """Refresh grant: `scope` may only narrow what was originally granted (RFC 6749 §6, RT-05).

    None (or an empty `scope`, which parses to None) keeps the original scopes.
    """
    if requested is None:
        return tuple(original)
    extra = [s for s in requested if s not in original]
    if extra:
        raise InvalidScope(
            "The requested scope exceeds the scope granted by the resource owner",
            detail=f"not originally granted: {format_scope(extra)}",
        )
    return tuple(dict.fromkeys(requested))


def grant_client_scopes(
    requested: Sequence[str] | None, grant: ClientGrant, api: ResourceServer
) -> GrantedScopes:
    """Scopes for a client_credentials token (contract §3.4 step 3).

    `grant` is the client's grant for `api` (see grants.check_client_credentials_target). The
    grant's scopes, or every API scope with `allow_all_scopes`; a scope no longer defined on the
    API is not granted. A request for anything outside that raises AccessDenied (403) naming the
    scopes, as Auth0 does; no request means everything allowed.
    """
    defined = tuple(p.value for p in api.scopes)
    allowed = defined if grant.allow_all_scopes else tuple(s for s in grant.scope if s in defined)
    if requested is None:
        return GrantedScopes(tuple(dict.fromkeys(allowed)))
    outside = [s for s in dict.fromkeys(requested) if s not in allowed]
    if outside:
        listed = format_scope(outside)
        if len(listed) > 300:  # echoed request text stays bounded (AZ-09)
            listed = listed[:300] + "..."
        raise AccessDenied(f"Client has not been granted scopes: {listed}")
    return GrantedScopes(tuple(dict.fromkeys(requested)))
