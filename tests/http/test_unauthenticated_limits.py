"""Requests without a valid bearer token draw from their IP's own bucket (ratelimit/wiring.py:
limit_unauthenticated), one per API, never from the tenant's shared buckets."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from keystead.ratelimit import wiring
from keystead.ratelimit.asgi import AuthenticationRateLimited, ManagementRateLimited
from tests.http import test_rate_limits as shared
from tests.http.test_rate_limits import DETAIL, api_limits

app = shared.app
clock = shared.clock
limits = shared.limits
template_database = shared.template_database

PER_IP = {"rate_limit_preset": "off", "rate_limits": "authentication.ip=2/min"}


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
async def test_a_default_applies_when_the_ip_rule_is_off(app: Any) -> None:
    headers = await wiring.limit_unauthenticated(
        shared.state_of(app), request("/userinfo"), api="authentication"
    )
    assert headers["x-ratelimit-limit"] == str(wiring.UNAUTHENTICATED_DEFAULT.burst)
