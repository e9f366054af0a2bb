"""Management API field-level rules (contract §8.3 item 4, §9.1, §9.6).

    check_update_fields(keys, d)        §8.3 item 4: root keys a limited PATCH /users/{id} may touch
    check_link_fields(keys, d)          §9.6: a current-user token links only with `link_with`
    shows_idp_tokens(scopes)            §8.3 item 4: identities[] IdP tokens
    visible_client_fields(scopes)       §8.3 item 4: client secrets and the summary view

`d` is the Decision core/policy.authorize made for the request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Any, Final

from keystead.core.policy import Decision
from keystead.errors import Forbidden

# §8.3 item 4: the root keys each limited scope may write on PATCH /users/{id}. A matching
# scope that is absent here (update:users) writes any updatable key.
UPDATE_FIELD_LIMITS: Final[Mapping[str, frozenset[str]]] = {
    "update:current_user_metadata": frozenset({"user_metadata"}),
    "create:current_user_metadata": frozenset({"user_metadata"}),
    "update:users_app_metadata": frozenset({"app_metadata"}),
}

# §9.6: a current-user token links accounts only by proving the secondary with `link_with`.
LINK_FIELD_LIMITS: Final[Mapping[str, frozenset[str]]] = {
    "update:current_user_identities": frozenset({"link_with"}),
}

IDP_TOKEN_FIELDS: Final = ("access_token", "refresh_token", "access_token_secret", "expires_in")
CLIENT_SECRET_FIELDS: Final = frozenset(
    {"client_secret", "encryption_key", "signing_keys", "client_authentication_methods"}
)
CLIENT_SUMMARY_FIELDS: Final = frozenset({"client_id", "app_type", "name", "description"})
CLIENT_KEY_SCOPES: Final = frozenset({"read:client_keys", "read:client_credentials"})


def _refuse(fields: Iterable[str]) -> None:
    bad = sorted(fields)
    if bad:
        # §8.2: comma-separated root keys (format observed, not documented); sorted for stability.
        raise Forbidden(
            "You cannot update the following fields: " + ", ".join(bad),
            error_code="insufficient_scope",
        )


def _check_limited(
    body_keys: Iterable[str], decision: Decision, limits: Mapping[str, frozenset[str]]
) -> None:
    scopes = decision.effective_scopes
    if any(s not in limits for s in scopes):
        return  # a scope without a limit (update:users) may write every key
    allowed = frozenset[str]().union(*(limits[s] for s in scopes))
    _refuse(set(body_keys) - allowed)


def check_update_fields(body_keys: Iterable[str], decision: Decision) -> None:
    """PATCH /users/{id}: metadata-only scopes touch only their metadata root key."""
    if (decision.method, decision.path) != ("PATCH", "/users/{id}"):
        raise ValueError(f"not a PATCH /users/{{id}} decision: {decision.method} {decision.path}")
    _check_limited(body_keys, decision, UPDATE_FIELD_LIMITS)


def check_link_fields(body_keys: Iterable[str], decision: Decision) -> None:
    """POST /users/{id}/identities: a current-user token may send only `link_with` (§9.6)."""
    if (decision.method, decision.path) != ("POST", "/users/{id}/identities"):
        raise ValueError(f"not a POST /users/{{id}}/identities decision: {decision.path}")
    _check_limited(body_keys, decision, LINK_FIELD_LIMITS)


def shows_idp_tokens(scopes: Set[str]) -> bool:
    """identities[] keep IDP_TOKEN_FIELDS only for read:user_idp_tokens (§9.1)."""
    return "read:user_idp_tokens" in scopes


@dataclass(frozen=True)
class FieldFilter:
    """Which fields of a document a token may see."""

    only: frozenset[str] | None  # None: every field that is not hidden
    hidden: frozenset[str]

    def allows(self, name: str) -> bool:
        return name not in self.hidden and (self.only is None or name in self.only)

    def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if self.allows(k)}


def visible_client_fields(scopes: Set[str]) -> FieldFilter:
    """Client fields for a read (§8.3 item 4). Write responses that hand out a new secret
    (POST /clients, rotate-secret) show it by definition; that is the handler's call."""
    if scopes & CLIENT_KEY_SCOPES:
        return FieldFilter(only=None, hidden=frozenset())
    if "read:clients" in scopes or "read:client_summary" not in scopes:
        return FieldFilter(only=None, hidden=CLIENT_SECRET_FIELDS)
    return FieldFilter(only=CLIENT_SUMMARY_FIELDS, hidden=CLIENT_SECRET_FIELDS)
