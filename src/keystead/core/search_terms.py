"""User search terms: the indexed (path, value) pairs of one user, and how a query value is
spelled among them (contract §9.3; storage/user_search_terms.py keeps them in a table).

    user_terms(email=, app_metadata=, user_metadata=, identity_user_id=, linked_identities=)
        -> {(path, value)}   every metadata leaf, the e-mail domain, the identities' fields
    spellings(value) -> the encoded values an exact query value matches

A value carries its JSON type in its first character, so that one B-tree over (path, value)
serves equality, prefix and range queries for every type without mixing them up:

    s<text>    a string                  "pro" -> "spro"
    n<16 hex>  a number, as a float64 in an order-preserving encoding: text order = numeric order
    t / f      true / false
    o          a non-empty object (for `_exists_`)      z   null (for `_exists_`: it does not)

`_exists_:path` is then one range, `path = p AND value < 'z'`.

Arrays are transparent (each element is indexed under the array's path) and objects add their
keys to the path, as `app_metadata.roles:admin` and `user_metadata.display.fontSize:13` read.
What is indexed is capped, so that a user's document cannot blow up the table:
MAX_METADATA_PATH segments of letters, digits, `_` and `-` (the keys a query can name),
strings of up to MAX_VALUE_LENGTH characters, and MAX_LEAVES leaves per document, in the
document's order. What is left out cannot be found by metadata search (docs/search.md).
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from keystead.core.search_ast import MAX_METADATA_PATH, METADATA_ROOTS, Value

MAX_VALUE_LENGTH: Final = 256  # characters of a string value; longer ones are not indexed
MAX_LEAVES: Final = 200  # per metadata document
MAX_PATH_LENGTH: Final = 255  # characters of a path (the column's size)
EMAIL_DOMAIN: Final = "email.domain"
IDENTITY_FIELDS: Final = ("connection", "provider", "user_id", "isSocial")
STRING: Final = "s"
NUMBER: Final = "n"
TRUE: Final = "t"
FALSE: Final = "f"
OBJECT: Final = "o"
NULL: Final = "z"
_SEGMENT = re.compile(r"[\w-]+")  # as core/search_ast.py accepts in a field name
_NUMBER = re.compile(r"-?[0-9]{1,15}(\.[0-9]{1,15})?", re.ASCII)
_SIGN: Final = 1 << 63
_ALL: Final = (1 << 64) - 1

Term = tuple[str, str]  # (path, encoded value)


def encode(value: Any) -> str | None:
    """The stored form of a JSON scalar; None for what is not indexed (long strings, numbers
    beyond a float64, containers)."""
    if value is None:
        return NULL
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int | float):
        return encode_number(value)
    if isinstance(value, str):
        return STRING + value if len(value) <= MAX_VALUE_LENGTH else None
    return None


def encode_number(value: float) -> str | None:
    """`n` + 16 hex digits whose text order is the numbers' order (IEEE 754 bits, the sign bit
    flipped for positives and every bit for negatives)."""
    try:
        number = float(value) + 0.0  # + 0.0: -0.0 and 0.0 are one number
    except OverflowError:
        return None
    if not math.isfinite(number):
        return None
    (bits,) = struct.unpack(">Q", struct.pack(">d", number))
    bits = bits ^ _ALL if bits & _SIGN else bits | _SIGN
    return f"{NUMBER}{bits:016x}"


def spellings(value: Value) -> list[str]:
    """The stored values an exact query value matches: the string itself and the number or
    boolean it spells (Elasticsearch maps `13` and `"13"` alike)."""
    if isinstance(value, bool):
        return [TRUE if value else FALSE]
    if isinstance(value, int | float):
        number = encode_number(value)
        return [number] if number else []
    out = [STRING + value] if len(value) <= MAX_VALUE_LENGTH else []
    if _NUMBER.fullmatch(value):
        number = encode_number(float(value))
        if number:
            out.append(number)
    if value in ("true", "false"):
        out.append(TRUE if value == "true" else FALSE)
    return out


def numeric(value: Value) -> float | None:
    """A range bound as a number, if it spells one (the bounds of a numeric range)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return float(value) if _NUMBER.fullmatch(value) else None


def user_terms(
    *,
    email: str | None,
    app_metadata: Mapping[str, Any] | None,
    user_metadata: Mapping[str, Any] | None,
    identities: Sequence[Mapping[str, Any]],
) -> set[Term]:
    """Every (path, encoded value) a search can ask about for one user.

    `identities` are the primary one first, then the linked ones, as Auth0 spells their
    fields. The primary identity's `isSocial` follows from its provider (a column), so only
    linked identities bring theirs.
    """
    terms: set[Term] = set()
    if email and "@" in email:
        domain = email.rpartition("@")[2]
        if len(domain) <= MAX_VALUE_LENGTH:
            terms.add((EMAIL_DOMAIN, STRING + domain.lower()))
    for root, document in zip(METADATA_ROOTS, (app_metadata, user_metadata), strict=True):
        for path, value in _leaves(document or {}, root):
            terms.add((path, value))
    for n, identity in enumerate(identities):
        for name in IDENTITY_FIELDS if n else IDENTITY_FIELDS[:3]:
            given = identity.get(name)
            if name == "user_id" and given is not None and not isinstance(given, bool):
                given = str(given)  # stored as the provider gave it; shown as a string
            encoded = encode(given) if given is not None else None
            if encoded:
                terms.add((f"identities.{name}", encoded))
    return terms


def _leaves(document: Mapping[str, Any], root: str) -> Iterator[Term]:
    """The first MAX_LEAVES (path, value) leaves of a metadata document, in its order."""
    for n, leaf in enumerate(_walk(document, root, 0), 1):
        if n > MAX_LEAVES:
            return
        yield leaf


def _walk(value: Any, path: str, depth: int, *, in_array: bool = False) -> Iterator[Term]:
    if len(path) > MAX_PATH_LENGTH:
        return
    if isinstance(value, Mapping):
        if depth and value:
            yield path, OBJECT
        if depth >= MAX_METADATA_PATH:
            return
        for key, child in value.items():
            if isinstance(key, str) and _SEGMENT.fullmatch(key):
                yield from _walk(child, f"{path}.{key}", depth + 1)
    elif isinstance(value, list):
        if not in_array:  # one level of array is transparent, as jsonpath's lax mode reads it
            for item in value:
                yield from _walk(item, path, depth, in_array=True)
    elif depth:
        encoded = encode(value)
        if encoded is not None:
            yield path, encoded
