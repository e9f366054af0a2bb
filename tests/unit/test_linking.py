"""core/linking: the link_with claim checks and the merge rules of account linking (§9.6)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest

from keystead.core import linking
from keystead.core.users import Identity, User
from keystead.errors import BadRequest, Conflict, NotFound

DB = "Username-Password-Authentication"


def user(user_id: str, connection: str = DB, **fields: Any) -> User:
    provider, _, local = user_id.partition("|")
    identity = Identity(connection, provider, local, is_social=provider not in ("auth0", "email"))
    return User(user_id=user_id, identities=(identity,), **fields)


# --- link_with ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("claims", "azp", "result"),
    [
        ({"aud": "spa", "sub": "auth0|1"}, "spa", "auth0|1"),
        ({"aud": ["api", "spa"], "sub": "google-oauth2|12"}, "spa", "google-oauth2|12"),
        ({"sub": "auth0|1"}, "spa", linking.INVALID_AUD),
        ({"aud": "", "sub": "auth0|1"}, "spa", linking.INVALID_AUD),
        ({"aud": [], "sub": "auth0|1"}, "spa", linking.INVALID_AUD),
        ({"aud": ["spa", 3], "sub": "auth0|1"}, "spa", linking.INVALID_AUD),
        ({"aud": {"spa": 1}, "sub": "auth0|1"}, "spa", linking.INVALID_AUD),
        ({"aud": "other", "sub": "auth0|1"}, "spa", linking.AUD_NOT_AZP),
        ({"aud": "spa", "sub": "auth0|1"}, None, linking.AUD_NOT_AZP),
        ({"aud": "spa"}, "spa", linking.NO_SUB),
        ({"aud": "spa", "sub": None}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": 7}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": "no-pipe"}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": "|1"}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": "auth0|"}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": "auth0|" + "x" * 300}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": "auth0|a\nb"}, "spa", linking.INVALID_SUB),
        ({"aud": "spa", "sub": "client@clients"}, "spa", linking.INVALID_SUB),
    ],
)
def test_linked_subject(claims: dict[str, Any], azp: str | None, result: str) -> None:
    if result.startswith("JWT"):
        with pytest.raises(BadRequest) as caught:
            linking.linked_subject(claims, azp=azp)
        assert caught.value.message == result
    else:
        assert linking.linked_subject(claims, azp=azp) == result


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("garbage", linking.INVALID_TOKEN),
        (jwt.encode({"sub": "a|b"}, None, "none"), linking.NOT_RS256),
        (jwt.encode({"sub": "a|b"}, "k" * 32, "HS256"), linking.NOT_RS256),
        (jwt.encode({"sub": "a|b"}, "k" * 48, "HS384"), linking.NOT_RS256),
    ],
)
def test_header_checks(token: str, message: str) -> None:
    with pytest.raises(BadRequest) as caught:
        linking.check_link_with_header(token)
    assert caught.value.message == message


def test_an_rs256_header_passes() -> None:
    linking.check_link_with_header("eyJhbGciOiJSUzI1NiJ9.e30.c2ln")  # {"alg":"RS256"}


@pytest.mark.parametrize(
    ("description", "token", "message"),
    [
        ("invalid issuer", "x", linking.OTHER_ISSUER),
        ('token has no "iss" claim', "x", linking.OTHER_ISSUER),
        ("token must be signed with RS256", "x", linking.NOT_RS256),
        ("invalid signature", "x", linking.INVALID_TOKEN),
        ("token expired", "x", linking.INVALID_TOKEN),
        ("token signed with an unknown key", "x", linking.INVALID_TOKEN),
        ("malformed token", "x", linking.INVALID_TOKEN),
        ("malformed token", jwt.encode({"sub": 5}, "k" * 32, "HS256"), linking.INVALID_SUB),
        ("malformed token", jwt.encode({"sub": "a|b"}, "k" * 32, "HS256"), linking.INVALID_TOKEN),
    ],
)
def test_verification_errors(description: str, token: str, message: str) -> None:
    error = linking.verification_error(description, token)
    assert (error.status, error.message) == (400, message)


# --- merging ------------------------------------------------------------------------------------


def test_link_appends_the_secondary_identity_with_its_profile() -> None:
    primary = user("auth0|p", user_metadata={"a": 1}, app_metadata={"b": 2})
    secondary = user(
        "google-oauth2|9", "google-oauth2", email="s@example.com", email_verified=True,
        name="S", user_metadata={"c": 3}, password_hash="secret-hash",
    )  # fmt: skip
    linked = linking.link(primary, secondary)
    assert linked.identities[0] == primary.identities[0]
    assert linked.identities[1] == Identity(
        "google-oauth2", "google-oauth2", "9", is_social=True,
        profile_data={"email": "s@example.com", "name": "S", "email_verified": True},
        password_hash="secret-hash",  # kept for logins and unlinking, never in profileData
    )  # fmt: skip
    assert (linked.user_metadata, linked.app_metadata) == ({"a": 1}, {"b": 2})
    assert "secret-hash" not in repr(linked.identities[1])
    assert "secret-hash" not in repr(linked)


def test_profile_data_keeps_flags_only_with_their_values() -> None:
    assert linking.profile_data(User(user_id="sms|1", phone_number="+1555")) == {
        "phone_number": "+1555",
        "phone_verified": False,
    }
    assert linking.profile_data(User(user_id="x|1")) == {}


def test_link_refuses() -> None:
    primary = user("auth0|p")
    with pytest.raises(BadRequest, match=linking.SAME):
        linking.link(primary, primary)
    other = user("auth0|o")
    linked = linking.link(primary, other)
    with pytest.raises(Conflict, match=linking.ALREADY_LINKED):
        linking.link(linked, other)
    with pytest.raises(BadRequest, match=linking.UNABLE):
        linking.link(user("auth0|q"), linked)  # a primary with linked identities
    with pytest.raises(BadRequest, match=linking.UNABLE):
        linking.link(primary, User(user_id="auth0|z"))  # no identity at all


def test_unlink_and_standalone_user() -> None:
    primary = user("auth0|p")
    secondary = user(
        "google-oauth2|9", "google-oauth2", email="s@example.com", email_verified=True,
        given_name="S", user_metadata={"gone": True}, password_hash="its-own-hash",
    )  # fmt: skip
    linked = linking.link(primary, secondary)
    remaining, identity = linking.unlink(linked, "google-oauth2", "9")
    assert remaining.identities == primary.identities
    restored = linking.standalone_user(identity)
    assert restored.user_id == "google-oauth2|9"
    assert (restored.email, restored.email_verified, restored.given_name) == (
        "s@example.com", True, "S",
    )  # fmt: skip
    assert restored.user_metadata == {}
    assert restored.password_hash == "its-own-hash"  # back on the user, off the identity
    assert restored.identities == (Identity("google-oauth2", "google-oauth2", "9", is_social=True),)
    assert restored.identities[0].password_hash is None


def test_unlink_refuses() -> None:
    linked = linking.link(user("auth0|p"), user("auth0|o"))
    with pytest.raises(BadRequest, match=linking.MAIN_IDENTITY):
        linking.unlink(linked, "auth0", "p")
    with pytest.raises(NotFound):
        linking.unlink(linked, "auth0", "nobody")


def test_standalone_user_ignores_odd_profile_values() -> None:
    identity = Identity(
        "c", "oidc", "1", profile_data={"email": 5, "name": "", "email_verified": "yes", "x": 1}
    )
    restored = linking.standalone_user(identity)
    assert (restored.email, restored.name, restored.email_verified) == (None, None, False)


@pytest.mark.parametrize(
    ("provider", "user_id", "expected"),
    [
        ("auth0", "abc", "auth0|abc"),
        ("auth0", "auth0|abc", "auth0|abc"),
        ("google-oauth2", 1234, "google-oauth2|1234"),
        ("github", "google-oauth2|1", "github|google-oauth2|1"),
    ],
)
def test_secondary_user_id(provider: str, user_id: str | int, expected: str) -> None:
    assert linking.secondary_user_id(provider, user_id) == expected
