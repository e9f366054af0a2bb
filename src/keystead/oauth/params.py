"""Authentication API request bodies, read once: JSON or form-urlencoded (contract §0.2).

    params = await read_params(request)     400 invalid_request for anything unreadable
    params.get("audience")                  str | None: JSON null and "" mean absent
    params.required("code")                 "Missing required parameter: code"
    params.raw("scope")                     as sent (a JSON list stays a list): core parses it

Types are checked when a parameter is read, not when the body is, so unknown parameters of any
shape are ignored (contract §0.2: never a 400 for them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import parse_qsl

from starlette.requests import Request

from keystead.errors import InvalidRequest

FORM: Final = "application/x-www-form-urlencoded"
JSON: Final = "application/json"
_SCOPE_KEY: Final = "keystead.params"
MAX_FIELDS: Final = 200  # a token request has about ten; bounds parsing work on hostile bodies


def printable(text: str, limit: int = 100) -> str:
    """Request text echoed in an error_description: printable ASCII only, bounded."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text[: limit + 1])
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."


class Params:
    """One request's parameters. Values are `str`, or anything JSON gave for a JSON body."""

    __slots__ = ("_values",)

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = values

    def __contains__(self, name: object) -> bool:
        """Sent and not null or ""."""
        return isinstance(name, str) and self.raw(name) is not None

    def raw(self, name: str) -> Any:
        """The value as sent, with null and "" as None (for `scope`, which may be a list)."""
        value = self._values.get(name)
        return None if value is None or value == "" else value

    def get(self, name: str) -> str | None:
        """A string parameter; None when absent. Another JSON type is an invalid_request."""
        value = self._values.get(name)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise InvalidRequest(f"Invalid parameter: {name} must be a string")
        return value

    def required(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise InvalidRequest(f"Missing required parameter: {name}")
        return value


async def read_params(request: Request) -> Params:
    """Parse the body by its Content-Type; an empty body without one is an empty form.

    Parsed once per request: the rate limiter reads the same parameters before the endpoint.
    """
    cached = request.scope.get(_SCOPE_KEY)
    if isinstance(cached, Params):
        return cached
    params = await _parse(request)
    request.scope[_SCOPE_KEY] = params
    return params


async def _parse(request: Request) -> Params:
    body = await request.body()
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == FORM or (not media_type and not body):
        return Params(_form(body))
    if media_type == JSON or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return Params(_json(body))
    raise InvalidRequest(f"Content-Type must be {JSON} or {FORM}")


def _form(body: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(
            body.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=False,
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("The request body is not valid form-urlencoded UTF-8") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        # RFC 6749 §3.2: parameters MUST NOT be included more than once.
        if name in values:
            raise InvalidRequest(f"Parameter sent more than once: {printable(name)}")
        values[name] = value
    return values


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # NaN, Infinity: Python's json accepts them


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    if len(pairs) > MAX_FIELDS:
        raise ValueError("too many members")
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("duplicate member")
    return out


def _json(body: bytes) -> dict[str, Any]:
    try:
        # Decoded first: json.loads(bytes) would also guess UTF-16/32, and a BOM is refused.
        value = json.loads(
            body.decode("utf-8"),
            parse_constant=_reject_constant,
            object_pairs_hook=_unique_object,
        )
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequest("The request body is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidRequest("The request body must be a JSON object")
    return value
