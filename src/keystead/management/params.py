"""Query parameters shared by Management API lists (contract §8.4): paging, totals, projection.

Bad values answer 400 `invalid_query_string` in Auth0's wording; nothing is clamped silently
except the end of the 1000-record window, which cuts the last page short.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from keystead.errors import BadRequest

WINDOW: Final = 1000  # Auth0 serves offsets only within the first 1000 records (§8.4)
WINDOW_MESSAGE: Final = (
    "You can only page through the first 1000 records. "
    "See https://auth0.com/docs/users/search/v3/view-search-results-by-page#limitation."
)
_INTEGER: Final = re.compile(r"-?[0-9]{1,12}")  # ASCII only: str.isdigit() takes "²"
MAX_PAGE: Final = 2**31 - 1  # larger numbers are typos or attacks, not pages


class InvalidQuery(BadRequest):
    default_code = "invalid_query_string"


def query_error(why: str, name: str | None = None) -> InvalidQuery:
    where = f" on property {name}" if name else ""
    return InvalidQuery(f"Query validation error: '{why}'{where}.")


def parse_int(query: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not _INTEGER.fullmatch(text):
        raise query_error("Expected type integer but found type string", name)
    value = int(text)
    if value < lo:
        raise query_error(f"Value {value} is less than minimum {lo}", name)
    if value > hi:
        raise query_error(f"Value {value} is greater than maximum {hi}", name)
    return value


def parse_bool(query: Mapping[str, str], name: str, default: bool) -> bool:
    """§0.2: booleans arrive as the strings "true" and "false"."""
    raw = query.get(name)
    if raw is None or raw == "":
        return default
    if raw == "true":
        return True
    if raw == "false":
        return False
    raise query_error("Expected type boolean but found type string", name)


@dataclass(frozen=True)
class Page:
    page: int
    per_page: int
    include_totals: bool

    @property
    def start(self) -> int:
        return self.page * self.per_page

    @property
    def limit(self) -> int:
        """Rows to fetch: `per_page`, cut short at the end of the window."""
        return max(0, min(self.per_page, WINDOW - self.start))

    def body(self, key: str, items: list[Any], total: int, *, length: bool = True) -> Any:
        """A bare array, or with include_totals the paged object (`length`: users, logs)."""
        if not self.include_totals:
            return items
        out: dict[str, Any] = {"start": self.start, "limit": self.per_page}
        if length:
            out["length"] = len(items)
        out["total"] = total
        out[key] = items
        return out


def parse_page(
    query: Mapping[str, str],
    *,
    default_per_page: int = 50,
    min_per_page: int = 0,
    max_per_page: int = 100,
    window: bool = True,
) -> Page:
    """page (0-based), per_page and include_totals; 400 past the 1000-record window."""
    page = parse_int(query, "page", 0, 0, MAX_PAGE)
    per_page = parse_int(query, "per_page", default_per_page, min_per_page, max_per_page)
    include_totals = parse_bool(query, "include_totals", False)
    result = Page(page, per_page, include_totals)
    if window and per_page and result.start >= WINDOW:
        raise InvalidQuery(WINDOW_MESSAGE)
    return result


@dataclass(frozen=True)
class Projection:
    """`fields` and `include_fields`: keep only the named fields, or drop them."""

    fields: frozenset[str]
    include: bool

    def apply(self, doc: Mapping[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in doc.items() if (k in self.fields) == self.include}


def parse_projection(query: Mapping[str, str]) -> Projection | None:
    """None when no `fields` were named (include_fields alone changes nothing)."""
    include = parse_bool(query, "include_fields", True)
    raw = query.get("fields")
    if raw is None or not raw.strip():
        return None
    names = frozenset(name.strip() for name in raw.split(",") if name.strip())
    return Projection(names, include)


def parse_sort(query: Mapping[str, str], allowed: frozenset[str]) -> tuple[str, bool] | None:
    """`field:1` (ascending) or `field:-1` (descending) → (field, descending)."""
    raw = query.get("sort")
    if raw is None or raw == "":
        return None
    name, sep, direction = raw.partition(":")
    if not sep or direction not in ("1", "-1"):
        raise query_error(f"String does not match pattern ^[A-Za-z0-9_.]+:(1|-1)$: {raw}", "sort")
    if name not in allowed:
        raise InvalidQuery(f"Sort by {name} is not supported.")
    return name, direction == "-1"
