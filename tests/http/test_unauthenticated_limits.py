"""Requests without a valid bearer token draw from their IP's own bucket (ratelimit/wiring.py:
limit_unauthenticated), one per API, never from the tenant's shared buckets."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from keystead.ratelimit import wiring
from keystead.ratelimit.asgi import AuthenticationRateLimited, ManagementRateLimited
from tests.conftest import ISSUER
from tests.http import test_rate_limits as shared
from tests.http.helpers import user_token
from tests.http.test_rate_limits import ALICE, DETAIL, api_limits, rate_headers

app = shared.app
clock = shared.clock
limits = shared.limits
template_database = shared.template_database

PER_IP = {"rate_limit_preset": "off", "rate_limits": "unauthenticated.ip=2/min"}


def request(path: str, ip: str = "203.0.113.7") -> Request:
    return Request(
        {
            "type": "http",
            "method": "GET",
            "path": path,
            "query_string": b"",
            "headers": [(b"user-agent", b"flood/1")],
            "client": (ip, 4321),
        }
    )


@pytest.mark.parametrize("limits", [PER_IP])
async def test_the_ip_bucket_runs_dry_then_refuses_with_the_apis_429(app: Starlette) -> None:
    state = shared.state_of(app)
    first = await wiring.limit_unauthenticated(state, request("/api/v2/users"), api="management")
    assert first["x-ratelimit-limit"] == "2" and first["x-ratelimit-remaining"] == "1"
    await wiring.limit_unauthenticated(state, request("/api/v2/users"), api="management")
    with pytest.raises(ManagementRateLimited) as refused:
        await wiring.limit_unauthenticated(state, request("/api/v2/users"), api="management")
    assert refused.value.body() == {
        "statusCode": 429,
        "error": "Too Many Requests",
        "message": DETAIL,
        "errorCode": "too_many_requests",
    }
    assert refused.value.headers["x-ratelimit-remaining"] == "0"
    # Another IP, and the other API, have buckets of their own.
    other = await wiring.limit_unauthenticated(
        state, request("/api/v2/users", ip="203.0.113.8"), api="management"
    )
    assert other["x-ratelimit-remaining"] == "1"
    await wiring.limit_unauthenticated(state, request("/userinfo"), api="authentication")
    await wiring.limit_unauthenticated(state, request("/userinfo"), api="authentication")
    with pytest.raises(AuthenticationRateLimited) as dry:
        await wiring.limit_unauthenticated(state, request("/userinfo"), api="authentication")
    assert dry.value.body()["error_description"] == DETAIL
    # Logged once per bucket and window, with the bucket's name, not once per request.
    events = await api_limits(app)
    assert sorted(e.data["details"]["bucket"] for e in events) == [
        "unauthenticated.ip",
        "unauthenticated.ip",
    ]


@pytest.mark.parametrize("limits", [{"rate_limit_preset": "off"}])
async def test_the_off_preset_leaves_unauthenticated_requests_unlimited(app: Any) -> None:
    for _ in range(3):
        headers = await wiring.limit_unauthenticated(
            shared.state_of(app), request("/userinfo"), api="authentication"
        )
        assert headers == {}


@pytest.mark.parametrize(
    "limits", [{"rate_limit_preset": "self-hosted", "rate_limits": "authentication.ip=2/min"}]
)
async def test_the_rule_is_its_own_not_the_authentication_ip_rule(app: Any) -> None:
    headers = await wiring.limit_unauthenticated(
        shared.state_of(app), request("/userinfo"), api="authentication"
    )
    assert headers["x-ratelimit-limit"] == "300"  # the self-hosted preset's 10/s burst 300


# --- through the endpoints ---------------------------------------------------------------------


async def _get(app: Starlette, path: str, ip: str, token: str | None = None) -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(ip, 1234))
    headers = {"authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as h:
        return await h.get(path, headers=headers)


@pytest.mark.parametrize("limits", [PER_IP])
async def test_bad_tokens_on_the_management_api_are_limited_per_ip(app: Starlette) -> None:
    path = f"/api/v2/users/{ALICE}"
    first = await _get(app, path, "203.0.113.1", token="not-a-token")
    assert first.status_code == 400 and rate_headers(first)[:2] == (2, 1)  # malformed: 400
    assert (await _get(app, path, "203.0.113.1")).status_code == 401  # no token at all
    refused = await _get(app, path, "203.0.113.1", token="not-a-token")
    assert refused.status_code == 429
    assert refused.json() == {
        "statusCode": 429,
        "error": "Too Many Requests",
        "message": DETAIL,
        "errorCode": "too_many_requests",
    }
    assert rate_headers(refused)[:2] == (2, 0) and int(refused.headers["retry-after"]) > 0
    # A valid token from the same IP, and bad tokens from another IP, are still served.
    ok = await _get(app, path, "203.0.113.1", token=user_token(app, ALICE)["Authorization"][7:])
    assert ok.status_code == 200
    assert (await _get(app, path, "203.0.113.2")).status_code == 401


@pytest.mark.parametrize("limits", [PER_IP])
async def test_bad_tokens_on_userinfo_are_limited_per_ip(app: Starlette) -> None:
    codes = [
        (await _get(app, "/userinfo", "203.0.113.3", token="bad")).status_code for _ in range(3)
    ]
    assert codes == [401, 401, 429]
    refused = await _get(app, "/userinfo", "203.0.113.3")
    assert refused.status_code == 429
    assert refused.json() == {"error": "too_many_requests", "error_description": DETAIL}
    assert refused.headers["cache-control"] == "no-store"
    assert (await _get(app, "/userinfo", "203.0.113.4", token="bad")).status_code == 401
