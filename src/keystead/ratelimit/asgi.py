"""`enforce`: what rate-limiting middleware or a route calls; raises the API's own 429 error.

Framework-free: the errors are those of `keystead.errors`, carrying the headers to send, so the
existing error handlers render the §12.1 bodies (they must add `exc.headers` to the response).
A pure ASGI middleware, outside those handlers, answers with `send_too_many_requests` instead.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

from keystead.core.ratelimit import Bucket, Decision
from keystead.errors import ApiTooManyRequests, TooManyRequests
from keystead.ratelimit.headers import DETAIL, Api, management_message, rate_limit_headers
from keystead.ratelimit.limiter import Limiter

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class ManagementRateLimited(ApiTooManyRequests):
    def __init__(self, decision: Decision, headers: dict[str, str]) -> None:
        super().__init__(management_message(decision), detail=f"bucket {decision.bucket_name}")
        self.decision = decision
        self.headers = headers


class AuthenticationRateLimited(TooManyRequests):
    def __init__(self, decision: Decision, headers: dict[str, str]) -> None:
        super().__init__(DETAIL, detail=f"bucket {decision.bucket_name}")
        self.decision = decision
        self.headers = headers


async def enforce(
    limiter: Limiter, buckets: Sequence[Bucket], *, api: Api, cost: int = 1
) -> dict[str, str]:
    """The X-RateLimit headers to add to the response, or the 429 error (with them) to raise."""
    decision = await limiter.check(buckets, cost)
    headers = rate_limit_headers(decision)
    if decision.allowed:
        return headers
    if api == "management":
        raise ManagementRateLimited(decision, headers)
    raise AuthenticationRateLimited(decision, headers)


async def send_too_many_requests(
    send: Send, exc: ManagementRateLimited | AuthenticationRateLimited
) -> None:
    """Answer a refused request directly on an ASGI `send`, headers and body per §12.1."""
    body = json.dumps(exc.body()).encode()
    headers = [(k.encode(), v.encode()) for k, v in exc.headers.items()]
    headers += [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if isinstance(exc, AuthenticationRateLimited):
        headers += [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
