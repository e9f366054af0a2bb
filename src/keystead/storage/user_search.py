"""User search, GET /users?q= (contract §9.3): the core search AST as SQL on SQLite and PostgreSQL.

    search_users(session, q, sort=, offset=, limit=, include_total=) -> (users, total)
      1. parse + normalise (core/search.py); a bad q raises SearchSyntaxError (400)
      2. _Sql.where(): one boolean SQL expression per AST node, shaped so that an index applies
      3. SQLite: the rowids of up to TOTAL_CAP + 1 matches; if that is all, the page is
         sorted from those rows alone, else it walks the sort index (INDEXED BY). SQLite's
         own choice would walk the sort index past a rare match to the end of the table, or
         sort a whole index range for a common one
      4. the user_ids of the first offset + limit matches in sort order (ORDER BY key,
         user_id; nulls last, in two parts). PostgreSQL picks between walking the sort index
         (many matches) and the filter's index then a sort (few); each search is planned for
         its own values (a generic plan cannot see that a value is rare), without JIT
      5. the page's rows by primary key; the total, counted no further than TOTAL_CAP

Indexes are declared in models.py (migration 0002); docs/search.md says which query uses which,
what stays unindexed (suffix/contains; on SQLite the JSON fields, email.domain and
identities.user_id) and the measured figures. Strings compare in code-point order: PostgreSQL
through text_pattern_ops (`~<~` …, any collation), SQLite through BINARY/NOCASE. SQLite folds
case for ASCII only (NOCASE), PostgreSQL with lower().
"""

from __future__ import annotations

import json
import re
from itertools import count
from typing import Any, Final

from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONPATH
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.search import (
    CASE_INSENSITIVE_FIELDS,
    And,
    Exists,
    FieldType,
    Node,
    Not,
    Or,
    Range,
    Term,
    TermKind,
    Value,
    field_type,
    normalise,
    parse,
)
from keystead.core.users import User
from keystead.errors import BadRequest
from keystead.storage.models import UserRow
from keystead.storage.repositories.users import _NOT_SOCIAL, to_user

# Totals are exact up to here and then say TOTAL_CAP: Auth0 serves only the first 1000 results
# of a search, and counting every match of a broad query would read the whole table.
TOTAL_CAP: Final = 1000
_PG_SETTINGS: Final = (
    "SELECT set_config('plan_cache_mode', 'force_custom_plan', true),"
    " set_config('jit', 'off', true)"
)
SORT_FIELDS: Final = frozenset(
    {"user_id", "email", "email_verified", "username", "phone_number", "name", "nickname",
     "given_name", "family_name", "created_at", "updated_at", "last_login", "logins_count",
     "blocked"}
)  # fmt: skip
_NULLABLE: Final = frozenset(
    {"email", "username", "phone_number", "name", "nickname", "given_name", "family_name",
     "last_login", "picture", "last_ip"}
)  # fmt: skip
_PATTERN_INDEXED: Final = frozenset({"email", "username", "phone_number"})  # text_pattern_ops
_FOLDED: Final = CASE_INSENSITIVE_FIELDS - {"email", "email.domain"}  # e-mail is stored lower-case
# The index that holds each sort order on SQLite (migrations 0001 and 0002).
_SQLITE_SORT_INDEX: Final = {
    "user_id": "sqlite_autoindex_users_1", "email": "ix_users_email_pattern",
    "username": "ix_users_username_pattern", "phone_number": "ix_users_phone_number_pattern",
    "name": "ix_users_name_lower", "nickname": "ix_users_nickname_lower",
    "given_name": "ix_users_given_name_lower", "family_name": "ix_users_family_name_lower",
    "created_at": "ix_users_created_at", "updated_at": "ix_users_updated_at",
    "last_login": "ix_users_last_login", "logins_count": "ix_users_logins_count",
}  # fmt: skip
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?", re.ASCII)
_ASCII_KEY = re.compile(r"[A-Za-z0-9_-]+", re.ASCII)
_DOMAIN = re.compile(r"[a-z0-9.-]+", re.ASCII)  # what ix_users_email_domain can find


def _index_expression(name: str) -> Any:
    """The (unlabelled) expression of a one-expression index in models.py, so that a query
    repeats it exactly and PostgreSQL matches it to the index."""
    table: Table = UserRow.__table__  # type: ignore[assignment]
    index = next(i for i in table.indexes if i.name == name)
    label: Any = index.expressions[0]
    return label.element


_email_domain_key = _index_expression("ix_users_email_domain")
_identity_user_id_key = _index_expression("ix_users_identity_user_id")


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
    sql = _Sql(session.get_bind().dialect.name == "postgresql")
    if sql.pg:
        # A prepared statement's generic plan cannot see which value is rare (a GIN match, a
        # prefix): plan each search for its values. JIT compiles for longer than these run.
        await session.execute(text(_PG_SETTINGS))
    where = sql.where(node) if node is not None else true()
    field, descending = _sort(sort)
    matches = None
    if not sql.pg:
        where, matches = await _sqlite_probe(session, where)
        sql.many = matches > TOTAL_CAP
    wanted = offset + limit
    ids = await sql.ordered_ids(session, where, field, descending, wanted) if wanted else []
    rows = await _by_id(session, ids[offset:])
    total = None
    if include_total:  # fewer than asked for: that is all of them
        found = len(ids)
        if matches is None:
            matches = found if 0 < found < wanted else await _count(session, where)
        total = min(matches, TOTAL_CAP)
    return [to_user(row) for row in rows], total


async def _sqlite_probe(
    session: AsyncSession, where: ColumnElement[bool]
) -> tuple[ColumnElement[bool], int]:
    """SQLite walks the sort index past a rare unindexed match (email.domain, JSON) to the end
    of the table; so first take the rowids of up to TOTAL_CAP + 1 matches, in one pass over
    the cheapest index. If that is all of them, the page is sorted from those rows alone."""
    probe: Select[Any] = select(literal_column("users.rowid")).select_from(UserRow).where(where)
    rowids = list(await session.scalars(probe.limit(TOTAL_CAP + 1)))
    if len(rowids) > TOTAL_CAP:
        return where, len(rowids)
    among = text("users.rowid IN (SELECT value FROM json_each(:rowids))")
    return among.bindparams(rowids=json.dumps(rowids)), len(rowids)  # type: ignore[return-value]


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


def _successor(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (code-point order)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if last == 0xD800:  # surrogates are not characters
            last = 0xE000
        if last <= 0x10FFFF:
            return "".join(chars) + chr(last)
    return None


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _json_scalars(value: Value) -> list[Value]:
    """The JSON values a query value matches: as a string, and as the number or boolean it
    spells (Elasticsearch maps `13` and `"13"` alike)."""
    if not isinstance(value, str):
        return [value]
    out: list[Value] = [value]
    if _NUMBER.fullmatch(value):
        out.append(float(value) if "." in value else int(value))
    if value in ("true", "false"):
        out.append(value == "true")
    return out


class _Sql:
    """Builds the WHERE and ORDER BY of one search for one dialect."""

    def __init__(self, postgresql: bool) -> None:
        self.pg = postgresql
        self.params = count()
        self.many = False  # more than TOTAL_CAP matches (known on SQLite only)

    # 1. boolean structure

    def where(self, node: Node) -> ColumnElement[bool]:
        match node:
            case And(children=cs):
                return and_(*(self.where(c) for c in cs))
            case Or(children=cs):
                return or_(*(self.where(c) for c in cs))
            case Not(child=c):
                # SQL's NULL is not false: NOT name:x must match users without a name.
                return not_(func.coalesce(self.where(c), false()))
            case Exists(field=f):
                return self.exists(f)
            case Term() | Range():
                return self.match(node)
        raise AssertionError(node)

    def match(self, node: Term | Range) -> ColumnElement[bool]:
        f = node.field
        root, _, path = f.partition(".")
        if root in ("app_metadata", "user_metadata") and path:
            return self.json(getattr(UserRow, root), path.split("."), node, array_root=False)
        if root == "identities":
            return self.identity(path, node)
        if f == "organization_id":
            return false()  # organizations are not implemented: no user belongs to one
        if f == "email.domain":
            return self.email_domain(node)
        column: Any = getattr(UserRow, f)
        kind = field_type(f)
        if kind is FieldType.STRING:
            return self.string(self.key(f), node, folded=f in CASE_INSENSITIVE_FIELDS)
        if isinstance(node, Range):
            return _range(column, node)
        if f == "blocked":  # `blocked` (PostgreSQL), `blocked = 1` (SQLite): ix_users_blocked
            return column if node.value else not_(column)  # type: ignore[no-any-return]
        return column == node.value  # type: ignore[no-any-return]

    def exists(self, f: str) -> ColumnElement[bool]:
        root, _, path = f.partition(".")
        if root in ("app_metadata", "user_metadata"):
            doc = getattr(UserRow, root)
            if not path:  # JSON text on SQLite, jsonb on PostgreSQL
                return doc != text("'{}'")  # type: ignore[no-any-return]
            return self.json(doc, path.split("."), None, array_root=False)
        if f == "organization_id":
            return false()
        if f == "logins_count":
            return UserRow.logins_count > 0  # as the API shows it: absent until a login
        if f == "email.domain":
            return UserRow.email.is_not(None)
        if f in _NULLABLE:
            return getattr(UserRow, f).is_not(None)  # type: ignore[no-any-return]
        return true()  # every user has the rest, identities included

    # 2. root string fields

    def key(self, f: str) -> Any:
        """The indexed form of a string field: lower() / NOCASE for the case-insensitive."""
        column = getattr(UserRow, f)
        if f in _FOLDED:
            return func.lower(column) if self.pg else column.collate("NOCASE")
        return column

    def string(self, key: Any, node: Term | Range, *, folded: bool) -> ColumnElement[bool]:
        if isinstance(node, Range):
            return self.string_range(key, node)
        value = str(node.value)
        if node.kind is TermKind.EXACT:
            return key == value  # type: ignore[no-any-return]
        if node.kind is TermKind.PREFIX:
            return self.prefix(key, value, folded=folded)
        pattern = _like_escape(value)
        pattern = f"%{pattern}%" if node.kind is TermKind.CONTAINS else f"%{pattern}"
        if self.pg or folded:  # SQLite's LIKE folds ASCII case, as NOCASE does
            return key.like(pattern, escape="\\")  # type: ignore[no-any-return]
        if node.kind is TermKind.SUFFIX:
            return func.substr(key, -len(value)) == value
        return func.instr(key, value) > 0

    def prefix(self, key: Any, value: str, *, folded: bool = False) -> ColumnElement[bool]:
        """An index range [value, successor): PostgreSQL's LIKE would need a literal pattern."""
        high = _successor(value)
        if self.pg:
            cond = key.op("~>=~", is_comparison=True)(value)
            if high is None:
                return cond  # type: ignore[no-any-return]
            return and_(cond, key.op("~<~", is_comparison=True)(high))
        cond = key >= value
        if high is not None:
            cond = and_(cond, key < high)
        if folded:  # NOCASE folds the successor too; LIKE re-checks the prefix exactly
            cond = and_(cond, key.like(_like_escape(value) + "%", escape="\\"))
        return cond  # type: ignore[no-any-return]

    def string_range(self, key: Any, node: Range) -> ColumnElement[bool]:
        ops = ("~>=~", "~>~", "~<=~", "~<~") if self.pg else (">=", ">", "<=", "<")
        conds = []
        if node.low is not None:
            conds.append(
                key.op(ops[0] if node.low_inclusive else ops[1], is_comparison=True)(str(node.low))
            )
        if node.high is not None:
            conds.append(
                key.op(ops[2] if node.high_inclusive else ops[3], is_comparison=True)(
                    str(node.high)
                )
            )
        return and_(*conds)

    def email_domain(self, node: Term | Range) -> ColumnElement[bool]:
        email = UserRow.email
        if isinstance(node, Range) or node.kind is not TermKind.EXACT:
            expr = _email_domain_key if self.pg else func.substr(email, func.instr(email, "@") + 1)
            return self.string(expr, node, folded=False)
        value = str(node.value)
        exact = email.like("%@" + _like_escape(value), escape="\\")
        if self.pg and _DOMAIN.fullmatch(value):
            return and_(_email_domain_key == value, exact)
        return exact

    # 3. identities: the primary one from user_id/connection, linked ones from JSON

    def identity(self, sub: str, node: Term | Range) -> ColumnElement[bool]:
        user_id = UserRow.user_id
        if self.pg:
            provider = func.split_part(user_id, "|", 1)
            local = func.substr(user_id, func.strpos(user_id, "|") + 1)
        else:
            provider = func.substr(user_id, 1, func.instr(user_id, "|") - 1)
            local = func.substr(user_id, func.instr(user_id, "|") + 1)
        exact = isinstance(node, Term) and node.kind is TermKind.EXACT
        value = node.value if isinstance(node, Term) else None
        primary: ColumnElement[bool]
        if sub == "isSocial":
            social = provider.not_in(sorted(_NOT_SOCIAL))
            primary = social if value else not_(social)
        elif sub == "connection":
            primary = self.string(UserRow.connection, node, folded=False)
        elif sub == "provider" and exact and "|" not in str(value):
            primary = self.prefix(user_id, f"{value}|")  # ix_users_user_id_pattern / the PK
        elif sub == "provider":
            primary = self.string(provider, node, folded=False)
        elif exact and self.pg:
            primary = and_(_identity_user_id_key == str(value), local == str(value))
        else:
            primary = self.string(local, node, folded=False)
        linked = self.json(UserRow.linked_identities, [sub], node, array_root=True)
        return or_(primary, linked)

    # 4. JSON documents: metadata and linked identities; arrays are transparent

    def json(
        self, doc: Any, path: list[str], node: Term | Range | None, *, array_root: bool
    ) -> ColumnElement[bool]:
        """`node` matches a value at `path` (None: a value exists that is not null, {} or [])."""
        if self.pg:
            return self.jsonpath(doc, path, node)
        return self.json_each(doc, path, node, array_root=array_root)

    def jsonpath(self, doc: Any, path: list[str], node: Term | Range | None) -> ColumnElement[bool]:
        # Lax mode unwraps arrays at every step. GIN jsonb_path_ops serves `@@ path == value`.
        p = "$" + "".join(f'."{segment}"' for segment in path)

        def test(expr: str, op: str = "@?") -> ColumnElement[bool]:
            return doc.op(op, is_comparison=True)(cast(literal(expr), JSONPATH))  # type: ignore[no-any-return]

        if node is None:
            scalar = '@.type() != "null" && @.type() != "object" && @.type() != "array"'
            return or_(test(f"{p} ? ({scalar})"), test(f"{p}.*"))
        if isinstance(node, Range):
            low, high = _json_bounds(node)
            conds = []
            if low is not None:
                conds.append(f"@ {'>=' if node.low_inclusive else '>'} {_jsonpath_literal(low)}")
            if high is not None:
                conds.append(f"@ {'<=' if node.high_inclusive else '<'} {_jsonpath_literal(high)}")
            return test(f"{p} ? ({' && '.join(conds)})")
        if node.kind is TermKind.EXACT:
            values = _json_scalars(node.value)
            return or_(*(test(f"{p} == {_jsonpath_literal(v)}", "@@") for v in values))
        value = str(node.value)
        if node.kind is TermKind.PREFIX:
            return test(f"{p} ? (@ starts with {_jsonpath_literal(value)})")
        regex = "".join(c if c.isalnum() else "\\" + c for c in value)
        regex = f"{regex}$" if node.kind is TermKind.SUFFIX else regex
        return test(f"{p} ? (@ like_regex {_jsonpath_literal(regex)})")

    def json_each(
        self, doc: Any, path: list[str], node: Term | Range | None, *, array_root: bool
    ) -> ColumnElement[bool]:
        # SQLite: one json_each per step, over the value itself or, if it is an array, its
        # elements. Nothing indexes this; a text pre-check skips rows that lack the last key.
        column = f"users.{doc.key}"
        froms, parent = [], None
        if array_root:
            froms.append(f"json_each({column}) AS j0")
            parent = "j0"
        for i, segment in enumerate(path, 1):
            step = f"'$.\"{segment}\"'"  # segments are [\w-]+ (core/search.py)
            obj, guard = (
                (f"{parent}.value", f"{parent}.type = 'object'") if parent else (column, "1")
            )
            froms.append(
                f"json_each(CASE WHEN {guard} THEN (CASE json_type({obj}, {step}) "
                f"WHEN 'array' THEN {obj} -> {step} ELSE json_array(json({obj} -> {step})) END) "
                f"END) AS j{i}"
            )
            parent = f"j{i}"
        cond, params = self.json_condition(f"j{len(path)}", node)
        # `> '[]'`: the WHERE of SQLite's partial ix_users_linked_identities, a range it can use
        pre = f"{column} > '[]'" if array_root else "1"
        if _ASCII_KEY.fullmatch(path[-1]):
            pre += f" AND instr({column}, '\"{path[-1]}\"') > 0"
        spelled = _json_texts(node) if isinstance(node, Term) else None
        if spelled:  # and the value as json.dumps (SQLAlchemy's serializer) wrote it
            names = [f"js{next(self.params)}" for _ in spelled]
            params.update(zip(names, spelled, strict=True))
            pre += " AND (" + " OR ".join(f"instr({column}, :{n}) > 0" for n in names) + ")"
        sql = f"({pre} AND EXISTS (SELECT 1 FROM {', '.join(froms)} WHERE {cond}))"
        return text(sql).bindparams(**params)  # type: ignore[return-value]

    def json_condition(self, j: str, node: Term | Range | None) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {}

        def param(value: Any) -> str:
            name = f"js{next(self.params)}"
            params[name] = value
            return f":{name}"

        if node is None:
            return (
                f"({j}.type NOT IN ('null', 'object', 'array') "
                f"OR ({j}.type = 'object' AND {j}.value <> '{{}}'))"
            ), params
        if isinstance(node, Range):
            low, high = _json_bounds(node)
            numeric = isinstance(low if low is not None else high, int | float)
            conds = [f"{j}.type IN ('integer', 'real')" if numeric else f"{j}.type = 'text'"]
            if low is not None:
                conds.append(f"{j}.atom {'>=' if node.low_inclusive else '>'} {param(low)}")
            if high is not None:
                conds.append(f"{j}.atom {'<=' if node.high_inclusive else '<'} {param(high)}")
            return " AND ".join(conds), params
        if node.kind is TermKind.EXACT:
            alternatives = []
            for v in _json_scalars(node.value):
                if isinstance(v, bool):
                    alternatives.append(f"{j}.type = '{'true' if v else 'false'}'")
                elif isinstance(v, int | float):
                    alternatives.append(
                        f"({j}.type IN ('integer', 'real') AND {j}.atom = {param(v)})"
                    )
                else:
                    alternatives.append(f"({j}.type = 'text' AND {j}.atom = {param(v)})")
            return "(" + " OR ".join(alternatives) + ")", params
        v = param(str(node.value))
        if node.kind is TermKind.PREFIX:
            test = f"substr({j}.atom, 1, length({v})) = {v}"
        elif node.kind is TermKind.SUFFIX:
            test = f"substr({j}.atom, -length({v})) = {v}"
        else:
            test = f"instr({j}.atom, {v}) > 0"
        return f"{j}.type = 'text' AND {test}", params

    # 5. the page

    def order(self, field: str, descending: bool) -> list[Any]:
        """ORDER BY field, user_id, as the field's index holds them."""
        column: Any = getattr(UserRow, field)
        if self.pg and (field in _PATTERN_INDEXED or field in _FOLDED):
            # ORDER BY … USING: the text_pattern_ops order, which those indexes hold.
            expr = f"users.{field}" if field in _PATTERN_INDEXED else f"lower(users.{field})"
            return [text(f"{expr} USING {_using(descending)}"), _tiebreak(descending)]
        key = self.key(field) if field_type(field) is FieldType.STRING else column
        return [key.desc() if descending else key.asc(), _tiebreak(descending)]

    async def ordered_ids(
        self,
        session: AsyncSession,
        where: ColumnElement[bool],
        field: str,
        descending: bool,
        limit: int,
    ) -> list[str]:
        """The user_ids of the first `limit` matches in sort order, users without the field
        last (by user_id): each part is one ordered, limited SELECT an index can serve."""

        async def ids(
            cond: ColumnElement[bool], order: list[Any], n: int, index: str | None
        ) -> list[str]:
            stmt = select(UserRow.user_id).where(cond).order_by(*order).limit(n)
            if self.many and index is not None:
                # SQLite would rather sort a range of the filter's index, 10^5 rows for a
                # dense match, than walk the sort index the few rows to a page.
                return await _sqlite_indexed_by(session, stmt, index)
            return list(await session.scalars(stmt))

        order, index = self.order(field, descending), _SQLITE_SORT_INDEX.get(field)
        if field not in _NULLABLE:
            return await ids(where, order, limit, index)
        column: Any = getattr(UserRow, field)
        found = await ids(and_(where, column.is_not(None)), order, limit, index)
        if len(found) < limit:
            absent = and_(where, column.is_(None))
            pk = "sqlite_autoindex_users_1"
            found += await ids(absent, [_tiebreak(descending)], limit - len(found), pk)
        return found


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


def _using(descending: bool) -> str:
    return "~>~" if descending else "~<~"


def _tiebreak(descending: bool) -> Any:
    return UserRow.user_id.desc() if descending else UserRow.user_id.asc()


def _range(column: Any, node: Range) -> ColumnElement[bool]:
    conds = []
    if node.low is not None:
        conds.append(column >= node.low if node.low_inclusive else column > node.low)
    if node.high is not None:
        conds.append(column <= node.high if node.high_inclusive else column < node.high)
    return and_(*conds)


def _json_bounds(node: Range) -> tuple[Value | None, Value | None]:
    """Range bounds on a JSON value: numbers when every bound is one, strings otherwise."""
    bounds = [b for b in (node.low, node.high) if b is not None]
    if all(isinstance(b, str) and _NUMBER.fullmatch(b) for b in bounds):
        return tuple(  # type: ignore[return-value]
            None if b is None else (float(b) if "." in str(b) else int(str(b)))
            for b in (node.low, node.high)
        )
    return (
        None if node.low is None else str(node.low),
        None if node.high is None else str(node.high),
    )


def _json_texts(node: Term) -> list[str] | None:
    """How each JSON value an exact term matches appears in a document's text, if certain."""
    if node.kind is not TermKind.EXACT:
        return None
    texts = []
    for value in _json_scalars(node.value):
        if isinstance(value, bool):
            texts.append("true" if value else "false")
        elif isinstance(value, int | float):
            texts.append(str(value))
        elif json.dumps(value) == f'"{value}"':
            texts.append(f'"{value}"')
        else:
            return None  # escapes: the stored spelling may differ
    return texts


def _jsonpath_literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(value)  # a JSON string literal is a jsonpath string literal
