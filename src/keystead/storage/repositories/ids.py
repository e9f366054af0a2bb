"""Record ids in Auth0's formats (contract §0.6), from `secrets`."""

from __future__ import annotations

import secrets
import string

_ALNUM = string.ascii_letters + string.digits


def _alnum(n: int) -> str:
    return "".join(secrets.choice(_ALNUM) for _ in range(n))


def new_user_id(provider: str = "auth0") -> str:
    return f"{provider}|{secrets.token_hex(12)}"


def new_client_id() -> str:
    return _alnum(32)


def new_client_secret() -> str:
    return secrets.token_urlsafe(48)  # 64 characters of [A-Za-z0-9_-], like Auth0's


def new_resource_server_id() -> str:
    return secrets.token_hex(12)


def new_client_grant_id() -> str:
    return "cgr_" + _alnum(16)


def new_connection_id() -> str:
    return "con_" + _alnum(16)


def new_role_id() -> str:
    return "rol_" + _alnum(16)
