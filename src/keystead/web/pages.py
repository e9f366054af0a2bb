"""Server-rendered pages: the Jinja2 environment, security headers and the one render helper.

Every page is `no-store` and `no-referrer`, and may not be framed (security case AZ-20), except
the web_message response, which the SPA's own origin frames for silent authentication
(contract §2.3, AZ-21). Inline script runs only with a per-response CSP nonce.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any, Final

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

HERE: Final = Path(__file__).parent
TEMPLATES: Final = HERE / "templates"
STATIC: Final = HERE / "static"
STATIC_PATH: Final = "/u/static"

# No form-action: after the login form posts, the server redirects to the app's callback, and
# browsers apply form-action to that redirect too.
PAGE_CSP: Final = (
    "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"
)
BASE_HEADERS: Final[Mapping[str, str]] = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}
FRAME_DENY: Final[Mapping[str, str]] = {"X-Frame-Options": "DENY"}


@cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["static"] = STATIC_PATH
    return env


def new_nonce() -> str:
    return secrets.token_urlsafe(18)


def page_headers(
    *, script_nonce: str | None = None, frame_ancestors: str | None = None
) -> dict[str, str]:
    """Headers for one HTML response.

    `script_nonce` allows the inline script carrying that nonce. `frame_ancestors` None denies
    framing (X-Frame-Options too); an origin allows exactly that origin to frame the page.
    """
    csp = PAGE_CSP
    if script_nonce is not None:
        csp += f"; script-src 'nonce-{script_nonce}'"
    headers = dict(BASE_HEADERS)
    if frame_ancestors is None:
        headers.update(FRAME_DENY)
    else:
        csp = csp.replace("frame-ancestors 'none'", f"frame-ancestors {frame_ancestors}")
    headers["Content-Security-Policy"] = csp
    return headers


def render(
    template: str,
    *,
    status: int = 200,
    script_nonce: str | None = None,
    frame_ancestors: str | None = None,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render `template` with the page security headers."""
    html = environment().get_template(template).render(nonce=script_nonce, **context)
    all_headers = page_headers(script_nonce=script_nonce, frame_ancestors=frame_ancestors)
    if headers:
        all_headers.update(headers)
    return HTMLResponse(html, status_code=status, headers=all_headers)


def error_page(
    error: str, description: str, *, status: int = 400, title: str = "Something went wrong"
) -> HTMLResponse:
    """The error page: shown instead of redirecting to a target that is not trusted (G6)."""
    return render("error.html", status=status, error=error, description=description, title=title)
