"""`sapi` log events for Management API writes (contract §10.7): who changed what.

Details name the fields a request set and the records it touched; values only where they are
not secret (scope names, role and user ids). Never a client secret or signing secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from keystead.deps import AppState
from keystead.management.api import Caller

SECRET_FIELDS = frozenset({"client_secret", "signing_secret", "encryption_key"})


async def record_change(
    state: AppState,
    session: AsyncSession,
    request: Request,
    caller: Caller,
    description: str,
    *,
    target: Mapping[str, str] | None = None,
    fields: Iterable[str] = (),
    changes: Mapping[str, Any] | None = None,
    user_id: str | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Append one `sapi` event in the request's transaction (so it exists iff the write does).
    `extra`: more details, already free of secrets (the caller's to say)."""
    details: dict[str, Any] = {
        "request": {"method": request.method, "path": request.url.path},
        "actor": {"sub": caller.sub, "scopes": sorted(caller.decision.matched)},
        "fields": sorted(fields),
    }
    if target is not None:
        details["target"] = dict(target)
    if changes:
        details["changes"] = {k: v for k, v in changes.items() if k not in SECRET_FIELDS}
    details.update(extra or {})
    await state.logs(session).record(
        "sapi",
        description=description,
        user_id=user_id,
        client_id=caller.client_id,
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        details=details,
    )
