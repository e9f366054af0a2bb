"""Account linking (contract §9.6): POST /users/{id}/identities, DELETE …/{provider}/{user_id}.

Link:   1. body (LinkUserIdentityRequestContent); a current-user token may send only `link_with`
        2. the secondary user: from a verified `link_with`, or `provider` + `user_id`
        3. core/linking.link; the secondary user row goes, the primary keeps its identity
        → 201 the primary's identities
Unlink: core/linking.unlink; the identity becomes a standalone user again → 200 the rest
The path's user was settled by management/api.py (current-user tokens act only on themselves).
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response

from keystead.core import linking, policy_fields
from keystead.core.users import User
from keystead.deps import AppState, get_state
from keystead.errors import AlreadyExists, BadRequest, Conflict, InvalidToken, NotFound
from keystead.management.api import Caller, json_response
from keystead.management.bodies import payload_error, read_json, validate
from keystead.management.schemas.audit import record_change
from keystead.management.serialize import identity_json
from keystead.storage.keys import verify_token
from keystead.storage.repositories import Repositories

USER_NOT_FOUND: Final = "The user does not exist."
# UserIdentityProviderEnum of Auth0's OpenAPI document.
PROVIDERS: Final = frozenset(
    {
        "ad", "adfs", "amazon", "apple", "dropbox", "bitbucket", "auth0-oidc", "auth0", "baidu",
        "bitly", "box", "custom", "daccount", "dwolla", "email", "evernote-sandbox", "evernote",
        "exact", "facebook", "fitbit", "github", "google-apps", "google-oauth2", "instagram", "ip",
        "line", "linkedin", "oauth1", "oauth2", "office365", "oidc", "okta", "paypal",
        "paypal-sandbox", "pingfederate", "planningcenter", "salesforce-community",
        "salesforce-sandbox", "salesforce", "samlp", "sharepoint", "shopify", "shop", "sms",
        "soundcloud", "thirtysevensignals", "twitter", "untappd", "vkontakte", "waad", "weibo",
        "windowslive", "wordpress", "yahoo", "yandex",
    }
)  # fmt: skip
_PROVIDER_FORM: Final = ("provider", "user_id", "connection_id")

# LinkUserIdentityRequestContent, with bounds: a body is never a reason to do unbounded work.
LINK: Final[dict[str, Any]] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "provider": {"type": "string"},  # the enum is checked by hand: a readable message
        "connection_id": {"type": "string", "pattern": "^con_[A-Za-z0-9]{16}$"},
        "user_id": {"type": ["string", "integer"], "minLength": 1, "maxLength": 255},
        "link_with": {"type": "string", "minLength": 1, "maxLength": 16_384},
    },
}


# --- link ---------------------------------------------------------------------------------------


async def link_user_identity(request: Request, caller: Caller) -> Response:
    body = validate(await read_json(request), LINK)
    refuse_nul(body)
    if not body:
        raise payload_error("Too few properties defined (0), minimum 1")
    policy_fields.check_link_fields(body.keys(), caller.decision)  # MG-10: proof, not a name
    state = get_state(request)
    if "link_with" in body:
        if any(name in body for name in _PROVIDER_FORM):
            raise payload_error(
                "link_with cannot be combined with provider, user_id or connection_id"
            )
        secondary_id = await _proven_subject(state, body["link_with"], caller)
    else:
        secondary_id = _named_secondary(body)
    async with state.transaction() as session:
        repos = state.repos(session)
        primary = await _primary(repos, caller)
        if "link_with" not in body:
            await _check_provider(repos, body)
        secondary = await _secondary(repos, primary, secondary_id, body.get("connection_id"))
        linked = linking.link(primary, secondary)
        await repos.users.delete(secondary.user_id)
        updated = await repos.users.update(linked)
        await _audit(state, session, request, caller, "Link a User Account", primary.user_id)
    return json_response(_identities(updated, caller), 201)


async def _proven_subject(state: AppState, token: str, caller: Caller) -> str:
    """§9.6: the secondary proven by a JWT we signed, for the calling application."""
    linking.check_link_with_header(token)
    try:
        claims = await verify_token(state, token)
    except InvalidToken as exc:
        raise linking.verification_error(exc.description, token) from None
    return linking.linked_subject(claims, azp=caller.client_id)


def _named_secondary(body: dict[str, Any]) -> str:
    for name in ("provider", "user_id"):
        if name not in body:
            raise payload_error(f"Missing required property: {name}")
    if body["provider"] not in PROVIDERS:
        raise payload_error(f"No enum match for: {body['provider']}", "provider")
    return linking.secondary_user_id(body["provider"], body["user_id"])


async def _check_provider(repos: Repositories, body: dict[str, Any]) -> None:
    """The provider form names a provider some connection serves (its strategy)."""
    provider = body["provider"]
    connection_id = body.get("connection_id")
    if connection_id is not None:
        connection = next(
            (
                c
                for c in await repos.connections.list(strategies=[provider])
                if c.id == connection_id
            ),
            None,
        )
        if connection is None:
            raise BadRequest(linking.NOT_CONFIGURED)
    elif not await repos.connections.list(strategies=[provider], limit=1):
        raise BadRequest(linking.NOT_CONFIGURED)


async def _secondary(
    repos: Repositories, primary: User, secondary_id: str, connection_id: str | None
) -> User:
    if secondary_id == primary.user_id:
        raise BadRequest(linking.SAME)
    provider, _, local_id = secondary_id.partition("|")
    if linking.identity_index(primary, provider, local_id) is not None:
        raise Conflict(linking.ALREADY_LINKED, error_code="already_exists")
    secondary = await repos.users.find(secondary_id)
    if secondary is None:
        raise BadRequest(linking.NOT_FOUND)
    if connection_id is not None:
        connection = await repos.connections.get(connection_id)
        if secondary.identities[0].connection != connection.name:
            raise BadRequest(linking.NOT_FOUND)
    return secondary


# --- unlink -------------------------------------------------------------------------------------


async def unlink_user_identity(request: Request, caller: Caller) -> Response:
    provider = request.path_params["provider"]
    user_id = request.path_params["user_id"]
    if provider not in PROVIDERS:
        raise BadRequest(
            f"Path validation error: 'No enum match for: {provider}' on property provider.",
            error_code="invalid_uri",
        )
    state = get_state(request)
    async with state.transaction() as session:
        repos = state.repos(session)
        primary = await _primary(repos, caller)
        remaining, identity = linking.unlink(primary, provider, user_id)
        updated = await repos.users.update(remaining)
        try:
            await repos.users.create(
                linking.standalone_user(identity), connection=identity.connection
            )
        except AlreadyExists:
            # Someone took the id or the address meanwhile; the transaction undoes the unlink.
            raise Conflict("The user already exists.", error_code="auth0_idp_error") from None
        await _audit(state, session, request, caller, "Unlink a User Account", primary.user_id)
    return json_response(_identities(updated, caller))


# --- shared -------------------------------------------------------------------------------------


# TODO(bodies.read_json and api.py refuse NUL): drop these two; PostgreSQL cannot store or even
# compare a string holding U+0000 (the driver fails: a 500), SQLite can.
def refuse_nul(body: Any) -> None:
    """400 for a body with a NUL character in any string, key or value, at any depth."""
    todo = [body]
    while todo:
        value = todo.pop()
        if isinstance(value, str) and "\x00" in value:
            raise payload_error("String must not contain NUL characters")
        if isinstance(value, dict):
            todo.extend(value.keys())
            todo.extend(value.values())
        elif isinstance(value, list):
            todo.extend(value)


def storable(key: str | None) -> str:
    """A path id fit for a lookup: one with a NUL finds nothing, so it becomes ''."""
    return "" if key is None or "\x00" in key else key


async def _primary(repos: Repositories, caller: Caller) -> User:
    user = await repos.users.find(storable(caller.target_user_id))
    if user is None:
        raise NotFound(USER_NOT_FOUND, error_code="inexistent_user")
    return user


def _identities(user: User, caller: Caller) -> list[dict[str, Any]]:
    idp = policy_fields.shows_idp_tokens(caller.scopes)
    return [identity_json(identity, idp_tokens=idp) for identity in user.identities]


async def _audit(
    state: AppState,
    session: AsyncSession,
    request: Request,
    caller: Caller,
    description: str,
    user_id: str,
) -> None:
    """A `sapi` event naming who linked what; never the link_with token."""
    await record_change(state, session, request, caller, description, user_id=user_id)
