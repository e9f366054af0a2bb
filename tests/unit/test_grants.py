"""Client grant policy (contract §2.2, §3.1-§3.5; security cases AZ-08, CD-08, CL-03, CL-06)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from keystead.core.apis import ClientGrant, Permission, ResourceServer
from keystead.core.clients import DEFAULT_GRANT_TYPES, Client, RefreshTokenPolicy
from keystead.core.grants import (
    AUTHORIZATION_CODE,
    CLIENT_CREDENTIALS,
    IMPLICIT,
    PASSWORD,
    PASSWORD_REALM,
    REFRESH_TOKEN,
    check_client_credentials_target,
    check_grant_allowed,
    check_response_type_allowed,
    client_may_get_refresh_tokens,
    parse_response_type,
    requires_pkce,
    service_not_found,
)
from keystead.errors import (
    AccessDenied,
    InvalidRequest,
    UnauthorizedClient,
    UnsupportedResponseType,
)

ROTATING = RefreshTokenPolicy(rotation_type="rotating", expiration_type="expiring")

SPA = Client(
    client_id="spa",
    name="SPA",
    app_type="spa",
    token_endpoint_auth_method="none",
    grant_types=DEFAULT_GRANT_TYPES["spa"],
    refresh_token=ROTATING,
)
NATIVE = Client(
    client_id="native",
    name="Native",
    app_type="native",
    token_endpoint_auth_method="none",
    grant_types=DEFAULT_GRANT_TYPES["native"],
)
WEB = Client(client_id="web", name="Web", grant_types=DEFAULT_GRANT_TYPES["regular_web"])
M2M = Client(
    client_id="m2m",
    name="M2M",
    app_type="non_interactive",
    grant_types=DEFAULT_GRANT_TYPES["non_interactive"],
)
# A misconfigured public client that lists client_credentials anyway.
SPA_WITH_CC = replace(SPA, grant_types=(*SPA.grant_types, CLIENT_CREDENTIALS, PASSWORD))
WEB_WITH_PASSWORD = replace(WEB, grant_types=(*WEB.grant_types, PASSWORD, PASSWORD_REALM))
NOTHING = replace(WEB, grant_types=())


@pytest.mark.parametrize(
    ("client", "grant_type"),
    [
        (SPA, AUTHORIZATION_CODE),
        (SPA, REFRESH_TOKEN),
        (NATIVE, AUTHORIZATION_CODE),
        (WEB, AUTHORIZATION_CODE),
        (WEB, CLIENT_CREDENTIALS),
        (M2M, CLIENT_CREDENTIALS),
        (WEB_WITH_PASSWORD, PASSWORD),
        (WEB_WITH_PASSWORD, PASSWORD_REALM),
        (SPA_WITH_CC, PASSWORD),  # public password grant: only because explicitly enabled
    ],
)
def test_grant_allowed(client: Client, grant_type: str) -> None:
    check_grant_allowed(client, grant_type)


@pytest.mark.parametrize(
    ("client", "grant_type", "error_uri"),
    [
        # CD-08: an SPA sends client_credentials (and even when it lists it: never public).
        (SPA, CLIENT_CREDENTIALS, True),
        (SPA_WITH_CC, CLIENT_CREDENTIALS, True),
        (NATIVE, CLIENT_CREDENTIALS, True),
        # CD-08: an M2M client sends authorization_code or password-realm.
        (M2M, AUTHORIZATION_CODE, False),
        (M2M, REFRESH_TOKEN, False),
        # CL-06 / contract §3.5: password grants are never on by default.
        (WEB, PASSWORD, False),
        (WEB, PASSWORD_REALM, False),
        (SPA, PASSWORD, False),
        (NOTHING, AUTHORIZATION_CODE, False),
        (NOTHING, CLIENT_CREDENTIALS, True),
    ],
)
def test_grant_not_allowed(client: Client, grant_type: str, error_uri: bool) -> None:
    with pytest.raises(UnauthorizedClient) as caught:
        check_grant_allowed(client, grant_type)
    expected = {
        "error": "unauthorized_client",
        "error_description": f"Grant type '{grant_type}' not allowed for the client.",
    }
    if error_uri:
        expected["error_uri"] = "https://auth0.com/docs/clients/client-grant-types"
    assert caught.value.body() == expected
    assert caught.value.status == 403


def test_grant_type_is_sanitised_in_the_description() -> None:
    with pytest.raises(UnauthorizedClient) as caught:
        check_grant_allowed(M2M, "x\r\nSet-Cookie: a=b" + "y" * 1000)
    description = caught.value.description
    assert "\r" not in description and "\n" not in description
    assert len(description) < 400


@pytest.mark.parametrize(
    ("client", "required"), [(SPA, True), (NATIVE, True), (WEB, False), (M2M, False)]
)
def test_requires_pkce(client: Client, required: bool) -> None:
    assert requires_pkce(client) is required


@pytest.mark.parametrize(
    ("client", "may"),
    [
        (SPA, True),  # rotating
        (replace(SPA, refresh_token=RefreshTokenPolicy()), False),  # RT-11: SPA, no rotation
        (NATIVE, True),  # native apps may keep non-rotating tokens
        (WEB, True),
        (M2M, False),  # no refresh_token grant
        (replace(WEB, grant_types=(AUTHORIZATION_CODE,)), False),
    ],
)
def test_client_may_get_refresh_tokens(client: Client, may: bool) -> None:
    assert client_may_get_refresh_tokens(client) is may


# --- /authorize response types ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "parsed"),
    [
        ("code", {"code"}),
        ("token", {"token"}),
        ("id_token", {"id_token"}),
        ("id_token token", {"id_token", "token"}),
        ("token id_token", {"id_token", "token"}),
        ("code id_token", {"code", "id_token"}),
        ("id_token code", {"code", "id_token"}),
        ("code token", {"code", "token"}),
        ("code id_token token", {"code", "id_token", "token"}),
    ],
)
def test_parse_response_type(value: str, parsed: set[str]) -> None:
    assert parse_response_type(value) == parsed


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (None, InvalidRequest),
        ("", InvalidRequest),
        ("none", UnsupportedResponseType),
        ("code foo", UnsupportedResponseType),
        ("Code", UnsupportedResponseType),
        ("device_code", UnsupportedResponseType),
        ("<script>", UnsupportedResponseType),
    ],
)
def test_parse_response_type_refuses(value: str | None, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        parse_response_type(value)
    assert "<script>" not in str(caught.value)


@pytest.mark.parametrize(
    ("client", "value", "allowed"),
    [
        (SPA, "code", True),
        (SPA, "token", True),  # Auth0's spa default includes implicit
        (M2M, "code", False),
        (replace(SPA, grant_types=(AUTHORIZATION_CODE, REFRESH_TOKEN)), "code", True),
        # AZ-08: implicit and hybrid need the implicit grant.
        (replace(SPA, grant_types=(AUTHORIZATION_CODE,)), "token", False),
        (replace(SPA, grant_types=(AUTHORIZATION_CODE,)), "id_token token", False),
        (replace(SPA, grant_types=(AUTHORIZATION_CODE,)), "code id_token", False),
        (replace(SPA, grant_types=(IMPLICIT,)), "code id_token", False),
        (replace(SPA, grant_types=(IMPLICIT,)), "id_token", True),
        (WEB, "code id_token token", True),
    ],
)
def test_check_response_type_allowed(client: Client, value: str, allowed: bool) -> None:
    response_type = parse_response_type(value)
    if allowed:
        check_response_type_allowed(client, response_type)
    else:
        with pytest.raises(UnauthorizedClient):
            check_response_type_allowed(client, response_type)


# --- client credentials target (contract §3.4 steps 1-2) -------------------------------------

MGMT_ID = "https://login.example.com/api/v2/"
MGMT = ResourceServer(
    id="rs_mgmt",
    identifier=MGMT_ID,
    name="Auth0 Management API",
    scopes=(Permission("read:users"),),
    is_system=True,
)
GRANT = ClientGrant(id="cgr_1", client_id="m2m", audience=MGMT_ID, scope=("read:users",))


def test_client_credentials_target() -> None:
    assert check_client_credentials_target(MGMT_ID, MGMT, GRANT) == (MGMT, GRANT)


NOT_AUTHORIZED = (
    'Client is not authorized to access "https://login.example.com/api/v2/". You need to create '
    'a "client-grant" associated to this API. '
    "See: https://auth0.com/docs/api/v2#!/Client_Grants/post_client_grants"
)


@pytest.mark.parametrize(
    ("audience", "api", "grant", "description"),
    [
        (
            None,
            None,
            None,
            "No audience parameter was provided, and no default audience has been configured",
        ),
        (
            "",
            None,
            None,
            "No audience parameter was provided, and no default audience has been configured",
        ),
        (
            "https://unknown.example",
            None,
            None,
            "Service not enabled within domain: https://unknown.example",
        ),
        # CL-03: the API exists, but the client holds no grant for it.
        (MGMT_ID, MGMT, None, NOT_AUTHORIZED),
        (MGMT_ID, MGMT, replace(GRANT, subject_type="user"), NOT_AUTHORIZED),
        (MGMT_ID, MGMT, replace(GRANT, audience="https://other.example"), NOT_AUTHORIZED),
    ],
)
def test_client_credentials_target_refused(
    audience: str | None,
    api: ResourceServer | None,
    grant: ClientGrant | None,
    description: str,
) -> None:
    with pytest.raises(AccessDenied) as caught:
        check_client_credentials_target(audience, api, grant)
    assert caught.value.status == 403
    assert caught.value.body() == {"error": "access_denied", "error_description": description}


def test_service_not_found_is_printable_ascii() -> None:
    error = service_not_found("https://unknown-api.example/\r\n\tx")
    assert error.error == "access_denied"
    assert error.description.startswith("Service not found: https://unknown-api.example/")
    assert all(" " <= c <= "~" for c in error.description)
