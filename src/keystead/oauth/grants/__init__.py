"""Token endpoint grants, one module per grant_type; GRANTS maps each grant_type to its grant.

Adding a grant: a module here with a class following `oauth.issue.Grant`, an entry below, and
tests/http/test_token_<grant>.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from keystead.oauth.grants.authorization_code import AuthorizationCodeGrant
from keystead.oauth.grants.client_credentials import ClientCredentialsGrant
from keystead.oauth.grants.mfa_otp import MfaOtpGrant
from keystead.oauth.grants.password import PasswordGrant
from keystead.oauth.grants.refresh_token import RefreshTokenGrant
from keystead.oauth.issue import Grant

_ALL: tuple[Grant, ...] = (
    AuthorizationCodeGrant(),
    RefreshTokenGrant(),
    ClientCredentialsGrant(),
    PasswordGrant(),
    MfaOtpGrant(),
)

GRANTS: Mapping[str, Grant] = MappingProxyType(
    {grant_type: grant for grant in _ALL for grant_type in grant.grant_types}
)
