"""node `auth0` 7.1 ManagementClient, unchanged, against `keystead serve --dev-tls` (§13.3).

The SDK only speaks https and gets its own token (client credentials, audience
https://{domain}/api/v2/); Node trusts the development CA through NODE_EXTRA_CA_CERTS. See
tests/compat/node/management_client.mjs.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.compat.conftest import need_node_sdks, run_node_script
from tests.compat.tls import LiveTlsServer

pytestmark = pytest.mark.compat

EMAIL_PREFIX = "node-mgmt"


@pytest.fixture(scope="module")
def email() -> str:
    return f"{EMAIL_PREFIX}-{uuid.uuid4().hex[:10]}@compat.test"


@pytest.fixture(scope="module")
def steps(live_tls_server: LiveTlsServer, email: str) -> dict[str, Any]:
    need_node_sdks("auth0")
    out = run_node_script(
        "management_client.mjs",
        {
            "domain": live_tls_server.domain,
            "clientId": "CompatM2MClient00000000000000001",
            "clientSecret": "compat-m2m-secret-0123456789abcdef",
            "email": email,
        },
        env=live_tls_server.trust_env(),
    )
    result: dict[str, Any] = out["steps"]
    return result


def ok(steps: dict[str, Any], name: str) -> Any:
    step = steps[name]
    assert step["ok"], f"{name}: {step}"
    return step["value"]


def test_users_list_pages_with_totals(steps: dict[str, Any]) -> None:
    first = ok(steps, "users_first_page")
    assert (first["start"], first["limit"], first["length"]) == (0, 1, 1)
    assert first["has_next_page"] is True
    walked = ok(steps, "users_all_pages")
    # per_page=1: the SDK asked page=0, 1, 2, … until a short page; nothing lost or repeated.
    assert len(walked["emails"]) == len(set(walked["emails"])) == walked["total"]
    assert walked["total"] >= 5  # the tenant file's users at least
    assert {"ada@compat.test", "grace@compat.test"} <= set(walked["emails"])
    assert first["emails"] == walked["emails"][:1]


def test_users_create_get_update_delete(steps: dict[str, Any], email: str) -> None:
    created = ok(steps, "users_create")
    user_id = created["user_id"]
    assert user_id.startswith("auth0|")
    assert created["email"] == email
    assert created["email_verified"] is False
    assert created["user_metadata"] == {"theme": "light", "lang": "en"}
    assert created["app_metadata"] == {"plan": "pro"}
    assert created["identities"] == [
        {
            "connection": "Username-Password-Authentication",
            "provider": "auth0",
            "user_id": user_id.removeprefix("auth0|"),
            "isSocial": False,
        }
    ]
    assert "password" not in created

    fetched = ok(steps, "users_get")
    assert fetched["user_id"] == user_id
    assert fetched["name"] == "Node Management"

    updated = ok(steps, "users_update")
    assert updated["user_metadata"] == {"theme": "light", "tz": "UTC"}  # lang: null removed it
    assert updated["nickname"] == "nm"
    assert updated["app_metadata"] == {"plan": "pro"}
    assert updated["updated_at"] >= fetched["updated_at"]

    assert [u["user_id"] for u in ok(steps, "users_by_email")] == [user_id]

    assert ok(steps, "users_delete") is None
    gone = steps["users_get_deleted"]
    assert not gone["ok"]
    assert gone["status"] == 404
    assert gone["body"]["errorCode"] == "inexistent_user"


def test_roles(steps: dict[str, Any]) -> None:
    role = ok(steps, "roles_create")
    assert role["id"].startswith("rol_")
    assert role["description"] == "from node auth0 7"
    assert ok(steps, "roles_assign_users") is None
    user_id = ok(steps, "users_create")["user_id"]
    assert [m["user_id"] for m in ok(steps, "roles_users")] == [user_id]
    assert [r["id"] for r in ok(steps, "user_roles")] == [role["id"]]
    assert role["name"] in ok(steps, "roles_list")
    assert ok(steps, "roles_delete") is None


def test_clients_list(steps: dict[str, Any]) -> None:
    clients = {c["client_id"]: c for c in ok(steps, "clients_list")}
    # per_page=2 with three tenant clients: the pager fetched a second page.
    assert clients["CompatSpaClient00000000000000001"]["app_type"] == "spa"
    assert clients["CompatWebClient00000000000000001"]["app_type"] == "regular_web"
    assert clients["CompatM2MClient00000000000000001"]["name"] == "Compat machine client"
