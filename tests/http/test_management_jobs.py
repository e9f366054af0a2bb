"""POST /api/v2/jobs/verification-email and GET /api/v2/jobs/{id} (contract §10.9): the mailed
link verifies the address on the hosted page; answers checked against Auth0's OpenAPI."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

import httpx
import pytest
import pytest_asyncio

from keystead.core.users import User
from keystead.management.jobs import JOBS_KEPT, _jobs
from tests.conftest import ISSUER
from tests.http.helpers import (
    check_error,
    check_oas,
    get_user,
    m2m,
    make_user,
    module_app,
    module_http,
    sapi_events,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

JOBS = "/api/v2/jobs/verification-email"


@pytest_asyncio.fixture(loop_scope="module")
async def user(app: Any) -> User:
    return await make_user(app, email=f"grace.{secrets.token_hex(4)}@example.com")


def mailed_links(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        match.group(1)
        for rec in caplog.records
        if rec.name == "keystead.mail"
        and (match := re.search(r"email verification link (\S+)", rec.getMessage()))
    ]


async def test_the_mailed_link_verifies_the_email(
    http: httpx.AsyncClient, app: Any, user: User, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keystead.mail")
    r = await http.post(JOBS, json={"user_id": user.user_id}, headers=m2m(app, "update:users"))
    assert r.status_code == 201, r.text
    job = check_oas(r, "POST", "/jobs/verification-email")
    assert job["type"] == "verification_email" and job["status"] == "completed"
    assert re.fullmatch(r"job_[0-9a-f]{16}", job["id"])
    (link,) = mailed_links(caplog)
    assert link.startswith(ISSUER + "u/email-verification?ticket=")
    assert link not in str([e.data for e in await sapi_events(app)])  # never in the audit log
    page = await http.get(link.removeprefix(ISSUER.rstrip("/")))
    assert page.status_code == 200 and "Email verified" in page.text
    stored = await get_user(app, user.user_id)
    assert stored is not None and stored.email_verified

    read = await http.get(f"/api/v2/jobs/{job['id']}", headers=m2m(app, "read:users"))
    assert read.status_code == 200
    assert check_oas(read, "GET", "/jobs/{id}") == job


async def test_a_job_is_404_when_unknown(http: httpx.AsyncClient, app: Any) -> None:
    r = await http.get("/api/v2/jobs/job_0000000000000000", headers=m2m(app, "create:users"))
    check_error(r, 404, "Job not found.")


async def test_errors_send_nothing(
    http: httpx.AsyncClient, app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="keystead.mail")
    headers = m2m(app, "update:users")
    no_email = await make_user(app, username=f"u{secrets.token_hex(4)}")
    check_error(
        await http.post(JOBS, json={"user_id": no_email.user_id}, headers=headers),
        400,
        "The user does not have an email address.",
    )
    check_error(
        await http.post(JOBS, json={"user_id": "auth0|nobody"}, headers=headers),
        404,
        "User not found.",
    )
    check_error(
        await http.post(JOBS, json={}, headers=headers),
        400,
        "Payload validation error: 'Missing required property: user_id'.",
    )
    check_error(
        await http.post(
            JOBS, json={"user_id": "auth0|x", "identity": {"user_id": "1"}}, headers=headers
        ),
        400,
        "Keystead does not support identity; leave it out or send null.",
    )
    check_error(
        await http.post(JOBS, json={"user_id": "auth0|x"}, headers=m2m(app, "read:users")),
        403,
        "Insufficient scope, expected any of: update:users",
    )
    assert mailed_links(caplog) == []


async def test_only_the_latest_jobs_are_kept(http: httpx.AsyncClient, app: Any) -> None:
    state = app.state.keystead
    jobs = _jobs(state)
    for n in range(JOBS_KEPT + 5):
        jobs[f"job_{n:016d}"] = (state.clock.now(), {"id": f"job_{n:016d}"})
    assert len(_jobs(state)) == JOBS_KEPT
    assert "job_0000000000000000" not in _jobs(state)
