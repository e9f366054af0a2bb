"""Scope parsing and the grant rules (contract §3.4, §3.8; security cases MG-06, RT-05, RT-11)."""

from __future__ import annotations

import pytest

from keystead.core.apis import ClientGrant, Permission, ResourceServer
from keystead.core.policy import is_current_user_scope
from keystead.core.scopes import (
    CLAIMS_BY_SCOPE,
    CURRENT_USER_SCOPES,
    OIDC_SCOPES,
    GrantedScopes,
    claims_for,
    format_scope,
    grant_client_scopes,
    grant_user_scopes,
    narrow_scopes,
    parse_scope,
)
from keystead.errors import AccessDenied, InvalidScope


def api(
    identifier: str,
    *scopes: str,
    rbac: bool = False,
    offline: bool = False,
    system: bool = False,
) -> ResourceServer:
    return ResourceServer(
        id=f"rs_{identifier}",
        identifier=identifier,
        name=identifier,
        scopes=tuple(Permission(s) for s in scopes),
        enforce_policies=rbac,
        allow_offline_access=offline,
        is_system=system,
    )


MGMT = api(
    "https://login.example.com/api/v2/",
    "read:users",
    "update:users",
    "read:clients",
    "delete:current_user",
    *CURRENT_USER_SCOPES,
    system=True,
)
ORDERS = api("https://orders.example", "read:orders", "write:orders", offline=True)
ORDERS_NO_OFFLINE = api("https://orders.example", "read:orders", "write:orders")
RBAC = api("https://rbac.example", "read:a", "write:a", "admin:a", rbac=True, offline=True)


# --- parsing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "parsed"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ([], None),
        ("openid", ("openid",)),
        ("openid profile email", ("openid", "profile", "email")),
        ("openid  profile ", ("openid", "profile")),
        ("email openid email", ("email", "openid")),  # duplicates dropped, order kept
        (["openid", "read:orders"], ("openid", "read:orders")),
        (["openid profile", "email"], ("openid", "profile", "email")),
        (("a",), ("a",)),
    ],
)
def test_parse_scope(raw: object, parsed: tuple[str, ...] | None) -> None:
    assert parse_scope(raw) == parsed


def test_every_printable_ascii_but_quote_and_backslash_is_a_scope_character() -> None:
    token = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"\\')
    assert parse_scope(token) == (token,)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (42, "Scope must be an array or a string"),
        ({"openid": True}, "Scope must be an array or a string"),
        (["openid", 3], "Scope must be an array or a string"),
        (True, "Scope must be an array or a string"),
        ("openid\tprofile", "not allowed"),
        ("openid\nprofile", "not allowed"),
        ('openid "quoted"', "not allowed"),
        ("openid back\\slash", "not allowed"),
        ("openid prófile", "not allowed"),
        ("openid \x00", "not allowed"),
    ],
)
def test_parse_scope_refuses(raw: object, message: str) -> None:
    with pytest.raises(InvalidScope) as caught:
        parse_scope(raw)
    assert caught.value.error == "invalid_scope"
    assert message in caught.value.description


def test_format_scope_round_trips() -> None:
    assert format_scope(("openid", "profile", "read:orders")) == "openid profile read:orders"
    assert parse_scope(format_scope(("b", "a"))) == ("b", "a")
    assert format_scope(()) == ""


# --- tables ----------------------------------------------------------------------------------


def test_current_user_scopes_are_the_seven_of_contract_3_8() -> None:
    assert set(CURRENT_USER_SCOPES) == {
        "read:current_user",
        "update:current_user_metadata",
        "create:current_user_metadata",
        "delete:current_user_metadata",
        "update:current_user_identities",
        "create:current_user_device_credentials",
        "delete:current_user_device_credentials",
    }
    assert len(CURRENT_USER_SCOPES) == 7
    assert "delete:current_user" not in CURRENT_USER_SCOPES


def test_every_grantable_current_user_scope_is_owner_limited() -> None:
    # A user token must only ever reach its own user (contract §8.3 rule 2, MG-02).
    assert all(is_current_user_scope(scope) for scope in CURRENT_USER_SCOPES)


@pytest.mark.parametrize(
    ("scope", "claims"),
    [
        ("openid", {"sub"}),
        ("email", {"email", "email_verified"}),
        ("phone", {"phone_number", "phone_number_verified"}),
        ("address", {"address"}),
    ],
)
def test_claims_by_scope(scope: str, claims: set[str]) -> None:
    assert set(CLAIMS_BY_SCOPE[scope]) == claims


def test_profile_claims_cover_contract_4_3_and_5() -> None:
    contract = {"name", "nickname", "picture", "updated_at", "given_name", "family_name"}
    contract |= {"middle_name", "preferred_username", "profile", "website", "gender"}
    contract |= {"birthdate", "zoneinfo", "locale"}
    assert set(CLAIMS_BY_SCOPE["profile"]) == contract


def test_every_claim_scope_is_an_oidc_scope() -> None:
    assert set(CLAIMS_BY_SCOPE) <= OIDC_SCOPES


@pytest.mark.parametrize(
    ("scopes", "claims"),
    [
        (("openid",), ("sub",)),
        (("openid", "email"), ("sub", "email", "email_verified")),
        (("email", "read:orders"), ("email", "email_verified")),
        ((), ()),
    ],
)
def test_claims_for(scopes: tuple[str, ...], claims: tuple[str, ...]) -> None:
    assert claims_for(scopes) == claims


# --- user grants (contract §3.8) -------------------------------------------------------------

SPA_MGMT_REQUEST = (
    "openid profile email read:users update:users read:current_user update:current_user_metadata"
)


@pytest.mark.parametrize(
    ("case", "requested", "audience", "kwargs", "granted"),
    [
        # MG-06: the SPA asks the Management API for admin scopes; only current_user ones stay.
        (
            "mgmt-spa",
            SPA_MGMT_REQUEST,
            MGMT,
            {"is_management_api": True},
            "openid profile email read:current_user update:current_user_metadata",
        ),
        (
            "mgmt-delete-current-user-not-grantable",
            "openid delete:current_user read:current_user",
            MGMT,
            {"is_management_api": True},
            "openid read:current_user",
        ),
        (
            "mgmt-switched-off",
            SPA_MGMT_REQUEST,
            MGMT,
            {"is_management_api": True, "current_user_scopes_enabled": False},
            "openid profile email",
        ),
        (
            "mgmt-implied-trust-all-seven",
            None,
            MGMT,
            {"is_management_api": True, "implied_trust": True},
            " ".join(CURRENT_USER_SCOPES),
        ),
        (
            "mgmt-rbac-does-not-matter-for-current-user",
            "read:current_user",
            MGMT,
            {"is_management_api": True, "user_permissions": frozenset()},
            "read:current_user",
        ),
        # No audience: OIDC scopes only, offline_access allowed when the client may.
        ("no-audience", "openid profile email", None, {}, "openid profile email"),
        ("no-audience-offline", "openid offline_access", None, {}, "openid offline_access"),
        (
            "no-audience-offline-client-cannot",
            "openid offline_access",
            None,
            {"offline_allowed": False},
            "openid",
        ),
        ("no-audience-api-scope-dropped", "openid read:orders", None, {}, "openid"),
        ("no-audience-nothing-requested", None, None, {"implied_trust": True}, ""),
        # RBAC off: requested ∩ API scopes; undefined dropped silently.
        (
            "rbac-off",
            "openid read:orders delete:everything",
            ORDERS,
            {},
            "openid read:orders",
        ),
        (
            "rbac-off-offline",
            "offline_access read:orders",
            ORDERS,
            {},
            "offline_access read:orders",
        ),
        # RT-11: offline_access needs both the API and the client to allow it.
        (
            "api-forbids-offline",
            "openid offline_access read:orders",
            ORDERS_NO_OFFLINE,
            {},
            "openid read:orders",
        ),
        (
            "client-forbids-offline",
            "openid offline_access read:orders",
            ORDERS,
            {"offline_allowed": False},
            "openid read:orders",
        ),
        # RBAC on: requested ∩ the user's permissions.
        (
            "rbac-on",
            "openid read:a write:a admin:a",
            RBAC,
            {"user_permissions": frozenset({"read:a", "admin:b"})},
            "openid read:a",
        ),
        ("rbac-on-no-permissions", "read:a", RBAC, {}, ""),
        (
            "rbac-on-permission-not-defined-on-api",
            "read:zzz",
            RBAC,
            {"user_permissions": frozenset({"read:zzz"})},
            "",
        ),
        # Implied trust: only when nothing was requested.
        ("implied-trust", None, ORDERS, {"implied_trust": True}, "read:orders write:orders"),
        (
            "implied-trust-rbac",
            None,
            RBAC,
            {"implied_trust": True, "user_permissions": frozenset({"write:a"})},
            "write:a",
        ),
        ("no-implied-trust", None, ORDERS, {}, ""),
        (
            "implied-trust-but-requested",
            "read:orders",
            ORDERS,
            {"implied_trust": True},
            "read:orders",
        ),
        # Order kept, duplicates dropped.
        (
            "order",
            "write:orders openid read:orders openid",
            ORDERS,
            {},
            "write:orders openid read:orders",
        ),
    ],
)
def test_grant_user_scopes(
    case: str,
    requested: str | None,
    audience: ResourceServer | None,
    kwargs: dict[str, object],
    granted: str,
) -> None:
    options: dict[str, object] = {
        "is_management_api": False,
        "user_permissions": frozenset(),
        "offline_allowed": True,
        "implied_trust": False,
    }
    options.update(kwargs)
    result = grant_user_scopes(parse_scope(requested), audience, **options)  # type: ignore[arg-type]
    assert result.value == granted, case
    assert set(result.dropped) == set(parse_scope(requested) or ()) - set(result.scopes), case


def test_granted_scopes_helpers() -> None:
    granted = GrantedScopes(("openid", "offline_access", "read:orders"), ("write:orders",))
    assert granted.openid and granted.offline_access
    assert "read:orders" in granted and "write:orders" not in granted
    assert list(granted) == ["openid", "offline_access", "read:orders"]
    assert len(granted) == 3
    assert granted.api_scopes == ("read:orders",)
    assert not GrantedScopes().openid and not GrantedScopes().offline_access


# --- refresh narrowing (RT-05) ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("original", "requested", "result"),
    [
        (
            ("openid", "offline_access", "read:orders"),
            None,
            ("openid", "offline_access", "read:orders"),
        ),
        (("openid", "offline_access", "read:orders"), ("openid",), ("openid",)),
        (("openid", "read:orders"), ("read:orders", "openid"), ("read:orders", "openid")),
    ],
)
def test_narrow_scopes(
    original: tuple[str, ...], requested: tuple[str, ...] | None, result: tuple[str, ...]
) -> None:
    assert narrow_scopes(original, requested) == result


def test_narrow_scopes_refuses_a_superset() -> None:
    with pytest.raises(InvalidScope) as caught:
        narrow_scopes(
            ("openid", "offline_access", "read:orders"),
            ("openid", "offline_access", "read:orders", "write:orders"),
        )
    assert caught.value.error == "invalid_scope"
    assert "write:orders" in caught.value.detail
    assert "write:orders" not in caught.value.description


# --- client credentials (contract §3.4) ------------------------------------------------------


def grant(*scopes: str, allow_all: bool = False, audience: str = MGMT.identifier) -> ClientGrant:
    return ClientGrant(
        id="cgr_1", client_id="m2m", audience=audience, scope=scopes, allow_all_scopes=allow_all
    )


@pytest.mark.parametrize(
    ("requested", "client_grant", "audience", "granted"),
    [
        (None, grant("read:users", "update:users"), MGMT, "read:users update:users"),
        ("read:users", grant("read:users", "update:users"), MGMT, "read:users"),
        (
            "update:users read:users",
            grant("read:users", "update:users"),
            MGMT,
            "update:users read:users",
        ),
        (None, grant(), MGMT, ""),  # the claim is then absent (contract §4.1)
        (None, grant(allow_all=True), ORDERS, "read:orders write:orders"),
        ("write:orders", grant(allow_all=True), ORDERS, "write:orders"),
        # A grant scope the API no longer defines is not granted.
        (
            None,
            grant("read:orders", "gone:scope", audience=ORDERS.identifier),
            ORDERS,
            "read:orders",
        ),
    ],
)
def test_grant_client_scopes(
    requested: str | None, client_grant: ClientGrant, audience: ResourceServer, granted: str
) -> None:
    assert grant_client_scopes(parse_scope(requested), client_grant, audience).value == granted


@pytest.mark.parametrize(
    ("requested", "client_grant", "audience", "message"),
    [
        ("read:users delete:users", grant("read:users"), MGMT, "delete:users"),
        ("a b", grant("read:users"), MGMT, "a b"),
        ("openid read:users", grant("read:users"), MGMT, "openid"),
        ("gone:scope", grant("gone:scope", audience=ORDERS.identifier), ORDERS, "gone:scope"),
        ("admin:orders", grant(allow_all=True), ORDERS, "admin:orders"),
    ],
)
def test_grant_client_scopes_refuses_scopes_outside_the_grant(
    requested: str, client_grant: ClientGrant, audience: ResourceServer, message: str
) -> None:
    with pytest.raises(AccessDenied) as caught:
        grant_client_scopes(parse_scope(requested), client_grant, audience)
    assert caught.value.status == 403
    assert caught.value.body() == {
        "error": "access_denied",
        "error_description": f"Client has not been granted scopes: {message}",
    }
