"""User → Auth0 user JSON (contract §9.1, §0.6) and the fields projection (§8.4)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from keystead.core.users import Identity, User
from keystead.management.params import Projection
from keystead.management.serialize import iso, user_json

T0 = datetime(2024, 5, 1, 9, 12, 33, 417_900, tzinfo=UTC).timestamp()
PRIMARY = Identity(connection="Username-Password-Authentication", provider="auth0", user_id="65f1")
LINKED = Identity(
    connection="google-oauth2",
    provider="google-oauth2",
    user_id="1035",
    is_social=True,
    profile_data={"email": "j@gmail.com", "access_token": "ya29", "refresh_token": "1//r"},
)


def _user(**fields: object) -> User:
    base: dict[str, object] = {
        "user_id": "auth0|65f1",
        "email": "jane@example.com",
        "identities": (PRIMARY,),
        "created_at": T0,
        "updated_at": T0 + 1,
    }
    return User(**{**base, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (T0, "2024-05-01T09:12:33.417Z"),  # truncated, never rounded up into the next second
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_700_000_000.9999, "2023-11-14T22:13:20.999Z"),
    ],
)
def test_iso_has_milliseconds_and_z(timestamp: float, text: str) -> None:
    assert iso(timestamp) == text


def test_minimal_user() -> None:
    assert user_json(_user()) == {
        "user_id": "auth0|65f1",
        "email": "jane@example.com",
        "email_verified": False,
        "created_at": "2024-05-01T09:12:33.417Z",
        "updated_at": "2024-05-01T09:12:34.417Z",
        "identities": [
            {
                "connection": "Username-Password-Authentication",
                "provider": "auth0",
                "user_id": "65f1",
                "isSocial": False,
            }
        ],
    }


def test_full_user() -> None:
    body = user_json(
        _user(
            email_verified=True,
            username="jane",
            phone_number="+15550100",
            phone_verified=True,
            name="Jane Doe",
            nickname="jane",
            given_name="Jane",
            family_name="Doe",
            picture="https://example.com/j.png",
            user_metadata={"theme": "dark"},
            app_metadata={"plan": "pro"},
            blocked=True,
            last_login=T0 + 2,
            last_ip="192.0.2.1",
            logins_count=3,
            last_password_reset=T0 + 3,
            password_hash="$argon2id$secret",
        )
    )
    assert body["username"] == "jane"
    assert (body["phone_number"], body["phone_verified"]) == ("+15550100", True)
    assert (body["user_metadata"], body["app_metadata"]) == ({"theme": "dark"}, {"plan": "pro"})
    assert body["last_login"] == "2024-05-01T09:12:35.417Z"
    assert body["last_password_reset"] == "2024-05-01T09:12:36.417Z"
    assert (body["last_ip"], body["logins_count"], body["blocked"]) == ("192.0.2.1", 3, True)
    assert "password_hash" not in body and "argon2" not in repr(body)


def test_empty_metadata_and_defaults_are_left_out() -> None:
    body = user_json(_user(user_metadata={}, app_metadata={}, blocked=False, logins_count=0))
    for absent in ("user_metadata", "app_metadata", "blocked", "logins_count", "last_login"):
        assert absent not in body
    assert "phone_verified" not in body  # only beside a phone number
    assert "email_verified" not in user_json(_user(email=None))


def test_primary_identity_first_and_idp_tokens_only_with_the_scope() -> None:
    user = _user(identities=(PRIMARY, LINKED))
    plain = user_json(user)
    assert [i["provider"] for i in plain["identities"]] == ["auth0", "google-oauth2"]
    assert plain["identities"][1]["profileData"] == {"email": "j@gmail.com"}
    assert "profileData" not in plain["identities"][0]
    shown = user_json(user, idp_tokens=True)
    assert shown["identities"][1]["profileData"]["access_token"] == "ya29"
    assert LINKED.profile_data == {
        "email": "j@gmail.com",
        "access_token": "ya29",
        "refresh_token": "1//r",
    }  # the stored identity is not changed by serialising it


def test_projection() -> None:
    user = _user(name="Jane")
    assert user_json(user, projection=Projection(frozenset({"email", "name"}), True)) == {
        "email": "jane@example.com",
        "name": "Jane",
    }
    dropped = user_json(user, projection=Projection(frozenset({"identities", "email"}), False))
    assert set(dropped) == {"user_id", "email_verified", "created_at", "updated_at", "name"}
    assert user_json(user, projection=Projection(frozenset({"password_hash"}), True)) == {}
