"""Database accounts: what an email address and a password must be, shared by the signup API
(oauth/dbconnections.py), the hosted signup and reset pages (web/) and the Management API."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from keystead.core.passwords import PasswordPolicy
from keystead.core.ports import Connection
from keystead.errors import SignupError

DATABASE_STRATEGY: Final = "auth0"  # the strategy of database connections
MAX_EMAIL: Final = 254  # RFC 5321 path limit, less the angle brackets
# ASCII only, after NFKC: a Unicode domain must come in its xn-- form, so that one address
# cannot make two accounts (IN-05). Deliverability is the email's job, not this pattern's.
_LOCAL: Final = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.\-]{1,64}")
_LABEL: Final = r"[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?"
_DOMAIN: Final = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def canonical_email(raw: str) -> str | None:
    """NFKC-folded, trimmed, lower-cased address; None when it is not a plain email address."""
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or len(email) > MAX_EMAIL or not _LOCAL.fullmatch(local):
        return None
    if local.startswith(".") or local.endswith(".") or ".." in local:
        return None
    return email if _DOMAIN.fullmatch(domain) else None


def connection_password_policy(connection: Connection) -> PasswordPolicy:
    """The connection's `password_complexity_options.min_length` (Auth0's setting), else 8."""
    options = connection.options.get("password_complexity_options")
    length = options.get("min_length") if isinstance(options, dict) else None
    if isinstance(length, int) and not isinstance(length, bool) and 1 <= length <= 128:
        return PasswordPolicy(min_length=length)
    return PasswordPolicy()


def password_error(policy: PasswordPolicy, password: str, email: str | None) -> SignupError | None:
    """Auth0's error for a refused password: the rule-specific codes, else PasswordStrengthError
    with every rule and whether it held (contract §7.2)."""
    violations = policy.violations(password, email)
    if not violations:
        return None
    codes = {v.code for v in violations}
    if not codes & {"password_too_short", "password_too_long"}:
        if "password_dictionary_error" in codes:
            return _password_rule_error("password_dictionary_error", "Password is too common.")
        return _password_rule_error(
            "password_no_user_info_error", "Password is based on user information."
        )
    rules = [{"code": v.code, "message": v.message, "verified": False} for v in violations]
    return SignupError(
        "invalid_password",
        {"rules": rules, "verified": False},
        name="PasswordStrengthError",
        message="Password is too weak",
    )


def _password_rule_error(code: str, text: str) -> SignupError:
    name = "".join(part.title() for part in code.removesuffix("_error").split("_")) + "Error"
    return SignupError(code, text, name=name, message=text)
