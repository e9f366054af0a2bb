"""Sessions and refresh tokens (contract §10.8, §9.2), in Auth0's response shapes.

    GET    /sessions/{id}                read:sessions           200 · 404
    DELETE /sessions/{id}                delete:sessions         202, known or not (OpenAPI)
    POST   /sessions/{id}/revoke         delete:sessions +       202 · 404: ends the session and
                                         delete:refresh_tokens   revokes the tokens issued under it
    GET    /refresh-tokens/{id}          read:refresh_tokens     200 · 404
    DELETE /refresh-tokens/{id}          delete:refresh_tokens   202, known or not: the family
    GET    /users/{id}/sessions          read:sessions           200 {sessions, next} · 404 user
    DELETE /users/{id}/sessions          delete:sessions         202 · 404 user
    GET    /users/{id}/refresh-tokens    read:refresh_tokens     200 {tokens, next} · 404 user
    DELETE /users/{id}/refresh-tokens    delete:refresh_tokens   202 · 404 user

A session's id is its public `sid` (the ID token claim), never the cookie; a refresh token's is
its row's public id, never the token or its digest. Ending a session does not revoke its refresh
tokens (Auth0's DELETE does not either); revoking does. Writes that change something log `sapi`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core.sessions import LoginSession
from keystead.deps import AppState, get_state
from keystead.errors import NotFound
from keystead.management.api import Caller, json_response
from keystead.management.identities import storable
from keystead.management.schemas.audit import record_change
from keystead.management.schemas.query import DEFAULT_TAKE, Checkpoint, parse_checkpoint
from keystead.management.serialize import iso
from keystead.storage.repositories.session_admin import (
    SqlSessionAdmin,
    TokenFamily,
    session_idle_expiry,
)

SESSION_NOT_FOUND: Final = "The session does not exist."
TOKEN_NOT_FOUND: Final = "The refresh token does not exist."
USER_NOT_FOUND: Final = "The user does not exist."
# Logins here check a password (database connections); signup sets one.
PASSWORD_METHOD: Final = "pwd"


# --- sessions ---------------------------------------------------------------------------------


async def get_session(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        store = _store(state, session)
        found = await store.find_session(storable(request.path_params["id"]))
        if found is None:
            raise NotFound(SESSION_NOT_FOUND)
        clients = (await store.session_clients(found.user_id)).get(found.sid, [])
    return json_response(session_json(found, clients))


async def delete_session(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    sid = storable(request.path_params["id"])
    async with state.transaction() as session:
        user_id = await _store(state, session).delete_session(sid)
        if user_id is not None:
            await record_change(
                state, session, request, caller, "Delete a session",
                target={"id": sid, "type": "session"}, user_id=user_id,
            )  # fmt: skip
    return Response(status_code=202)


async def revoke_session(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        store = _store(state, session)
        found = await store.find_session(storable(request.path_params["id"]))
        if found is None:
            raise NotFound(SESSION_NOT_FOUND)
        families = await store.session_token_families(found.user_id, found.sid)
        await store.revoke_families([f.family_id for f in families])
        await store.delete_session(found.sid)
        await record_change(
            state, session, request, caller, "Revoke a session",
            target={"id": found.sid, "type": "session"},
            changes={"refresh_tokens_revoked": [f.id for f in families]},
            user_id=found.user_id,
        )  # fmt: skip
    return Response(status_code=202)


async def list_user_sessions(request: Request, caller: Caller) -> Response:
    checkpoint = _checkpoint(request)
    state = get_state(request)
    async with state.transaction() as session:
        user_id = await _user(state, session, caller)
        store = _store(state, session)
        found = await store.user_sessions(user_id)
        clients = await store.session_clients(user_id) if found else {}
    page, next_key = checkpoint.slice(found, _session_key)
    items = [session_json(s, clients.get(s.sid, [])) for s in page]
    return json_response(checkpoint.body("sessions", items, next_key))


async def delete_user_sessions(request: Request, caller: Caller) -> Response:
    return await _end_for_user(
        request, caller, SqlSessionAdmin.delete_user_sessions, "Delete a user's sessions"
    )


def session_json(found: LoginSession, clients: list[str]) -> dict[str, Any]:
    device: dict[str, Any] = {}
    if found.user_agent is not None:
        device["initial_user_agent"] = found.user_agent
    if found.ip is not None:
        device["initial_ip"] = found.ip
    return {
        "id": found.sid,
        "user_id": found.user_id,
        "created_at": iso(found.created_at),
        "updated_at": iso(found.last_seen_at),
        "authenticated_at": iso(found.authenticated_at),
        "idle_expires_at": iso(session_idle_expiry(found)),
        "expires_at": iso(found.expires_at),
        "last_interacted_at": iso(found.last_seen_at),
        "device": device,
        "clients": [{"client_id": client_id} for client_id in clients],
        "authentication": {
            "methods": [{"name": PASSWORD_METHOD, "timestamp": iso(found.authenticated_at)}]
        },
    }


def _session_key(found: LoginSession) -> str:
    # Fixed width, so the string order is that of (created_at, sid), as the list is sorted.
    return f"{found.created_at:020.6f}:{found.sid}"


# --- refresh tokens ---------------------------------------------------------------------------


async def get_refresh_token(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        found = await _store(state, session).find_token_family(storable(request.path_params["id"]))
        if found is None:
            raise NotFound(TOKEN_NOT_FOUND)
        rotating = await _rotating_clients(state, session, [found])
    return json_response(token_json(found, state.settings.issuer, rotating))


async def delete_refresh_token(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    async with state.transaction() as session:
        store = _store(state, session)
        found = await store.find_token_family(storable(request.path_params["id"]))
        if found is not None:
            await store.revoke_families([found.family_id])
            await record_change(
                state, session, request, caller, "Delete a refresh token",
                target={"id": found.id, "type": "refresh_token"}, user_id=found.user_id,
            )  # fmt: skip
    return Response(status_code=202)


async def list_user_refresh_tokens(request: Request, caller: Caller) -> Response:
    checkpoint = _checkpoint(request)
    state = get_state(request)
    async with state.transaction() as session:
        user_id = await _user(state, session, caller)
        found = await _store(state, session).user_token_families(user_id)
        page, next_key = checkpoint.slice(found, _token_key)
        rotating = await _rotating_clients(state, session, page)
    items = [token_json(f, state.settings.issuer, rotating) for f in page]
    return json_response(checkpoint.body("tokens", items, next_key))


async def delete_user_refresh_tokens(request: Request, caller: Caller) -> Response:
    return await _end_for_user(
        request, caller, SqlSessionAdmin.revoke_user_tokens, "Delete a user's refresh tokens"
    )


def token_json(family: TokenFamily, issuer: str, rotating: frozenset[str]) -> dict[str, Any]:
    device: dict[str, Any] = {}
    if family.initial_user_agent is not None:
        device["initial_user_agent"] = family.initial_user_agent
    if family.last_user_agent is not None:
        device["last_user_agent"] = family.last_user_agent
    out: dict[str, Any] = {
        "id": family.id,
        "user_id": family.user_id,
        "created_at": iso(family.created_at),
        "idle_expires_at": _iso_or_none(family.idle_expires_at),
        "expires_at": _iso_or_none(family.expires_at),
        "device": device,
        "client_id": family.client_id,
        "session_id": family.sid,
        "rotating": family.client_id in rotating,
        # A token without an API audience is good for /userinfo, as Auth0 lists it.
        "resource_servers": [
            {"audience": family.audience or issuer + "userinfo", "scopes": " ".join(family.scope)}
        ],
    }
    if family.last_exchanged_at is not None:
        out["last_exchanged_at"] = iso(family.last_exchanged_at)
    return out


def _token_key(family: TokenFamily) -> str:
    return f"{family.created_at:020.6f}:{family.id}"


# --- shared -----------------------------------------------------------------------------------


async def _end_for_user(
    request: Request,
    caller: Caller,
    end: Callable[[SqlSessionAdmin, str], Awaitable[int]],
    description: str,
) -> Response:
    """DELETE /users/{id}/sessions or /refresh-tokens: end them all, audit it if any were."""
    state = get_state(request)
    async with state.transaction() as session:
        user_id = await _user(state, session, caller)
        if await end(_store(state, session), user_id):
            await record_change(
                state, session, request, caller, description,
                target={"id": user_id, "type": "user"}, user_id=user_id,
            )  # fmt: skip
    return Response(status_code=202)


def _checkpoint(request: Request) -> Checkpoint:
    """Checkpoint paging only: the OpenAPI answer is always `{<items>, next}`."""
    return parse_checkpoint(request.query_params) or Checkpoint(None, DEFAULT_TAKE)


def _iso_or_none(timestamp: float | None) -> str | None:
    return None if timestamp is None else iso(timestamp)


async def _user(state: AppState, session: AsyncSession, caller: Caller) -> str:
    """The path's user id, or 404 when no such user exists."""
    user = await state.repos(session).users.find(storable(caller.target_user_id))
    if user is None:
        raise NotFound(USER_NOT_FOUND, error_code="inexistent_user")
    return user.user_id


async def _rotating_clients(
    state: AppState, session: AsyncSession, families: list[TokenFamily]
) -> frozenset[str]:
    clients = state.repos(session).clients
    rotating = set()
    for client_id in {f.client_id for f in families}:
        client = await clients.find(client_id)
        if client is not None and client.refresh_token.rotation_type == "rotating":
            rotating.add(client_id)
    return frozenset(rotating)


def _store(state: AppState, session: AsyncSession) -> SqlSessionAdmin:
    return SqlSessionAdmin(session, state.clock)
