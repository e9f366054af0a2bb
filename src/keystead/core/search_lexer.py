"""User search lexer: the words, phrases and operators of `q` (contract §9.3).

The grammar on top of it is in core/search.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from keystead.errors import BadRequest


class SearchSyntaxError(BadRequest):
    """400 invalid_query_string, naming the 0-based position of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(
            f"Query parse error at position {position}: {message}",
            error_code="invalid_query_string",
        )
        self.reason = message
        self.position = position


_STOP = frozenset('()[]{}"')  # and whitespace end an unquoted word; ':' too outside values
_UNSUPPORTED = {"?": "'?' wildcards", "~": "fuzzy and proximity ('~')", "^": "boosts ('^')"}
_OPERATORS = ("AND", "OR", "NOT")


@dataclass
class _Word:
    text: str  # escapes resolved
    stars: tuple[int, ...]  # indexes of unescaped '*' in text
    start: int
    end: int
    quoted: bool = False


class _Lexer:
    """A cursor over `q` that reads words and phrases; _Parser (core/search.py) extends it."""

    def __init__(self, q: str) -> None:
        self.q = q
        self.pos = 0

    # 1. characters and words

    def fail(self, message: str, position: int | None = None) -> SearchSyntaxError:
        return SearchSyntaxError(message, self.pos if position is None else position)

    def skip_space(self) -> None:
        while self.pos < len(self.q) and self.q[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.skip_space()
        return self.q[self.pos] if self.pos < len(self.q) else ""

    def expect(self, char: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected '{char}'")
        self.pos += 1

    def peek_operator(self) -> str | None:
        self.skip_space()
        for op in _OPERATORS:
            end = self.pos + len(op)
            if self.q.startswith(op, self.pos) and (end == len(self.q) or _ends_word(self.q[end])):
                return op
        return None

    def word(self, *, colon_ends: bool) -> _Word:
        start, text, stars = self.pos, list[str](), list[int]()
        while self.pos < len(self.q):
            c = self.q[self.pos]
            if _ends_word(c) or (colon_ends and c == ":"):
                break
            if c == "\\":
                if self.pos + 1 == len(self.q):
                    raise self.fail("escape character '\\' at the end of the query")
                c = self.q[self.pos + 1]
                self.pos += 1
            elif c == "*":
                stars.append(len(text))
            elif c in _UNSUPPORTED:
                raise self.fail(f"{_UNSUPPORTED[c]} are not supported; escape it with '\\'")
            text.append(c)
            self.pos += 1
        if self.pos == start:
            raise self.fail("expected a search term")
        return _Word("".join(text), tuple(stars), start, self.pos)

    def phrase(self) -> _Word:
        start, text = self.pos, list[str]()
        self.pos += 1  # the opening quote
        while self.pos < len(self.q) and self.q[self.pos] != '"':
            if self.q[self.pos] == "\\" and self.pos + 1 < len(self.q):
                self.pos += 1
            text.append(self.q[self.pos])
            self.pos += 1
        if self.pos == len(self.q):
            raise self.fail("unterminated quoted phrase", start)
        self.pos += 1
        return _Word("".join(text), (), start, self.pos, quoted=True)

    def value_word(self) -> _Word:
        if self.peek_operator():
            raise self.fail(f"expected a value, found operator {self.peek_operator()}")
        return self.phrase() if self.peek() == '"' else self.word(colon_ends=False)


def _ends_word(c: str) -> bool:
    return c in _STOP or c.isspace()
