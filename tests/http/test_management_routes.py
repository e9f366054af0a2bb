"""The Management API route table: every route declares its scopes from core/policy's one table,
and nothing under /api/v2 bypasses the front door (STYLE: test_every_management_route_has_a_scope).
"""

from __future__ import annotations

from typing import Any

import pytest
from starlette.routing import BaseRoute, Route

from keystead.core import policy
from keystead.management.api import ApiRoute, PreflightRoute, api
from keystead.management.routes import routes
from tests.http.helpers import check_error, m2m, module_app, module_http

pytestmark = pytest.mark.asyncio(loop_scope="module")
app = module_app()
http = module_http()

API_ROUTES = [r for r in routes if isinstance(r, ApiRoute)]


async def _noop(*_: Any) -> Any:
    raise AssertionError("never called")


def _label(route: BaseRoute) -> str:
    return (
        f"{sorted(route.methods or ())} {route.path}" if isinstance(route, Route) else repr(route)
    )


@pytest.mark.parametrize("route", API_ROUTES, ids=_label)
async def test_every_management_route_has_a_scope(route: ApiRoute) -> None:
    (method,) = set(route.methods or ()) - {"HEAD"}
    assert route.scopes, route.path
    assert route.scopes == policy.accepted_scopes(method, route.template)
    assert route.path == "/api/v2" + route.template


async def test_the_table_covers_every_api_route(app: Any) -> None:
    # Everything the app serves under /api/v2 goes through api(): no route skips the scope check,
    # but for the one public document that describes the API itself.
    public = {"/api/v2/openapi.json"}
    for route in app.routes:
        path = getattr(route, "path", "")
        if path in public:
            continue
        if path.startswith("/api/v2") or isinstance(route, PreflightRoute):
            assert isinstance(route, ApiRoute | PreflightRoute), path
    served = [id(r) for r in app.routes if isinstance(r, ApiRoute | PreflightRoute)]
    assert served == [id(r) for r in routes if isinstance(r, ApiRoute | PreflightRoute)]


async def test_routes_are_unique() -> None:
    keys = [(m, r.template) for r in API_ROUTES for m in (r.methods or ()) if m != "HEAD"]
    assert len(keys) == len(set(keys))


async def test_users_endpoints_are_in_the_table() -> None:
    keys = {(m, r.template) for r in API_ROUTES for m in (r.methods or ())}
    assert {
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/{id}"),
        ("PATCH", "/users/{id}"),
        ("DELETE", "/users/{id}"),
        ("GET", "/users-by-email"),
    } <= keys


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/no-such-resource"), ("POST", "/users/{id}"), ("GEt", "/nope")]
)
async def test_an_operation_auth0_lacks_fails_at_import(method: str, path: str) -> None:
    with pytest.raises(KeyError):
        api(method, path, _noop)


async def test_parameter_names_do_not_matter_to_the_table() -> None:
    route = api("GET", "/users/{user_id}", _noop)
    assert route.scopes == policy.accepted_scopes("GET", "/users/{id}")


async def test_unknown_api_path_is_404(app: Any, http: Any) -> None:
    r = await http.get("/api/v2/no-such-resource", headers=m2m(app, "read:users"))
    assert r.status_code == 404


async def test_method_the_path_lacks_is_405(app: Any, http: Any) -> None:
    r = await http.put("/api/v2/users/auth0|x", headers=m2m(app, "update:users"), json={})
    assert r.status_code == 405


async def test_a_path_with_an_encoded_slash_is_not_a_user_id(app: Any, http: Any) -> None:
    # `{id}` takes one segment; a decoded "/" never reaches a handler as part of an id.
    r = await http.get("/api/v2/users/auth0%7Ca%2Fb", headers=m2m(app, "read:users"))
    assert r.status_code == 404


async def test_the_wrapper_refuses_before_the_handler(app: Any, http: Any) -> None:
    # The wrapper, not the handler, refuses: a user token never reaches list_users.
    r = await http.get("/api/v2/users", headers=m2m(app, "read:current_user"))
    check_error(r, 403, "Insufficient scope, expected any of: read:users,read:user_idp_tokens")
