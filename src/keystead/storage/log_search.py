"""Log reads for the Management API (contract §10.7): search, paging, one event, checkpoints.

    search_logs(session, q, newest_first=, offset=, limit=, user_id=) -> (events, total)
      1. parse (core/log_query.py); a bad q raises SearchSyntaxError (400 with the position)
      2. one boolean SQL expression per AST node: `type`, `user_id`, `client_id`, `log_id` and
         `date` are columns, every other field a key of the `data` JSON document
      3. the page in log_id order (time-ordered, so it is date order, ties included), and the
         total, counted no further than TOTAL_CAP
    get_log(session, log_id) / logs_after(session, after_id, take)

Every leaf is false, never NULL, where its field is missing, so that `NOT ip:x` also finds the
events without an ip, as Lucene does. Prefixes compare with substr, not LIKE, because SQLite's
LIKE ignores ASCII case and ids and types must match exactly.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import ColumnElement, Select, and_, false, func, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.log_query import CASE_INSENSITIVE, DATE_FIELD, parse_log_query
from keystead.core.logs import LogEvent
from keystead.core.search_ast import And, Exists, Node, Not, Or, Range, Term, TermKind
from keystead.storage.log_writer import flush_pending_logs
from keystead.storage.models import LogEventRow

# Totals are exact up to here: Auth0 serves only the first 1000 results of a log search, and
# counting every match of a broad query would read the whole table.
TOTAL_CAP: Final = 1000
_COLUMNS: Final[dict[str, Any]] = {
    "type": LogEventRow.type,
    "user_id": LogEventRow.user_id,
    "client_id": LogEventRow.client_id,
    "log_id": LogEventRow.log_id,
}
_NOT_NULL: Final = frozenset({"type", "log_id"})


async def search_logs(
    session: AsyncSession,
    q: str | None,
    *,
    newest_first: bool = True,
    offset: int = 0,
    limit: int = 50,
    user_id: str | None = None,
) -> tuple[list[LogEvent], int]:
    """One page of the events matching `q` (all when empty), and their capped total."""
    await flush_pending_logs(session)  # this process's buffered events first
    where = log_condition(parse_log_query(q)) if q and q.strip() else true()
    if user_id is not None:
        where = and_(where, LogEventRow.user_id == user_id)
    order = LogEventRow.log_id.desc() if newest_first else LogEventRow.log_id.asc()
    events: list[LogEvent] = []
    if limit > 0:
        rows = await session.scalars(
            select(LogEventRow).where(where).order_by(order).offset(offset).limit(limit)
        )
        events = [to_event(row) for row in rows]
    matches: Select[Any] = select(LogEventRow.log_id).where(where).limit(TOTAL_CAP)
    total = await session.scalar(select(func.count()).select_from(matches.subquery()))
    return events, int(total or 0)


async def get_log(session: AsyncSession, log_id: str) -> LogEvent | None:
    await flush_pending_logs(session)
    row = await session.get(LogEventRow, log_id)
    return to_event(row) if row else None


async def logs_after(session: AsyncSession, after_id: str | None, take: int) -> list[LogEvent]:
    """The `take` events after `after_id` (from the oldest when None), oldest first."""
    await flush_pending_logs(session)
    stmt = select(LogEventRow)
    if after_id is not None:
        stmt = stmt.where(LogEventRow.log_id > after_id)
    rows = await session.scalars(stmt.order_by(LogEventRow.log_id.asc()).limit(take))
    return [to_event(row) for row in rows]


def to_event(row: LogEventRow) -> LogEvent:
    data = dict(row.data or {})
    description = str(data.pop("description", ""))
    return LogEvent(
        log_id=row.log_id, date=row.date, type=row.type, description=description,
        user_id=row.user_id, client_id=row.client_id, data=data,
    )  # fmt: skip


# --- AST → SQL ----------------------------------------------------------------------------------


def log_condition(node: Node) -> ColumnElement[bool]:
    """The SQL condition of a log-search AST; never NULL (see the module docstring)."""
    match node:
        case And(children=cs):
            return and_(*(log_condition(c) for c in cs))
        case Or(children=cs):
            return or_(*(log_condition(c) for c in cs))
        case Not(child=c):
            return not_(log_condition(c))
        case Exists(field=f):
            return LogEventRow.date.is_not(None) if f == DATE_FIELD else _value(f).is_not(None)
        case Range():
            return _date_range(node)
        case Term(field=f) if f == DATE_FIELD:
            return LogEventRow.date == node.value
        case Term():
            return _term(node)
    raise TypeError(f"not a log-search node: {node!r}")


def _value(field: str) -> Any:
    column = _COLUMNS.get(field)
    if column is not None:
        return column
    # JSON_EXTRACT on SQLite, ->> on PostgreSQL: the text of a string, NULL when absent.
    return LogEventRow.data[field].as_string()


def _term(node: Term) -> ColumnElement[bool]:
    value = str(node.value)
    key = _value(node.field)
    folded = node.field in CASE_INSENSITIVE
    if node.kind is TermKind.PREFIX:
        if not value:
            cond: ColumnElement[bool] = key.is_not(None)
            return cond
        key = func.substr(key, 1, len(value))
    elif node.kind is not TermKind.EXACT:  # the log parser makes only exact and prefix terms
        return false()
    cond = (func.lower(key) if folded else key) == value
    if node.field in _NOT_NULL:
        return cond
    return and_(_value(node.field).is_not(None), cond)


def _date_range(node: Range) -> ColumnElement[bool]:
    conds: list[ColumnElement[bool]] = []
    if node.low is not None:
        low = float(node.low)
        conds.append(LogEventRow.date >= low if node.low_inclusive else LogEventRow.date > low)
    if node.high is not None:
        high = float(node.high)
        conds.append(LogEventRow.date <= high if node.high_inclusive else LogEventRow.date < high)
    return and_(*conds) if conds else true()
