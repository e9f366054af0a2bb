"""User search terms (docs/search.md): the `user_search_terms` rows of each user, kept current,
and the SQL that finds users by them on SQLite and PostgreSQL.

    kept current   after every ORM insert or update of a users row that changes its e-mail,
                   metadata or linked identities, in the same flush (so the same transaction),
                   whoever writes it (the users repository, tenant apply); deleting a user
                   cascades in the database
    matched        path = p AND value <op> encoded, on ix_user_search_terms_path_value:
                   EXISTS per user (a probe of the primary key, for walks in sort order) or
                   as the rows that drive a search (storage/user_search.py: SQLite's probe)

Values are encoded by core/search_terms.py (type letter + text): equality, prefix and ranges are
one range of the index; suffix and contains read every value of the path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    event,
    exists,
    func,
    insert,
    inspect,
    or_,
    select,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapper, aliased

from keystead.core.search import Range, Term, TermKind, Value
from keystead.core.search_terms import (
    NULL,
    NUMBER,
    STRING,
    encode_number,
    numeric,
    spellings,
    user_terms,
)
from keystead.storage.models import UserRow, UserSearchTermRow

# Columns whose change changes a user's terms.
_WATCHED = ("email", "app_metadata", "user_metadata", "linked_identities")
_T = UserSearchTermRow


# 1. kept current


def terms_of(row: UserRow) -> list[dict[str, str]]:
    provider, _, local_id = row.user_id.partition("|")
    primary = {"connection": row.connection, "provider": provider, "user_id": local_id}
    terms = user_terms(
        email=row.email,
        app_metadata=row.app_metadata,
        user_metadata=row.user_metadata,
        identities=[primary, *(row.linked_identities or ())],
    )
    return [{"user_id": row.user_id, "path": p, "value": v} for p, v in sorted(terms)]


@event.listens_for(UserRow, "after_insert")
def _insert_terms(_mapper: Mapper[Any], connection: Connection, row: UserRow) -> None:
    terms = terms_of(row)
    if terms:
        connection.execute(insert(_T), terms)


@event.listens_for(UserRow, "after_update")
def _update_terms(_mapper: Mapper[Any], connection: Connection, row: UserRow) -> None:
    state = inspect(row)
    if not any(state.attrs[name].history.has_changes() for name in _WATCHED):
        return  # a login, a block: nothing searchable here changed
    connection.execute(delete(_T).where(_T.user_id == row.user_id))
    _insert_terms(_mapper, connection, row)


# 2. matched


def has_term(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    """The user has a term meeting `cond` (on UserSearchTermRow): a probe of the primary key."""
    return exists().where(_T.user_id == UserRow.user_id, cond)


def in_terms(cond: ColumnElement[bool]) -> ColumnElement[bool]:
    """The same as a list of user_ids (for terms few users have: linked identities)."""
    return UserRow.user_id.in_(select(_T.user_id).where(cond))


def driving_alias() -> Any:
    """The terms table under another name, joined to drive SQLite's probe."""
    return aliased(_T, name="drive")


def condition(
    path: str, node: Term | Range | None, *, pg: bool, table: Any = _T
) -> ColumnElement[bool]:
    """`table.path = path` and its value meets `node` (None: exists, not null)."""
    value = table.value
    at = table.path == path
    if node is None:  # every type letter but null's sorts below `z`
        return and_(at, value.op("~<~" if pg else "<", is_comparison=True)(NULL))
    if isinstance(node, Range):
        return and_(at, _range(value, node, pg=pg))
    if node.kind is TermKind.EXACT:
        options = spellings(node.value)
        if not options:
            return and_(at, value.is_(None))  # false, on the index still
        return and_(at, value == options[0] if len(options) == 1 else value.in_(options))
    text = str(node.value)
    if node.kind is TermKind.PREFIX:
        return and_(at, *_between(value, STRING + text, successor(STRING + text), pg=pg))
    strings = _between(value, STRING, successor(STRING), pg=pg)
    n = len(text)
    if node.kind is TermKind.SUFFIX:
        tail = func.right(value, n) if pg else func.substr(value, -n)
        return and_(at, *strings, tail == text, func.length(value) > n)
    contains = func.strpos if pg else func.instr
    return and_(at, *strings, contains(func.substr(value, 2), text) > 0)


def _range(value: Any, node: Range, *, pg: bool) -> ColumnElement[bool]:
    """Numbers when every bound spells one, else strings (as Elasticsearch maps a range)."""
    bounds = [b for b in (node.low, node.high) if b is not None]
    low: str | None
    high: str | None
    if all(numeric(b) is not None for b in bounds):
        tag = NUMBER
        low = _number(node.low)
        high = _number(node.high)
    else:
        tag = STRING
        low = None if node.low is None else STRING + str(node.low)
        high = None if node.high is None else STRING + str(node.high)
    ops = ("~>=~", "~>~", "~<=~", "~<~") if pg else (">=", ">", "<=", "<")

    def cmp(op: str, bound: str) -> ColumnElement[bool]:
        return value.op(op, is_comparison=True)(bound)  # type: ignore[no-any-return]

    conds = [
        cmp(ops[0], tag) if low is None else cmp(ops[0] if node.low_inclusive else ops[1], low),
        cmp(ops[3], successor(tag) or tag)
        if high is None
        else cmp(ops[2] if node.high_inclusive else ops[3], high),
    ]
    return and_(*conds)


def _number(bound: Value | None) -> str | None:
    if bound is None:
        return None
    number = numeric(bound)
    return encode_number(number) if number is not None else None


def _between(value: Any, low: str, high: str | None, *, pg: bool) -> list[ColumnElement[bool]]:
    if pg:  # text_pattern_ops: code-point order whatever the collation
        conds = [value.op("~>=~", is_comparison=True)(low)]
        if high is not None:
            conds.append(value.op("~<~", is_comparison=True)(high))
        return conds
    return [value >= low, *([value < high] if high is not None else [])]


def successor(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix` (code-point order)."""
    chars = list(prefix)
    while chars:
        last = ord(chars.pop()) + 1
        if last == 0xD800:  # surrogates are not characters
            last = 0xE000
        if last <= 0x10FFFF:
            return "".join(chars) + chr(last)
    return None


def any_of(conditions: list[ColumnElement[bool]]) -> ColumnElement[bool]:
    return conditions[0] if len(conditions) == 1 else or_(*conditions)
