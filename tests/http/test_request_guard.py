"""Requests refused before any handler runs: oversized bodies and NUL characters."""

from __future__ import annotations

import pytest

from tests.http.helpers import m2m


async def test_oversized_body_is_413_in_the_oauth_shape(http, settings):
    body = b"x" * (settings.max_body_bytes + 1)
    r = await http.post("/oauth/token", content=body, headers={"content-type": "text/plain"})
    assert r.status_code == 413
    assert r.json() == {
        "error": "invalid_request",
        "error_description": "Request body is too large.",
    }


async def test_oversized_body_is_413_in_the_management_shape(http, settings):
    body = b"{" + b" " * settings.max_body_bytes + b"}"
    r = await http.post("/api/v2/users", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["statusCode"] == 413
    assert r.json()["errorCode"] == "payload_too_large"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/oauth/token", b'{"grant_type":"client_credentials","client_id":"a\\u0000b"}'),
        ("POST", "/oauth/token", b"grant_type=password&username=a%00b&password=x"),
        ("PATCH", "/api/v2/users/auth0%7C1", b'{"name":"a\\u0000b"}'),
        ("GET", "/api/v2/users/auth0%7C1%00", b""),
        ("GET", "/userinfo?access_token=a%00", b""),
    ],
)
async def test_nul_characters_are_refused_with_400(app, http, method, path, body):
    # A valid token, so the Management API reads the body rather than stopping at 401.
    headers = {"content-type": "application/json", **m2m(app)}
    r = await http.request(method, path, content=body, headers=headers)
    assert r.status_code == 400
    payload = r.json()
    if path.startswith("/api/v2"):
        assert payload["errorCode"] in ("invalid_body", "invalid_uri")
        assert "must not contain NUL characters" in payload["message"]
    else:
        assert payload["error"] == "invalid_request"


async def test_unknown_management_path_answers_in_the_management_shape(http):
    r = await http.get("/api/v2/no-such-thing")
    assert r.status_code == 404
    assert r.json() == {
        "statusCode": 404,
        "error": "Not Found",
        "message": "Not Found",
        "errorCode": "inexistent_resource",
    }


async def test_unknown_path_answers_json(http):
    r = await http.get("/no-such-thing")
    assert r.status_code == 404
    assert r.json()["error"] == "not_found"


async def test_a_locked_or_lost_database_is_503_with_retry_after(app, http, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from keystead.management import users

    async def locked(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("database is locked"))

    monkeypatch.setattr(users, "find_user", locked)  # the read behind GET /users/{id}
    r = await http.get("/api/v2/users/auth0%7C1", headers=m2m(app))
    assert r.status_code == 503
    assert r.headers["retry-after"] == "1"
    assert r.json()["statusCode"] == 503
    assert "locked" not in r.text  # no driver detail reaches the client
