"""The Management API scope policy: the table, §8.3 ownership and field rules."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from keystead.core import policy
from keystead.core.policy import (
    CURRENT_USER_SCOPE_TARGETS,
    OVERRIDES,
    Decision,
    Target,
    accepted_scopes,
    authorize,
    operations,
    target_of,
)
from keystead.core.policy_fields import (
    check_link_fields,
    check_update_fields,
    shows_idp_tokens,
    visible_client_fields,
)
from keystead.errors import Forbidden

ME = "auth0|123"
OTHER = "auth0|456"
M2M = "abc@clients"

SEVEN = (
    "read:current_user",
    "update:current_user_metadata",
    "create:current_user_metadata",
    "delete:current_user_metadata",
    "update:current_user_identities",
    "create:current_user_device_credentials",
    "delete:current_user_device_credentials",
)

# Contract §11: each current-user scope opens exactly these operations.
OPENS: dict[str, set[tuple[str, str]]] = {
    "read:current_user": {("GET", "/users/{id}"), ("GET", "/users/{id}/enrollments")},
    "update:current_user_metadata": {("PATCH", "/users/{id}")},
    "create:current_user_metadata": {("PATCH", "/users/{id}")},
    "delete:current_user_metadata": {("DELETE", "/users/{id}/multifactor/{provider}")},
    "update:current_user_identities": {
        ("POST", "/users/{id}/identities"),
        ("DELETE", "/users/{id}/identities/{provider}/{user_id}"),
    },
    "create:current_user_device_credentials": {("POST", "/device-credentials")},
    "delete:current_user_device_credentials": {("DELETE", "/device-credentials/{id}")},
}


def _raw_table() -> dict[str, dict[str, object]]:
    text = resources.files("keystead").joinpath("data/management_operations.json").read_text()
    ops: dict[str, dict[str, object]] = json.loads(text)["operations"]
    return ops


def user(*scopes: str, target: str | None = ME, method: str = "GET", path: str = "/users/{id}"):
    return authorize(
        method, path, token_scopes=frozenset(scopes), subject=ME, target_user_id=target
    )


# --- the table --------------------------------------------------------------------------------


def test_table_holds_every_openapi_operation():
    assert len(operations()) == len(_raw_table()) == 452


def test_every_operation_has_a_scope():
    for (method, path), op in operations().items():
        assert op.scopes, f"{method} {path}"
        assert all(":" in s for s in op.scopes), f"{method} {path}: {op.scopes}"
        assert len(set(op.scopes)) == len(op.scopes)


def test_overrides_only_add_scopes():
    raw = _raw_table()
    for (method, path), scopes in OVERRIDES.items():
        assert set(raw[f"{method} {path}"]["scopes"]) < set(scopes)  # type: ignore[arg-type]


def test_every_current_user_scope_has_a_target_and_each_operation_one_kind():
    seen = {s for op in operations().values() for s in op.scopes if ":current_user" in s}
    assert seen == set(CURRENT_USER_SCOPE_TARGETS)
    assert set(SEVEN) < seen
    for method, path in operations():
        kinds = {CURRENT_USER_SCOPE_TARGETS[s] for s in accepted_scopes(method, path) if s in seen}
        assert len(kinds) <= 1, f"{method} {path}"


@pytest.mark.parametrize(
    ("method", "path", "scopes"),
    [
        ("GET", "/users", ("read:users", "read:user_idp_tokens")),
        ("GET", "/users/{id}", ("read:users", "read:current_user", "read:user_idp_tokens")),
        (
            "PATCH",
            "/users/{id}",
            (
                "update:users",
                "update:users_app_metadata",
                "update:current_user_metadata",
                "create:current_user_metadata",
            ),
        ),
        ("DELETE", "/users/{id}", ("delete:users", "delete:current_user")),
        (
            "DELETE",
            "/users/{id}/multifactor/{provider}",
            ("update:users", "delete:current_user_metadata"),
        ),
        ("POST", "/device-credentials", ("create:current_user_device_credentials",)),
        (
            "DELETE",
            "/device-credentials/{id}",
            (
                "delete:device_credentials",
                "update:current_user",
                "delete:current_user_device_credentials",
            ),
        ),
        ("GET", "/users-by-email", ("read:users",)),
        ("POST", "/roles", ("create:roles",)),
        (
            "GET",
            "/clients",
            ("read:clients", "read:client_keys", "read:client_credentials", "read:client_summary"),
        ),
    ],
)
def test_accepted_scopes(method, path, scopes):
    assert accepted_scopes(method, path) == scopes


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/users/{id}"),
        ("GET", "/api/v2/users/{id}"),
        ("GET", "/users/{user_id}"),
        ("GET", "/users/{id:path}"),
        ("GET", "/users/{id}/"),
    ],
)
def test_lookup_ignores_prefix_case_and_parameter_names(method, path):
    assert accepted_scopes(method, path) == accepted_scopes("GET", "/users/{id}")
    assert policy.operation(method, path).operation_id == "get_users_by_id"


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/nope"), ("PUT", "/users/{id}"), ("GET", "/users/{id}/{x}"), ("TRACE", "/users")],
)
def test_unknown_operation_is_key_error(method, path):
    with pytest.raises(KeyError):
        accepted_scopes(method, path)
    with pytest.raises(KeyError):
        authorize(
            method, path, token_scopes=frozenset({"read:users"}), subject=ME, target_user_id=None
        )


@pytest.mark.parametrize(
    ("method", "path", "target"),
    [
        ("GET", "/users/{id}", Target.PATH_ID),
        ("DELETE", "/users/{id}", Target.PATH_ID),
        ("DELETE", "/device-credentials/{id}", Target.CREDENTIAL_OWNER),
        ("POST", "/device-credentials", Target.CREDENTIAL_OWNER),
        ("GET", "/users", None),
        ("GET", "/device-credentials", None),
    ],
)
def test_target_of(method, path, target):
    assert target_of(method, path) is target


# --- §8.3 items 1-3: the seven current-user scopes against every operation ---------------------


@pytest.mark.parametrize("scope", SEVEN)
def test_current_user_scope_opens_exactly_its_endpoints(scope):
    for (method, path), op in operations().items():
        if (method, path) in OPENS[scope]:
            target = ME if target_of(method, path) is Target.PATH_ID else None
            d = user(scope, method=method, path=path, target=target)
            assert d.current_user and d.matched == {scope}
        else:
            with pytest.raises(Forbidden) as exc:
                user(scope, method=method, path=path)
            assert exc.value.error_code == "insufficient_scope"
            assert exc.value.message == "Insufficient scope, expected any of: " + ",".join(
                op.scopes
            )


@pytest.mark.parametrize(
    ("scope", "method", "path"),
    [(s, m, p) for s, ops in OPENS.items() for m, p in sorted(ops) if p.startswith("/users/")],
)
def test_current_user_scope_on_another_user_is_unowned(scope, method, path):
    with pytest.raises(Forbidden) as exc:
        user(scope, method=method, path=path, target=OTHER)
    assert exc.value.body() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "User to be acted on does not match subject in bearer token.",
        "errorCode": "unowned_resource",
    }


def test_user_token_listing_users_is_insufficient_scope():
    with pytest.raises(Forbidden) as exc:
        user(*SEVEN, path="/users", target=None)
    assert exc.value.body() == {
        "statusCode": 403,
        "error": "Forbidden",
        "message": "Insufficient scope, expected any of: read:users,read:user_idp_tokens",
        "errorCode": "insufficient_scope",
    }


@pytest.mark.parametrize(
    ("method", "path", "message"),
    [
        ("GET", "/users-by-email", "Insufficient scope, expected any of: read:users"),
        (
            "GET",
            "/device-credentials",
            "Insufficient scope, expected any of: read:device_credentials",
        ),
        (
            "POST",
            "/users/{id}/roles",
            "Insufficient scope, expected any of: update:users,create:role_members",
        ),
        (
            "GET",
            "/clients",
            "Insufficient scope, expected any of: "
            "read:clients,read:client_keys,read:client_credentials,read:client_summary",
        ),
    ],
)
def test_user_token_on_admin_endpoints(method, path, message):
    with pytest.raises(Forbidden) as exc:
        user(*SEVEN, method=method, path=path)
    assert exc.value.message == message


@pytest.mark.parametrize("raw", ["auth0%7C123", "auth0%7c123", "auth0|123"])
def test_percent_encoded_own_id_is_the_subject(raw):
    d = user("read:current_user", target=raw)
    assert d.current_user and d.owner_checked
    assert d.target_user_id == ME


@pytest.mark.parametrize("raw", ["auth0%257C123", "auth0%7C1234", "auth0%FF123", "AUTH0|123", ""])
def test_lookalike_ids_are_unowned(raw):
    with pytest.raises(Forbidden) as exc:
        user("read:current_user", target=raw)
    assert exc.value.error_code == "unowned_resource"


def test_user_route_without_a_target_fails_closed():
    with pytest.raises(Forbidden) as exc:
        user("read:current_user", target=None)
    assert exc.value.error_code == "unowned_resource"


@pytest.mark.parametrize(
    ("scopes", "method", "path"),
    [
        ({"read:users"}, "GET", "/users/{id}"),
        ({"read:users"}, "GET", "/users"),
        ({"update:users"}, "PATCH", "/users/{id}"),
        ({"delete:users"}, "DELETE", "/users/{id}"),
        ({"delete:device_credentials"}, "DELETE", "/device-credentials/{id}"),
        ({"read:users", "read:current_user"}, "GET", "/users/{id}"),
    ],
)
def test_m2m_tokens_act_on_anyone(scopes, method, path):
    d = authorize(method, path, token_scopes=frozenset(scopes), subject=M2M, target_user_id=OTHER)
    assert not d.current_user and d.owner_checked
    assert d.matched == scopes & set(accepted_scopes(method, path))
    d.check_owner(OTHER)  # no-op outside current-user decisions


def test_m2m_target_is_kept_as_given():
    # The ASGI server already decoded the path once; a literal '%' in an id must survive.
    scopes = frozenset({"read:users"})
    d = authorize("GET", "/users/{id}", token_scopes=scopes, subject=M2M, target_user_id="a%41")
    assert d.target_user_id == "a%41"


def test_m2m_token_with_only_a_current_user_scope_is_still_owner_limited():
    with pytest.raises(Forbidden) as exc:
        authorize(
            "GET",
            "/users/{id}",
            token_scopes=frozenset({"read:current_user"}),
            subject=M2M,
            target_user_id=OTHER,
        )
    assert exc.value.error_code == "unowned_resource"


def test_m2m_read_only_token_cannot_delete_or_create_clients():  # security-cases MG-07
    scopes = frozenset({"read:users"})
    authorize("GET", "/users/{id}", token_scopes=scopes, subject=M2M, target_user_id=OTHER)
    with pytest.raises(
        Forbidden, match=r"^Insufficient scope, expected any of: delete:users,delete:current_user$"
    ):
        authorize("DELETE", "/users/{id}", token_scopes=scopes, subject=M2M, target_user_id=OTHER)
    with pytest.raises(Forbidden, match=r"^Insufficient scope, expected any of: create:clients$"):
        authorize("POST", "/clients", token_scopes=scopes, subject=M2M, target_user_id=None)


def test_extra_token_scopes_do_not_count():
    with pytest.raises(Forbidden):
        user("read:current_user", "openid", "profile", "read:users ", method="GET", path="/users")


# --- device credentials: the owner is known only after a lookup --------------------------------


@pytest.mark.parametrize(
    ("scope", "method", "path"),
    [
        ("delete:current_user_device_credentials", "DELETE", "/device-credentials/{id}"),
        ("create:current_user_device_credentials", "POST", "/device-credentials"),
    ],
)
def test_credential_owner_is_checked_by_the_handler(scope, method, path):
    d = user(scope, method=method, path=path, target=None)
    assert d.current_user and d.target is Target.CREDENTIAL_OWNER and not d.owner_checked
    d.check_owner(ME)
    d.check_owner("auth0%7C123")
    for other in (OTHER, None, ""):
        with pytest.raises(Forbidden) as exc:
            d.check_owner(other)
        assert exc.value.error_code == "unowned_resource"


def test_credential_owner_given_up_front():
    path = "/device-credentials/{id}"
    scope = "delete:current_user_device_credentials"
    assert user(scope, method="DELETE", path=path, target=ME).owner_checked
    with pytest.raises(Forbidden, match="does not match subject"):
        user(scope, method="DELETE", path=path, target=OTHER)


def test_device_credential_delete_names_the_documented_scopes():  # §10.1
    with pytest.raises(Forbidden) as exc:
        user("read:current_user", method="DELETE", path="/device-credentials/{id}")
    assert exc.value.message == (
        "Insufficient scope, expected any of: "
        "delete:device_credentials,update:current_user,delete:current_user_device_credentials"
    )


# --- §8.3 item 4: fields ---------------------------------------------------------------------


def patch(*scopes: str, target: str = ME, subject: str = ME) -> Decision:
    return authorize(
        "PATCH",
        "/users/{id}",
        token_scopes=frozenset(scopes),
        subject=subject,
        target_user_id=target,
    )


MG04 = [
    "password",
    "email",
    "email_verified",
    "phone_verified",
    "blocked",
    "connection",
    "user_id",
    "identities",
    "username",
]


@pytest.mark.parametrize(
    ("scopes", "keys", "refused"),
    [
        (["update:current_user_metadata"], ["user_metadata"], None),
        (["create:current_user_metadata"], ["user_metadata"], None),
        (["update:current_user_metadata"], [], None),
        (["update:current_user_metadata"], ["user_metadata", "app_metadata"], "app_metadata"),
        (
            ["update:current_user_metadata"],
            ["email", "password", "user_metadata"],
            "email, password",
        ),
        (["create:current_user_metadata"], ["name"], "name"),
        (["update:current_user_metadata"], MG04, ", ".join(sorted(MG04))),
        (["update:users_app_metadata"], ["app_metadata"], None),
        (["update:users_app_metadata"], ["user_metadata"], "user_metadata"),
        (["update:users_app_metadata"], ["blocked", "app_metadata"], "blocked"),
        (
            ["update:users_app_metadata", "update:current_user_metadata"],
            ["app_metadata", "user_metadata"],
            None,
        ),
        (["update:users"], ["email", "password", "app_metadata", "user_metadata"], None),
        (["update:users", "update:current_user_metadata"], ["email"], None),
    ],
)
def test_check_update_fields(scopes, keys, refused):
    d = patch(*scopes)
    if refused is None:
        check_update_fields(keys, d)
        return
    with pytest.raises(Forbidden) as exc:
        check_update_fields(keys, d)
    assert exc.value.status == 403
    assert exc.value.message == f"You cannot update the following fields: {refused}"


def test_current_user_scopes_lapse_on_another_user():
    # app_metadata writer may PATCH anyone, but its user_metadata scope counts only on itself.
    d = patch("update:users_app_metadata", "update:current_user_metadata", target=OTHER)
    assert not d.current_user
    assert d.effective_scopes == {"update:users_app_metadata"}
    check_update_fields(["app_metadata"], d)
    with pytest.raises(Forbidden, match=r"fields: user_metadata$"):
        check_update_fields(["app_metadata", "user_metadata"], d)


def test_current_user_scopes_lapse_without_a_target():
    d = authorize(
        "PATCH",
        "/users/{id}",
        token_scopes=frozenset({"update:users_app_metadata", "update:current_user_metadata"}),
        subject=ME,
        target_user_id=None,
    )
    assert d.effective_scopes == {"update:users_app_metadata"}


def test_check_update_fields_needs_a_patch_user_decision():
    with pytest.raises(ValueError):
        check_update_fields(["user_metadata"], user("read:current_user"))


@pytest.mark.parametrize(
    ("scopes", "keys", "refused"),
    [
        (["update:current_user_identities"], ["link_with"], None),
        (["update:current_user_identities"], ["provider", "user_id"], "provider, user_id"),
        (["update:current_user_identities"], ["link_with", "connection_id"], "connection_id"),
        (["update:users"], ["provider", "user_id", "connection_id"], None),
        (["update:users"], ["link_with"], None),
    ],
)
def test_check_link_fields(scopes, keys, refused):  # security-cases MG-10
    d = user(*scopes, method="POST", path="/users/{id}/identities")
    if refused is None:
        check_link_fields(keys, d)
        return
    with pytest.raises(Forbidden, match=f"^You cannot update the following fields: {refused}$"):
        check_link_fields(keys, d)


def test_idp_tokens_only_with_their_scope():
    assert shows_idp_tokens({"read:user_idp_tokens"})
    assert not shows_idp_tokens({"read:users", "read:current_user"})


CLIENT = {
    "client_id": "c1",
    "name": "App",
    "description": "d",
    "app_type": "spa",
    "callbacks": ["x"],
    "client_secret": "s",
    "encryption_key": {},
    "signing_keys": [],
    "client_authentication_methods": {},
}
SECRETS = {"client_secret", "encryption_key", "signing_keys", "client_authentication_methods"}


@pytest.mark.parametrize(
    ("scopes", "keys"),
    [
        ({"read:client_keys"}, set(CLIENT)),
        ({"read:client_credentials"}, set(CLIENT)),
        ({"read:clients", "read:client_keys"}, set(CLIENT)),
        ({"read:clients"}, set(CLIENT) - SECRETS),
        ({"read:clients", "read:client_summary"}, set(CLIENT) - SECRETS),
        ({"read:client_summary"}, {"client_id", "name", "description", "app_type"}),
        ({"update:clients"}, set(CLIENT) - SECRETS),
    ],
)
def test_visible_client_fields(scopes, keys):
    assert set(visible_client_fields(scopes).apply(CLIENT)) == keys
