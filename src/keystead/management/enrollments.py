"""A user's Guardian enrollments and legacy multifactor providers (contract §9.2): a view of the
factors management/authentication_methods.py keeps.

    GET    /users/{id}/enrollments                Guardian's view of the factors
    DELETE /users/{id}/multifactor/{provider}     google-authenticator → totp
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import get_state
from keystead.errors import BadRequest
from keystead.management.api import Caller, json_response
from keystead.management.authentication_methods import audit, check_user, methods_repository
from keystead.management.serialize import iso
from keystead.storage.repositories.authentication_methods import AuthenticationMethod

USER_NOT_FOUND_GUARDIAN: Final = "User not found."  # the OpenAPI's 404 for the Guardian paths
MFA_PROVIDERS: Final = frozenset({"duo", "google-authenticator"})

# Guardian enrollment (type, auth_method) of each MFA method type.
ENROLLMENT_KINDS: Final = {
    "totp": ("authenticator", "authenticator"),
    "phone": ("sms", "sms"),
    "push": ("pn", "guardian"),
    "guardian": ("pn", "guardian"),
    "webauthn-roaming": ("webauthn-roaming", "webauthn-roaming"),
    "webauthn-platform": ("webauthn-platform", "webauthn-platform"),
}


async def get_enrollments(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        methods = methods_repository(state, session)
        await check_user(state, session, caller, USER_NOT_FOUND_GUARDIAN)
        found = await methods.list(caller.target_user_id or "", types=ENROLLMENT_KINDS)
    return json_response([enrollment_json(m) for m in found])


def enrollment_json(method: AuthenticationMethod) -> dict[str, Any]:
    kind, auth_method = ENROLLMENT_KINDS[method.type]
    out: dict[str, Any] = {
        "id": method.id.partition("|")[2] or method.id,  # Guardian's `dev_…` form
        "status": "confirmed" if method.confirmed else "pending",
        "type": kind,
        "auth_method": auth_method,
    }
    if method.name:
        out["name"] = method.name
    phone = method.properties.get("phone_number")
    if isinstance(phone, str):
        out["phone_number"] = phone
    if method.confirmed:
        out["enrolled_at"] = iso(method.created_at)
    if method.last_auth_at is not None:
        out["last_auth"] = iso(method.last_auth_at)
    return out


async def delete_multifactor_provider(request: Request, caller: Caller) -> Response:
    provider = request.path_params["provider"]
    if provider not in MFA_PROVIDERS:
        raise BadRequest(
            f"Path validation error: 'No enum match for: {provider}' on property provider.",
            error_code="invalid_uri",
        )
    state = get_state(request)
    async with state.transaction() as session:
        await check_user(state, session, caller, USER_NOT_FOUND_GUARDIAN)
        if provider == "google-authenticator":  # Duo enrollments live at Duo: nothing here
            await methods_repository(state, session).delete_all(
                caller.target_user_id or "", types=["totp"]
            )
            await audit(state, session, request, caller, "Delete a multifactor provider")
    return Response(status_code=204)
