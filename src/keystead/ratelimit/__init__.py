"""Rate limiting (contract §12): nested token buckets, in-process or shared through Redis."""

from keystead.core.ratelimit import Bucket, BucketSpec, Decision, RateLimits, parse_rate_limits
from keystead.ratelimit.headers import rate_limit_headers, too_many_requests_body
from keystead.ratelimit.limiter import Backend, Limiter
from keystead.ratelimit.memory import MemoryBackend

__all__ = [
    "Backend",
    "Bucket",
    "BucketSpec",
    "Decision",
    "Limiter",
    "MemoryBackend",
    "RateLimits",
    "parse_rate_limits",
    "rate_limit_headers",
    "too_many_requests_body",
]
