"""Management API MFA policies (contract §10.9): GET and PUT /guardian/policies.

    GET /guardian/policies   read:mfa_policies     [] or ["all-applications"]
    PUT /guardian/policies   update:mfa_policies   the body, a JSON array, is the new policy list

Keystead enforces `all-applications` (keystead/mfa_policy.py): every login then needs a second
factor, and a user without one enrols at the hosted login. Auth0's `confidence-score` (Adaptive
MFA) and anything else is a 400 `invalid_body` that changes nothing.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import get_state
from keystead.errors import BadRequest
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_json
from keystead.management.form_bodies import FormBody
from keystead.management.schemas.audit import record_change
from keystead.mfa_policy import KNOWN, SETTING, SUPPORTED, mfa_policies


async def get_policies(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        return json_response(await mfa_policies(state.repos(session)))


async def set_policies(request: Request, caller: Caller) -> Response:
    policies = _policies(await read_json(request))
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        await repos.tenant_settings.set(SETTING, {"policies": policies})
        await record_change(
            state, session, request, caller, "Set MFA policies",
            target={"guardian": "policies"}, changes={"policies": policies},
        )  # fmt: skip
        return json_response(await mfa_policies(repos))


def _policies(body: Any) -> list[str]:
    """SetGuardianPoliciesRequestContent: an array of MFAPolicyEnum, of which Keystead takes
    only the values it enforces; repeated values count once."""
    if isinstance(body, FormBody) or not isinstance(body, list):
        raise payload_error(f"Expected type array but found type {_json_type(body)}")
    for i, value in enumerate(body):
        if not isinstance(value, str) or value not in KNOWN:
            shown = value[:64] if isinstance(value, str) else _json_type(value)
            raise payload_error(f"No enum match for: {shown}", f"[{i}]")
        if value not in SUPPORTED:
            raise BadRequest(
                f"MFA policy {value} is not supported: Keystead enforces only "
                f"{', '.join(sorted(SUPPORTED))}.",
                error_code="invalid_body",
            )
    return list(dict.fromkeys(body))


def _json_type(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "null"
