"""auth0-python 4.13's classes against a live Keystead over http; run by test_auth0_python_v4.py.

Runs under tests/compat/py4/.venv (auth0-python 4.13, not the main virtualenv's 6.x). Reads its
configuration as JSON from KS_CONFIG and prints one JSON object, {"version": …, "steps":
{name: {"ok": true, "value": …} | {"ok": false, "status", "code", "message"}}}; the pytest side
asserts on it.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Callable
from typing import Any

import auth0
from auth0.authentication import GetToken
from auth0.exceptions import Auth0Error
from auth0.management import DeviceCredentials, Roles, Users, UsersByEmail

CONNECTION = "Username-Password-Authentication"

cfg: dict[str, Any] = json.loads(os.environ["KS_CONFIG"])
domain, issuer = cfg["domain"], cfg["issuer"]
steps: dict[str, Any] = {}


def run(name: str, fn: Callable[[], Any]) -> Any:
    try:
        value = fn()
    except Auth0Error as e:
        steps[name] = {"ok": False, "status": e.status_code, "code": e.error_code,
                       "message": e.message}  # fmt: skip
        return None
    steps[name] = {"ok": True, "value": value}
    return value


def token_for(client_id: str, secret: str) -> GetToken:
    return GetToken(domain, client_id, client_secret=secret, protocol="http")


def main() -> None:
    # 1. A full Management API token through v4's GetToken (JSON body with organization: null).
    m2m = token_for(cfg["m2m_client_id"], cfg["m2m_secret"])
    issued = run("client_credentials", lambda: m2m.client_credentials(issuer + "api/v2/"))
    token = issued["access_token"]
    users = Users(domain, token, protocol="http")
    by_email = UsersByEmail(domain, token, protocol="http")
    roles = Roles(domain, token, protocol="http")
    devices = DeviceCredentials(domain, token, protocol="http")

    # 2. Users CRUD with the metadata merge.
    email = f"v4-{uuid.uuid4().hex[:10]}@compat.test"
    created = run("users_create", lambda: users.create({
        "connection": CONNECTION, "email": email, "password": "V4-Passw0rd-crud",
        "name": "Version Four", "user_metadata": {"theme": "dark", "lang": "en"},
        "app_metadata": {"plan": "pro"},
    }))  # fmt: skip
    user_id = created["user_id"]
    run("users_get", lambda: users.get(user_id, fields=["user_id", "email", "user_metadata"]))
    run("users_update", lambda: users.update(
        user_id, {"user_metadata": {"lang": None, "tz": "UTC"}, "app_metadata": {"tier": 2}}
    ))  # fmt: skip
    run("users_by_email", lambda: by_email.search_users_by_email(email))

    def all_pages() -> dict[str, Any]:
        first = users.list(page=0, per_page=2)
        emails, page = [u["email"] for u in first["users"]], 1
        while len(emails) < first["total"] and page < 50:
            emails += [u["email"] for u in users.list(page=page, per_page=2)["users"]]
            page += 1
        summary = {k: first[k] for k in ("start", "limit", "length", "total")}
        return {**summary, "emails": emails, "pages": page}

    run("users_list", all_pages)

    # 3. Roles.
    role = run("roles_create", lambda: roles.create(
        {"name": f"compat-v4-{uuid.uuid4().hex[:8]}", "description": "from auth0-python 4"}
    ))  # fmt: skip
    run("roles_add_users", lambda: roles.add_users(role["id"], [user_id]))
    run("roles_list_users", lambda: roles.list_users(role["id"]))
    run("users_list_roles", lambda: users.list_roles(user_id))
    run("roles_list", lambda: roles.list(per_page=100))
    run("roles_delete", lambda: roles.delete(role["id"]))

    # 4. Device credentials: a refresh token of the current-user test's user, then its deletion.
    web = token_for(cfg["web_client_id"], cfg["web_secret"])
    login = run("login_offline", lambda: web.login(
        cfg["username"], cfg["password"], realm=CONNECTION, scope="openid offline_access",
        audience=cfg["api"],
    ))  # fmt: skip
    own = run("users_by_email_self", lambda: by_email.search_users_by_email(cfg["username"]))
    self_id = own[0]["user_id"]
    listed = run("device_credentials_get", lambda: devices.get(
        self_id, cfg["web_client_id"], "refresh_token"
    ))  # fmt: skip
    run("device_credentials_delete", lambda: devices.delete(listed[0]["id"]))
    run("refresh_after_delete", lambda: web.refresh_token(login["refresh_token"]))

    # 5. A user's own token for the Management API: current-user scopes only (contract §3.8).
    mine = run("login_current_user", lambda: web.login(
        cfg["username"], cfg["password"], realm=CONNECTION,
        scope="openid read:current_user update:current_user_metadata read:users",
        audience=issuer + "api/v2/",
    ))  # fmt: skip
    me = Users(domain, mine["access_token"], protocol="http")
    run("self_get", lambda: me.get(self_id))
    run("self_update_metadata", lambda: me.update(
        self_id, {"user_metadata": {"lang": None, "beta": True}}
    ))  # fmt: skip
    run("self_update_name", lambda: me.update(self_id, {"name": "Not Allowed"}))
    run("self_list_users", lambda: me.list())
    run("self_get_other", lambda: me.get(user_id))

    # 6. Clean up, and the 404 after.
    run("users_delete", lambda: users.delete(user_id))
    run("users_get_deleted", lambda: users.get(user_id))


if __name__ == "__main__":
    try:
        main()
        failure = None
    except Exception as e:  # report, don't traceback: the test shows the steps so far
        failure = f"{type(e).__name__}: {e}"
    print(json.dumps({
        "version": auth0.__version__, "module": auth0.__file__, "python": sys.executable,
        "steps": steps, "error": failure,
    }))  # fmt: skip
