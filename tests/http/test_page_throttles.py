"""The hosted signup and reset-request pages draw from the same buckets as their API twins."""

from __future__ import annotations

from dataclasses import replace

import httpx
import pytest

from keystead.core.clients import Client
from keystead.deps import AppState
from keystead.settings import Settings
from tests.http import test_authorize as shared
from tests.http.test_authorize import add_client, hidden_fields
from tests.http.test_signup_page import sign_up

app = shared.app
state = shared.state
template_database = shared.template_database


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return replace(
        settings,
        suspicious_ip_signup_limit="1/day",
        rate_limits="authentication.endpoints.changePassword=1/min burst 1",
    )


@pytest.fixture
async def spa(state: AppState) -> Client:
    return await add_client(state)


async def test_signup_page_shares_the_per_ip_signup_throttle(http: httpx.AsyncClient, spa):
    first = await sign_up(http, email="first@example.com")
    assert first.status_code in (302, 303), first.text
    http.cookies.clear()
    second = await sign_up(http, email="second@example.com")
    assert second.status_code == 429
    assert "Too many sign-ups" in second.text
    assert second.headers["retry-after"]
    assert int(second.headers["x-ratelimit-remaining"]) == 0


async def test_reset_request_page_is_limited_per_address(http: httpx.AsyncClient):
    async def ask(email: str) -> httpx.Response:
        page = await http.get("/u/reset-password")
        form = {**hidden_fields(page.text), "email": email}
        return await http.post("/u/reset-password", data=form)

    assert (await ask("someone@example.com")).status_code == 200
    limited = await ask("someone@example.com")
    assert limited.status_code == 429
    assert "Too many requests" in limited.text
    # Another address is its own bucket.
    assert (await ask("other@example.com")).status_code == 200
