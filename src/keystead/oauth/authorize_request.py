"""/authorize requests: parsed once, then validated in the order of contract §2.2, steps 1-5.

Steps 1-2 (the client, the redirect_uri and response mode) are here, and so is the order of
steps 3-5; the checks of single parameters in steps 4-5 are in authorize_checks.py.

    AuthorizeParams.parse(items)       the query (GET) or form (POST) as sent, first value wins
    validate_authorize(params, repos, settings) → AuthorizeRequest, or AuthorizeError with
        target None     steps 1-2 failed: the client or redirect_uri is not trusted → error page
        target set      step 3 on: deliver the error to the redirect_uri through the response mode

The hosted login and signup pages carry `AuthorizeRequest.query` in a hidden field and validate
it again from scratch when the form comes back: nothing in it is trusted.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal
from urllib.parse import urlencode

from keystead.core.apis import ResourceServer
from keystead.core.clients import Client
from keystead.core.cors import origin_of, web_message_allowed
from keystead.core.grants import check_response_type_allowed, parse_response_type, requires_pkce
from keystead.core.pkce import PkceChallenge, check_challenge
from keystead.core.ports import Connection
from keystead.core.redirects import default_redirect_uri, redirect_uri_allowed
from keystead.core.scopes import parse_scope
from keystead.errors import InvalidRequest, OAuthError, UnsupportedResponseType
from keystead.oauth.authorize_checks import (
    RequestNotSupported,
    RequestUriNotSupported,
    check_audience,
    check_connection,
    check_max_age,
    check_prompt,
)
from keystead.settings import Settings
from keystead.storage.repositories import Repositories

ResponseMode = Literal["query", "fragment", "form_post", "web_message"]
RESPONSE_MODES: Final = frozenset({"query", "fragment", "form_post", "web_message"})

# Long enough for a 4 KB state plus everything spa-js sends (AZ-18); anything longer is refused
# before any lookup (IN-01). The query also rides in the login form.
MAX_QUERY_CHARS: Final = 16_384
MAX_LOGIN_HINT: Final = 320  # an email address at most
# A parameter sent twice is ambiguous (RFC 6749 §3.1): refused rather than guessed.
SINGLE_VALUED: Final = frozenset(
    {
        "client_id", "redirect_uri", "response_type", "response_mode", "scope", "state",
        "nonce", "audience", "resource", "code_challenge", "code_challenge_method", "prompt",
        "max_age", "connection", "login_hint", "screen_hint", "request", "request_uri",
    }
)  # fmt: skip


class UserBlocked(OAuthError):
    """Auth0's error for a blocked user's session (contract §2.4, obs.)."""

    error = "unauthorized"
    status = 403

    def __init__(self) -> None:
        super().__init__("user is blocked")


@dataclass(frozen=True)
class Target:
    """A validated place to send the browser: the registered redirect_uri and how to reach it."""

    client_id: str
    redirect_uri: str
    response_mode: ResponseMode
    state: str | None  # echoed byte-exact; None when none was sent

    @property
    def origin(self) -> str | None:
        """web_message's targetOrigin: the redirect_uri's own origin, never `*`."""
        return origin_of(self.redirect_uri)


class AuthorizeError(Exception):
    """An /authorize failure. With `target` it goes to the app; without, on an error page."""

    def __init__(self, error: OAuthError, target: Target | None = None, *, client_id: str = ""):
        super().__init__(error.description)
        self.error = error
        self.target = target
        self.client_id = client_id  # known client, for the log, even when the target is not


@dataclass(frozen=True)
class AuthorizeParams:
    """The parameters as sent. Empty values mean absent (contract §0.2)."""

    items: tuple[tuple[str, str], ...]
    values: Mapping[str, str] = field(repr=False)
    repeated: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, items: Iterable[tuple[str, object]]) -> AuthorizeParams:
        kept: list[tuple[str, str]] = []
        values: dict[str, str] = {}
        repeated: set[str] = set()
        for name, value in items:
            if not isinstance(value, str):
                continue  # a file upload in a POST form: never a parameter of ours
            kept.append((name, value))
            if value == "":
                continue
            if name in values:
                repeated.add(name)
            else:
                values[name] = value
        return cls(tuple(kept), values, frozenset(repeated & SINGLE_VALUED))

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    @property
    def query(self) -> str:
        """The request as a query string, for the login form and the /u/login URL."""
        return urlencode(self.items)


@dataclass(frozen=True)
class AuthorizeRequest:
    """A fully validated request (steps 1-5); the session, consent and code come next."""

    params: AuthorizeParams
    client: Client
    target: Target
    redirect_uri: str | None  # as sent; the token request must repeat it (RFC 6749 §4.1.3)
    response_type: frozenset[str]
    scope: tuple[str, ...] | None
    api: ResourceServer | None
    connection: Connection
    nonce: str | None = None
    pkce: PkceChallenge | None = None
    prompt: frozenset[str] = frozenset()
    max_age: int | None = None
    screen_hint: str | None = None
    login_hint: str | None = None

    @property
    def query(self) -> str:
        return self.params.query

    @property
    def silent(self) -> bool:
        """prompt=none: never show a page; fail with login_required instead."""
        return "none" in self.prompt

    def fail(self, error: OAuthError) -> AuthorizeError:
        """`error`, to be delivered to this request's validated target."""
        return AuthorizeError(error, self.target, client_id=self.client.client_id)


def _printable(text: str, limit: int = 200) -> str:
    """Request text echoed in a description: printable ASCII, bounded (AZ-09)."""
    cleaned = "".join(c if " " <= c <= "~" else "?" for c in text)
    return cleaned if len(cleaned) <= limit else cleaned[:limit] + "..."


async def validate_authorize(
    params: AuthorizeParams, repos: Repositories, settings: Settings
) -> AuthorizeRequest:
    """Contract §2.2 steps 1-5, in that order; raises AuthorizeError."""
    if len(params.query) > MAX_QUERY_CHARS:
        raise AuthorizeError(InvalidRequest("The request is too large"))
    client = await _client(params, repos)
    target, sent_uri, mode_error = _target(params, client)
    try:
        if mode_error is not None:
            raise mode_error
        return await _validate_rest(params, repos, settings, client, target, sent_uri)
    except OAuthError as exc:
        raise AuthorizeError(exc, target, client_id=client.client_id) from None


# 1. The client.
async def _client(params: AuthorizeParams, repos: Repositories) -> Client:
    if "client_id" in params.repeated:
        raise AuthorizeError(InvalidRequest("client_id must not be repeated"))
    client_id = params.get("client_id")
    if client_id is None:
        raise AuthorizeError(InvalidRequest("Missing required parameter: client_id"))
    client = await repos.clients.find(client_id) if len(client_id) <= 64 else None
    if client is None:
        raise AuthorizeError(InvalidRequest(f"Unknown client: {_printable(client_id)}"))
    return client


# 2. The redirect_uri, and how to deliver to it.
def _target(
    params: AuthorizeParams, client: Client
) -> tuple[Target, str | None, OAuthError | None]:
    def page(text: str) -> AuthorizeError:
        return AuthorizeError(InvalidRequest(text), client_id=client.client_id)

    if "redirect_uri" in params.repeated:
        raise page("redirect_uri must not be repeated")
    sent = params.get("redirect_uri")
    if sent is None:
        redirect_uri = default_redirect_uri(client.callbacks)
        if redirect_uri is None:  # AZ-04: never pick one of several callbacks
            raise page("Missing required parameter: redirect_uri")
    elif redirect_uri_allowed(sent, client.callbacks, client.app_type):
        redirect_uri = sent
    else:
        raise page(
            f"Callback URL mismatch. {_printable(sent)} is not in the list of allowed callback URLs"
        )

    # The response mode decides how errors travel from here on, so it is settled first; a bad
    # one is reported through the default mode.
    implicit = bool({"token", "id_token"} & set((params.get("response_type") or "").split()))
    default: ResponseMode = "fragment" if implicit else "query"
    raw_mode = params.get("response_mode")
    mode: ResponseMode = default
    problem: OAuthError | None = None
    if "response_mode" in params.repeated:
        problem = InvalidRequest("response_mode must not be repeated")
    elif raw_mode is not None and raw_mode not in RESPONSE_MODES:
        problem = InvalidRequest(f"Unsupported response_mode: {_printable(raw_mode, 40)}")
    elif raw_mode is not None:
        mode = raw_mode  # type: ignore[assignment]  # checked against RESPONSE_MODES
    if mode == "web_message" and not (
        origin_of(redirect_uri) and web_message_allowed(redirect_uri, client)
    ):
        # Contract §2.3: a visible, immediate failure rather than a message nobody receives.
        raise page(
            "response_mode=web_message needs the redirect_uri's origin in the application's "
            "Allowed Web Origins"
        )
    return Target(client.client_id, redirect_uri, mode, params.get("state")), sent, problem


# 3. From here on errors go to the target. 4. The request itself. 5. The audience.
async def _validate_rest(
    params: AuthorizeParams,
    repos: Repositories,
    settings: Settings,
    client: Client,
    target: Target,
    sent_uri: str | None,
) -> AuthorizeRequest:
    response_type = parse_response_type(params.get("response_type"))
    check_response_type_allowed(client, response_type)
    if response_type != {"code"}:
        # AZ-08: implicit and hybrid flows are not served; no token ever leaves /authorize.
        raise UnsupportedResponseType("Only response_type=code is supported")
    if params.repeated:
        raise InvalidRequest(f"{sorted(params.repeated)[0]} must not be repeated")
    if params.get("request") is not None:
        raise RequestNotSupported("Request objects are not supported")
    if params.get("request_uri") is not None:
        raise RequestUriNotSupported("request_uri is not supported")
    pkce = check_challenge(
        params.get("code_challenge"),
        params.get("code_challenge_method"),
        required=requires_pkce(client),
    )
    prompt = check_prompt(params.get("prompt"))
    max_age = check_max_age(params.get("max_age"))
    scope = parse_scope(params.get("scope"))
    connection = await check_connection(params.get("connection"), client, repos)
    api = await check_audience(params, repos, settings)
    login_hint = params.get("login_hint")
    return AuthorizeRequest(
        params=params,
        client=client,
        target=target,
        redirect_uri=sent_uri,
        response_type=response_type,
        scope=scope,
        api=api,
        connection=connection,
        nonce=params.get("nonce"),
        pkce=pkce,
        prompt=prompt,
        max_age=max_age,
        screen_hint=params.get("screen_hint"),
        login_hint=login_hint if login_hint and len(login_hint) <= MAX_LOGIN_HINT else None,
    )
