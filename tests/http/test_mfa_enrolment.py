"""The tenant's MFA policy (GET|PUT /api/v2/guardian/policies, keystead/mfa_policy.py) and the
hosted enrolment it leads to (web/mfa_enrol.py): with ["all-applications"], a user without a
factor enrols a TOTP app after the password, before any session starts; the password grant and
sessions without the factor are refused or sent there.

The fixtures are the hosted login's (test_login_mfa.py): a fixed clock, a SPA, and Ada.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keystead.core.users import User
from keystead.deps import AppState
from tests.http import test_authorize as shared
from tests.http import test_login_mfa as hosted
from tests.http.helpers import check_error, check_oas, m2m, sapi_events

# The hosted login's fixtures, by name (pytest finds fixtures among the module's attributes).
template_database = shared.template_database
backend = hosted.backend
clock = hosted.clock
app = hosted.app
state = hosted.state
http = hosted.http
user = hosted.user

P = "/api/v2/guardian/policies"
ALL = ["all-applications"]
INVALID = "Payload validation error: "


async def set_policy(app: Any, http: httpx.AsyncClient, policies: list[str]) -> None:
    r = await http.put(P, json=policies, headers=m2m(app, "update:mfa_policies"))
    assert check_oas(r, "PUT", "/guardian/policies") == policies


async def get_policy(app: Any, http: httpx.AsyncClient) -> Any:
    r = await http.get(P, headers=m2m(app, "read:mfa_policies"))
    return check_oas(r, "GET", "/guardian/policies")


# --- the policy in the Management API ---------------------------------------------------------


async def test_the_policy_is_off_until_set(app: Any, http: httpx.AsyncClient, user: User) -> None:
    assert await get_policy(app, http) == []
    await set_policy(app, http, ALL)
    assert await get_policy(app, http) == ALL
    r = await http.put(P, json=ALL + ALL, headers=m2m(app, "update:mfa_policies"))
    assert check_oas(r, "PUT", "/guardian/policies") == ALL  # a repeated value counts once
    await set_policy(app, http, [])
    assert await get_policy(app, http) == []


async def test_setting_the_policy_is_audited(
    app: Any, http: httpx.AsyncClient, state: AppState, user: User
) -> None:
    await set_policy(app, http, ALL)
    [event] = [e for e in await sapi_events(app) if e.description == "Set MFA policies"]
    assert event.data["details"]["changes"] == {"policies": ALL}


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("GET", "update:mfa_policies"),
        ("PUT", "read:mfa_policies"),
        ("GET", "read:tenant_settings update:tenant_settings"),
    ],
)
async def test_each_operation_needs_its_scope(
    app: Any, http: httpx.AsyncClient, user: User, method: str, scope: str
) -> None:
    r = await http.request(method, P, json=ALL, headers=m2m(app, scope))
    assert r.status_code == 403 and r.json()["errorCode"] == "insufficient_scope"
    assert await get_policy(app, http) == []


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, f"{INVALID}'Expected type array but found type object'."),
        ("all-applications", f"{INVALID}'Expected type array but found type string'."),
        (["sms"], f"{INVALID}'No enum match for: sms' on property [0]."),
        ([ALL[0], 3], f"{INVALID}'No enum match for: number' on property [1]."),
        (
            ["confidence-score"],
            "MFA policy confidence-score is not supported: Keystead enforces only "
            "all-applications.",
        ),
    ],
)  # fmt: skip
async def test_a_body_that_is_not_an_enforced_policy_list_is_refused(
    app: Any, http: httpx.AsyncClient, user: User, body: Any, message: str
) -> None:
    r = await http.put(P, json=body, headers=m2m(app, "update:mfa_policies"))
    check_error(r, 400, message, "invalid_body")
    assert await get_policy(app, http) == []
