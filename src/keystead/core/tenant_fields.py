"""Tenant file fields: the entry reader and value checks (URLs, emails, JSON-only values)."""

from __future__ import annotations

import difflib
from typing import Any

from keystead.core.redirects import callback_url_problem, host_matches, is_loopback_host, split_url
from keystead.errors import ConfigError


def url_error(url: str, *, origin: bool = False) -> str | None:
    """Why `url` cannot be registered as a callback or logout URL (or, with `origin`, as a web
    origin); None when it can. The Management API's rules (core/redirects.py, security case
    AZ-05): no fragment, no script schemes, http only for loopback hosts, `*` only as Auth0's
    left-most-label wildcard."""
    if not origin:
        problem = callback_url_problem(url)
        return f"{url!r} {problem}" if problem else None
    parts = split_url(url)
    if parts is None or parts.scheme.lower() not in ("http", "https"):
        return f"{url!r} must be an http(s) origin like https://app.example.com"
    if parts.path or parts.query is not None or parts.fragment is not None:
        return (
            f"{url!r} must be an origin: scheme, host and port only, like https://app.example.com"
        )
    if "*" in parts.host and not host_matches(parts.host, parts.host.replace("*", "x", 1)):
        return f"{url!r} may only use * in the left-most label of a host with at least three labels"
    if parts.scheme.lower() == "http" and not is_loopback_host(parts.host):
        return f"{url!r} must use https unless the host is a loopback address"
    return None


def email_error(email: str) -> str | None:
    local, at, domain = email.partition("@")
    if not at or not local or not domain or "@" in domain or any(c.isspace() for c in email):
        return f"{email!r} is not an email address"
    if len(email) > 320:
        return "must be at most 320 characters"
    return None


def missing_scopes(requested: tuple[str, ...], available: frozenset[str]) -> list[str]:
    return [s for s in requested if s not in available]


def _list(items: Any) -> str:
    return ", ".join(str(i) for i in items)


def _hint(key: str, known: Any) -> str:
    names = sorted(str(k) for k in known)
    close = difflib.get_close_matches(key, names, n=1) or [n for n in names if n.startswith(key)]
    return f" (did you mean {close[0]}?)" if close else ""


# --- entry reader ------------------------------------------------------------------------------


class _Entry:
    """One mapping of the file; reads typed fields and reports errors at `{at}.{field}`."""

    def __init__(self, source: str, at: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: {at}: must be a mapping")
        self.source, self.at, self.data = source, at, data
        self.known: set[str] = set()

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {self.at}.{key}: {message}")

    def raw(self, key: str) -> Any:
        self.known.add(key)
        return self.data.get(key)

    def optional(self, key: str, max_len: int = 255) -> str | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(key, "must be a string")
        if len(value) > max_len:
            raise self.error(key, f"must be at most {max_len} characters")
        return value

    def required(self, key: str, max_len: int = 255) -> str:
        value = self.optional(key, max_len)
        if value is None:
            raise self.error(key, "is required")
        if not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def text(self, key: str, max_len: int = 255, default: str = "") -> str:
        value = self.optional(key, max_len)
        return default if value is None else value

    def optional_bool(self, key: str) -> bool | None:
        value = self.raw(key)
        if value is not None and not isinstance(value, bool):
            raise self.error(key, "must be true or false")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self.optional_bool(key)
        return default if value is None else value

    def integer(self, key: str, default: int, low: int, high: int) -> int:
        value = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, "must be an integer")
        if not low <= value <= high:
            raise self.error(key, f"must be between {low} and {high}")
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        value = self.raw(key)
        if value is None:
            return default
        if value not in options:
            raise self.error(key, f"must be one of {_list(options)}, got {value!r}")
        return str(value)

    def strings(
        self, key: str, default: tuple[str, ...] = (), max_len: int = 600
    ) -> tuple[str, ...]:
        value = self.raw(key)
        if value is None:
            return default
        if not isinstance(value, list):
            raise self.error(key, "must be a list of strings")
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise self.error(f"{key}[{i}]", "must be a non-empty string")
            if len(item) > max_len:
                raise self.error(f"{key}[{i}]", f"must be at most {max_len} characters")
            if item not in out:
                out.append(item)
        return tuple(out)

    def urls(self, key: str, *, origin: bool = False) -> tuple[str, ...]:
        value = self.raw(key)
        if value is not None and not isinstance(value, list):
            raise self.error(
                key, "must be a list of origins" if origin else "must be a list of URLs"
            )
        urls = self.strings(key, max_len=2048)
        for i, url in enumerate(urls):
            problem = url_error(url, origin=origin)
            if problem:
                raise self.error(f"{key}[{i}]", problem)
        return urls

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.raw(key)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(key, "must be a mapping")
        check_json(value, f"{self.at}.{key}", self.source)
        return value

    def finish(self, passthrough: frozenset[str] = frozenset()) -> dict[str, Any]:
        """Refuse unknown fields (typos must not pass silently); return passthrough ones."""
        extra: dict[str, Any] = {}
        for key, value in self.data.items():
            if key in self.known:
                continue
            if key in passthrough:
                check_json(value, f"{self.at}.{key}", self.source)
                extra[key] = value
                continue
            hint = _hint(str(key), self.known | passthrough)
            raise self.error(str(key), f"unknown field{hint}")
        return extra


def check_json(value: Any, at: str, source: str) -> None:
    """Only JSON values may be stored (YAML also has sets, binary, non-string keys…)."""
    if value is None or isinstance(value, str | bool | int | float):
        return
    if isinstance(value, list):
        for i, item in enumerate(value):
            check_json(item, f"{at}[{i}]", source)
        return
    if isinstance(value, dict):
        for k, item in value.items():
            if not isinstance(k, str):
                raise ConfigError(f"{source}: {at}: key {k!r} must be a string")
            check_json(item, f"{at}.{k}", source)
        return
    raise ConfigError(f"{source}: {at}: {type(value).__name__} is not a JSON value")


def _check_metadata_keys(value: Any, at: str, source: str) -> None:
    if isinstance(value, dict):
        for k, item in value.items():
            if "." in k or "$" in k:
                raise ConfigError(f"{source}: {at}.{k}: metadata keys must not contain . or $")
            _check_metadata_keys(item, f"{at}.{k}", source)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _check_metadata_keys(item, f"{at}[{i}]", source)
