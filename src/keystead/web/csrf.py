"""Browser cookies of the hosted pages: the CSRF token and the SSO session cookie (SE-02, SE-03).

CSRF is a double-submit token: a random value in an HttpOnly cookie and the same value in a
hidden form field, compared in constant time. A cross-site POST carries neither (the cookie is
SameSite and the attacker cannot read it), so login CSRF gets 403. The token is replaced after
every successful login or signup, so one rendered form logs in at most once.

Cookies are `Secure` (with the `__Host-` prefix) and `SameSite=None` when the server is reached
over TLS, which a cross-site silent-authentication iframe needs (contract §2.5); on plain http
(development on localhost, where ports share a site) they are `SameSite=Lax`.
"""

from __future__ import annotations

import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.core.sessions import ABSOLUTE_LIFETIME, cookie_name
from keystead.settings import Settings

CSRF_FIELD: Final = "csrf_token"
CSRF_COOKIE: Final = "keystead_csrf"
SECURE_CSRF_COOKIE: Final = "__Host-keystead_csrf"
CSRF_LIFETIME: Final = 86_400  # seconds: a login form left open for a day still works
_TOKEN: Final = re.compile(r"[A-Za-z0-9_\-]{43}")


def secure_cookies(settings: Settings) -> bool:
    """TLS in this process, or a public https issuer (TLS ended by a proxy in front)."""
    return settings.tls_enabled or settings.issuer.startswith("https://")


def _same_site(secure: bool) -> str:
    return "none" if secure else "lax"


# --- CSRF ---------------------------------------------------------------------------------------


def csrf_cookie_name(settings: Settings) -> str:
    return SECURE_CSRF_COOKIE if secure_cookies(settings) else CSRF_COOKIE


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits, 43 characters


def csrf_token(request: Request, settings: Settings) -> tuple[str, bool]:
    """The browser's CSRF token, or a new one; the flag says whether the cookie must be set."""
    current = request.cookies.get(csrf_cookie_name(settings), "")
    if _TOKEN.fullmatch(current):
        return current, False
    return new_csrf_token(), True


def set_csrf_cookie(response: Response, token: str, settings: Settings) -> None:
    secure = secure_cookies(settings)
    response.set_cookie(
        csrf_cookie_name(settings),
        token,
        max_age=CSRF_LIFETIME,
        path="/",
        secure=secure,
        httponly=True,
        # Lax even over TLS: the login form is same-site, and a cross-site POST must not carry it.
        samesite="lax",
    )


def csrf_valid(request: Request, form: Mapping[str, object], settings: Settings) -> bool:
    """Does the form's token equal the cookie's (constant-time; both must be well formed)?"""
    cookie = request.cookies.get(csrf_cookie_name(settings), "")
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not _TOKEN.fullmatch(cookie) or not _TOKEN.fullmatch(sent):
        return False
    return hmac.compare_digest(cookie.encode(), sent.encode())


# --- SSO session cookie -------------------------------------------------------------------------


def session_cookie(request: Request, settings: Settings) -> str | None:
    return request.cookies.get(cookie_name(secure_cookies(settings))) or None


def set_session_cookie(response: Response, value: str, settings: Settings) -> None:
    secure = secure_cookies(settings)
    response.set_cookie(
        cookie_name(secure),
        value,
        max_age=ABSOLUTE_LIFETIME,
        path="/",
        secure=secure,
        httponly=True,
        samesite=_same_site(secure),  # type: ignore[arg-type]
    )


def clear_session_cookie(response: Response, settings: Settings) -> None:
    secure = secure_cookies(settings)
    response.delete_cookie(
        cookie_name(secure),
        path="/",
        secure=secure,
        httponly=True,
        samesite=_same_site(secure),  # type: ignore[arg-type]
    )
