"""Management API log events (contract §10.7, §9.2).

    GET /logs              offset: page, per_page (0-100), sort date:±1, fields, include_totals
                           → array or {start, limit, length, total, logs}; the 1000-record
                           window; `q` or `search` (auth0-python v6 sends `search`)
                           checkpoint: `from` (a log_id) and `take` (≤ 100) → a bare array of
                           the events after it, oldest first; every other parameter is ignored.
                           `take` alone starts from the oldest event.
    GET /logs/{id}         200 / 404
    GET /users/{id}/logs   that user's events, offset only; [] for an unknown user

Search is the Lucene subset of core/log_query.py (fields, AND/OR/NOT, quotes, trailing `*`,
date ranges), run by storage/log_search.py; a bad query is a 400 that names the position.
Totals count up to 1000, the search window.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.logs import LogEvent
from keystead.deps import get_state
from keystead.errors import NotFound
from keystead.management.api import Caller, json_response
from keystead.management.params import (
    parse_int,
    parse_page,
    parse_projection,
    parse_sort,
    query_error,
)
from keystead.management.serialize import iso
from keystead.storage.log_search import get_log as read_log
from keystead.storage.log_search import logs_after, search_logs

NOT_FOUND: Final = "The log does not exist."
MAX_TAKE: Final = 100


def log_json(event: LogEvent) -> dict[str, Any]:
    """An event as Auth0 sends it: data fields at the root, `date` in ISO form."""
    out: dict[str, Any] = {
        "_id": event.log_id,
        "log_id": event.log_id,
        "date": iso(event.date),
        "type": event.type,
        "description": event.description,
    }
    if event.user_id is not None:
        out["user_id"] = event.user_id
    if event.client_id is not None:
        out["client_id"] = event.client_id
    for key, value in event.data.items():
        out.setdefault(key, value)
    if isinstance(out.get("scope"), list):  # Auth0 sends scopes space-separated
        out["scope"] = " ".join(map(str, out["scope"]))
    return out


# --- handlers -----------------------------------------------------------------------------------


async def list_logs(request: Request, caller: Caller) -> Response:
    query = request.query_params
    if "from" in query or "take" in query:
        return await _checkpoint(request, query)
    page = parse_page(query, min_per_page=0)
    newest_first = _newest_first(query)
    projection = parse_projection(query)
    search = query.get("q") or query.get("search") or ""
    async with get_state(request).transaction() as session:
        events, total = await search_logs(
            session, search, newest_first=newest_first, offset=page.start, limit=page.limit
        )
    items = [log_json(e) for e in events]
    if projection is not None:
        items = [projection.apply(item) for item in items]
    return json_response(page.body("logs", items, total))


async def get_log(request: Request, caller: Caller) -> Response:
    async with get_state(request).transaction() as session:
        event = await read_log(session, request.path_params["id"])
    if event is None:
        raise NotFound(NOT_FOUND, error_code="inexistent_log")
    return json_response(log_json(event))


async def list_user_logs(request: Request, caller: Caller) -> Response:
    query = request.query_params
    page = parse_page(query, min_per_page=1)
    newest_first = _newest_first(query)
    user_id = caller.target_user_id or ""
    async with get_state(request).transaction() as session:
        events, total = await search_logs(
            session, None, user_id=user_id, newest_first=newest_first,
            offset=page.start, limit=page.limit,
        )  # fmt: skip
    return json_response(page.body("logs", [log_json(e) for e in events], total))


# --- shared steps -------------------------------------------------------------------------------


def _newest_first(query: Mapping[str, str]) -> bool:
    sort = parse_sort(query, frozenset({"date"}))
    return True if sort is None else sort[1]


async def _checkpoint(request: Request, query: Mapping[str, str]) -> Response:
    """Events after `from`, oldest first: how log exports walk the whole log (§10.7)."""
    take = parse_int(query, "take", 50, 1, MAX_TAKE)
    after = query.get("from") or None
    if after is not None and len(after) > 64:
        raise query_error(f"String is too long ({len(after)} chars), maximum 64", "from")
    async with get_state(request).transaction() as session:
        events = await logs_after(session, after, take)
    return json_response([log_json(e) for e in events])
