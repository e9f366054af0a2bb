"""auth0-python 4.13's classes (`Users(domain, token, protocol="http")`, …) against a live Keystead.

v6 removed them, so they run in their own virtualenv, tests/compat/py4/.venv (gitignored), built
on first use from tests/compat/py4/requirements.txt and reused while that file is unchanged. The
script tests/compat/py4/v4_management.py makes the calls and prints JSON; this file asserts.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.compat.conftest import LiveServer

pytestmark = pytest.mark.compat

PY4 = Path(__file__).parent / "py4"
VENV = PY4 / ".venv"
REQUIREMENTS = PY4 / "requirements.txt"
WEB_CLIENT_ID = "CompatWebClient00000000000000001"
USER = "barbara@compat.test"


def build_py4_venv() -> Path:
    """The v4 virtualenv's python, (re)built when the requirements or the main venv changed."""
    # auth0-python 4.13 goes in with --no-deps; its dependencies are found through a .pth file
    # pointing at this (main) virtualenv, which holds compatible versions. A full resolve
    # against the package index takes minutes here; this takes seconds.
    main_site = sysconfig.get_paths()["purelib"]
    wanted = REQUIREMENTS.read_text() + main_site
    python = VENV / "bin" / "python"
    stamp = VENV / ".keystead-stamp"
    PY4.mkdir(exist_ok=True)
    with (PY4 / ".venv.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time
        if stamp.exists() and stamp.read_text() == wanted and python.exists():
            return python
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(VENV)], check=True)
        site = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        Path(site, "keystead-main-venv.pth").write_text(main_site + "\n")
        installed = subprocess.run(
            [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
             "--disable-pip-version-check", "--no-deps", "-r", str(REQUIREMENTS)],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if installed.returncode != 0:
            pytest.fail(f"installing {REQUIREMENTS} failed: {installed.stderr[-2000:]}")
        stamp.write_text(wanted)
        return python


@pytest.fixture(scope="module")
def v4(live_server: LiveServer) -> dict[str, Any]:
    python = build_py4_venv()
    config = {
        "domain": live_server.domain,
        "issuer": live_server.issuer,
        "m2m_client_id": "CompatM2MClient00000000000000001",
        "m2m_secret": "compat-m2m-secret-0123456789abcdef",
        "web_client_id": WEB_CLIENT_ID,
        "web_secret": "compat-web-secret-0123456789abcdef",
        "username": USER,
        "password": "Compat-Passw0rd-barbara",
        "api": "https://api.compat.test/",
    }
    done = subprocess.run(
        [str(python), str(PY4 / "v4_management.py")],
        env={**os.environ, "KS_CONFIG": json.dumps(config)},
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    if not done.stdout:
        raise AssertionError(f"v4_management.py printed nothing: {done.stderr[-2000:]}")
    out: dict[str, Any] = json.loads(done.stdout)
    assert out["error"] is None, json.dumps(out)[:4000]
    return out


def ok(out: dict[str, Any], name: str) -> Any:
    step = out["steps"][name]
    assert step["ok"], f"{name}: {step}"
    return step["value"]


def refused(out: dict[str, Any], name: str) -> dict[str, Any]:
    step: dict[str, Any] = out["steps"][name]
    assert not step["ok"], f"{name} unexpectedly succeeded: {step}"
    return step


def claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_runs_the_real_v4_sdk(v4: dict[str, Any]) -> None:
    assert v4["version"] == "4.13.0"
    assert Path(v4["module"]).is_relative_to(VENV)


def test_get_token_client_credentials(v4: dict[str, Any], live_server: LiveServer) -> None:
    # v4 posts JSON with "organization": null (contract §16 item 5).
    issued = ok(v4, "client_credentials")
    assert issued["token_type"] == "Bearer"
    token = claims(issued["access_token"])
    assert token["aud"] == live_server.issuer + "api/v2/"
    assert {"read:users", "update:users", "read:device_credentials"} <= set(token["scope"].split())


def test_users_crud_and_metadata_merge(v4: dict[str, Any]) -> None:
    created = ok(v4, "users_create")
    user_id = created["user_id"]
    assert created["user_metadata"] == {"theme": "dark", "lang": "en"}
    assert created["identities"][0]["user_id"] == user_id.removeprefix("auth0|")
    # `fields` + include_fields=true: only those come back.
    assert ok(v4, "users_get") == {
        "user_id": user_id,
        "email": created["email"],
        "user_metadata": {"theme": "dark", "lang": "en"},
    }
    updated = ok(v4, "users_update")
    assert updated["user_metadata"] == {"theme": "dark", "tz": "UTC"}  # null deleted "lang"
    assert updated["app_metadata"] == {"plan": "pro", "tier": 2}  # merged, not replaced
    assert [u["user_id"] for u in ok(v4, "users_by_email")] == [user_id]
    assert ok(v4, "users_delete") == ""
    gone = refused(v4, "users_get_deleted")
    assert (gone["status"], gone["code"]) == (404, "inexistent_user")


def test_users_list_pages(v4: dict[str, Any]) -> None:
    listed = ok(v4, "users_list")
    assert (listed["start"], listed["limit"], listed["length"]) == (0, 2, 2)
    assert len(listed["emails"]) == len(set(listed["emails"])) == listed["total"]
    assert {"ada@compat.test", USER, ok(v4, "users_create")["email"]} <= set(listed["emails"])


def test_roles(v4: dict[str, Any]) -> None:
    role = ok(v4, "roles_create")
    user_id = ok(v4, "users_create")["user_id"]
    members = ok(v4, "roles_list_users")
    assert members["total"] == 1
    assert [u["user_id"] for u in members["users"]] == [user_id]
    assert [r["id"] for r in ok(v4, "users_list_roles")["roles"]] == [role["id"]]
    assert role["id"] in [r["id"] for r in ok(v4, "roles_list")["roles"]]
    assert ok(v4, "roles_delete") == ""


def test_device_credentials(v4: dict[str, Any]) -> None:
    self_id = ok(v4, "users_by_email_self")[0]["user_id"]
    listed = ok(v4, "device_credentials_get")
    assert len(listed) == 1
    assert listed[0]["type"] == "refresh_token"
    assert (listed[0]["user_id"], listed[0]["client_id"]) == (self_id, WEB_CLIENT_ID)
    assert ok(v4, "device_credentials_delete") == ""
    # Deleting the device credential revoked the refresh token behind it.
    after = refused(v4, "refresh_after_delete")
    assert (after["status"], after["code"]) == (403, "invalid_grant")


def test_current_user_token_reaches_only_its_own_user(v4: dict[str, Any]) -> None:
    # A confidential client's user token for the Management API: current-user scopes only, the
    # asked-for read:users dropped (contract §3.8).
    token = claims(ok(v4, "login_current_user")["access_token"])
    assert token["scope"].split() == ["openid", "read:current_user", "update:current_user_metadata"]
    self_id = ok(v4, "users_by_email_self")[0]["user_id"]
    assert token["sub"] == self_id

    me = ok(v4, "self_get")
    assert (me["user_id"], me["email"]) == (self_id, USER)
    assert me["user_metadata"] == {"theme": "dark", "lang": "en"}
    patched = ok(v4, "self_update_metadata")
    assert patched["user_metadata"] == {"theme": "dark", "beta": True}

    name = refused(v4, "self_update_name")
    assert (name["status"], name["code"]) == (403, "insufficient_scope")
    listing = refused(v4, "self_list_users")
    assert (listing["status"], listing["code"]) == (403, "insufficient_scope")
    other = refused(v4, "self_get_other")
    assert (other["status"], other["code"]) == (403, "unowned_resource")
