"""Delivering an /authorize result to a validated target (contract §2.3).

    query, fragment   302 (303 after a form POST) to redirect_uri with the parameters
    form_post         200 page that POSTs the parameters to redirect_uri
    web_message       200 page that posts {type: "authorization_response", response: {...}} to
                      window.opener (popup) or else window.parent (silent-auth iframe),
                      targetOrigin = the redirect_uri's origin; framable by that origin only

`state` is passed through untouched, so it comes back byte-exact in every mode (AZ-18).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from starlette.responses import Response

from keystead.core.redirects import append_params
from keystead.errors import OAuthError
from keystead.oauth.authorize_request import AuthorizeError, Target
from keystead.web.pages import BASE_HEADERS, error_page, new_nonce, render

REDIRECT_HEADERS: Final[Mapping[str, str]] = BASE_HEADERS


def _printable(text: str) -> str:
    """error_description is printable ASCII without CR, LF or TAB (AZ-09)."""
    return "".join(c if " " <= c <= "~" else " " for c in text)


def deliver(
    target: Target, params: Mapping[str, str | None], *, after_post: bool = False
) -> Response:
    """Send `params` (None values left out) to `target` through its response mode."""
    fields = {k: v for k, v in params.items() if v is not None}
    mode = target.response_mode
    if mode in ("query", "fragment"):
        location = append_params(target.redirect_uri, fields, mode)
        # RFC 9700 §4.12: 303 after a POST, so the browser never re-posts the credentials.
        return Response(
            status_code=303 if after_post else 302,
            headers={**REDIRECT_HEADERS, "Location": location},
        )
    nonce = new_nonce()
    if mode == "form_post":
        return render(
            "form_post.html", script_nonce=nonce, action=target.redirect_uri, fields=fields
        )
    origin = target.origin
    if origin is None:  # validate_authorize refuses web_message without an origin
        raise ValueError("web_message target without an origin")
    return render(
        "web_message.html",
        script_nonce=nonce,
        frame_ancestors=origin,
        message={"type": "authorization_response", "response": fields},
        origin=origin,
    )


def deliver_error(target: Target, error: OAuthError, *, after_post: bool = False) -> Response:
    return deliver(
        target,
        {
            "error": error.error,
            "error_description": _printable(error.description or error.error),
            "state": target.state,
        },
        after_post=after_post,
    )


def error_response(exc: AuthorizeError, *, after_post: bool = False) -> Response:
    """The one decision (STYLE.md): a validated target gets the error; otherwise a page."""
    if exc.target is not None:
        return deliver_error(exc.target, exc.error, after_post=after_post)
    return error_page(exc.error.error, exc.error.description or exc.error.error)
