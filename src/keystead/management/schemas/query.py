"""Checkpoint paging, `from` and `take` (contract §8.4), shared by the checkpoint lists.

When either parameter is present the answer is `{<key>: [...], "next": "<cursor>"}`, even with
include_totals=true. SDKs (auth0-python v6, node v7) send `include_totals=true&take=50` and
follow `next` until it is missing or empty; the last page says `"next": ""`, which the contract
allows and which, unlike a missing `next`, no offset-shaped answer could also mean (the OpenAPI
`oneOf`). A cursor is the sort key of the last item sent, base64url-encoded: opaque to callers,
stable under inserts and deletes.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from keystead.management.params import parse_int, query_error

T = TypeVar("T")
DEFAULT_TAKE: Final = 50
MAX_TAKE: Final = 100
MAX_CURSOR: Final = 1024


def encode_cursor(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).rstrip(b"=").decode()


def decode_cursor(raw: str) -> str:
    """The key inside a cursor we issued; 400 for anything else."""
    if len(raw) > MAX_CURSOR:
        raise query_error(f"String is too long ({len(raw)} chars), maximum {MAX_CURSOR}", "from")
    try:
        return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
    except (binascii.Error, ValueError):
        raise query_error("Not a checkpoint from a previous answer", "from") from None


@dataclass(frozen=True)
class Checkpoint:
    after: str | None  # the sort key of the last item already sent; None: from the start
    take: int

    def body(self, key: str, items: list[Any], next_key: str | None) -> dict[str, Any]:
        return {key: items, "next": "" if next_key is None else encode_cursor(next_key)}

    def slice(self, ordered: Sequence[T], key: Callable[[T], str]) -> tuple[list[T], str | None]:
        """This page of `ordered` (sorted by `key`), and the key to continue after, if any."""
        rest = [item for item in ordered if self.after is None or key(item) > self.after]
        page = rest[: self.take]
        return page, key(page[-1]) if len(rest) > self.take else None


def parse_checkpoint(query: Mapping[str, str]) -> Checkpoint | None:
    """None when neither `from` nor `take` was sent: the caller pages by offset."""
    if "from" not in query and "take" not in query:
        return None
    take = parse_int(query, "take", DEFAULT_TAKE, 1, MAX_TAKE)
    raw = query.get("from") or None
    return Checkpoint(decode_cursor(raw) if raw else None, take)
