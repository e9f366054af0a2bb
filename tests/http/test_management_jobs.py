"""POST /api/v2/jobs/verification-email and GET /api/v2/jobs/{id} (contract §10.9): the mailed
link verifies the address on the hosted page; answers checked against Auth0's OpenAPI."""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from starlette.applications import Starlette

from keystead.app import create_app
from keystead.core.users import User
from keystead.management.jobs import JOB_LIFETIME
from keystead.settings import Settings
from tests.conftest import ISSUER
from tests.http.helpers import (
    WallClock,
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


@pytest.fixture(scope="module")
def clock() -> WallClock:
    return WallClock()  # the helpers mint tokens on the wall clock; a fixed one falls behind


app = module_app(fixed_clock=True)
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


async def test_a_job_expires_after_a_day(
    http: httpx.AsyncClient, app: Any, user: User, clock: WallClock
) -> None:
    r = await http.post(JOBS, json={"user_id": user.user_id}, headers=m2m(app, "update:users"))
    assert r.status_code == 201, r.text
    path = f"/api/v2/jobs/{r.json()['id']}"
    headers = m2m(app, "read:users", ttl=2 * int(JOB_LIFETIME))  # still valid a day later
    try:
        clock.shift = JOB_LIFETIME - 1
        assert (await http.get(path, headers=headers)).json() == r.json()
        clock.shift = JOB_LIFETIME
        check_error(await http.get(path, headers=headers), 404, "Job not found.")
    finally:
        clock.shift = 0.0


@asynccontextmanager
async def running(url: str, tmp_path: Path) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """One worker: an app of its own over the database at `url`, and its client."""
    settings = Settings(issuer=ISSUER, database_url=url, data_dir=str(tmp_path)).with_defaults()
    worker = create_app(settings)
    async with worker.router.lifespan_context(worker):
        transport = httpx.ASGITransport(app=worker)
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as client:
            yield worker, client


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shared_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """One database for two workers: a SQLite file, or a scratch PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'shared.db'}"
        return
    from tests.storage.conftest import Scratch

    scratch = Scratch()
    try:
        yield scratch.create()
    finally:
        scratch.drop_all()


@pytest.mark.asyncio(loop_scope="function")
async def test_a_job_made_on_one_worker_is_read_on_another(shared_url: str, tmp_path: Path) -> None:
    async with (
        running(shared_url, tmp_path / "a") as (one, http_one),
        running(shared_url, tmp_path / "b") as (other, http_other),
    ):
        user = await make_user(one, email=f"ada.{secrets.token_hex(4)}@example.com")
        made = await http_one.post(
            JOBS, json={"user_id": user.user_id}, headers=m2m(one, "update:users")
        )
        assert made.status_code == 201, made.text
        path = f"/api/v2/jobs/{made.json()['id']}"
        read = await http_other.get(path, headers=m2m(other, "read:users"))
        assert read.status_code == 200, read.text
        assert check_oas(read, "GET", "/jobs/{id}") == made.json()
    async with running(shared_url, tmp_path / "c") as (restarted, http_restarted):
        read = await http_restarted.get(path, headers=m2m(restarted, "create:users"))
        assert read.status_code == 200 and read.json() == made.json()
