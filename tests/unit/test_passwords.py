"""Password hashing, imported hashes, rehash decisions and the password policy."""

from __future__ import annotations

import bcrypt
import pytest
from argon2 import PasswordHasher, Type

from keystead.core.passwords import (
    MAX_PASSWORD_BYTES,
    PasswordPolicy,
    hash_password,
    is_supported_hash,
    needs_rehash,
    verify_dummy,
    verify_password,
)


def test_hash_is_argon2id_with_owasp_parameters() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password(stored, "correct horse battery")
    assert not verify_password(stored, "correct horse battery ")
    assert not needs_rehash(stored)


def test_same_password_hashes_differently() -> None:
    assert hash_password("same password") != hash_password("same password")


@pytest.mark.parametrize("prefix", ["$2a$", "$2b$", "$2y$"])
def test_imported_bcrypt_hash_verifies_and_needs_rehash(prefix: str) -> None:
    stored = prefix + bcrypt.hashpw(b"imported-pw", bcrypt.gensalt(rounds=4)).decode()[4:]
    assert is_supported_hash(stored)
    assert verify_password(stored, "imported-pw")
    assert not verify_password(stored, "imported-PW")
    assert needs_rehash(stored)


def test_bcrypt_compares_only_the_first_72_bytes_like_its_origin() -> None:
    long_pw = "x" * 72
    stored = bcrypt.hashpw(long_pw.encode(), bcrypt.gensalt(rounds=4)).decode()
    assert verify_password(stored, long_pw + "ignored-tail")


def test_outdated_argon2_parameters_need_rehash() -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("pw-old-params")
    assert verify_password(weak, "pw-old-params")
    assert needs_rehash(weak)
    argon2i = PasswordHasher(type=Type.I).hash("pw-argon2i")
    assert verify_password(argon2i, "pw-argon2i")
    assert needs_rehash(argon2i)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plaintext",
        "$1$abc$def",  # md5-crypt
        "$2b$04$short",
        "$argon2id$v=19$m=19456,t=2,p=1$broken",
        "pbkdf2_sha256$600000$salt$hash",
    ],
)
def test_unknown_or_malformed_hashes_never_match(stored: str) -> None:
    assert not is_supported_hash(stored)
    assert not verify_password(stored, "anything")
    assert needs_rehash(stored)


def test_oversized_passwords_are_refused_before_hashing() -> None:
    stored = hash_password("fine-password")
    assert not verify_password(stored, "a" * (MAX_PASSWORD_BYTES + 1))
    with pytest.raises(ValueError, match="1024 bytes"):
        hash_password("é" * (MAX_PASSWORD_BYTES // 2 + 1))


def test_dummy_verification_is_always_false() -> None:
    assert verify_dummy("keystead-dummy-password") is False
    assert verify_dummy("anything else") is False


@pytest.mark.parametrize(
    ("password", "email", "messages"),
    [
        ("long enough pass", "a@example.com", []),
        ("a" * 64, None, []),
        ("emoji 🙂 and spaces", None, []),
        ("short", None, ["Password must be at least 8 characters long"]),
        ("alice@example.com", "Alice@Example.com", ["Password must not be your email address"]),
        ("longalice", "longalice@example.com", ["Password must not be your email address"]),
        ("password1", None, ["Password is too common, choose another"]),
        ("PassWord1", None, ["Password is too common, choose another"]),
        ("x" * 1025, None, ["Password must be at most 1024 bytes long"]),
        ("é" * 513, None, ["Password must be at most 1024 bytes long"]),
    ],
)
def test_policy_messages(password: str, email: str | None, messages: list[str]) -> None:
    assert PasswordPolicy().check(password, email) == messages


def test_policy_codes_and_custom_minimum() -> None:
    policy = PasswordPolicy(min_length=12)
    assert [v.code for v in policy.violations("password", "p@x.io")] == [
        "password_too_short",
        "password_dictionary_error",
    ]
    assert policy.check("twelve chars") == []
