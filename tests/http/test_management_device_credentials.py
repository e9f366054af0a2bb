"""Device credentials (contract §10.1): public keys created with a current-user token for its own
application, refresh tokens listed as (rotating_)refresh_token items, deletes that revoke.
Security case MG-12 (a current-user token touches only its own credentials). OAS-validated."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import replace
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select

from keystead.core.clients import RefreshTokenPolicy
from keystead.core.refresh_tokens import NewRefreshToken
from keystead.storage.models import DeviceCredentialRow, RefreshTokenRow
from keystead.storage.repositories.refresh_tokens import SqlRefreshTokens
from tests.http.helpers import (
    M2M,
    SPA,
    check_error,
    check_oas,
    m2m,
    make_client,
    make_spa,
    make_user,
    module_app,
    module_http,
    sapi_events,
    state_of,
    user_token,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

WEB = "WebClient00000000000000000000001"
URL = "/api/v2/device-credentials"
CREATE = "create:current_user_device_credentials"
DELETE_OWN = "delete:current_user_device_credentials"
ADMIN = "read:device_credentials delete:device_credentials"
KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffA="


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def tenant(app: Any) -> None:
    await make_spa(app)
    state = state_of(app)
    async with state.transaction() as session:
        spa = await state.repos(session).clients.get(SPA)
        await state.repos(session).clients.update(
            replace(spa, refresh_token=RefreshTokenPolicy(rotation_type="rotating"))
        )
    await make_client(app, client_id=WEB, name="Web", client_secret="s")
    await make_client(app, client_id=M2M, name="M2M", app_type="non_interactive")


async def a_user(app: Any) -> Any:
    return await make_user(app, email=f"u{uuid.uuid4().hex[:12]}@example.com")


def admin(app: Any, scope: str = ADMIN) -> dict[str, str]:
    return m2m(app, scope)


def device_id() -> str:
    return str(uuid.uuid4())


def key_body(**extra: Any) -> dict[str, Any]:
    return {
        "device_name": "Jane's iPhone",
        "type": "public_key",
        "value": KEY,
        "device_id": device_id(),
        **extra,
    }


async def create_key(app: Any, http: Any, user_id: str, **extra: Any) -> str:
    r = await http.post(URL, json=key_body(**extra), headers=user_token(app, user_id, CREATE))
    assert r.status_code == 201, r.text
    return str(check_oas(r, "POST", "/device-credentials")["id"])


async def issue_family(
    app: Any, user_id: str, client_id: str, *, rotations: int = 0, **fields: Any
) -> list[str]:
    """Refresh tokens as the token endpoint stores them; the public ids, oldest first."""
    state = state_of(app)
    family = secrets.token_hex(16)
    ids = []
    async with state.transaction() as session:
        store = SqlRefreshTokens(session, state.clock, state.sealer)
        parent: str | None = None
        previous = ""
        for _ in range(rotations + 1):
            token = secrets.token_urlsafe(32)
            created = await store.create(
                token,
                NewRefreshToken(
                    family_id=family, client_id=client_id, user_id=user_id,
                    scope=("openid", "offline_access"), audience=None,
                    auth_time=state.clock.now(), parent_id=parent,
                    device_name="Mozilla/5.0 (X11; Linux x86_64)", **fields,
                ),
            )  # fmt: skip
            await session.flush()
            if parent is not None:
                await store.rotate(previous, now=state.clock.now(), result=None)
            previous, parent = token, created.id
            ids.append(created.id)
    return ids


async def revoked(app: Any, token_ids: list[str]) -> list[bool]:
    state = state_of(app)
    async with state.transaction() as session:
        rows = await session.scalars(
            select(RefreshTokenRow).where(RefreshTokenRow.id.in_(token_ids))
        )
        by_id = {row.id: row.revoked_at is not None for row in rows}
    return [by_id[i] for i in token_ids]


# --- POST -------------------------------------------------------------------------------------


async def test_create_public_key_for_self(app: Any, http: Any) -> None:
    user = await a_user(app)
    body = key_body()
    r = await http.post(URL, json=body, headers=user_token(app, user.user_id, CREATE))
    created = check_oas(r, "POST", "/device-credentials")
    assert r.status_code == 201
    assert created["id"].startswith("dcr_") and set(created) == {"id"}
    r = await http.get(f"{URL}?user_id={user.user_id}&type=public_key", headers=admin(app))
    assert check_oas(r, "GET", "/device-credentials") == [
        {
            "id": created["id"],
            "device_name": "Jane's iPhone",
            "device_id": body["device_id"],
            "type": "public_key",
            "user_id": user.user_id,
            "client_id": SPA,
        }
    ]
    assert KEY not in r.text
    r = await http.post(URL, json=body, headers=user_token(app, user.user_id, CREATE))
    check_error(r, 409, "A public key already exists for the device.")
    r = await http.post(
        URL, json={**body, "client_id": SPA}, headers=user_token(app, user.user_id, CREATE)
    )
    assert r.status_code == 409  # naming its own client changes nothing
    events = [e for e in await sapi_events(app) if e.user_id == user.user_id]
    assert [e.description for e in events] == ["Create device credentials"]


async def test_mg12_create_for_another_user_or_client(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    headers = user_token(app, me.user_id, CREATE)
    r = await http.post(URL, json=key_body(user_id=other.user_id), headers=headers)
    check_error(r, 403, "Cannot create device credentials for that user.")
    r = await http.post(URL, json=key_body(client_id=WEB), headers=headers)
    check_error(r, 403, "Cannot create device credentials for that client.")
    r = await http.post(URL, json=key_body(), headers=user_token(app, me.user_id, CREATE, azp=None))
    check_error(r, 403, "Cannot create device credentials for that client.")
    # A token for a client that no longer exists.
    r = await http.post(
        URL, json=key_body(), headers=user_token(app, me.user_id, CREATE, azp="GoneClient")
    )
    check_error(r, 403, "Cannot create device credentials for that client.")
    # A client-credentials token given the scope has no user to own the key.
    r = await http.post(URL, json=key_body(client_id=M2M), headers=admin(app, CREATE))
    check_error(r, 403, "Cannot create device credentials for that user.")
    r = await http.post(URL, json=key_body(), headers=admin(app))
    check_error(r, 403, "Insufficient scope, expected any of: " + CREATE)
    r = await http.get(f"{URL}?user_id={other.user_id}", headers=admin(app))
    assert r.json() == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"type": "refresh_token"}, None),
        ({"value": "not base64!"},
         "Payload validation error: 'value must be base64 encoded' on property value."),
        ({"device_id": "xyz"},
         "Payload validation error: 'String does not match pattern ^[-A-Fa-f0-9]+$: xyz' "
         "on property device_id."),
        ({"device_id": "a" * 37},
         "Payload validation error: 'String is too long (37 chars), maximum 36' "
         "on property device_id."),
        ({"device_name": ""},
         "Payload validation error: 'String is too short (0 chars), minimum 1' "
         "on property device_name."),
        ({"value": None},
         "Payload validation error: 'Expected type string but found type null' on property value."),
    ],
)  # fmt: skip
async def test_create_rejects_bad_bodies(
    app: Any, http: Any, change: dict[str, Any], message: str | None
) -> None:
    user = await a_user(app)
    r = await http.post(URL, json=key_body(**change), headers=user_token(app, user.user_id, CREATE))
    assert r.status_code == 400, r.text
    if message:
        check_error(r, 400, message, "invalid_body")
    missing = key_body()
    del missing["device_id"]
    r = await http.post(URL, json=missing, headers=user_token(app, user.user_id, CREATE))
    check_error(r, 400, "Payload validation error: 'Missing required property: device_id'.")


# --- GET --------------------------------------------------------------------------------------


async def test_refresh_tokens_are_listed_per_family(app: Any, http: Any) -> None:
    user = await a_user(app)
    rotating = await issue_family(app, user.user_id, SPA, rotations=2)
    plain = await issue_family(app, user.user_id, WEB)
    gone = await issue_family(app, user.user_id, WEB)
    expired = await issue_family(app, user.user_id, WEB, idle_expires_at=1.0)
    state = state_of(app)
    async with state.transaction() as session:
        store = SqlRefreshTokens(session, state.clock, state.sealer)
        family = await session.scalar(
            select(RefreshTokenRow.family_id).where(RefreshTokenRow.id == gone[0])
        )
        await store.revoke_family(str(family), now=state.clock.now())
    key = await create_key(app, http, user.user_id)
    r = await http.get(f"{URL}?user_id={user.user_id}", headers=admin(app))
    items = check_oas(r, "GET", "/device-credentials")
    assert {i["id"]: i["type"] for i in items} == {
        rotating[-1]: "rotating_refresh_token",  # the family's newest token only
        plain[0]: "refresh_token",
        key: "public_key",
    }
    assert expired[0] not in r.text
    by_id = {i["id"]: i for i in items}
    assert by_id[plain[0]] == {
        "id": plain[0],
        "device_name": "Mozilla/5.0 (X11; Linux x86_64)",
        "type": "refresh_token",
        "user_id": user.user_id,
        "client_id": WEB,
    }
    for kind, expected in (
        ("rotating_refresh_token", [rotating[-1]]),
        ("refresh_token", [plain[0]]),
        ("public_key", [key]),
    ):
        r = await http.get(f"{URL}?user_id={user.user_id}&type={kind}", headers=admin(app))
        assert [i["id"] for i in check_oas(r, "GET", "/device-credentials")] == expected
    r = await http.get(f"{URL}?user_id={user.user_id}&client_id={SPA}", headers=admin(app))
    assert sorted(i["id"] for i in r.json()) == sorted([rotating[-1], key])


async def test_paging_totals_and_fields(app: Any, http: Any) -> None:
    user = await a_user(app)
    for _ in range(3):
        await issue_family(app, user.user_id, WEB)
    await create_key(app, http, user.user_id)
    r = await http.get(
        f"{URL}?user_id={user.user_id}&include_totals=true&per_page=2&page=1", headers=admin(app)
    )
    body = check_oas(r, "GET", "/device-credentials")
    # Paging without `type` means refresh_token (§10.1): the public key is not among them.
    assert (body["start"], body["limit"], body["total"]) == (2, 2, 3)
    assert [i["type"] for i in body["device_credentials"]] == ["refresh_token"]
    r = await http.get(
        f"{URL}?user_id={user.user_id}&type=public_key&fields=id,type", headers=admin(app)
    )
    assert [set(i) for i in check_oas(r, "GET", "/device-credentials")] == [{"id", "type"}]
    r = await http.get(
        f"{URL}?user_id={user.user_id}&fields=user_id,client_id&include_fields=false",
        headers=admin(app),
    )
    assert all("user_id" not in i and "client_id" not in i for i in r.json())


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("type=password",
         "Query validation error: 'No enum match for: password' on property type."),
        ("per_page=0",
         "Query validation error: 'Value 0 is less than minimum 1' on property per_page."),
        ("per_page=101",
         "Query validation error: 'Value 101 is greater than maximum 100' on property per_page."),
        ("page=abc",
         "Query validation error: 'Expected type integer but found type string' on property page."),
        ("include_totals=maybe",
         "Query validation error: 'Expected type boolean but found type string' "
         "on property include_totals."),
    ],
)  # fmt: skip
async def test_list_rejects_bad_queries(app: Any, http: Any, query: str, message: str) -> None:
    r = await http.get(f"{URL}?{query}", headers=admin(app))
    check_error(r, 400, message, "invalid_query_string")


async def test_list_needs_read_device_credentials(app: Any, http: Any) -> None:
    user = await a_user(app)
    r = await http.get(URL, headers=user_token(app, user.user_id, "read:current_user " + CREATE))
    check_error(r, 403, "Insufficient scope, expected any of: read:device_credentials")


# --- DELETE -----------------------------------------------------------------------------------


async def test_mg12_current_user_deletes_only_own(app: Any, http: Any) -> None:
    me, other = await a_user(app), await a_user(app)
    mine = await create_key(app, http, me.user_id)
    theirs = await create_key(app, http, other.user_id)
    their_token = await issue_family(app, other.user_id, SPA)
    headers = user_token(app, me.user_id, DELETE_OWN)
    for target in (theirs, their_token[0]):
        r = await http.delete(f"{URL}/{target}", headers=headers)
        check_error(r, 403, "User to be acted on does not match subject in bearer token.")
    assert await revoked(app, their_token) == [False]
    r = await http.delete(f"{URL}/{mine}", headers=headers)
    assert check_oas(r, "DELETE", "/device-credentials/{id}") is None
    assert r.status_code == 204
    r = await http.delete(f"{URL}/{mine}", headers=headers)
    check_error(r, 404, "The device credential does not exist.")
    state = state_of(app)
    async with state.transaction() as session:
        assert await session.get(DeviceCredentialRow, theirs) is not None
    r = await http.delete(
        f"{URL}/{theirs}", headers=user_token(app, me.user_id, "read:current_user")
    )
    check_error(
        r, 403,
        "Insufficient scope, expected any of: delete:device_credentials,update:current_user,"
        "delete:current_user_device_credentials",
    )  # fmt: skip


async def test_deleting_a_refresh_token_credential_revokes_its_family(app: Any, http: Any) -> None:
    user = await a_user(app)
    family = await issue_family(app, user.user_id, SPA, rotations=1)
    other = await issue_family(app, user.user_id, SPA)
    # An id listed before the last rotation still names the family.
    r = await http.delete(f"{URL}/{family[0]}", headers=user_token(app, user.user_id, DELETE_OWN))
    assert r.status_code == 204, r.text
    assert await revoked(app, family) == [True, True]
    assert await revoked(app, other) == [False]
    r = await http.delete(f"{URL}/{family[1]}", headers=admin(app))
    check_error(r, 404, "The device credential does not exist.")
    r = await http.delete(f"{URL}/{other[0]}", headers=admin(app))
    assert r.status_code == 204
    assert await revoked(app, other) == [True]
    r = await http.get(f"{URL}?user_id={user.user_id}", headers=admin(app))
    assert r.json() == []
    descriptions = [e.description for e in await sapi_events(app) if e.user_id == user.user_id]
    assert descriptions == ["Delete device credentials"] * 2


async def test_delete_unknown_ids(app: Any, http: Any) -> None:
    for target in ("dcr_0000000000000000", "x" * 500, "..%5C..", "%E2%80%AE"):
        r = await http.delete(f"{URL}/{target}", headers=admin(app))
        check_error(r, 404, "The device credential does not exist.")
    r = await http.delete(f"{URL}/%00", headers=admin(app))
    check_error(r, 400, "Path validation error: 'String must not contain NUL characters'.")


async def test_nul_characters_are_refused_not_stored(app: Any, http: Any) -> None:
    # PostgreSQL cannot hold U+0000 in text: each must be a clean 4xx on every database.
    user = await a_user(app)
    headers = user_token(app, user.user_id, CREATE)
    r = await http.post(URL, json=key_body(device_name="a\u0000b"), headers=headers)
    check_error(r, 400, "Payload validation error: 'String must not contain NUL characters'.")
    r = await http.get(f"{URL}?user_id=auth0%7C%00", headers=admin(app))
    check_error(
        r, 400,
        "Query validation error: 'String must not contain NUL characters'.",
    )  # fmt: skip
