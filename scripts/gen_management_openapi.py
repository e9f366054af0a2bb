#!/usr/bin/env python3
"""Generate src/keystead/data/management_openapi.json: the OpenAPI document of the Management
API operations Keystead serves, served at /api/v2/openapi.json.

Each operation is Auth0's own (parameters, request and response schemas), so SDKs generated from
Auth0's document keep working; its `security` block lists the scopes Keystead accepts (the
policy table, deviations included). Only the components those operations reference are kept.

    .venv/bin/python scripts/gen_management_openapi.py            # regenerate
    .venv/bin/python scripts/gen_management_openapi.py --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "spec" / "auth0-management-api-oas.json"
DEFAULT_OUT = ROOT / "src" / "keystead" / "data" / "management_openapi.json"
DROPPED_KEYS = ("x-codeSamples",)


def served_operations() -> list[tuple[str, str, tuple[str, ...]]]:
    """(method, OpenAPI path, accepted scopes) for every route of management/routes.py."""
    sys.path.insert(0, str(ROOT / "src"))
    from keystead.management.api import ApiRoute
    from keystead.management.routes import routes

    served = {
        (r.operation.method.lower(), r.operation.path, r.scopes)
        for r in routes
        if isinstance(r, ApiRoute)
    }
    return sorted(served)


def _refs(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/"):
            found.add(ref)
        for value in node.values():
            _refs(value, found)
    elif isinstance(node, list):
        for value in node:
            _refs(value, found)


def build(spec: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for method, path, scopes in served_operations():
        op = {k: v for k, v in spec["paths"][path][method].items() if k not in DROPPED_KEYS}
        op["security"] = [{"bearerAuth": []}, {"oAuth2ClientCredentials": list(scopes)}]
        paths.setdefault(path, {})[method] = op
    components: dict[str, dict[str, Any]] = {
        "securitySchemes": spec["components"]["securitySchemes"]
    }
    pending: set[str] = set()
    _refs(paths, pending)
    done: set[str] = set()
    while pending:
        ref = pending.pop()
        if ref in done:
            continue
        done.add(ref)
        _, _, kind, name = ref.split("/", 3)
        target = spec["components"][kind][name]
        components.setdefault(kind, {})[name] = target
        _refs(target, pending)
    return {
        "openapi": spec["openapi"],
        "info": {
            "title": "Keystead Management API",
            "description": "The operations of Auth0's Management API v2 that Keystead serves.",
            "version": "2",
        },
        "servers": [],  # filled with {issuer}api/v2 when served
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": components,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = json.dumps(build(json.loads(args.spec.read_text())), sort_keys=True, indent=None)
    text += "\n"
    if args.check:
        stale = not args.out.exists() or args.out.read_text() != text
        print(f"{args.out}: {'stale' if stale else 'up to date'}")
        return 1 if stale else 0
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
