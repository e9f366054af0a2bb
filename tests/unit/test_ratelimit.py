"""Rate limiting with a fixed clock: bucket arithmetic, nesting, presets, config, headers (§12)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from keystead.core.clock import FixedClock
from keystead.core.ratelimit import (
    RULES,
    Bucket,
    BucketSpec,
    BucketState,
    Decision,
    RateLimits,
    check,
    level,
    management_endpoint,
    parse_rate_limits,
    parse_spec,
    preset,
)
from keystead.errors import ConfigError
from keystead.ratelimit import Limiter, MemoryBackend, rate_limit_headers, too_many_requests_body
from keystead.ratelimit.asgi import (
    AuthenticationRateLimited,
    ManagementRateLimited,
    enforce,
    send_too_many_requests,
)
from keystead.ratelimit.redis_backend import RedisBackend

T0 = 1_700_000_000.0
PER_MIN_10 = BucketSpec(burst=10, refill=5, per_seconds=60)  # Auth0's /userinfo figure


def limits(**rules: str) -> RateLimits:
    changes = ";".join(f"{k.replace('_', '.')}={v}" for k, v in rules.items())
    return parse_rate_limits({}, preset_name="off", overrides=changes)


def make_limiter(clock: FixedClock, **rules: str) -> Limiter:
    return Limiter(limits(**rules), MemoryBackend(), clock)


# --- One bucket --------------------------------------------------------------------------------


async def test_burst_then_refused_with_retry_after(clock: FixedClock) -> None:
    limiter = make_limiter(clock)
    bucket = [Bucket("k", PER_MIN_10, "b")]
    seen = [await limiter.check(bucket) for _ in range(10)]
    assert all(d.allowed for d in seen)
    assert [d.remaining for d in seen] == list(range(9, -1, -1))
    refused = await limiter.check(bucket)
    assert refused == Decision(False, 10, 0, int(T0) + 120, 12, "b")  # 5/min: a token per 12 s


async def test_refill_is_continuous_and_capped(clock: FixedClock) -> None:
    limiter = make_limiter(clock)
    bucket = [("k", PER_MIN_10)]  # plain (key, spec) pairs are accepted too
    for _ in range(10):
        await limiter.check(bucket)
    clock.advance(11.9)
    assert not (await limiter.check(bucket)).allowed
    clock.advance(0.1)  # exactly one token after 12 s, despite float error
    assert (await limiter.check(bucket)).allowed
    assert not (await limiter.check(bucket)).allowed
    clock.advance(3600)  # never more than the burst
    assert [(await limiter.check(bucket)).allowed for _ in range(11)] == [True] * 10 + [False]


def test_reset_is_an_integer_epoch_when_the_bucket_is_full_again() -> None:
    store: dict[str, BucketState] = {}
    d = check(store, [Bucket("k", PER_MIN_10)], T0 + 0.25)
    assert d.reset_epoch == int(T0) + 13  # one token back after 12 s: ceil(T0 + 12.25)
    assert isinstance(d.reset_epoch, int)
    assert d.bucket_name == "k"  # the key, when the bucket has no rule name


def test_a_clock_behind_the_stamp_refills_nothing() -> None:
    state = BucketState(tokens=2.0, stamp=T0)
    assert level(state, PER_MIN_10, T0 - 30) == 2.0
    assert level(state, PER_MIN_10, T0 + 24) == pytest.approx(4.0)
    assert level(None, PER_MIN_10, T0) == 10.0


# --- Nested buckets ----------------------------------------------------------------------------


def nested(clock: FixedClock) -> Limiter:
    return make_limiter(
        clock,
        management_subject="10/min",
        management_client="100/min burst 30",
        management_tenant="100/min burst 30",
    )


async def test_a_drained_subject_does_not_touch_client_or_tenant(clock: FixedClock) -> None:
    limiter = nested(clock)
    spa = limiter.management(client_id="spa", subject="auth0|alice")
    results = [(await limiter.check(spa)).allowed for _ in range(25)]
    assert results == [True] * 10 + [False] * 15
    refused = await limiter.check(spa)
    assert refused.bucket_name == "management.subject"
    assert refused.retry_after == 6
    # The 15 refusals drew nothing: client and tenant still hold 30 - 10 tokens.
    bob = limiter.management(client_id="spa", subject="auth0|bob")
    assert [(await limiter.check(bob)).allowed for _ in range(10)] == [True] * 10
    m2m = limiter.management(client_id="m2m")
    assert [(await limiter.check(m2m)).allowed for _ in range(10)] == [True] * 10
    assert not (await limiter.check(m2m)).allowed  # now the tenant is empty


async def test_an_empty_tenant_refuses_everyone_and_costs_the_user_nothing(
    clock: FixedClock,
) -> None:
    limiter = nested(clock)
    for i in range(30):
        assert (await limiter.check(limiter.management(client_id=f"m2m-{i}"))).allowed
    alice = limiter.management(client_id="spa", subject="auth0|alice")
    refused = await limiter.check(alice)
    assert (refused.allowed, refused.bucket_name) == (False, "management.tenant")
    assert not (await limiter.check(limiter.management(client_id="other"))).allowed
    clock.advance(60)  # tenant and client full again; alice's 10 tokens were never taken
    passed = [await limiter.check(alice) for _ in range(10)]
    assert all(d.allowed for d in passed)


async def test_headers_describe_the_most_constrained_bucket(clock: FixedClock) -> None:
    limiter = nested(clock)
    alice = limiter.management(client_id="spa", subject="auth0|alice")
    d = await limiter.check(alice)
    assert (d.bucket_name, d.limit, d.remaining) == ("management.subject", 10, 9)
    for i in range(25):
        await limiter.check(limiter.management(client_id=f"m2m-{i}"))
    d = await limiter.check(alice)
    assert (d.bucket_name, d.limit, d.remaining) == ("management.tenant", 30, 3)


async def test_authentication_buckets_per_ip_user_and_ip(clock: FixedClock) -> None:
    limiter = make_limiter(
        clock, authentication_ipUser="10/min burst 20", authentication_ip="10/s burst 50"
    )
    attempt = limiter.authentication(ip="203.0.113.9", client_id="spa", username="Alice@x.io")
    assert [(await limiter.check(attempt)).allowed for _ in range(21)] == [True] * 20 + [False]
    # Case does not escape the bucket; another user from the same IP is unaffected.
    again = limiter.authentication(ip="203.0.113.9", username="ALICE@X.IO")
    assert not (await limiter.check(again)).allowed
    other = limiter.authentication(ip="203.0.113.9", username="bob@x.io")
    assert (await limiter.check(other)).allowed


def test_key_segments_cannot_run_together() -> None:
    limiter = Limiter(preset("self-hosted"))
    a = limiter.authentication(ip="::1", username="2:x")
    b = limiter.authentication(ip="::1:2", username="x")
    assert a[0].key != b[0].key
    long = limiter.authentication(ip="::1", username="u" * 10_000)
    assert len(long[0].key) < 100


def test_bucket_lists_follow_the_configuration() -> None:
    limiter = Limiter(preset("auth0-paid"))
    names = [b.name for b in limiter.management(client_id="c", subject="s", endpoint="usersRead")]
    assert names == ["management.subject", "management.endpoints.usersRead"]
    keys = [b.key for b in limiter.authentication(ip="1.2.3.4", endpoint="userinfo", user_id="u")]
    assert keys == ["auth:ep:userinfo:u", "auth:tenant"]
    with pytest.raises(ValueError, match="user_id"):
        limiter.authentication(ip="1.2.3.4", endpoint="userinfo")
    with pytest.raises(ValueError, match="unknown"):
        limiter.management(client_id="c", endpoint="nope")
    assert Limiter(preset("off")).management(client_id="c", subject="s") == []


@pytest.mark.parametrize(
    ("method", "path", "group"),
    [
        ("GET", "/api/v2/users", "usersRead"),
        ("GET", "/api/v2/users/auth0|1/roles", "usersRead"),
        ("GET", "/api/v2/users-by-email", "usersRead"),
        ("PATCH", "/api/v2/users/auth0|1", "usersWrite"),
        ("delete", "/users/auth0|1", "usersWrite"),
        ("GET", "/api/v2/logs", "logsRead"),
        ("GET", "/api/v2/clients/abc", "clientsRead"),
        ("POST", "/api/v2/clients", "other"),
        ("GET", "/api/v2/connections", "connectionsRead"),
        ("POST", "/api/v2/device-credentials", "deviceCredentialsWrite"),
        ("POST", "/api/v2/keys/signing/rotate", "signingKeysRotate"),
        ("GET", "/api/v2/", "other"),
    ],
)
def test_management_endpoint_groups(method: str, path: str, group: str) -> None:
    assert management_endpoint(method, path) == group


# --- Memory bounds -----------------------------------------------------------------------------


async def test_memory_evicts_full_buckets_and_stays_bounded(clock: FixedClock) -> None:
    backend = MemoryBackend(max_keys=100, sweep_interval=5)
    limiter = Limiter(limits(authentication_ip="1/s burst 5"), backend, clock)
    for i in range(1000):
        await limiter.check(limiter.authentication(ip=f"10.0.{i // 256}.{i % 256}"))
        assert len(backend) <= 100
    clock.advance(10)  # every bucket is full again, so none needs remembering
    await limiter.check(limiter.authentication(ip="192.0.2.1"))
    assert len(backend) == 1


# --- Presets and configuration -----------------------------------------------------------------


def test_presets_copy_the_published_figures() -> None:
    free, paid = preset("auth0-free"), preset("auth0-paid")
    assert free["management.tenant"] == BucketSpec(2, 2, 1)
    assert free["authentication.tenant"] == BucketSpec(300, 300, 60)
    assert free["authentication.endpoints.token"] == BucketSpec(30, 30, 1)
    assert paid["management.tenant"] is None
    assert paid["management.endpoints.usersRead"] == BucketSpec(40, 500, 60)
    assert paid["management.endpoints.other"] == BucketSpec(10, 150, 60)
    assert paid["authentication.tenant"] == BucketSpec(25, 25, 1)
    assert preset("auth0-essentials") is paid
    for name in ("self-hosted", "auth0-free", "auth0-paid"):
        p = preset(name)
        assert p["management.subject"] == BucketSpec(10, 10, 60)
        assert p["authentication.endpoints.userinfo"] == BucketSpec(10, 5, 60)
        assert set(p.specs) == set(RULES)
    assert parse_rate_limits(None) == preset("self-hosted")


def test_tenant_file_and_environment_override_the_preset() -> None:
    config = {
        "preset": "auth0-free",
        "management": {
            "subject": "20/min",
            "endpoints": {"usersRead": {"rate": "5/s", "burst": 9}},
        },
        "authentication": {"tenant": "off", "ip": None},
    }
    got = parse_rate_limits(config, overrides="management.subject=30/minutes burst 40\n")
    assert got["management.subject"] == BucketSpec(40, 30, 60)
    assert got["management.endpoints.usersRead"] == BucketSpec(9, 5, 1)
    assert got["management.tenant"] == BucketSpec(2, 2, 1)  # from the preset
    assert got["authentication.tenant"] is None
    assert parse_rate_limits(config, preset_name="auth0-paid")["management.tenant"] is None


def test_unauthenticated_requests_have_a_rule_of_their_own() -> None:
    for name in ("self-hosted", "auth0-free", "auth0-paid"):
        assert preset(name)["unauthenticated.ip"] == BucketSpec(300, 10, 1)
    assert preset("off")["unauthenticated.ip"] is None
    tuned = parse_rate_limits({"unauthenticated": {"ip": "5/s burst 100"}})
    assert tuned["unauthenticated.ip"] == BucketSpec(100, 5, 1)
    assert tuned["authentication.ip"] == preset("self-hosted")["authentication.ip"]
    assert parse_rate_limits(None, overrides="unauthenticated.ip=off")["unauthenticated.ip"] is None


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("10/min", BucketSpec(10, 10, 60)),
        ("5/min burst 10", BucketSpec(10, 5, 60)),
        ("50/hour, burst 60", BucketSpec(60, 50, 3600)),
        ("3/10s", BucketSpec(3, 3, 10)),
        ("5 / days", BucketSpec(5, 5, 86400)),
    ],
)
def test_parse_spec(text: str, spec: BucketSpec) -> None:
    assert parse_spec(text) == spec


@pytest.mark.parametrize(
    ("config", "overrides", "message"),
    [
        ({"preset": "auth0-gold"}, "", "unknown rate-limit preset 'auth0-gold'"),
        ({"managment": {}}, "", "rateLimits.managment: unknown key"),
        ({"management": {"subjct": "1/s"}}, "", "rateLimits.management.subjct: unknown limit"),
        ({"management": {"endpoints": {"x": "1/s"}}}, "", "management.endpoints.x: unknown"),
        ({"management": {"subject": "ten per minute"}}, "", "management.subject: 'ten per"),
        ({"management": {"subject": "5/ms"}}, "", "is not a rate limit"),
        ({"management": {"subject": "0/s"}}, "", "burst ≥ 1"),
        ({"management": {"subject": 10}}, "", "expected a limit such as '10/min'"),
        ({"management": {"subject": {"rate": "1/s", "burst": "x"}}}, "", "burst must be an int"),
        ({"management": {"subject": {"every": "1/s"}}}, "", "{rate: '5/min', burst: 10}"),
        ({"management": ["1/s"]}, "", "rateLimits.management must be a mapping"),
        ({}, "management.subject 1/s", "must be RULE=LIMIT"),
        ({}, "management.nope=1/s", "must be RULE=LIMIT"),
    ],
)
def test_bad_configuration_is_a_clear_config_error(
    config: dict[str, object], overrides: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_rate_limits(config, overrides=overrides)
    assert message in str(caught.value)


# --- Headers and 429 bodies (§12.1) ------------------------------------------------------------


def test_headers_on_success_and_on_429() -> None:
    ok = Decision(True, 10, 7, int(T0) + 36, 0, "management.subject")
    assert rate_limit_headers(ok) == {
        "x-ratelimit-limit": "10",
        "x-ratelimit-remaining": "7",
        "x-ratelimit-reset": str(int(T0) + 36),
    }
    refused = Decision(False, 10, 0, int(T0) + 120, 12, "management.subject")
    assert rate_limit_headers(refused)["retry-after"] == "12"
    assert rate_limit_headers(Decision(True, 0, 0, 0, 0, "")) == {}


DETAIL = (
    "Too many requests. Check the X-RateLimit-Limit, X-RateLimit-Remaining and "
    "X-RateLimit-Reset headers."
)


@pytest.mark.parametrize(
    ("api", "bucket", "body"),
    [
        (
            "management",
            "management.tenant",
            {
                "statusCode": 429,
                "error": "Too Many Requests",
                "message": "Global limit has been reached",
                "errorCode": "too_many_requests",
            },
        ),
        (
            "management",
            "management.subject",
            {
                "statusCode": 429,
                "error": "Too Many Requests",
                "message": DETAIL,
                "errorCode": "too_many_requests",
            },
        ),
        (
            "authentication",
            "authentication.ip",
            {"error": "too_many_requests", "error_description": DETAIL},
        ),
    ],
)
def test_429_bodies(api: str, bucket: str, body: dict[str, object]) -> None:
    refused = Decision(False, 2, 0, int(T0) + 1, 1, bucket)
    assert too_many_requests_body(api, refused) == body  # type: ignore[arg-type]


async def test_enforce_returns_headers_then_raises_the_apis_own_error(clock: FixedClock) -> None:
    limiter = make_limiter(clock, management_tenant="2/s", authentication_ip="1/s")
    tenant = limiter.management(client_id="m2m")
    headers = await enforce(limiter, tenant, api="management")
    assert headers["x-ratelimit-remaining"] == "1"
    await enforce(limiter, tenant, api="management")
    with pytest.raises(ManagementRateLimited) as caught:
        await enforce(limiter, tenant, api="management")
    assert caught.value.status == 429
    assert caught.value.body() == too_many_requests_body("management", caught.value.decision)
    assert caught.value.headers["retry-after"] == "1"
    ip = limiter.authentication(ip="198.51.100.7")
    await enforce(limiter, ip, api="authentication")
    with pytest.raises(AuthenticationRateLimited) as refused:
        await enforce(limiter, ip, api="authentication")
    assert refused.value.body() == {"error": "too_many_requests", "error_description": DETAIL}
    assert refused.value.headers["x-ratelimit-reset"] == str(int(T0) + 1)


async def test_send_too_many_requests_writes_the_429_on_asgi(clock: FixedClock) -> None:
    limiter = make_limiter(clock, management_tenant="1/s")
    await enforce(limiter, limiter.management(client_id="m2m"), api="management")
    with pytest.raises(ManagementRateLimited) as caught:
        await enforce(limiter, limiter.management(client_id="m2m"), api="management")
    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await send_too_many_requests(send, caught.value)
    start, body = sent
    assert start["status"] == 429
    headers = dict(start["headers"])
    assert headers[b"retry-after"] == b"1"
    assert headers[b"x-ratelimit-limit"] == b"1"
    assert headers[b"x-ratelimit-reset"] == str(int(T0) + 1).encode()
    assert json.loads(body["body"])["message"] == "Global limit has been reached"
    assert headers[b"content-length"] == str(len(body["body"])).encode()


async def test_create_picks_the_backend_from_the_redis_url(clock: FixedClock) -> None:
    memory = Limiter.create(preset("self-hosted"), clock=clock)
    assert isinstance(memory.backend, MemoryBackend)
    shared = Limiter.create(preset("self-hosted"), redis_url="redis://127.0.0.1:1/0")
    assert isinstance(shared.backend, RedisBackend)
    await shared.aclose()
