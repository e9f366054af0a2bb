"""User search, GET /users?q= (contract §9.3): the core search AST run on SQLite and PostgreSQL.

    search_users(session, q, sort=, offset=, limit=, include_total=) -> (users, total)
      1. parse + normalise (core/search.py); a bad q raises SearchSyntaxError (400)
      2. the WHERE (storage/user_search_sql.py): the users table's own indexes, and
         user_search_terms for metadata, e-mail domains and identities
      3. the probe: up to SORT_CAP + 1 matches, unordered (SQLite: SORT_CAP_INDEXED for one
         indexed column). If that is all, the page is sorted from those alone, else the sort index
         is walked. SQLite: rowids, driven by the query's terms rows when it has one (else by
         SQLite's choice of index); its own plans would walk the sort index past a rare match
         to the end of the table, or sort a whole index range for a common one; the walk is
         forced with INDEXED BY. PostgreSQL: user_ids, then ANY(ids) or its own walk. Each
         search is planned for its own values (a generic plan cannot see that a value is
         rare), without JIT, parallel workers or merge joins
      4. the user_ids of the first offset + limit matches in sort order (ORDER BY key,
         user_id; nulls last, in two parts)
      5. the page's rows by primary key; the total, counted no further than TOTAL_CAP

docs/search.md says which query uses which index, what no index serves, and the figures.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    and_,
    any_,
    bindparam,
    func,
    literal_column,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.search import And, Node, Not, Or, Range, Term, TermKind, normalise, parse
from keystead.core.users import User
from keystead.errors import BadRequest
from keystead.storage.models import UserRow
from keystead.storage.repositories.users import to_user
from keystead.storage.user_search_sql import NULLABLE, SearchSql, driver, term_path, tiebreak
from keystead.storage.user_search_terms import driving_alias

# Totals are exact up to here and then say TOTAL_CAP: Auth0 serves only the first 1000 results
# of a search, and counting every match of a broad query would read the whole table.
TOTAL_CAP: Final = 1000
# Up to this many matches (the probe's rowids or user_ids), a page is sorted from them alone;
# past it, the sort index is walked. On SQLite a query on one indexed column of users (a
# prefix, a range) reads its probe from that index alone, so it takes up to SORT_CAP_INDEXED:
# a prefix 2500 users share then sorts 2500 rows instead of walking 20,000 for a page (55 ->
# 30 ms). Measured and left out: the same for other queries (a common metadata value's probe
# cost more than the walks it saved) and on PostgreSQL (sorting ANY(2500 ids) took longer
# than the planner's walk).
SORT_CAP: Final = TOTAL_CAP
SORT_CAP_INDEXED: Final = 5000
_INDEXED_COLUMNS: Final = frozenset(
    {"user_id", "email", "username", "phone_number", "name", "nickname", "given_name",
     "family_name", "last_ip", "created_at", "updated_at", "last_login", "logins_count"}
)  # fmt: skip
_PG_SETTINGS: Final = (
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('jit', 'off', true), set_config('max_parallel_workers_per_gather', '0', true),"
    " set_config('enable_mergejoin', 'off', true), set_config('enable_seqscan', :seqscan, true)"
)
SORT_FIELDS: Final = frozenset(
    {"user_id", "email", "email_verified", "username", "phone_number", "name", "nickname",
     "given_name", "family_name", "created_at", "updated_at", "last_login", "logins_count",
     "blocked"}
)  # fmt: skip
# The index that holds each sort order on SQLite (migrations 0001 and 0002).
_SQLITE_SORT_INDEX: Final = {
    "user_id": "sqlite_autoindex_users_1", "email": "ix_users_email_pattern",
    "username": "ix_users_username_pattern", "phone_number": "ix_users_phone_number_pattern",
    "name": "ix_users_name_lower", "nickname": "ix_users_nickname_lower",
    "given_name": "ix_users_given_name_lower", "family_name": "ix_users_family_name_lower",
    "created_at": "ix_users_created_at", "updated_at": "ix_users_updated_at",
    "last_login": "ix_users_last_login", "logins_count": "ix_users_logins_count",
}  # fmt: skip
_PK: Final = "sqlite_autoindex_users_1"


async def search_users(
    session: AsyncSession,
    q: str | None,
    *,
    sort: str | tuple[str, bool] | None,
    offset: int,
    limit: int,
    include_total: bool,
) -> tuple[list[User], int | None]:
    """One page of the users matching `q` (None or blank: every user) and, if asked, the total.

    `sort` is `field:1` / `field:-1` or (field, descending); default created_at ascending.
    Ties are broken by user_id; users without the sort field come last either way.
    """
    node = normalise(parse(q)) if q is not None and q.strip() else None
    field, descending = _sort(sort)
    search = _Search(session, SearchSql(session.get_bind().dialect.name == "postgresql"))
    if not search.sql.pg and node is not None and _one_indexed_column(node):
        search.cap = SORT_CAP_INDEXED
    if search.sql.pg:
        # A prepared statement's generic plan cannot see which value is rare (a term, a
        # prefix): plan each search for its values. JIT compiles for longer than these run;
        # parallel workers walking a sort index for a page of 50 cost 10x a single walk; a
        # merge join of terms and users reads the users key from its start to the first
        # match (`google-oauth2|…` sorts after 900,000 `auth0|…`) where a nested loop stops
        # at the 1001st. A sequential scan only where no index can answer (suffixes): the
        # planner takes one to find 1001 matches of a dense bare term, 2.5x a bitmap's time.
        seqscan = "on" if node is not None and _needs_scan(node) else "off"
        await session.execute(text(_PG_SETTINGS), {"seqscan": seqscan})
    where = search.sql.where(node) if node is not None else true()
    matches = None
    if not search.sql.pg:
        where, matches = await search.sqlite_probe(where, node)
        search.many = matches > search.cap
    elif node is not None:
        where, matches = await search.pg_probe(where)
    wanted = offset + limit
    ids = await search.ordered_ids(where, field, descending, wanted) if wanted else []
    rows = await _by_id(session, ids[offset:])
    total = None
    if include_total:  # fewer than asked for: that is all of them
        found = len(ids)
        if matches is None:
            matches = found if 0 < found < wanted else await _count(session, where)
        total = min(matches, TOTAL_CAP)
    return [to_user(row) for row in rows], total


class _Search:
    def __init__(self, session: AsyncSession, sql: SearchSql) -> None:
        self.session = session
        self.sql = sql
        self.many = False  # more than `cap` matches (known on SQLite only)
        self.cap = SORT_CAP  # up to this many matches, the page is sorted from them

    async def pg_probe(self, where: ColumnElement[bool]) -> tuple[ColumnElement[bool], int]:
        """The user_ids of up to SORT_CAP + 1 matches, unordered, through the filter's index.
        If that is all, the page is sorted from those alone: the planner cannot be misled
        into walking the sort index past a match rarer than it estimated (a 0.1% prefix
        took 0.7 s so), and the total comes with them instead of from a count."""
        limit = max(self.cap, TOTAL_CAP) + 1
        ids = list(await self.session.scalars(select(UserRow.user_id).where(where).limit(limit)))
        if len(ids) > self.cap:
            return where, len(ids)
        among = UserRow.user_id == any_(bindparam("among", ids, type_=ARRAY(String)))
        return among, len(ids)

    async def sqlite_probe(
        self, where: ColumnElement[bool], node: Node | None
    ) -> tuple[ColumnElement[bool], int]:
        """The rowids of up to SORT_CAP + 1 matches, in one pass over the cheapest rows: the
        terms rows every match has (SQLite knows only their average count, so they are
        counted first), or the users index SQLite picks. If that is all of them, the page is
        sorted from those rows alone."""
        drive = driving_alias()
        cond = driver(node, pg=False, table=drive) if node is not None else None
        limit = max(self.cap, TOTAL_CAP) + 1  # enough for the total too
        plain: Select[Any] = select(literal_column("users.rowid")).select_from(UserRow)
        probe = plain.where(where)
        if cond is not None:
            few = select(drive.user_id).where(cond).limit(limit).subquery()
            terms = await self.session.scalar(select(func.count()).select_from(few)) or 0
            if terms < limit or not await self._searches_users_index(probe):
                joined = plain.join(drive, drive.user_id == UserRow.user_id)
                probe = joined.where(cond, where).distinct()
        rowids = list(await self.session.scalars(probe.limit(limit)))
        if len(rowids) > self.cap:
            return where, len(rowids)
        among = text("users.rowid IN (SELECT value FROM json_each(:rowids))")
        return among.bindparams(rowids=json.dumps(rowids)), len(rowids)  # type: ignore[return-value]

    async def _searches_users_index(self, probe: Select[Any]) -> bool:
        """SQLite's plan for `probe` searches an index of users: another condition of the
        query narrows it (`logins_count:[500 TO *]` beside a common e-mail domain)."""
        conn = await self.session.connection()
        compiled = probe.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
        params = tuple(compiled.params[name] for name in compiled.positiontup or ())
        plan = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled.string}", params)
        return any(str(row[-1]).startswith("SEARCH users USING") for row in plan)

    async def ordered_ids(
        self, where: ColumnElement[bool], field: str, descending: bool, limit: int
    ) -> list[str]:
        """The user_ids of the first `limit` matches in sort order, users without the field
        last (by user_id): each part is one ordered, limited SELECT an index can serve."""
        order, index = self.sql.order(field, descending), _SQLITE_SORT_INDEX.get(field)
        if field not in NULLABLE:
            return await self._ids(where, order, limit, index)
        column: Any = getattr(UserRow, field)
        found = await self._ids(and_(where, column.is_not(None)), order, limit, index)
        if len(found) < limit:
            absent = and_(where, column.is_(None))
            found += await self._ids(absent, [tiebreak(descending)], limit - len(found), _PK)
        return found

    async def _ids(
        self, cond: ColumnElement[bool], order: list[Any], n: int, index: str | None
    ) -> list[str]:
        stmt = select(UserRow.user_id).where(cond).order_by(*order).limit(n)
        if self.many and index is not None and not self.sql.pg:
            # SQLite would rather sort a range of the filter's index, 10^5 rows for a dense
            # match, than walk the sort index the few rows to a page.
            return await _sqlite_indexed_by(self.session, stmt, index)
        return list(await self.session.scalars(stmt))


async def _count(session: AsyncSession, where: ColumnElement[bool]) -> int:
    """How many match, counting no further than TOTAL_CAP (unordered: any index will do)."""
    matches = select(UserRow.user_id).where(where).limit(TOTAL_CAP).subquery()
    return await session.scalar(select(func.count()).select_from(matches)) or 0


async def _by_id(session: AsyncSession, ids: list[str]) -> list[UserRow]:
    if not ids:
        return []
    found = {
        row.user_id: row
        for row in await session.scalars(select(UserRow).where(UserRow.user_id.in_(ids)))
    }
    return [found[i] for i in ids if i in found]


def _one_indexed_column(node: Node) -> bool:
    """An exact value, prefix or range of one indexed users column: its index alone holds
    every match (and their user_ids or rowids)."""
    if isinstance(node, Term) and node.kind in (TermKind.SUFFIX, TermKind.CONTAINS):
        return False
    return isinstance(node, Term | Range) and node.field in _INDEXED_COLUMNS


def _needs_scan(node: Node) -> bool:
    """The query tests a suffix or infix of a users column, which no index holds."""
    match node:
        case And(children=cs) | Or(children=cs):
            return any(_needs_scan(c) for c in cs)
        case Not(child=c):
            return _needs_scan(c)
        case Term(kind=TermKind.SUFFIX | TermKind.CONTAINS):
            return term_path(node) is None
    return False


def _sort(sort: str | tuple[str, bool] | None) -> tuple[str, bool]:
    if sort is None:
        return "created_at", False
    if isinstance(sort, str):
        field, _, direction = sort.partition(":")
        if direction not in ("1", "-1"):
            raise BadRequest(f"sort must be field:1 or field:-1, not {sort!r}")
        sort = field, direction == "-1"
    if sort[0] not in SORT_FIELDS:
        raise BadRequest(f"Sort by {sort[0]} is not supported.", error_code="invalid_query_string")
    return sort


async def _sqlite_indexed_by(session: AsyncSession, stmt: Select[Any], index: str) -> list[str]:
    """`stmt` with `FROM users INDEXED BY index` (SQLAlchemy's SQLite compiler drops hints)."""
    conn = await session.connection()
    compiled = stmt.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    sql, n = re.subn(
        r"\nFROM users\b", f"\nFROM users INDEXED BY {index}", compiled.string, count=1
    )
    assert n == 1, sql
    params = tuple(compiled.params[name] for name in compiled.positiontup or ())
    return [row[0] for row in await conn.exec_driver_sql(sql, params)]
