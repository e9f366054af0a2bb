"""What the hosted pages' forms share (login, signup, the code page, password reset).

The pages are stateless: the original /authorize query rides in a hidden field (QUERY_FIELD)
and is validated again from scratch on every POST, and every POST must carry this browser's
CSRF token (security case SE-03) before anything else is looked at.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import AppState, get_state
from keystead.oauth.authorize_request import (
    AuthorizeError,
    AuthorizeParams,
    AuthorizeRequest,
    validate_authorize,
)
from keystead.oauth.responses import error_response
from keystead.web.csrf import csrf_token, csrf_valid, set_csrf_cookie
from keystead.web.pages import error_page

QUERY_FIELD = "authorize_query"


async def page_request(
    state: AppState, params: AuthorizeParams
) -> AuthorizeRequest | AuthorizeError:
    """Validate the carried /authorize request again, from scratch."""
    async with state.transaction() as session:
        try:
            return await validate_authorize(params, state.repos(session), state.settings)
        except AuthorizeError as exc:
            return exc


def carried_params(form: Any) -> AuthorizeParams:
    query = form.get(QUERY_FIELD)
    items = parse_qsl(query, keep_blank_values=True) if isinstance(query, str) else []
    return AuthorizeParams.parse(items)


def form_text(form: Any, name: str, limit: int) -> str:
    value = form.get(name)
    return value[:limit] if isinstance(value, str) else ""


def csrf_failure() -> Response:
    """SE-03: no token, or not this browser's token: 403, nothing done."""
    return error_page(
        "invalid_request",
        "This form has expired or did not come from this site. Go back and try again.",
        status=403,
        title="Request refused",
    )


@dataclass(frozen=True)
class PostedPage:
    """A hosted page's POST that may go on: its form, the /authorize request it carries
    (validated again from scratch) and this browser's CSRF token."""

    state: AppState
    form: Any
    req: AuthorizeRequest
    token: str


async def posted_page(request: Request) -> PostedPage | Response:
    """Read a login, signup or code page's POST; the refusal instead when its CSRF token is
    wrong (SE-03: 403, nothing done) or the carried /authorize request no longer holds."""
    state = get_state(request)
    form = await request.form()
    if not csrf_valid(request, form, state.settings):
        return csrf_failure()
    found = await page_request(state, carried_params(form))
    if isinstance(found, AuthorizeError):
        return error_response(found, after_post=True)
    token, _ = csrf_token(request, state.settings)
    return PostedPage(state, form, found, token)


def signup_allowed(req: AuthorizeRequest) -> bool:
    return not req.connection.options.get("disable_signup", False)


def with_csrf_cookie(response: Response, token: str, is_new: bool, state: AppState) -> Response:
    if is_new:
        set_csrf_cookie(response, token, state.settings)
    return response
