"""Pure ASGI middleware that refuses malformed requests before any handler reads them.

- Bodies above `max_bytes` (declared or streamed) get 413.
- A NUL character anywhere in the path, query or body gets 400. No Auth0 request carries one,
  and PostgreSQL cannot store one in text, so letting it through would only turn bad input into
  a driver error deep inside a handler.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_NUL_MARKERS = (b"\x00", b"\\u0000", b"%00")


NUL_IN_PATH = "Path validation error: 'String must not contain NUL characters'."
NUL_IN_QUERY = "Query validation error: 'String must not contain NUL characters'."
NUL_IN_BODY = "Payload validation error: 'String must not contain NUL characters'."


class _Refused(Exception):
    def __init__(self, status: int, message: str, code: str = "payload_too_large") -> None:
        self.status = status
        self.message = message
        self.code = code


def _has_nul(data: bytes) -> bool:
    return any(marker in data for marker in _NUL_MARKERS)


class BodySizeLimit:
    """413 for a body above `max_bytes`, 400 for a NUL character; nothing else is touched."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogateescape")
        if _has_nul(raw_path):
            await _refuse(scope, send, _Refused(400, NUL_IN_PATH, "invalid_uri"))
            return
        if _has_nul(scope.get("query_string", b"")):
            await _refuse(scope, send, _Refused(400, NUL_IN_QUERY, "invalid_query_string"))
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = self.max_bytes + 1
                if declared > self.max_bytes:
                    await _refuse(scope, send, _Refused(413, "Request body is too large."))
                    return
        seen = 0
        tail = b""  # last bytes of the previous chunk, so a marker split across chunks is found

        async def guarded_receive() -> Message:
            nonlocal seen, tail
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                seen += len(chunk)
                if seen > self.max_bytes:
                    raise _Refused(413, "Request body is too large.")
                if _has_nul(tail + chunk):
                    raise _Refused(400, NUL_IN_BODY, "invalid_body")
                tail = chunk[-5:]
            return message

        try:
            await self.app(scope, guarded_receive, send)
        except _Refused as refused:
            await _refuse(scope, send, refused)


async def _refuse(scope: Scope, send: Send, refused: _Refused) -> None:
    if scope["path"].startswith("/api/v2"):
        phrase = "Payload Too Large" if refused.status == 413 else "Bad Request"
        body = {
            "statusCode": refused.status,
            "error": phrase,
            "message": refused.message,
            "errorCode": refused.code,
        }
    else:
        body = {"error": "invalid_request", "error_description": refused.message}
    raw = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(raw)).encode()),
                (b"cache-control", b"no-store"),
                (b"pragma", b"no-cache"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": raw})
