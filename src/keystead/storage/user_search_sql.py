"""User search as SQL (docs/search.md): one boolean expression per node of the core search AST,
shaped so that an index serves it, and the ORDER BY of each sort, on SQLite and PostgreSQL.

    users' own columns     B-trees of migrations 0001/0002: code-point order on PostgreSQL
                           through text_pattern_ops (`~<~` …), BINARY/NOCASE on SQLite
    metadata, e-mail       user_search_terms (storage/user_search_terms.py): EXISTS per user,
    domain, identities     and `driver()`, the terms whose rows can drive SQLite's probe
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, text, true

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
    field_type,
)
from keystead.storage.models import UserRow
from keystead.storage.repositories.users import _NOT_SOCIAL
from keystead.storage.user_search_terms import (
    any_of,
    condition,
    has_term,
    in_terms,
    successor,
)

NULLABLE: Final = frozenset(
    {"email", "username", "phone_number", "name", "nickname", "given_name", "family_name",
     "last_login", "picture", "last_ip"}
)  # fmt: skip
_PATTERN_INDEXED: Final = frozenset({"email", "username", "phone_number"})  # text_pattern_ops
_FOLDED: Final = CASE_INSENSITIVE_FIELDS - {"email", "email.domain"}  # e-mail is stored lower-case
# Searched through user_search_terms only (identities.isSocial also reads user_id).
_TERM_FIELDS: Final = frozenset(
    {"email.domain", "identities.user_id", "identities.connection", "identities.provider"}
)


def term_path(node: Node) -> str | None:
    """The user_search_terms path that alone answers `node`, if one does."""
    if isinstance(node, Term | Range):
        root, dot, _ = node.field.partition(".")
        if (dot and root in ("app_metadata", "user_metadata")) or node.field in _TERM_FIELDS:
            return node.field
    if isinstance(node, Exists):
        root, dot, _ = node.field.partition(".")
        if dot and root in ("app_metadata", "user_metadata"):
            return node.field
    return None


def driver(node: Node, *, pg: bool, table: Any) -> ColumnElement[bool] | None:
    """A condition on `table` (user_search_terms) that every match of `node` has a row for:
    a term of a top-level AND (an exact one first), or an OR made only of such terms."""
    path = term_path(node)
    if path is not None:
        value = None if isinstance(node, Exists) else node
        return condition(path, value, pg=pg, table=table)  # type: ignore[arg-type]
    if isinstance(node, And):
        exact = [c for c in node.children if isinstance(c, Term) and c.kind is TermKind.EXACT]
        for child in (*exact, *node.children):
            found = driver(child, pg=pg, table=table)
            if found is not None:
                return found
        return None
    if isinstance(node, Or):
        parts = [driver(c, pg=pg, table=table) for c in node.children]
        if all(p is not None for p in parts):
            return any_of(parts)  # type: ignore[arg-type]
    return None


class SearchSql:
    """Builds the WHERE and ORDER BY of one search for one dialect."""

    def __init__(self, postgresql: bool) -> None:
        self.pg = postgresql

    # 1. boolean structure

    def where(self, node: Node) -> ColumnElement[bool]:
        match node:
            case And(children=cs):
                return and_(*(self.where(c) for c in cs))
            case Or(children=cs):
                # Terms side by side are one lookup: PostgreSQL cannot turn an OR of EXISTS
                # into a join, and walks the whole table testing each instead.
                terms = [c for c in cs if term_path(c) is not None]
                rest = [self.where(c) for c in cs if term_path(c) is None]
                if len(terms) > 1:
                    return or_(has_term(any_of([self.term(c) for c in terms])), *rest)
                return or_(*(self.where(c) for c in cs))
            case Not(child=c):
                # SQL's NULL is not false: NOT name:x must match users without a name.
                return not_(func.coalesce(self.where(c), false()))
            case Exists(field=f):
                return self.exists(f)
            case Term() | Range():
                return self.match(node)
        raise AssertionError(node)

    def term(self, node: Node) -> ColumnElement[bool]:
        """The user_search_terms condition of a node that term_path() answers."""
        value = None if isinstance(node, Exists) else node
        return condition(str(term_path(node)), value, pg=self.pg)  # type: ignore[arg-type]

    def match(self, node: Term | Range) -> ColumnElement[bool]:
        f = node.field
        if term_path(node) is not None:
            return has_term(self.term(node))
        root, _, sub = f.partition(".")
        if root == "identities":
            return self.identity(sub, node)
        if f == "organization_id":
            return false()  # organizations are not implemented: no user belongs to one
        column: Any = getattr(UserRow, f)
        if field_type(f) is FieldType.STRING:
            return self.string(self.key(f), node, folded=f in CASE_INSENSITIVE_FIELDS)
        if isinstance(node, Range):
            return _range(column, node)
        if f == "blocked":  # `blocked` (PostgreSQL), `blocked = 1` (SQLite): ix_users_blocked
            return column if node.value else not_(column)  # type: ignore[no-any-return]
        return column == node.value  # type: ignore[no-any-return]

    def exists(self, f: str) -> ColumnElement[bool]:
        root, _, path = f.partition(".")
        if root in ("app_metadata", "user_metadata"):
            if not path:  # JSON text on SQLite, jsonb on PostgreSQL
                return getattr(UserRow, root) != text("'{}'")  # type: ignore[no-any-return]
            return has_term(self.term(Exists(f)))
        if f == "organization_id":
            return false()
        if f == "logins_count":
            return UserRow.logins_count > 0  # as the API shows it: absent until a login
        if f == "email.domain":
            return UserRow.email.is_not(None)
        if f in NULLABLE:
            return getattr(UserRow, f).is_not(None)  # type: ignore[no-any-return]
        return true()  # every user has the rest, identities included

    # 2. the users table's own string columns

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
        high = successor(value)
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
            op = ops[0] if node.low_inclusive else ops[1]
            conds.append(key.op(op, is_comparison=True)(str(node.low)))
        if node.high is not None:
            op = ops[2] if node.high_inclusive else ops[3]
            conds.append(key.op(op, is_comparison=True)(str(node.high)))
        return and_(*conds)

    # 3. identities.isSocial: the primary identity's follows from its provider

    def identity(self, sub: str, node: Term | Range) -> ColumnElement[bool]:
        if sub != "isSocial" or not isinstance(node, Term):
            raise AssertionError(node)  # the other identities.* fields are terms
        # Ranges of user_id ("{provider}|…"), so that the primary key serves each side.
        local = [f"{p}|" for p in sorted(_NOT_SOCIAL)]
        if node.value:  # the gaps between the local providers' ranges
            highs = [successor(p) for p in local]
            bounds = zip([None, *highs], [*local, None], strict=True)
            primary = or_(*(self.between(UserRow.user_id, lo, hi) for lo, hi in bounds))
        else:
            primary = or_(*(self.prefix(UserRow.user_id, p) for p in local))
        # Linked identities are few: a list of user_ids, so that each side of the OR is an
        # index lookup (SQLite's multi-index OR).
        return or_(primary, in_terms(condition("identities.isSocial", node, pg=self.pg)))

    def between(self, key: Any, low: str | None, high: str | None) -> ColumnElement[bool]:
        """low <= key < high in code-point order (None: open)."""
        ge, lt = ("~>=~", "~<~") if self.pg else (">=", "<")
        conds = []
        if low is not None:
            conds.append(key.op(ge, is_comparison=True)(low))
        if high is not None:
            conds.append(key.op(lt, is_comparison=True)(high))
        return and_(*conds)

    # 4. the order of a page

    def order(self, field: str, descending: bool) -> list[Any]:
        """ORDER BY field, user_id, as the field's index holds them."""
        column: Any = getattr(UserRow, field)
        if self.pg and (field in _PATTERN_INDEXED or field in _FOLDED):
            # ORDER BY … USING: the text_pattern_ops order, which those indexes hold.
            expr = f"users.{field}" if field in _PATTERN_INDEXED else f"lower(users.{field})"
            using = "~>~" if descending else "~<~"
            return [text(f"{expr} USING {using}"), tiebreak(descending)]
        key = self.key(field) if field_type(field) is FieldType.STRING else column
        return [key.desc() if descending else key.asc(), tiebreak(descending)]


def tiebreak(descending: bool) -> Any:
    return UserRow.user_id.desc() if descending else UserRow.user_id.asc()


def _like_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _range(column: Any, node: Range) -> ColumnElement[bool]:
    conds = []
    if node.low is not None:
        conds.append(column >= node.low if node.low_inclusive else column > node.low)
    if node.high is not None:
        conds.append(column <= node.high if node.high_inclusive else column < node.high)
    return and_(*conds)
