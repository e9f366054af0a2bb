"""The boolean part of the Lucene subset, shared by user search (core/search.py) and log search
(core/log_query.py); each subclass says what a field clause and a value are.

    expr   := clause ((AND | OR)? clause)*      NOT binds tighter than AND, AND tighter than OR
    clause := NOT clause | '(' expr ')' | '_exists_:' field | field ':' value | term
    (what a field may be, a value and a bare term are the subclass's)

Juxtaposed clauses take `default_and` (AND, else OR), except before NOT, which is always AND
(Lucene's `a -b` prohibits b whatever the default). Groups nest at most `max_depth` deep.
"""

from __future__ import annotations

from keystead.core.search_ast import And, Exists, Node, Not, Or
from keystead.core.search_lexer import _ends_word, _Lexer, _Word


class BooleanParser(_Lexer):
    max_depth = 10
    default_and = False
    range_example = "field:[a TO b]"  # for the error when a range comes without its field

    def query(self) -> Node:
        node = self.expr(None, 0)
        if self.peek():
            raise self.fail(f"unexpected '{self.q[self.pos]}'")
        return node

    def expr(self, field: str | None, depth: int) -> Node:
        """Clauses joined by operators; returns Or of And groups (AND binds tighter)."""
        groups: list[list[Node]] = [[self.clause(field, depth)]]
        while (c := self.peek()) and c != ")":
            op = self.peek_operator()
            if op in ("AND", "OR"):
                self.pos += len(op)
                if not self.peek() or self.peek() == ")":
                    raise self.fail(f"expected a search term after {op}")
            elif op == "NOT" or self.default_and:
                op = "AND"
            else:
                op = "OR"
            clause = self.clause(field, depth)
            if op == "AND":
                groups[-1].append(clause)
            else:
                groups.append([clause])
        return join(Or, [join(And, g) for g in groups])

    def clause(self, field: str | None, depth: int) -> Node:
        op = self.peek_operator()
        if (op == "NOT" or self.peek() == "(") and depth >= self.max_depth:
            raise self.fail(f"query nests deeper than {self.max_depth} levels")
        if op == "NOT":
            self.pos += 3
            if not self.peek() or self.peek() == ")":
                raise self.fail("expected a search term after NOT")
            return Not(self.clause(field, depth + 1))
        if op:
            raise self.fail(f"unexpected {op}: expected a search term")
        c = self.peek()
        if c == "(":
            start = self.pos
            self.pos += 1
            if self.peek() == ")":
                raise self.fail("empty group", start)
            node = self.expr(field, depth + 1)
            self.expect(")")
            return node
        if c and c in "+-!":
            raise self.fail(f"prefix operator '{c}' is not supported; use NOT")
        if field is not None:
            return self.value(field, grouped=True)
        return self.field_clause(depth)

    def field_clause(self, depth: int) -> Node:
        """`field:value`, `field:( … )`, `_exists_:field`, or a bare term (no field)."""
        c = self.peek()
        if c in ("[", "{"):
            raise self.fail(f"a range needs a field, as in {self.range_example}")
        if c in ("]", "}"):
            raise self.fail(f"unexpected '{c}'")
        if c == '"':
            return self.bare(self.phrase())
        head = self.word(colon_ends=True)
        if self.pos >= len(self.q) or self.q[self.pos] != ":":
            return self.bare(head)
        self.pos += 1  # the colon
        if head.text == "_exists_" and not head.stars:
            if not self.peek() or _ends_word(self.peek()):
                raise self.fail("expected a field name after _exists_:")
            return Exists(self.check_field(self.word(colon_ends=True), exists=True))
        field = self.check_field(head)
        self.skip_space()
        if self.peek() == "(":
            return self.clause(field, depth)
        return self.value(field, grouped=False)

    def check_field(self, w: _Word, *, exists: bool = False) -> str:
        if w.stars:
            raise self.fail("wildcards are not allowed in field names", w.start)
        if not self.searchable(w.text, exists=exists):
            raise self.fail(f"field '{w.text}' is not searchable", w.start)
        return w.text

    def searchable(self, name: str, *, exists: bool) -> bool:
        """May `name` be searched (`exists`: as the field of `_exists_:`)?"""
        raise NotImplementedError

    def bare(self, w: _Word) -> Node:
        """A term without a field."""
        raise NotImplementedError

    def value(self, field: str, *, grouped: bool) -> Node:
        """A value of `field`; `grouped`: inside `field:( … )`."""
        raise NotImplementedError


def join(cls: type[And] | type[Or], nodes: list[Node]) -> Node:
    """One node for one child; nested nodes of the same operator are flattened."""
    flat: list[Node] = []
    for n in nodes:
        flat.extend(n.children if isinstance(n, cls) else (n,))
    return flat[0] if len(flat) == 1 else cls(tuple(flat))
