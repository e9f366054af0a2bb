"""Management API log events (contract §10.7, §9.2).

    GET /logs              offset: page, per_page (0-100), sort date:±1, fields, include_totals
                           → array or {start, limit, length, total, logs}; the 1000-record
                           window; `q` or `search` (auth0-python v6 sends `search`)
                           checkpoint: `from` (a log_id) and `take` (≤ 100) → a bare array of
                           the events after it, oldest first; every other parameter is ignored.
                           `take` alone starts from the oldest event.
    GET /logs/{id}         200 / 404
    GET /users/{id}/logs   that user's events, offset only; [] for an unknown user

Search understands `type:`, `user_id:` and `client_id:` terms (values bare or "quoted"), joined
by spaces or AND; anything else is a 400 that says so, never a silently wider answer.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from sqlalchemy import ColumnElement, Select, func, select
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.logs import LogEvent
from keystead.deps import get_state
from keystead.errors import BadRequest, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.params import (
    Page,
    parse_int,
    parse_page,
    parse_projection,
    parse_sort,
    query_error,
)
from keystead.management.serialize import iso
from keystead.storage.models import LogEventRow

NOT_FOUND: Final = "The log does not exist."
MAX_TAKE: Final = 100
MAX_SEARCH: Final = 1000
# Search fields → the column each filters on.
SEARCHABLE: Final = {
    "type": LogEventRow.type,
    "user_id": LogEventRow.user_id,
    "client_id": LogEventRow.client_id,
}
_TERM: Final = re.compile(r'\s*(?:(AND)\b|([A-Za-z_]+):(?:"((?:[^"\\]|\\.)*)"|([^\s"()]+)))')


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


def _event(row: LogEventRow) -> LogEvent:
    data = dict(row.data or {})
    description = str(data.pop("description", ""))
    return LogEvent(
        log_id=row.log_id, date=row.date, type=row.type, description=description,
        user_id=row.user_id, client_id=row.client_id, data=data,
    )  # fmt: skip


# --- search -------------------------------------------------------------------------------------


def parse_search(q: str) -> list[ColumnElement[bool]]:
    """`type:f AND user_id:"auth0|1"` → SQL conditions, all of which must hold."""
    if len(q) > MAX_SEARCH:
        raise query_error(f"String is too long ({len(q)} chars), maximum {MAX_SEARCH}", "q")
    conditions: list[ColumnElement[bool]] = []
    pos = 0
    text = q.strip()
    while pos < len(text):
        m = _TERM.match(text, pos)
        if m is None or m.end() == pos:
            raise _unsupported()
        pos = m.end()
        if m[1]:  # AND between terms
            continue
        column = SEARCHABLE.get(m[2])
        if column is None:
            raise _unsupported()
        value = re.sub(r"\\(.)", r"\1", m[3]) if m[3] is not None else m[4]
        conditions.append(column == value)
    return conditions


def _unsupported() -> BadRequest:
    return BadRequest(
        "Log search supports only type:, user_id: and client_id: terms, joined by AND.",
        error_code="invalid_query_string",
    )


# --- handlers -----------------------------------------------------------------------------------


async def list_logs(request: Request, caller: Caller) -> Response:
    query = request.query_params
    if "from" in query or "take" in query:
        return await _checkpoint(request, query)
    page = parse_page(query, min_per_page=0)
    newest_first = _newest_first(query)
    projection = parse_projection(query)
    search = query.get("q") or query.get("search") or ""
    conditions = parse_search(search) if search.strip() else []
    state = get_state(request)
    async with state.transaction() as session:
        stmt = select(LogEventRow).where(*conditions)
        events = await _page(session, stmt, page, newest_first)
        total = await session.scalar(
            select(func.count()).select_from(LogEventRow).where(*conditions)
        )
    items = [log_json(e) for e in events]
    if projection is not None:
        items = [projection.apply(item) for item in items]
    return json_response(page.body("logs", items, total or 0))


async def get_log(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        event = await state.logs(session).get(request.path_params["id"])
    if event is None:
        raise NotFound(NOT_FOUND, error_code="inexistent_log")
    return json_response(log_json(event))


async def list_user_logs(request: Request, caller: Caller) -> Response:
    query = request.query_params
    page = parse_page(query, min_per_page=1)
    newest_first = _newest_first(query)
    user_id = caller.target_user_id or ""
    state = get_state(request)
    async with state.transaction() as session:
        logs = state.logs(session)
        events = await logs.list(
            user_id=user_id, offset=page.start, limit=page.limit, newest_first=newest_first
        ) if page.limit else []  # fmt: skip
        total = await logs.count(user_id=user_id)
    return json_response(page.body("logs", [log_json(e) for e in events], total))


# --- shared steps -------------------------------------------------------------------------------


def _newest_first(query: Mapping[str, str]) -> bool:
    sort = parse_sort(query, frozenset({"date"}))
    return True if sort is None else sort[1]


async def _page(session: Any, stmt: Select[Any], page: Page, newest_first: bool) -> list[LogEvent]:
    if not page.limit:
        return []
    # log_id is time-ordered (storage/repositories/logs.py): it sorts by date, ties included.
    order = LogEventRow.log_id.desc() if newest_first else LogEventRow.log_id.asc()
    rows = await session.scalars(stmt.order_by(order).offset(page.start).limit(page.limit))
    return [_event(row) for row in rows]


async def _checkpoint(request: Request, query: Mapping[str, str]) -> Response:
    """Events after `from`, oldest first: how log exports walk the whole log (§10.7)."""
    take = parse_int(query, "take", 50, 1, MAX_TAKE)
    after = query.get("from") or None
    if after is not None and len(after) > 64:
        raise query_error(f"String is too long ({len(after)} chars), maximum 64", "from")
    state = get_state(request)
    async with state.transaction() as session:
        events = await state.logs(session).list(limit=take, newest_first=False, after_id=after)
    return json_response([log_json(e) for e in events])
