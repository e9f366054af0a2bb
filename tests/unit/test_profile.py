"""Safe self-service profile: policy parsing, §9.5 merge, the one write check, audit, switches."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from keystead.core.profile import (
    DEFAULT_MAX_BYTES,
    MAX_LISTED_PROBLEMS,
    MetadataRejected,
    ProfilePolicy,
    check_metadata_write,
    merge_metadata,
)
from keystead.errors import BadRequest, ConfigError, Forbidden

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "theme": {"enum": ["light", "dark"]},
        "age": {"type": "integer", "minimum": 0},
    },
}
# The example from docs/self-service-profile.md.
TENANT_BLOCK: dict[str, Any] = {
    "current_user_tokens": True,
    "user_metadata": {
        "schema": SCHEMA,
        "writable": ["theme", "age"],
        "max_bytes": 16384,
        "max_depth": 5,
    },
    "audit_values": False,
}


def policy(**metadata: Any) -> ProfilePolicy:
    return ProfilePolicy.from_config({"user_metadata": metadata})


def rejected(p: ProfilePolicy, current: Any, patch: Any, actor: Any = "user") -> str:
    """The 400 message of a write that must be refused; asserts that nothing changed."""
    before = copy.deepcopy((current, patch))
    with pytest.raises(MetadataRejected) as caught:
        check_metadata_write(p, current, patch, actor=actor)
    assert (current, patch) == before
    err = caught.value
    assert isinstance(err, BadRequest)
    assert err.body() == {
        "statusCode": 400,
        "error": "Bad Request",
        "message": err.message,
        "errorCode": "invalid_body",
    }
    return err.message


def accepted(p: ProfilePolicy, current: Any, patch: Any, actor: Any = "user") -> dict[str, Any]:
    return check_metadata_write(p, current, patch, actor=actor).result


# --- §9.5 merge ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "patch", "merged"),
    [
        ({"a": 1}, {"b": 2}, {"a": 1, "b": 2}),  # keys not mentioned are kept
        ({"a": 1, "b": 2}, {"a": 3}, {"a": 3, "b": 2}),  # a mentioned key is replaced
        ({"a": 1, "lang": "fr"}, {"lang": None}, {"a": 1}),  # null deletes the key
        ({"a": 1}, {"gone": None}, {"a": 1}),  # deleting an absent key is a no-op
        (
            {"addr": {"home": "x", "work": "y"}},
            {"addr": {"home": "z"}},
            {"addr": {"home": "z"}},  # nested objects are replaced wholesale, no deep merge
        ),
        ({"a": {"b": 1}}, {"a": {"b": None}}, {"a": {"b": None}}),  # null only deletes at the top
        ({"a": 1, "b": 2}, {}, {}),  # {} clears everything
        ({}, {}, {}),
        ({"a": 1}, {"a": None, "b": [1, None]}, {"b": [1, None]}),
        (
            {"theme": "light", "lang": "en", "x": 1},
            {"theme": "dark", "lang": None},
            {"theme": "dark", "x": 1},
        ),  # MG-05
    ],
)
def test_merge_metadata_follows_contract_9_5(current, patch, merged):
    before = copy.deepcopy((current, patch))
    assert merge_metadata(current, patch) == merged
    assert (current, patch) == before  # neither argument is modified


# --- defaults are Auth0's behaviour ------------------------------------------------------------


def test_no_policy_is_auth0_behaviour():
    p = ProfilePolicy.from_config(None)
    assert p == ProfilePolicy() == ProfilePolicy.from_config({})
    assert p.schema is None and p.self_writable_keys is None and p.validator is None
    assert p.max_bytes == DEFAULT_MAX_BYTES == 16384
    assert p.current_user_tokens and p.current_user_tokens_enabled("any-client")
    assert p.policy_for_client("any-client") is p


@pytest.mark.parametrize("actor", ["user", "admin"])
@pytest.mark.parametrize(
    "patch",
    [
        {"plan": "pro"},
        {"anything": {"nested": [1, 2.5, True, None, {"deep": "ok"}]}},
        {"count": 3, "flag": False, "none_inside": [None]},
        {"ünïcödé": "ok", "with space": "ok", "dash-key": 1},
    ],
)
def test_by_default_any_key_and_any_json_value_is_writable(actor, patch):
    assert accepted(ProfilePolicy(), {"kept": 1}, patch, actor) == {"kept": 1, **patch}


@pytest.mark.parametrize("actor", ["user", "admin", "signup"])
@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"pref.color": "pink"}, 'user_metadata["pref.color"]: names must not contain "." or "$"'),
        ({"$where": "x"}, 'user_metadata["$where"]: names must not contain "." or "$"'),
    ],
)
def test_auth0_key_name_rule_applies_to_everyone(actor, patch, message):
    assert rejected(ProfilePolicy(), {}, patch, actor) == message


def test_key_name_rule_applies_at_every_level():
    patch = {"prefs": {"ok": {"a.b": 1}, "list": [{"$x": 2}]}}
    assert rejected(ProfilePolicy(), {}, patch, "admin") == (
        'user_metadata.prefs.ok["a.b"]: names must not contain "." or "$"; '
        'user_metadata.prefs.list[0]["$x"]: names must not contain "." or "$"'
    )


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ("dark", "user_metadata: must be an object, not a string"),
        (["a"], "user_metadata: must be an object, not a list"),
        (None, "user_metadata: must be an object, not null"),
        ({"n": float("nan")}, "user_metadata.n: must be a finite number"),
        ({"n": [float("inf")]}, "user_metadata.n[0]: must be a finite number"),
        ({"n": {1, 2}}, "user_metadata.n: is not a JSON value"),
    ],
)
def test_type_confusion_is_a_field_level_400(patch, message):  # IN-09
    assert rejected(ProfilePolicy(), {}, patch) == message


# --- writable keys ---------------------------------------------------------------------------

WRITABLE = policy(writable=["theme", "age"])


@pytest.mark.parametrize(
    ("current", "patch", "result"),
    [
        ({"plan": "free"}, {"theme": "dark"}, {"plan": "free", "theme": "dark"}),
        ({"plan": "free", "theme": "x"}, {"theme": None}, {"plan": "free"}),
        # A read-only key sent back unchanged is not a write (apps round-trip what they read).
        ({"plan": "free"}, {"plan": "free", "age": 4}, {"plan": "free", "age": 4}),
        ({"plan": "free"}, {"other": None}, {"plan": "free"}),  # deleting nothing
        ({"theme": "dark"}, {}, {}),  # clearing only writable keys
    ],
)
def test_user_may_write_listed_keys(current, patch, result):
    assert accepted(WRITABLE, current, patch) == result


@pytest.mark.parametrize(
    ("current", "patch", "message"),
    [
        ({}, {"plan": "pro"}, "user_metadata.plan: not writable by the user"),
        ({"plan": "free"}, {"plan": "pro"}, "user_metadata.plan: not writable by the user"),
        ({"plan": "free"}, {"plan": None}, "user_metadata.plan: not writable by the user"),
        # Same value but another JSON type is a change.
        ({"plan": 1}, {"plan": True}, "user_metadata.plan: not writable by the user"),
        (
            {"plan": "free", "role": "x", "theme": "dark"},
            {},  # {} would delete the read-only keys too
            "user_metadata.plan: not writable by the user; "
            "user_metadata.role: not writable by the user",
        ),
        (
            {},
            {"theme": "dark", "plan": "pro", "role": "admin"},
            "user_metadata.plan: not writable by the user; "
            "user_metadata.role: not writable by the user",
        ),
    ],
)
def test_user_may_not_write_other_keys(current, patch, message):
    assert rejected(WRITABLE, current, patch) == message


def test_empty_writable_list_makes_everything_read_only():
    p = policy(writable=[])
    assert rejected(p, {}, {"theme": "dark"}) == "user_metadata.theme: not writable by the user"
    assert accepted(p, {"theme": "dark"}, {"theme": "dark"}) == {"theme": "dark"}


def test_admin_bypasses_the_key_list_but_not_the_schema():
    p = ProfilePolicy.from_config(TENANT_BLOCK)
    assert accepted(p, {}, {"plan": "pro", "age": 3}, "admin") == {"plan": "pro", "age": 3}
    assert accepted(p, {"plan": "pro"}, {}, "admin") == {}
    assert rejected(p, {}, {"plan": "pro", "age": -1}, "admin") == (
        "user_metadata.age: must be an integer ≥ 0"
    )
    big = {"plan": "x" * 20_000}
    assert rejected(p, {}, big, "admin") == "user_metadata: 20011 bytes, the limit is 16384"


# --- schema ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schema", "value", "message"),
    [
        ({"type": "integer", "minimum": 0}, -1, "must be an integer ≥ 0"),
        ({"type": "integer", "minimum": 0}, "7", "must be an integer ≥ 0"),
        ({"type": "integer", "minimum": 0}, True, "must be an integer ≥ 0"),
        ({"type": "integer"}, 1.5, "must be an integer"),
        ({"type": "number", "minimum": 0, "maximum": 150}, 151, "must be a number ≥ 0 and ≤ 150"),
        ({"exclusiveMinimum": 0}, 0, "must be a number > 0"),
        ({"type": "number", "exclusiveMaximum": 1}, 1, "must be a number < 1"),
        ({"type": "string"}, 5, "must be a string"),
        ({"type": ["string", "null"]}, 5, "must be a string or null"),
        ({"type": ["integer", "null"], "minimum": 1}, 0, "must be an integer ≥ 1 or null"),
        ({"type": "boolean"}, "yes", "must be true or false"),
        ({"type": "object"}, [], "must be an object"),
        ({"type": "array"}, {}, "must be an array"),
        ({"enum": ["light", "dark"]}, "blue", "must be one of: light, dark"),
        ({"enum": [1, None, "a"]}, 2, "must be one of: 1, null, a"),
        ({"const": "fixed"}, "other", "must be fixed"),
        ({"pattern": "^[a-z]+$"}, "ABC", "must match the pattern ^[a-z]+$"),
        ({"maxLength": 3}, "abcd", "must be at most 3 characters long"),
        ({"minLength": 1}, "", "must be at least 1 character long"),
        ({"maxItems": 2}, [1, 2, 3], "must have at most 2 items"),
        ({"minItems": 1}, [], "must have at least 1 item"),
        ({"uniqueItems": True}, [1, 1], "must not repeat items"),
        ({"maxProperties": 1}, {"a": 1, "b": 2}, "must have at most 1 key"),
        ({"multipleOf": 5}, 7, "must be a multiple of 5"),
        ({"format": "email"}, "nobody", "must be a valid email address"),
        ({"format": "date"}, "2025-02-30", "must be a valid date (YYYY-MM-DD)"),
        ({"format": "date-time"}, "2025-01-01 noon", "must be a valid date and time (RFC 3339)"),
        (
            {"format": "date-time"},
            "2025-02-30T10:00:00Z",
            "must be a valid date and time (RFC 3339)",
        ),
        ({"format": "uri"}, "not a uri", "must be a valid URI"),
        ({"format": "uuid"}, "123", "must be a valid UUID"),
        (
            {"anyOf": [{"type": "string"}, {"type": "integer"}]},
            [],
            "does not match any of the allowed forms",
        ),
        (
            {"oneOf": [{"type": "number"}, {"type": "integer"}]},
            1,
            "must match exactly one of the allowed forms",
        ),
        ({"not": {"type": "string"}}, "s", "is not allowed"),
        (False, "anything", "is not allowed"),
    ],
)
def test_schema_failures_have_short_messages(schema, value, message):
    p = policy(schema={"type": "object", "properties": {"field": schema}})
    assert rejected(p, {}, {"field": value}) == f"user_metadata.field: {message}"


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("a@b.example", {"format": "email"}),
        ("2025-01-31", {"format": "date"}),
        ("2025-01-31T10:20:30.5+01:00", {"format": "date-time"}),
        ("2025-01-31T10:20:30Z", {"format": "date-time"}),
        ("https://example.com/me", {"format": "uri"}),
        ("urn:isbn:0451450523", {"format": "uri"}),
        ("f47ac10b-58cc-4372-a567-0e02b2c3d479", {"format": "uuid"}),
        ("anything", {"format": "hostname-not-checked"}),  # other formats are annotations
    ],
)
def test_formats_accept_valid_values(value, ok):
    p = policy(schema={"properties": {"field": ok}})
    assert accepted(p, {}, {"field": value}) == {"field": value}


def test_schema_messages_name_the_json_path():
    schema = {
        "type": "object",
        "required": ["theme", "lang"],
        "additionalProperties": False,
        "properties": {
            "theme": {"enum": ["light", "dark"]},
            "lang": {"type": "string"},
            "prefs": {
                "type": "object",
                "properties": {"tags": {"type": "array", "items": {"type": "string"}}},
                "dependentRequired": {"unit": ["scale"]},
            },
        },
    }
    patch = {"prefs": {"tags": ["a", 2, "c", None], "unit": "cm"}, "plan": "pro", "x-y": 1}
    assert rejected(policy(schema=schema), {}, patch, "admin") == (
        "user_metadata.lang: is required; "
        "user_metadata.plan: is not allowed; "
        "user_metadata.prefs.scale: is required when unit is set; "
        "user_metadata.prefs.tags[1]: must be a string; "
        "user_metadata.prefs.tags[3]: must be a string; "
        "user_metadata.theme: is required; "
        "user_metadata.x-y: is not allowed"
    )


def test_false_schemas_and_key_name_rules_name_the_key():
    schema = {
        "properties": {
            "plan": False,
            "tags": {"prefixItems": [True], "items": False},
            "prefs": {"propertyNames": {"pattern": "^[a-z]+$"}},
            "propertyNames": {"type": "string"},  # a property called that, not the keyword
        },
    }
    patch = {"plan": "pro", "tags": ["a", "b"], "prefs": {"ok": 1, "Bad": 2}, "propertyNames": 1}
    assert rejected(policy(schema=schema), {}, patch, "admin") == (
        "user_metadata.plan: is not allowed; "
        "user_metadata.prefs.Bad: is not an allowed key name; "
        "user_metadata.propertyNames: must be a string; "
        "user_metadata.tags[1]: is not allowed"
    )


def test_schema_runs_on_the_merged_result():
    p = policy(schema={"type": "object", "required": ["theme"]})
    # The patch alone lacks `theme`, the merged document has it.
    assert accepted(p, {"theme": "dark"}, {"age": 3}) == {"theme": "dark", "age": 3}
    assert rejected(p, {"theme": "dark"}, {"theme": None}) == "user_metadata.theme: is required"
    assert rejected(p, {"theme": "dark"}, {}) == "user_metadata.theme: is required"


def test_pattern_properties_are_not_additional():
    schema = {"patternProperties": {"^x_": {"type": "string"}}, "additionalProperties": False}
    p = policy(schema=schema)
    assert accepted(p, {}, {"x_a": "1"}) == {"x_a": "1"}
    assert rejected(p, {}, {"x_a": "1", "y": 1}) == "user_metadata.y: is not allowed"


def test_local_refs_work():
    schema = {
        "$defs": {"colour": {"enum": ["red", "blue"]}},
        "properties": {"fg": {"$ref": "#/$defs/colour"}, "bg": {"$ref": "#/$defs/colour"}},
    }
    p = policy(schema=schema)
    assert accepted(p, {}, {"fg": "red"}) == {"fg": "red"}
    assert rejected(p, {}, {"bg": "pink"}) == "user_metadata.bg: must be one of: red, blue"


def test_every_problem_is_listed_in_one_message():
    p = ProfilePolicy.from_config(TENANT_BLOCK)
    message = rejected(p, {"plan": "free"}, {"plan": "pro", "age": -1, "theme": "blue"})
    assert message == (
        "user_metadata.plan: not writable by the user; "
        "user_metadata.age: must be an integer ≥ 0; "
        "user_metadata.theme: must be one of: light, dark"
    )


def test_a_flood_of_problems_is_capped():
    patch = {f"k{i:03}": i for i in range(MAX_LISTED_PROBLEMS + 7)}
    with pytest.raises(MetadataRejected) as caught:
        check_metadata_write(policy(writable=[]), {}, patch, actor="user")
    assert len(caught.value.problems) == MAX_LISTED_PROBLEMS + 7
    parts = caught.value.message.split("; ")
    assert len(parts) == MAX_LISTED_PROBLEMS + 1
    assert parts[-1] == "and 7 more problems"


# --- size and depth --------------------------------------------------------------------------


def test_size_cap_counts_the_merged_document_and_names_the_cap():
    p = policy(max_bytes=30)
    # {"a":"xxxxxxxxxx"} is 18 bytes; with "b" it grows to 35.
    assert accepted(p, {}, {"a": "x" * 10}) == {"a": "x" * 10}
    assert rejected(p, {"a": "x" * 10}, {"b": "y" * 10}) == (
        "user_metadata: 35 bytes, the limit is 30"
    )
    assert accepted(p, {"a": "x" * 10, "b": "y" * 20}, {"b": None}) == {"a": "x" * 10}


def test_size_counts_utf8_bytes_not_characters():
    p = policy(max_bytes=10)
    assert rejected(p, {}, {"a": "éé"}) == "user_metadata: 12 bytes, the limit is 10"
    assert accepted(p, {}, {"a": "ee"}) == {"a": "ee"}


def test_default_size_cap_is_16_kib():
    assert rejected(ProfilePolicy(), {}, {"bio": "x" * 16_384}) == (
        "user_metadata: 16394 bytes, the limit is 16384"
    )
    assert accepted(ProfilePolicy(), {}, {"bio": "x" * 16_374})


@pytest.mark.parametrize(
    ("value", "depth"),
    [
        ("flat", 1),
        ({}, 2),
        ({"b": 1}, 2),
        ([1, [2]], 3),
        ({"b": {"c": {"d": 1}}}, 4),
    ],
)
def test_depth_counts_levels_of_nesting(value, depth):
    assert accepted(policy(max_depth=depth), {}, {"a": value}) == {"a": value}
    if depth > 1:
        assert rejected(policy(max_depth=depth - 1), {}, {"a": value}) == (
            f"user_metadata.a: nested more than {depth - 1} levels deep"
        )


def test_hostile_nesting_is_refused_without_recursion():
    deep: list[Any] = []
    tip = deep
    for _ in range(50_000):
        tip.append([])
        tip = tip[0]
    with pytest.raises(MetadataRejected) as caught:  # no deepcopy: it would recurse itself
        check_metadata_write(ProfilePolicy(), {}, {"a": deep, "b": {"c": 1}}, actor="user")
    assert caught.value.message == "user_metadata.a: nested more than 100 levels deep"


def test_default_depth_works_with_a_recursive_schema():
    schema = {
        "$defs": {"node": {"type": "object", "properties": {"x": {"$ref": "#/$defs/node"}}}},
        "properties": {"a": {"$ref": "#/$defs/node"}},
    }
    doc: dict[str, Any] = {}
    tip = doc
    for _ in range(98):
        tip["x"] = {}
        tip = tip["x"]
    assert accepted(policy(schema=schema), {}, {"a": doc}, "admin") == {"a": doc}
    tip["x"] = 1
    assert rejected(policy(schema=schema), {}, {"a": doc}, "admin").endswith(": must be an object")


# --- signup ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {f"k{i}": "v" for i in range(11)},
            "user_metadata: 11 properties, at most 10 at signup",
        ),
        ({"n" * 101: "v"}, f"user_metadata.{'n' * 64}…: names must be at most 100 characters"),
        ({"bio": "x" * 501}, "user_metadata.bio: must be at most 500 characters at signup"),
        ({"age": 3}, "user_metadata.age: must be a string at signup"),
        ({"nested": {"a": "b"}}, "user_metadata.nested: must be a string at signup"),
        ({"gone": None}, "user_metadata.gone: must be a string at signup"),
    ],
)
def test_signup_limits_are_auth0s(patch, message):  # contract §7.2
    assert rejected(ProfilePolicy(), {}, patch, "signup") == message


def test_signup_within_limits_is_accepted():
    patch = {f"k{i}": "v" * 500 for i in range(9)} | {"n" * 100: "v"}
    assert accepted(policy(max_bytes=10_000), {}, patch, "signup") == patch


def test_signup_limits_are_for_signup_only():
    patch = {f"k{i}": i for i in range(11)}
    assert accepted(ProfilePolicy(), {}, patch, "user") == patch
    assert accepted(ProfilePolicy(), {}, patch, "admin") == patch


def test_signup_also_obeys_the_policy():
    p = ProfilePolicy.from_config(TENANT_BLOCK)
    assert accepted(p, {}, {"theme": "dark"}, "signup") == {"theme": "dark"}
    assert rejected(p, {}, {"theme": "blue", "plan": "pro"}, "signup") == (
        "user_metadata.plan: not writable by the user; "
        "user_metadata.theme: must be one of: light, dark"
    )


# --- audit -----------------------------------------------------------------------------------


def test_audit_names_keys_and_sizes_but_not_values_by_default():
    p = ProfilePolicy()
    current = {"theme": "light", "lang": "en", "same": [1]}
    change = check_metadata_write(
        p, current, {"theme": "dark!", "lang": None, "same": [1], "new": {"a": 1}}, actor="user"
    )
    assert change.result == {"theme": "dark!", "same": [1], "new": {"a": 1}}
    assert change.changed and change.changed_keys == ("lang", "new", "theme")
    assert change.audit_details() == {
        "field": "user_metadata",
        "actor": "user",
        "changed_keys": ["lang", "new", "theme"],
        "old_bytes": 40,
        "new_bytes": 42,
        "keys": {
            "lang": {"old_bytes": 4, "new_bytes": None},
            "new": {"old_bytes": None, "new_bytes": 7},
            "theme": {"old_bytes": 7, "new_bytes": 7},
        },
    }
    assert "light" not in repr(change.changes) and "dark!" not in repr(change.changes)


def test_audit_values_when_the_tenant_turns_them_on():
    p = ProfilePolicy.from_config({"audit_values": True})
    change = check_metadata_write(p, {"a": 1, "b": 2}, {"a": None, "b": 3, "c": 4}, actor="admin")
    assert change.audit_details()["keys"] == {
        "a": {"old_bytes": 1, "new_bytes": None, "old": 1},
        "b": {"old_bytes": 1, "new_bytes": 1, "old": 2, "new": 3},
        "c": {"old_bytes": None, "new_bytes": 1, "new": 4},
    }
    assert change.audit_details()["actor"] == "admin"


def test_a_write_that_changes_nothing_has_an_empty_audit():
    change = check_metadata_write(ProfilePolicy(), {"a": 1}, {"a": 1, "b": None}, actor="user")
    assert not change.changed
    assert change.audit_details()["changed_keys"] == []
    assert change.old_bytes == change.new_bytes == 7


def test_audit_values_are_copies():
    p = ProfilePolicy.from_config({"audit_values": True})
    patch = {"prefs": {"a": 1}}
    change = check_metadata_write(p, {}, patch, actor="user")
    patch["prefs"]["a"] = 2
    assert change.audit_details()["keys"]["prefs"]["new"] == {"a": 1}


# --- per-client overrides and switches --------------------------------------------------------

SPA, OTHER, LOCKED = "SpaClient", "OtherClient", "LockedClient"


def tenant_policy() -> ProfilePolicy:
    return ProfilePolicy.from_config(
        TENANT_BLOCK,
        clients={
            SPA: {"user_metadata": {"writable": ["theme"], "max_bytes": 100}},
            LOCKED: {"current_user_tokens": False},
            OTHER: None,
        },
    )


def test_client_override_replaces_only_what_it_names():
    tenant = tenant_policy()
    spa = tenant.policy_for_client(SPA)
    assert spa.self_writable_keys == {"theme"} and spa.max_bytes == 100
    assert spa.schema == SCHEMA and spa.max_depth == 5 and spa.current_user_tokens
    assert spa.validator is not None
    assert rejected(spa, {}, {"age": 3}) == "user_metadata.age: not writable by the user"
    assert (
        rejected(spa, {}, {"theme": "blue"}) == "user_metadata.theme: must be one of: light, dark"
    )
    assert accepted(tenant, {}, {"age": 3}) == {"age": 3}


@pytest.mark.parametrize("client_id", [OTHER, "UnknownClient", None])
def test_clients_without_override_get_the_tenant_policy(client_id):
    tenant = tenant_policy()
    assert tenant.policy_for_client(client_id) == tenant


def test_client_can_drop_the_schema_and_key_list():
    p = ProfilePolicy.from_config(
        TENANT_BLOCK, clients={SPA: {"user_metadata": {"schema": None, "writable": None}}}
    ).policy_for_client(SPA)
    assert p.schema is None and p.validator is None and p.self_writable_keys is None
    assert accepted(p, {}, {"plan": 1, "theme": "blue"}) == {"plan": 1, "theme": "blue"}


@pytest.mark.parametrize(
    ("tenant_on", "client_block", "expected"),
    [
        (True, None, True),
        (False, None, False),
        (True, {"current_user_tokens": False}, False),
        (False, {"current_user_tokens": True}, True),
        (False, {"user_metadata": {"max_depth": 3}}, False),  # inherited
    ],
)
def test_current_user_token_switch(tenant_on, client_block, expected):
    p = ProfilePolicy.from_config({"current_user_tokens": tenant_on}, clients={SPA: client_block})
    assert p.current_user_tokens_enabled(SPA) is expected
    assert p.current_user_tokens_enabled("elsewhere") is tenant_on


def test_switched_off_tokens_cannot_write_even_if_issued_before():
    locked = tenant_policy().policy_for_client(LOCKED)
    with pytest.raises(Forbidden) as caught:
        check_metadata_write(locked, {}, {"theme": "dark"}, actor="user")
    assert caught.value.status == 403
    # Admin writes and signups do not use current-user tokens.
    assert accepted(locked, {}, {"theme": "dark"}, "admin") == {"theme": "dark"}
    assert accepted(locked, {}, {"theme": "dark"}, "signup") == {"theme": "dark"}


def test_from_tenant_reads_settings_and_the_client_list():
    tenant = {
        "settings": {"self_service": TENANT_BLOCK},
        "clients": [
            {"client_id": SPA, "name": "SPA", "self_service": {"audit_values": True}},
            {"client_id": OTHER, "name": "Other"},
        ],
    }
    p = ProfilePolicy.from_tenant(tenant)
    assert p.max_depth == 5 and not p.audit_values
    assert p.policy_for_client(SPA).audit_values and p.policy_for_client(SPA).max_depth == 5
    assert p.policy_for_client(OTHER) == p
    assert ProfilePolicy.from_tenant({}) == ProfilePolicy()


def test_unknown_actor_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown actor"):
        check_metadata_write(ProfilePolicy(), {}, {}, actor="robot")  # type: ignore[arg-type]


# --- configuration errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ("yes", "settings.self_service must be a mapping, got a string"),
        (
            {"writable": ["a"]},
            "settings.self_service: unknown key 'writable' "
            "(expected audit_values, current_user_tokens, user_metadata)",
        ),
        (
            {"user_metadata": {"writeable": ["a"]}},
            "settings.self_service.user_metadata: unknown key 'writeable' "
            "(expected max_bytes, max_depth, schema, writable)",
        ),
        (
            {"current_user_tokens": "no"},
            "settings.self_service.current_user_tokens must be true or false, got 'no'",
        ),
        (
            {"audit_values": 1},
            "settings.self_service.audit_values must be true or false, got 1",
        ),
        (
            {"user_metadata": {"max_bytes": 0}},
            "settings.self_service.user_metadata.max_bytes must be a whole number "
            "from 1 to 16777216, got 0",
        ),
        (
            {"user_metadata": {"max_bytes": "16k"}},
            "settings.self_service.user_metadata.max_bytes must be a whole number "
            "from 1 to 16777216, got '16k'",
        ),
        (
            {"user_metadata": {"max_depth": 101}},
            "settings.self_service.user_metadata.max_depth must be a whole number "
            "from 1 to 100, got 101",
        ),
        (
            {"user_metadata": {"max_depth": True}},
            "settings.self_service.user_metadata.max_depth must be a whole number "
            "from 1 to 100, got True",
        ),
        (
            {"user_metadata": {"writable": "theme"}},
            "settings.self_service.user_metadata.writable must be a list of user_metadata keys, "
            "got a string",
        ),
        (
            {"user_metadata": {"writable": ["prefs.theme"]}},
            "settings.self_service.user_metadata.writable: 'prefs.theme' is not a top-level "
            'key name (a non-empty string, no "." or "$")',
        ),
        (
            {"user_metadata": {"schema": "object"}},
            "settings.self_service.user_metadata.schema must be a mapping (a JSON Schema), "
            "got a string",
        ),
        (
            {"user_metadata": {"schema": {"type": "integr"}}},
            "settings.self_service.user_metadata.schema is not a valid JSON Schema: "
            "'integr' is not valid under any of the given schemas (at type)",
        ),
        (
            {"user_metadata": {"schema": {"properties": {"age": {"minimum": "0"}}}}},
            "settings.self_service.user_metadata.schema is not a valid JSON Schema: "
            "'0' is not of type 'number' (at properties/age/minimum)",
        ),
        (
            {"user_metadata": {"schema": {"type": "string"}}},
            "settings.self_service.user_metadata.schema must describe an object: "
            "user_metadata always is one",
        ),
        (
            {"user_metadata": {"schema": {"$schema": "http://json-schema.org/draft-07/schema#"}}},
            "settings.self_service.user_metadata.schema: only JSON Schema Draft 2020-12 is "
            "supported, got 'http://json-schema.org/draft-07/schema#'",
        ),
        (
            {"user_metadata": {"schema": {"properties": {"a": {"$ref": "https://x.test/s"}}}}},
            "settings.self_service.user_metadata.schema: $ref 'https://x.test/s' must point "
            "inside the schema (#/…)",
        ),
        (
            {"user_metadata": {"schema": {"properties": {"a": {"$ref": "#/$defs/missing"}}}}},
            "settings.self_service.user_metadata.schema: $ref '#/$defs/missing' does not resolve",
        ),
    ],
)
def test_config_errors_are_clear(block, message):
    with pytest.raises(ConfigError) as caught:
        ProfilePolicy.from_config(block)
    assert str(caught.value) == message


def test_client_config_errors_name_the_client():
    with pytest.raises(ConfigError) as caught:
        ProfilePolicy.from_config({}, clients={SPA: {"user_metadata": {"max_depth": 0}}})
    assert str(caught.value) == (
        f"clients.{SPA}.self_service.user_metadata.max_depth must be a whole number "
        "from 1 to 100, got 0"
    )


def test_from_tenant_needs_client_ids_for_overrides():
    with pytest.raises(ConfigError) as caught:
        ProfilePolicy.from_tenant({"clients": [{"name": "x", "self_service": {}}]})
    assert str(caught.value) == "clients[0].self_service needs the client's client_id"


def test_schema_is_copied_and_accepts_the_2020_12_dialect():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}
    p = policy(schema=schema)
    schema["type"] = "string"  # later changes to the caller's mapping do not leak in
    assert p.schema == {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object"}


def test_direct_construction_checks_the_schema_and_limits_too():
    with pytest.raises(ConfigError, match="schema is not a valid JSON Schema"):
        ProfilePolicy(schema={"type": 5})
    for bad in ({"max_depth": 0}, {"max_depth": 101}, {"max_bytes": 0}):
        with pytest.raises(ConfigError, match="out of range"):
            ProfilePolicy(**bad)


def test_the_documented_example_parses():
    doc = (Path(__file__).parents[2] / "docs" / "self-service-profile.md").read_text()
    settings, clients = (yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", doc, re.S))
    p = ProfilePolicy.from_tenant(settings | clients)
    assert p.schema == SCHEMA and p.self_writable_keys == {"theme", "age"}
    assert (p.max_bytes, p.max_depth, p.audit_values) == (16384, 5, False)
    portal = p.policy_for_client("SpaClient0000000000000000000001")
    assert portal.self_writable_keys == {"theme"} and portal.schema == SCHEMA
    assert not p.current_user_tokens_enabled("KioskClient000000000000000000001")
    assert p.current_user_tokens_enabled("SpaClient0000000000000000000001")
