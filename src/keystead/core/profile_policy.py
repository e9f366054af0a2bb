"""Self-service policy: `settings.self_service` and client overrides → ProfilePolicy (issue 6)."""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass, field, replace
from typing import Any, Final

from keystead.core.profile_schema import _compile, _kind
from keystead.errors import ConfigError

DEFAULT_MAX_BYTES: Final = 16_384  # Auth0's stated practical limit for user_metadata
MAX_MAX_BYTES: Final = 16 * 1024 * 1024  # Auth0's hard limit for user_metadata
# Auth0 documents no depth limit; 100 keeps recursive JSON walkers (serialisers, the schema
# validator) far below Python's recursion limit.
DEFAULT_MAX_DEPTH: Final = 100

_BLOCK_KEYS: Final = frozenset({"current_user_tokens", "user_metadata", "audit_values"})
_METADATA_KEYS: Final = frozenset({"schema", "writable", "max_bytes", "max_depth"})


@dataclass(frozen=True)
class ProfilePolicy:
    """Guard rails for `user_metadata` writes; the defaults are Auth0's behaviour."""

    schema: Mapping[str, Any] | None = None  # JSON Schema (Draft 2020-12) for the merged document
    self_writable_keys: frozenset[str] | None = None  # top-level keys users may write; None: all
    max_bytes: int = DEFAULT_MAX_BYTES  # compact UTF-8 JSON of the whole merged document
    max_depth: int = DEFAULT_MAX_DEPTH  # nesting levels; {"a": 1} is 1, {"a": {"b": 1}} is 2
    audit_values: bool = False  # audit records carry old/new values, not only sizes
    current_user_tokens: bool = True  # False: no Management API tokens for signed-in users
    clients: Mapping[str, ProfilePolicy] = field(default_factory=dict)  # resolved overrides
    validator: Any = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        if not 1 <= self.max_depth <= DEFAULT_MAX_DEPTH or not 1 <= self.max_bytes <= MAX_MAX_BYTES:
            raise ConfigError(f"max_depth or max_bytes out of range: {self!r}")
        # Compiled once per policy; policies live as long as the tenant configuration.
        if self.schema is not None:
            object.__setattr__(self, "validator", _compile(self.schema, "schema"))

    @classmethod
    def from_config(
        cls,
        block: Mapping[str, Any] | None,
        *,
        clients: Mapping[str, Mapping[str, Any] | None] | None = None,
    ) -> ProfilePolicy:
        """Parse `settings.self_service` and each client's `self_service` (keyed by client_id).

        A client block overrides only the keys it names; the rest is inherited from the tenant.
        """
        tenant = _parse_block(block, "settings.self_service", cls())
        overrides = {
            client_id: _parse_block(sub, f"clients.{client_id}.self_service", tenant)
            for client_id, sub in (clients or {}).items()
            if sub is not None
        }
        return replace(tenant, clients=overrides)

    @classmethod
    def from_tenant(cls, tenant: Mapping[str, Any]) -> ProfilePolicy:
        """Read the policy from a whole tenant file (`settings:` and the `clients:` list)."""
        settings = tenant.get("settings") or {}
        if not isinstance(settings, Mapping):
            raise ConfigError(f"settings must be a mapping, got {_kind(settings)}")
        clients: dict[str, Mapping[str, Any] | None] = {}
        for i, client in enumerate(tenant.get("clients") or ()):
            if isinstance(client, Mapping) and client.get("self_service") is not None:
                client_id = client.get("client_id")
                if not isinstance(client_id, str) or not client_id:
                    raise ConfigError(f"clients[{i}].self_service needs the client's client_id")
                clients[client_id] = client["self_service"]
        return cls.from_config(settings.get("self_service"), clients=clients)

    def policy_for_client(self, client_id: str | None) -> ProfilePolicy:
        """The policy for writes made through `client_id` (the token's `azp`/`client_id`)."""
        return self if client_id is None else self.clients.get(client_id, self)

    def current_user_tokens_enabled(self, client_id: str | None) -> bool:
        return self.policy_for_client(client_id).current_user_tokens

    def allows_user_write(self, key: str) -> bool:
        return self.self_writable_keys is None or key in self.self_writable_keys


# --- configuration ---------------------------------------------------------------------------


def _parse_block(block: object, where: str, base: ProfilePolicy) -> ProfilePolicy:
    """One `self_service` block over `base`: keys it names replace, the rest is inherited."""
    if block is None:
        return replace(base, clients={})
    _check_keys(block, where, _BLOCK_KEYS)
    assert isinstance(block, Mapping)
    changes: dict[str, Any] = {}
    for name in ("current_user_tokens", "audit_values"):
        if name in block:
            changes[name] = _bool(block[name], f"{where}.{name}")
    metadata = block.get("user_metadata")
    if metadata is not None:
        where = f"{where}.user_metadata"
        _check_keys(metadata, where, _METADATA_KEYS)
        assert isinstance(metadata, Mapping)
        if "schema" in metadata:
            schema = metadata["schema"]
            if schema is not None:
                _compile(schema, f"{where}.schema")
                schema = deepcopy(dict(schema))  # the caller's mapping may change later
            changes["schema"] = schema
        if "writable" in metadata:
            changes["self_writable_keys"] = _writable(metadata["writable"], f"{where}.writable")
        if "max_bytes" in metadata:
            changes["max_bytes"] = _int(metadata["max_bytes"], f"{where}.max_bytes", MAX_MAX_BYTES)
        if "max_depth" in metadata:
            changes["max_depth"] = _int(
                metadata["max_depth"], f"{where}.max_depth", DEFAULT_MAX_DEPTH
            )
    return replace(base, clients={}, **changes)


def _check_keys(block: object, where: str, allowed: frozenset[str]) -> None:
    if not isinstance(block, Mapping):
        raise ConfigError(f"{where} must be a mapping, got {_kind(block)}")
    unknown = sorted(str(k) for k in block if k not in allowed)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {unknown[0]!r} (expected {', '.join(sorted(allowed))})"
        )


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def _int(value: object, where: str, most: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
        raise ConfigError(f"{where} must be a whole number from 1 to {most}, got {value!r}")
    return value


def _writable(value: object, where: str) -> frozenset[str] | None:
    if value is None:
        return None  # every key
    if not isinstance(value, list | tuple):
        raise ConfigError(f"{where} must be a list of user_metadata keys, got {_kind(value)}")
    for key in value:
        if not isinstance(key, str) or not key or "." in key or "$" in key:
            raise ConfigError(
                f'{where}: {key!r} is not a top-level key name (a non-empty string, no "." or "$")'
            )
    return frozenset(value)
