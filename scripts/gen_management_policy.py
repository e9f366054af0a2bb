#!/usr/bin/env python3
"""Generate src/keystead/data/management_operations.json from Auth0's Management API OpenAPI.

The table keeps, for every (method, path) of the OpenAPI document, the operationId and the
scopes its `security` block accepts (any-of, contract §8.3). core/policy.py reads it once and
adds the documented deviations (contract §9.2, §10.1, §11) on top.

    .venv/bin/python scripts/gen_management_policy.py            # regenerate
    .venv/bin/python scripts/gen_management_policy.py --check    # exit 1 if the file is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SPEC = ROOT.parent / "shared" / "spec" / "auth0-management-api-oas.json"
DEFAULT_OUT = ROOT / "src" / "keystead" / "data" / "management_operations.json"
METHODS = ("get", "put", "post", "patch", "delete")


def operations(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`"METHOD /path"` → {"operationId", "scopes"}; scopes in the document's order."""
    out: dict[str, dict[str, Any]] = {}
    for path, item in spec["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            scopes: list[str] = []
            # Each security entry is {scheme: [scopes]}; bearerAuth carries none.
            for requirement in op.get("security", spec.get("security", [])):
                for scope_list in requirement.values():
                    scopes.extend(s for s in scope_list if s not in scopes)
            if not scopes:
                raise SystemExit(f"{method.upper()} {path}: no scopes in its security block")
            out[f"{method.upper()} {path}"] = {"operationId": op["operationId"], "scopes": scopes}
    return dict(sorted(out.items(), key=lambda kv: (kv[0].split(" ", 1)[1], kv[0])))


def render(spec: dict[str, Any], source: str) -> str:
    doc = {
        "source": source,
        "info_version": spec.get("info", {}).get("version"),
        "operations": operations(spec),
    }
    # One operation per line: compact, yet diffs stay readable.
    ops = ",\n".join(f"    {json.dumps(k)}: {json.dumps(v)}" for k, v in doc["operations"].items())
    return (
        "{\n"
        f'  "source": {json.dumps(source)},\n'
        f'  "info_version": {json.dumps(doc["info_version"])},\n'
        f'  "operations": {{\n{ops}\n  }}\n'
        "}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=DEFAULT_SPEC)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--check", action="store_true", help="fail if --out is not up to date")
    args = parser.parse_args(argv)

    spec = json.loads(args.spec.read_text(encoding="utf-8"))
    text = render(spec, source=args.spec.name)
    json.loads(text)  # the hand-laid layout must still be valid JSON
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale; run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {len(json.loads(text)['operations'])} operations to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
