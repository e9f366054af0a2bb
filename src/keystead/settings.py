"""Settings: every option Keystead reads, documented here and nowhere else.

Each field has a `KEYSTEAD_<NAME>` environment variable. `Settings.from_env` reads them once;
the CLI layers its own flags on top; everything else receives a `Settings` and never reads
`os.environ` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

from keystead.core.bruteforce import BruteForcePolicy
from keystead.core.ratelimit import parse_overrides, preset
from keystead.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"  # interface `keystead serve` binds to
    port: int = 8080
    # Public base URL and the `iss` of every token; always ends with "/". Empty: derived from
    # scheme, host and port at start (see `with_defaults`).
    issuer: str = ""
    database_url: str = "sqlite:///keystead.db"  # or postgresql://user@host/db
    data_dir: str = ".keystead"  # dev CA, certificates and other local files
    # Encrypts signing keys at rest. Unset: keys are stored in clear and a warning is printed.
    secret_key: str = field(default="", repr=False)
    tenant_file: str = ""  # applied at start when set (`keystead apply` does it on demand)
    tls_cert: str = ""
    tls_key: str = ""
    dev_tls: bool = False  # serve HTTPS with a certificate from a local development CA
    workers: int = 1
    # Other identifiers accepted as the Management API audience (custom domains).
    management_audience_aliases: tuple[str, ...] = ()
    access_token_ttl: int = 86_400  # seconds, for resource servers that set none
    id_token_ttl: int = 36_000  # seconds, client jwt_configuration.lifetime_in_seconds default
    max_body_bytes: int = 1_048_576  # requests with a larger body get 413
    # How stale a worker's copy of clients, APIs, grants, connections and tenant settings may
    # get when another worker or replica changes them (the changing worker sees it at once).
    config_refresh_ms: int = 1000
    redis_url: str = ""  # shared rate-limit state between replicas; empty: in-process
    # Rate limits (contract §12): a preset (self-hosted, auth0-free, auth0-paid, off); empty:
    # the tenant file's `rateLimits.preset`, else self-hosted. Tenant `rateLimits:` entries and
    # then `rate_limits` ("management.subject=20/min; authentication.ip=off") override it.
    rate_limit_preset: str = ""
    rate_limits: str = ""
    rate_limit_fail_closed: bool = False  # Redis unreachable: refuse (429), not per-process
    bruteforce_max_attempts: int = 10  # failed logins in a row per (user, IP) to block; 0: off
    bruteforce_block_seconds: int = 0  # how long a block lasts; 0: until unblocked or reset
    suspicious_ip_login_limit: str = "100/day"  # failed logins per IP, all accounts; "off"
    suspicious_ip_signup_limit: str = "50/day"  # signups per IP; "off"
    # IPs and CIDR ranges exempt from brute-force blocks and suspicious-IP throttling.
    attack_protection_allowlist: tuple[str, ...] = ()
    log_level: str = "info"
    # Outgoing mail (password-reset links). Empty host: no mail is sent; on a development
    # issuer (localhost, *.test, *.localhost) links are logged instead (keystead/mail.py).
    smtp_host: str = ""
    smtp_port: int = 587  # 465: TLS from the first byte; otherwise plain, then STARTTLS
    smtp_username: str = ""  # empty: no AUTH
    smtp_password: str = field(default="", repr=False)
    smtp_from: str = ""  # From address; empty: no-reply@<issuer host>
    smtp_starttls: bool = True  # refuse to send unless the server upgrades to TLS (not on 465)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Self:
        """Read every `KEYSTEAD_*` variable that names a field."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get("KEYSTEAD_" + f.name.upper())
            if raw is not None:
                values[f.name] = _coerce(f.name, f.type, raw)
        return cls(**values)

    def merged(self, **overrides: Any) -> Self:
        """Return a copy with every override that is not None applied (CLI flags)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    @property
    def tls_enabled(self) -> bool:
        return self.dev_tls or bool(self.tls_cert)

    def with_defaults(self) -> Self:
        """Fill the issuer from scheme/host/port, normalise it, validate the rest."""
        issuer = self.issuer
        if not issuer:
            scheme = "https" if self.tls_enabled else "http"
            host = "localhost" if self.host in ("0.0.0.0", "::") else self.host
            issuer = f"{scheme}://{host}:{self.port}/"
        if not issuer.endswith("/"):
            issuer += "/"
        parts = urlsplit(issuer)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"issuer must be an http(s) URL, got {self.issuer!r}")
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be between 1 and 65535, got {self.port}")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ConfigError("--tls-cert and --tls-key must be given together")
        self._check_rate_limits()
        return replace(self, issuer=issuer)

    def _check_rate_limits(self) -> None:
        """Fail at start, not at the first request (tenant `rateLimits` is checked on apply)."""
        if self.rate_limit_preset:
            preset(self.rate_limit_preset)
        parse_overrides(self.rate_limits)
        BruteForcePolicy.from_settings(
            max_attempts=self.bruteforce_max_attempts,
            block_seconds=self.bruteforce_block_seconds,
            login_ip=self.suspicious_ip_login_limit,
            signup_ip=self.suspicious_ip_signup_limit,
            allowlist=self.attack_protection_allowlist,
        )

    @property
    def management_audience(self) -> str:
        return self.issuer + "api/v2/"

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir)


def _coerce(name: str, type_: Any, raw: str) -> Any:
    kind = str(type_)
    if kind == "bool":
        low = raw.strip().lower()
        if low in _TRUE:
            return True
        if low in _FALSE:
            return False
        raise ConfigError(f"KEYSTEAD_{name.upper()} must be true or false, got {raw!r}")
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"KEYSTEAD_{name.upper()} must be an integer, got {raw!r}") from None
    if kind.startswith("tuple"):
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    return raw
