"""Brute-force blocks through the Management API (contract §10.9; security AT-01).

    GET    /user-blocks?identifier=…  read:users    {"blocked_for": [{identifier, ip, connection}]}
    DELETE /user-blocks?identifier=…  update:users  204: every pair of that identifier unblocked
    GET    /user-blocks/{id}          read:users    the same for every identifier of user {id}
    DELETE /user-blocks/{id}          update:users  204; an unknown user is 404

Identifiers are matched case-insensitively (email, username or phone number). Only pairs that
are blocked now are listed; an unblock also forgets pairs still counting failures. The
`blocked` flag an administrator sets on a user is not touched (that is PATCH /users/{id}).
`consider_brute_force_enablement=true` lists nothing while blocks are switched off.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.bruteforce import identifier_key, user_identifiers
from keystead.deps import AppState, get_state
from keystead.errors import NotFound
from keystead.management.api import Caller, json_response
from keystead.management.params import parse_bool, query_error
from keystead.management.schemas.audit import record_change
from keystead.ratelimit.wiring import policy_of
from keystead.storage.repositories.user_blocks import SqlUserBlocks

USER_NOT_FOUND: Final = "The user does not exist."


async def get_user_blocks(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    identifiers = _identifier(request)
    return json_response(await _blocked_for(state, request, identifiers))


async def delete_user_blocks(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    identifiers = _identifier(request)
    await _unblock(state, request, caller, identifiers, user_id=None)
    return Response(status_code=204)


async def get_user_blocks_by_id(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    identifiers, _ = await _user_identifiers(state, request)
    return json_response(await _blocked_for(state, request, identifiers))


async def delete_user_blocks_by_id(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    identifiers, user_id = await _user_identifiers(state, request)
    await _unblock(state, request, caller, identifiers, user_id=user_id)
    return Response(status_code=204)


# --- shared pieces ----------------------------------------------------------------------------


def _identifier(request: Request) -> tuple[str, ...]:
    raw = request.query_params.get("identifier")
    if raw is None or not raw.strip():
        raise query_error("Missing required property: identifier")
    if "\x00" in raw:  # PostgreSQL cannot compare such a string
        raise query_error("String must not contain NUL characters", "identifier")
    key = identifier_key(raw)
    return (key,) if key is not None else ()  # too long to name anyone: nothing is blocked


async def _user_identifiers(state: AppState, request: Request) -> tuple[tuple[str, ...], str]:
    user_id = request.path_params["id"]
    user = None
    if "\x00" not in user_id:
        async with state.transaction() as session:
            user = await state.repos(session).users.find(user_id)
    if user is None:
        raise NotFound(USER_NOT_FOUND, error_code="inexistent_user")
    return user_identifiers(user.email, user.username, user.phone_number), user.user_id


async def _blocked_for(
    state: AppState, request: Request, identifiers: tuple[str, ...]
) -> dict[str, Any]:
    policy = policy_of(state)
    if parse_bool(request.query_params, "consider_brute_force_enablement", False) and (
        policy.max_attempts == 0
    ):
        return {"blocked_for": []}
    now = state.clock.now()
    async with state.transaction() as session:
        pairs = await SqlUserBlocks(session).blocks(identifiers)
    return {
        "blocked_for": [
            {"identifier": identifier, "ip": ip, "connection": connection}
            for identifier, ip, connection, count in pairs
            if policy.pair_blocked(count, now)
        ]
    }


async def _unblock(
    state: AppState,
    request: Request,
    caller: Caller,
    identifiers: tuple[str, ...],
    *,
    user_id: str | None,
) -> None:
    async with state.transaction() as session:
        cleared = await SqlUserBlocks(session).clear(identifiers)
        if cleared:
            await record_change(
                state,
                session,
                request,
                caller,
                "Unblock a user (brute-force protection)",
                target={"identifier": ", ".join(identifiers)},
                user_id=user_id,
            )
