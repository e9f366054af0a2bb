"""Log events (contract §10.7): the Auth0 event codes Keystead records, and what a record holds.

Records never carry secrets: no passwords, codes, tokens or client secrets — only who, what,
where and why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

# Event code → Auth0's description of it.
EVENT_TYPES: Final[dict[str, str]] = {
    "s": "Success Login",
    "f": "Failed Login",
    "fp": "Incorrect Password",
    "fu": "Invalid Email or Username",
    "ss": "Success Signup",
    "fs": "Failed Signup",
    "seacft": "Success Exchange (Authorization Code for Access Token)",
    "feacft": "Failed Exchange (Authorization Code for Access Token)",
    "sertft": "Success Exchange (Refresh Token for Access Token)",
    "fertft": "Failed Exchange (Refresh Token for Access Token)",
    "ferrt": "Failed Exchange of Rotating Refresh Token",
    "seccft": "Success Exchange (Client Credentials for Access Token)",
    "feccft": "Failed Exchange (Client Credentials for Access Token)",
    "sepft": "Success Exchange (Password for Access Token)",
    "fepft": "Failed Exchange (Password for Access Token)",
    "seotpft": "Success Exchange (Password and OTP for Access Token)",
    "feotpft": "Failed Exchange (Password and OTP for Access Token)",
    "gd_auth_succeed": "Multi-factor authentication success",
    "gd_auth_failed": "Multi-factor authentication failed",
    "gd_enrollment_complete": "Guardian enrollment complete",
    "ssa": "Success Silent Auth",
    "fsa": "Failed Silent Auth",
    "slo": "Success Logout",
    "scp": "Success Change Password",
    "scpr": "Success Change Password Request",
    "sv": "Success Verification Email",
    "fv": "Failed Verification Email",
    "fcpr": "Failed Change Password Request",
    "srrt": "Success Revocation",
    "sapi": "Success API Operation",
    "fapi": "Failed API Operation",
    "api_limit": "Rate Limit on the Management API",
    "limit_wc": "Blocked Account",
    "limit_mu": "Blocked IP Address",
    "du": "Deleted User",
}


@dataclass(frozen=True)
class LogEvent:
    log_id: str
    date: float
    type: str
    description: str = ""
    user_id: str | None = None
    client_id: str | None = None
    data: dict[str, Any] = field(default_factory=dict)  # ip, user_agent, connection, details …
