"""Password hashing (argon2id, OWASP Password Storage Cheat Sheet) and the password policy.

New hashes are argon2id with m=19456 KiB, t=2, p=1 (OWASP's first recommended setting).
Imported hashes are verified as they are: argon2 (any variant) and bcrypt `$2a$/$2b$/$2y$`.
After a successful login, callers check `needs_rehash` and store `hash_password(pw)` again, so
imported and outdated hashes upgrade themselves.

Every function here is synchronous and CPU-bound (tens of milliseconds by design): callers on
the event loop run them in a worker thread, e.g. `await asyncio.to_thread(verify_password, h, pw)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Final, Literal

import bcrypt
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Longer inputs are refused before hashing (DoS guard, ASVS 6.2.9 asks for at least 64 chars).
MAX_PASSWORD_BYTES: Final = 1024
# bcrypt only ever looks at the first 72 bytes; the systems that produced imported hashes
# truncated silently, so verification must truncate the same way to accept the same passwords.
_BCRYPT_MAX_BYTES: Final = 72
_BCRYPT_RE: Final = re.compile(r"^\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}$")

_HASHER: Final = PasswordHasher(
    time_cost=2, memory_cost=19_456, parallelism=1, hash_len=32, salt_len=16, type=Type.ID
)


def hash_password(password: str) -> str:
    """argon2id hash in PHC string format."""
    if len(password.encode()) > MAX_PASSWORD_BYTES:
        raise ValueError(f"password longer than {MAX_PASSWORD_BYTES} bytes")
    return _HASHER.hash(password)


def is_bcrypt(stored_hash: str) -> bool:
    return bool(_BCRYPT_RE.match(stored_hash))


def is_argon2(stored_hash: str) -> bool:
    return stored_hash.startswith(("$argon2id$", "$argon2i$", "$argon2d$"))


def is_supported_hash(stored_hash: str) -> bool:
    """True for a well-formed bcrypt or argon2 hash (what a tenant file may import)."""
    if is_bcrypt(stored_hash):
        return True
    if not is_argon2(stored_hash):
        return False
    try:
        _HASHER.check_needs_rehash(stored_hash)  # parses the parameters
    except (InvalidHashError, ValueError):
        return False
    return True


def verify_password(stored_hash: str, password: str) -> bool:
    """Check a password against an argon2 or bcrypt hash. Unknown formats never match."""
    raw = password.encode()
    if len(raw) > MAX_PASSWORD_BYTES:
        return False
    if is_bcrypt(stored_hash):
        try:
            return bcrypt.checkpw(raw[:_BCRYPT_MAX_BYTES], stored_hash.encode())
        except ValueError:
            return False
    if is_argon2(stored_hash):
        try:
            return _HASHER.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
    return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash is not argon2id with the current parameters (bcrypt, older settings)."""
    if not stored_hash.startswith("$argon2id$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


@cache
def _dummy_hash() -> str:
    return _HASHER.hash("keystead-dummy-password")


def verify_dummy(password: str) -> Literal[False]:
    """Spend the time of one verification when there is no user, so that a login's timing does
    not tell whether the account exists. Always False."""
    verify_password(_dummy_hash(), password)
    return False


# --- policy ------------------------------------------------------------------------------------

# A short deny-list of the most common passwords that pass the length rule (SE-11: `password1`).
COMMON_PASSWORDS: Final = frozenset(
    {
        "password", "password1", "password12", "password123", "password!", "passw0rd",
        "p@ssw0rd", "p@ssword", "12345678", "123456789", "1234567890", "0123456789",
        "87654321", "11111111", "00000000", "12341234", "123123123", "qwertyui", "qwerty123",
        "qwertyuiop", "1q2w3e4r", "1qaz2wsx", "zaq12wsx", "asdfghjk", "asdfasdf", "abcd1234",
        "abc12345", "abcdefgh", "iloveyou", "sunshine", "princess", "football", "baseball",
        "superman", "starwars", "whatever", "trustno1", "letmein1", "welcome1", "welcome123",
        "changeme", "admin123", "administrator", "qwerty12", "monkey123", "dragon123",
        "computer", "internet", "michelle", "jennifer", "corvette", "mercedes", "liverpool",
        "charlie1", "master123", "shadow12", "aa123456", "test1234", "secret123",
    }
)  # fmt: skip

ViolationCode = Literal[
    "password_too_short", "password_too_long", "password_no_user_info_error",
    "password_dictionary_error",
]  # fmt: skip


@dataclass(frozen=True)
class Violation:
    code: ViolationCode  # close to Auth0's signup error codes (contract §7.2)
    message: str


@dataclass(frozen=True)
class PasswordPolicy:
    """Length and content rules (ASVS 6.2: length over composition, no common passwords)."""

    min_length: int = 8  # characters
    max_bytes: int = MAX_PASSWORD_BYTES
    forbidden: frozenset[str] = field(default=COMMON_PASSWORDS, repr=False)

    def violations(self, password: str, email: str | None = None) -> list[Violation]:
        out: list[Violation] = []
        if len(password) < self.min_length:
            out.append(
                Violation(
                    "password_too_short",
                    f"Password must be at least {self.min_length} characters long",
                )
            )
        if len(password.encode()) > self.max_bytes:
            out.append(
                Violation(
                    "password_too_long", f"Password must be at most {self.max_bytes} bytes long"
                )
            )
        if email and password.strip().lower() in {email.lower(), email.lower().split("@")[0]}:
            out.append(
                Violation("password_no_user_info_error", "Password must not be your email address")
            )
        if password.lower() in self.forbidden:
            out.append(
                Violation("password_dictionary_error", "Password is too common, choose another")
            )
        return out

    def check(self, password: str, email: str | None = None) -> list[str]:
        """Messages for every rule the password breaks; empty when it is acceptable."""
        return [v.message for v in self.violations(password, email)]
