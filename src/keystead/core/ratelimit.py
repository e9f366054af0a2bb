"""Rate limits: token buckets, nested all-or-nothing checks, presets, `rateLimits:` (contract §12).

A request names a list of buckets, most specific first (subject → client → endpoint → tenant).
All of them are refilled and checked; only if every one holds a token is one drawn from each.
So a request refused anywhere draws from none of them: a user spamming past their own bucket
never drains the tenant's, and a user refused because the tenant is empty keeps their own token
(nothing was taken, so there is nothing to refund).

Here: the rules (what a bucket is keyed by), the presets and `rateLimits:` parsing. The bucket
arithmetic is core/ratelimit_buckets.py, re-exported so callers import from one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from keystead.core.ratelimit_buckets import (
    EPSILON,
    UNLIMITED,
    Bucket,
    BucketSpec,
    BucketState,
    Decision,
    check,
    decide,
    full_at,
    level,
)
from keystead.errors import ConfigError

__all__ = [
    "AUTHENTICATION_ENDPOINTS", "DEFAULT_PRESET", "EPSILON", "MANAGEMENT_ENDPOINTS", "PRESETS",
    "PRESET_ALIASES", "RULES", "UNLIMITED", "Bucket", "BucketSpec", "BucketState", "Decision",
    "RateLimits", "check", "decide", "full_at", "level", "management_endpoint", "parse_overrides",
    "parse_rate_limits", "parse_spec", "preset",
]  # fmt: skip

# --- Rules: what a bucket is keyed by ----------------------------------------------------------

MANAGEMENT_ENDPOINTS: Final = (
    "usersRead",  # GET /users*
    "usersWrite",  # POST, PATCH, PUT, DELETE /users*
    "logsRead",
    "clientsRead",
    "connectionsRead",
    "deviceCredentialsWrite",
    "signingKeysRotate",
    "other",  # every other endpoint, combined
)
# Each Authentication endpoint bucket is keyed as Auth0 keys it (§12.2).
AUTHENTICATION_ENDPOINTS: Final[Mapping[str, str]] = {
    "token": "tenant",  # POST /oauth/token
    "jwks": "tenant",  # GET /.well-known/jwks.json
    "userinfo": "user",  # per user id
    "changePassword": "ip+email",
    "passwordlessStart": "ip",
}
RULES: Final[tuple[str, ...]] = (
    "management.subject",  # `sub` of a current-user-scoped token
    "management.client",  # `azp` of the token
    *(f"management.endpoints.{e}" for e in MANAGEMENT_ENDPOINTS),
    "management.tenant",
    "authentication.ipUser",  # (IP, username) of a password check
    *(f"authentication.endpoints.{e}" for e in AUTHENTICATION_ENDPOINTS),
    "authentication.ip",
    "authentication.client",
    "authentication.tenant",
    "unauthenticated.ip",  # an IP's requests whose bearer token is missing or refused, per API
)

_GROUP_BY_RESOURCE: Final = {
    ("GET", "users"): "usersRead",
    ("GET", "users-by-email"): "usersRead",
    ("GET", "logs"): "logsRead",
    ("GET", "clients"): "clientsRead",
    ("GET", "connections"): "connectionsRead",
    ("POST", "device-credentials"): "deviceCredentialsWrite",
    ("DELETE", "device-credentials"): "deviceCredentialsWrite",
}


def management_endpoint(method: str, path: str) -> str:
    """The Management endpoint group of a request (§12.2, paid plans); path may keep /api/v2."""
    parts = [p for p in path.removeprefix("/api/v2").split("/") if p]
    method = method.upper()
    resource = parts[0] if parts else ""
    if resource == "users" and method in ("POST", "PATCH", "PUT", "DELETE"):
        return "usersWrite"
    if method == "POST" and parts[:3] == ["keys", "signing", "rotate"]:
        return "signingKeysRotate"
    return _GROUP_BY_RESOURCE.get((method, resource), "other")


# --- Configuration: presets and `rateLimits:` ---------------------------------------------------

_UNITS: Final = {"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60,
                 "h": 3600, "hour": 3600, "d": 86400, "day": 86400}  # fmt: skip
_SPEC_RE: Final = re.compile(
    r"^\s*(?P<n>\d+)\s*/\s*(?P<k>\d+(?:\.\d+)?)?\s*(?P<unit>[a-z]+)"
    r"(?:\s*,?\s*burst\s*(?P<burst>\d+))?\s*$"
)
_OFF: Final = ("off", "none", "unlimited")


def parse_spec(text: str) -> BucketSpec:
    """`"5/min burst 10"`, `"25/s"` (burst = rate), `"50/hour"`, `"100/10s"`."""
    m = _SPEC_RE.match(text.lower())
    unit = m["unit"] if m else ""
    if len(unit) > 2 and unit not in _UNITS:
        unit = unit.removesuffix("s")  # plurals, but "ms" is not minutes
    if m is None or unit not in _UNITS:
        raise ConfigError(
            f"{text!r} is not a rate limit; write e.g. '10/min', '5/min burst 10' or '25/s'"
        )
    refill = int(m["n"])
    per = float(m["k"] or 1) * _UNITS[unit]
    return BucketSpec(burst=int(m["burst"] or refill), refill=refill, per_seconds=per)


@dataclass(frozen=True)
class RateLimits:
    """A spec (or None: not limited) for every rule of RULES."""

    specs: Mapping[str, BucketSpec | None]

    def __getitem__(self, rule: str) -> BucketSpec | None:
        return self.specs[rule]

    def updated(self, changes: Mapping[str, BucketSpec | None]) -> RateLimits:
        unknown = sorted(set(changes) - set(RULES))
        if unknown:
            raise ConfigError(f"unknown rate limit {unknown[0]!r}; known: {', '.join(RULES)}")
        return RateLimits({**self.specs, **changes})


def _preset(given: Mapping[str, str]) -> RateLimits:
    return RateLimits(dict.fromkeys(RULES)).updated(
        {rule: parse_spec(t) for rule, t in given.items()}
    )


# Auth0's published figures (§12.2). The current-user bucket is 10/min in every preset, and
# requests without a valid token draw from their IP's bucket, never the tenant's shared ones.
_AUTH0_PER_USER: Final = {
    "unauthenticated.ip": "10/s burst 300",
    "management.subject": "10/min",
    "authentication.ipUser": "10/min burst 20",  # same user from one IP: after 20/min, 10/min
    "authentication.endpoints.userinfo": "5/min burst 10",
    "authentication.endpoints.changePassword": "1/min burst 10",
    "authentication.endpoints.passwordlessStart": "50/hour",
}
PRESETS: Final[Mapping[str, RateLimits]] = {
    # Self-hosting: generous shared buckets, Auth0's per-user ones (pain points §14 #3, #9).
    "self-hosted": _preset(
        {
            **_AUTH0_PER_USER,
            "management.client": "50/s burst 100",
            "management.tenant": "100/s burst 200",
            "authentication.ip": "10/s burst 300",
            "authentication.client": "100/s burst 500",
            "authentication.tenant": "500/s burst 2000",
        }
    ),
    "auth0-free": _preset(
        {
            **_AUTH0_PER_USER,
            "management.tenant": "2/s",
            "management.endpoints.signingKeysRotate": "5/day",
            "authentication.tenant": "300/min",
            "authentication.endpoints.token": "30/s",
            "authentication.endpoints.jwks": "20/s",
        }
    ),
    # Essentials and Professional: no tenant-wide Management bucket, one per endpoint group.
    "auth0-paid": _preset(
        {
            **_AUTH0_PER_USER,
            "management.endpoints.usersRead": "500/min burst 40",
            "management.endpoints.usersWrite": "200/min burst 20",
            "management.endpoints.logsRead": "100/min burst 10",
            "management.endpoints.clientsRead": "100/min burst 5",
            "management.endpoints.connectionsRead": "50/min burst 5",
            "management.endpoints.deviceCredentialsWrite": "100/min burst 5",
            "management.endpoints.signingKeysRotate": "5/day",
            "management.endpoints.other": "150/min burst 10",
            "authentication.tenant": "25/s",
        }
    ),
    "off": _preset({}),
}
PRESET_ALIASES: Final = {"auth0-essentials": "auth0-paid", "auth0-professional": "auth0-paid"}
DEFAULT_PRESET: Final = "self-hosted"


def preset(name: str) -> RateLimits:
    found = PRESETS.get(PRESET_ALIASES.get(name, name))
    if found is None:
        choices = ", ".join([*PRESETS, *PRESET_ALIASES])
        raise ConfigError(f"unknown rate-limit preset {name!r}; choose one of {choices}")
    return found


def parse_rate_limits(
    config: Mapping[str, object] | None, *, preset_name: str = "", overrides: str = ""
) -> RateLimits:
    """Resolve limits: preset (`preset_name`, else the tenant's `preset`, else self-hosted),
    then the tenant file's `rateLimits:` entries, then `overrides` (environment), each winning.

        rateLimits:
          preset: auth0-free
          management: {subject: 20/min, tenant: 5/s burst 10, endpoints: {usersRead: off}}
          authentication: {ip: 10/s burst 300, ipUser: 10/min burst 20}
          unauthenticated: {ip: 5/s burst 100}
    """
    config = config or {}
    if not isinstance(config, Mapping):
        raise ConfigError("rateLimits must be a mapping")
    name = preset_name or config.get("preset") or DEFAULT_PRESET
    if not isinstance(name, str):
        raise ConfigError("rateLimits.preset must be a preset name")
    limits = preset(name)
    changes: dict[str, BucketSpec | None] = {}
    sections = ("management", "authentication", "unauthenticated")
    for section in sections:
        _flatten(config.get(section), section, changes)
    unknown = sorted(set(config) - {"preset", *sections})
    if unknown:
        raise ConfigError(
            f"rateLimits.{unknown[0]}: unknown key; expected preset, {', '.join(sections)}"
        )
    return limits.updated(changes).updated(parse_overrides(overrides))


def parse_overrides(text: str) -> dict[str, BucketSpec | None]:
    """`management.subject=20/min; authentication.ip=off` (the environment's form)."""
    out: dict[str, BucketSpec | None] = {}
    for item in re.split(r"[;\n]", text):
        if not item.strip():
            continue
        rule, sep, value = item.partition("=")
        rule = rule.strip()
        if not sep or rule not in RULES:
            raise ConfigError(
                f"rate-limit override {item.strip()!r} must be RULE=LIMIT with RULE one of "
                + ", ".join(RULES)
            )
        out[rule] = _spec_value(value.strip(), rule)
    return out


def _flatten(node: object, path: str, out: dict[str, BucketSpec | None]) -> None:
    if node is None:
        return
    if not isinstance(node, Mapping):
        raise ConfigError(f"rateLimits.{path} must be a mapping")
    for key, value in node.items():
        rule = f"{path}.{key}"
        if rule in RULES:
            out[rule] = _spec_value(value, rule)
        elif any(r.startswith(rule + ".") for r in RULES):
            _flatten(value, rule, out)
        else:
            known = sorted(
                {
                    r.removeprefix(path + ".").split(".")[0]
                    for r in RULES
                    if r.startswith(path + ".")
                }
            )
            raise ConfigError(
                f"rateLimits.{rule}: unknown limit; expected one of {', '.join(known)}"
            )


def _spec_value(value: object, rule: str) -> BucketSpec | None:
    """A limit is a string ('5/min burst 10'), {rate, burst}, or off/null/false (no limit)."""
    try:
        if value is None or value is False or (isinstance(value, str) and value.lower() in _OFF):
            return None
        if isinstance(value, str):
            return parse_spec(value)
        if isinstance(value, Mapping):
            extra = sorted(set(value) - {"rate", "burst"})
            rate, burst = value.get("rate"), value.get("burst")
            if extra or not isinstance(rate, str):
                raise ConfigError("write {rate: '5/min', burst: 10} (burst optional)")
            base = parse_spec(rate)
            if burst is None:
                return base
            if not isinstance(burst, int) or isinstance(burst, bool):
                raise ConfigError(f"burst must be an integer, got {burst!r}")
            return BucketSpec(burst, base.refill, base.per_seconds)
        raise ConfigError(f"expected a limit such as '10/min' or off, got {value!r}")
    except ConfigError as exc:
        raise ConfigError(f"rateLimits.{rule}: {exc}") from None
