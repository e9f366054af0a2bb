"""Write src/keystead/data/management_scopes.json: every scope of the Auth0 Management API.

The scopes come from Auth0's Management API OpenAPI document (securitySchemes
oAuth2ClientCredentials), plus the current-user scopes that Auth0's docs list but the OpenAPI
omits (contract §11). The 3.7 MB OpenAPI is read here, once, never at runtime.

    .venv/bin/python scripts/gen_management_scopes.py [path/to/auth0-management-api-oas.json]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OAS = ROOT.parent / "shared" / "spec" / "auth0-management-api-oas.json"
OUT = ROOT / "src" / "keystead" / "data" / "management_scopes.json"

# Contract §11: documented for SPAs but absent from the OpenAPI scope list.
DOCS_ONLY = {
    "create:current_user_metadata": "Create Current User Metadata",
    "delete:current_user_metadata": "Delete Current User Metadata",
}


def scopes_from(oas: dict) -> list[dict[str, str]]:
    flows = oas["components"]["securitySchemes"]["oAuth2ClientCredentials"]["flows"]
    found: dict[str, str] = dict(flows["clientCredentials"]["scopes"])
    for value, description in DOCS_ONLY.items():
        found.setdefault(value, description)
    return [{"value": v, "description": d} for v, d in found.items()]


def main(argv: list[str]) -> int:
    source = Path(argv[1]) if len(argv) > 1 else DEFAULT_OAS
    scopes = scopes_from(json.loads(source.read_text(encoding="utf-8")))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    lines = ",\n".join(" " + json.dumps(scope) for scope in scopes)  # one scope a line: diffable
    OUT.write_text(f"[\n{lines}\n]\n", encoding="utf-8")
    print(f"{OUT.relative_to(ROOT)}: {len(scopes)} scopes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
