"""Safe self-service profile: who may write which `user_metadata`, and how much (issue 6).

    ProfilePolicy.from_config(block, clients=…)  tenant `settings.self_service` + client overrides
    policy.policy_for_client(client_id)          the client's override, else the tenant's policy
    policy.current_user_tokens_enabled(client_id)   the switch the scope computation reads
    merge_metadata(current, patch)               §9.5: shallow merge, null deletes, {} clears
    check_metadata_write(policy, current, patch, actor=…) -> MetadataChange: the one check

With no policy configured only Auth0's own limits apply: key names without "." or "$" (§9.1),
the signup limits (§7.2) and Auth0's practical 16 KiB user_metadata size.

ProfilePolicy and its parsing live in core/profile_policy.py, the JSON Schema support in
core/profile_schema.py; the public names are re-exported here.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping
from copy import deepcopy
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from keystead.core.profile_policy import (
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_DEPTH,
    MAX_MAX_BYTES,
    ProfilePolicy,
)
from keystead.core.profile_schema import DRAFT_2020_12, _kind, _path, _schema_problems
from keystead.errors import BadRequest, Forbidden

__all__ = [
    "ACTORS", "DEFAULT_MAX_BYTES", "DEFAULT_MAX_DEPTH", "DRAFT_2020_12", "MAX_LISTED_PROBLEMS",
    "MAX_MAX_BYTES", "SIGNUP_MAX_NAME", "SIGNUP_MAX_PROPERTIES", "SIGNUP_MAX_VALUE", "Actor",
    "KeyChange", "MetadataChange", "MetadataRejected", "ProfilePolicy", "check_metadata_write",
    "merge_metadata",
]  # fmt: skip

Actor = Literal["user", "admin", "signup"]
ACTORS: Final = ("user", "admin", "signup")
SIGNUP_MAX_PROPERTIES: Final = 10  # contract §7.2
SIGNUP_MAX_NAME: Final = 100
SIGNUP_MAX_VALUE: Final = 500
MAX_LISTED_PROBLEMS: Final = 50  # keeps a hostile body from producing a megabyte of message


@dataclass(frozen=True)
class KeyChange:
    """One top-level key that an accepted write added, replaced or removed."""

    key: str
    old_bytes: int | None  # None: the key was absent
    new_bytes: int | None  # None: the key is removed
    old: Any = field(default=None, repr=False)  # values only when the policy audits them
    new: Any = field(default=None, repr=False)


@dataclass(frozen=True)
class MetadataChange:
    """An accepted write: the document to store, and what to audit."""

    actor: Actor
    result: dict[str, Any]
    changes: tuple[KeyChange, ...]
    old_bytes: int
    new_bytes: int
    audit_values: bool = False

    @property
    def changed_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.changes)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def audit_details(self) -> dict[str, Any]:
        """JSON-ready audit body; the caller adds who (sub, client_id, user_id) and when."""
        keys: dict[str, Any] = {}
        for c in self.changes:
            entry: dict[str, Any] = {"old_bytes": c.old_bytes, "new_bytes": c.new_bytes}
            if self.audit_values:
                if c.old_bytes is not None:
                    entry["old"] = c.old
                if c.new_bytes is not None:
                    entry["new"] = c.new
            keys[c.key] = entry
        return {
            "field": "user_metadata",
            "actor": self.actor,
            "changed_keys": list(self.changed_keys),
            "old_bytes": self.old_bytes,
            "new_bytes": self.new_bytes,
            "keys": keys,
        }


class MetadataRejected(BadRequest):
    """400 `invalid_body` naming every offending key: `user_metadata.<key>: <why>`."""

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems = tuple(dict.fromkeys(problems))  # de-duplicated, order kept
        shown = list(self.problems[:MAX_LISTED_PROBLEMS])
        if len(self.problems) > MAX_LISTED_PROBLEMS:
            shown.append(f"and {len(self.problems) - MAX_LISTED_PROBLEMS} more problems")
        super().__init__("; ".join(shown), error_code="invalid_body")


def merge_metadata(current: Mapping[str, Any], patch: Mapping[str, Any]) -> dict[str, Any]:
    """Contract §9.5: top-level keys replace (nested objects wholesale), null deletes, {} clears.

    Neither argument is modified.
    """
    if not patch:
        return {}
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def check_metadata_write(
    policy: ProfilePolicy,
    current: Mapping[str, Any],
    patch: object,
    *,
    actor: Actor,
) -> MetadataChange:
    """The one check for every `user_metadata` write; raises MetadataRejected, changes nothing.

    `policy` is already the client's (`policy_for_client`). Writability is judged on the
    patch's keys; names, depth, size and the schema on the merged result.
    """
    if actor not in ACTORS:
        raise ValueError(f"unknown actor {actor!r}")
    if actor == "user" and not policy.current_user_tokens:
        # Tokens issued before the switch was turned off must stop working too.
        raise Forbidden("Current-user tokens are disabled for this application.")
    if not isinstance(patch, Mapping):
        raise MetadataRejected([f"user_metadata: must be an object, not {_kind(patch)}"])

    result = merge_metadata(current, patch)
    names, values, too_deep = _walk(result, policy.max_depth)
    comparable = not (values or too_deep)  # only then is it safe to compare and serialise
    problems: list[str] = []
    if actor != "admin" and policy.self_writable_keys is not None:
        problems += _unwritable(policy, current, patch, comparable)
    if actor == "signup":
        problems += _signup_problems(patch)
    problems += names + values + too_deep
    new_bytes = _size(result) if comparable else 0
    if comparable and new_bytes > policy.max_bytes:
        problems.append(f"user_metadata: {new_bytes} bytes, the limit is {policy.max_bytes}")
    elif comparable and policy.validator is not None:
        problems += _schema_problems(policy.validator, result)
    if problems:
        raise MetadataRejected(problems)
    return MetadataChange(
        actor=actor,
        result=result,
        changes=_changes(current, result, audit_values=policy.audit_values),
        old_bytes=_size(current),
        new_bytes=new_bytes,
        audit_values=policy.audit_values,
    )


# --- the checks ------------------------------------------------------------------------------


def _unwritable(
    policy: ProfilePolicy, current: Mapping[str, Any], patch: Mapping[str, Any], comparable: bool
) -> list[str]:
    # `{}` removes every stored key. A read-only key sent back unchanged is not a write, so
    # apps may round-trip the whole object they read.
    keys = patch.keys() if patch else current.keys()
    return [
        f"{_path((key,))}: not writable by the user"
        for key in keys
        if not policy.allows_user_write(key)
        and (not patch or not comparable or _is_change(current, key, patch[key]))
    ]


def _is_change(current: Mapping[str, Any], key: str, value: Any) -> bool:
    if value is None:
        return key in current
    return key not in current or not _same(current[key], value)


def _signup_problems(patch: Mapping[str, Any]) -> list[str]:
    """Contract §7.2: at most 10 properties, names ≤ 100 chars, string values ≤ 500 chars."""
    problems = []
    if len(patch) > SIGNUP_MAX_PROPERTIES:
        problems.append(
            f"user_metadata: {len(patch)} properties, at most {SIGNUP_MAX_PROPERTIES} at signup"
        )
    for key, value in patch.items():
        where = _path((key,))
        if isinstance(key, str) and len(key) > SIGNUP_MAX_NAME:
            problems.append(f"{where}: names must be at most {SIGNUP_MAX_NAME} characters")
        if not isinstance(value, str):
            problems.append(f"{where}: must be a string at signup")
        elif len(value) > SIGNUP_MAX_VALUE:
            problems.append(f"{where}: must be at most {SIGNUP_MAX_VALUE} characters at signup")
    return problems


def _walk(doc: Mapping[str, Any], max_depth: int) -> tuple[list[str], list[str], list[str]]:
    """Problems with key names, with values JSON cannot hold, and with nesting depth.

    Iterative and never deeper than `max_depth`, so hostile nesting costs neither stack nor time.
    """
    names: list[str] = []
    values: list[str] = []
    too_deep: dict[str | int, None] = {}  # top-level keys, in order
    todo: deque[tuple[tuple[str | int, ...], Any, int]] = deque([((), doc, 0)])
    while todo:
        path, value, level = todo.popleft()  # level: containers around `value`
        if isinstance(value, Mapping | list) and level + 1 > max_depth:
            too_deep[path[0]] = None  # the root is level 1 and max_depth is at least 1
        elif isinstance(value, Mapping):
            for key, child in value.items():
                if not isinstance(key, str):
                    values.append(f"{_path(path)}: keys must be strings")
                    continue
                if "." in key or "$" in key:
                    names.append(f'{_path((*path, key))}: names must not contain "." or "$"')
                todo.append(((*path, key), child, level + 1))
        elif isinstance(value, list):
            todo.extend(((*path, i), child, level + 1) for i, child in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            values.append(f"{_path(path)}: must be a finite number")
        elif not isinstance(value, str | int | float | type(None)):
            values.append(f"{_path(path)}: is not a JSON value")
    deep = [f"{_path((key,))}: nested more than {max_depth} levels deep" for key in too_deep]
    return names, values, deep


def _changes(
    current: Mapping[str, Any], result: Mapping[str, Any], *, audit_values: bool
) -> tuple[KeyChange, ...]:
    changes = []
    for key in sorted(current.keys() | result.keys()):
        old, new = current.get(key), result.get(key)
        if key in current and key in result and _same(old, new):
            continue
        changes.append(
            KeyChange(
                key=key,
                old_bytes=_size(old) if key in current else None,
                new_bytes=_size(new) if key in result else None,
                old=deepcopy(old) if audit_values else None,
                new=deepcopy(new) if audit_values else None,
            )
        )
    return tuple(changes)


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def _same(a: Any, b: Any) -> bool:
    # JSON equality: Python's == would call true and 1 the same value.
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
