"""/api/v2/openapi.json describes exactly the Management routes served, with their scopes."""

from __future__ import annotations

from typing import Any

from keystead.management.api import ApiRoute
from keystead.management.routes import routes


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("$ref"), str):
                found.add(item["$ref"])
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


async def test_document_lists_every_route_with_its_scopes(http, settings):
    r = await http.get("/api/v2/openapi.json")
    assert r.status_code == 200
    document = r.json()
    assert document["servers"] == [{"url": settings.issuer + "api/v2"}]
    served = {
        (route.operation.method.lower(), route.operation.path): list(route.scopes)
        for route in routes
        if isinstance(route, ApiRoute)
    }
    described = {
        (method, path): op["security"][1]["oAuth2ClientCredentials"]
        for path, item in document["paths"].items()
        for method, op in item.items()
    }
    # Stale after a route change? Run scripts/gen_management_openapi.py.
    assert described == served


async def test_every_reference_resolves(http):
    document = (await http.get("/api/v2/openapi.json")).json()
    for ref in _refs(document):
        node = document
        for part in ref.removeprefix("#/").split("/"):
            assert part in node, ref
            node = node[part]
