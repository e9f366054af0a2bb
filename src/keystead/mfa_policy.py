"""The tenant's MFA policy (Management API: GET|PUT /api/v2/guardian/policies).

    []                    a factor is asked only of users who have one (core/mfa.py)
    ["all-applications"]  every login needs a second factor: a user without one enrols a TOTP
                          app at the hosted login (web/mfa_enrol.py) before any session starts

Auth0's other value, `confidence-score` (Adaptive MFA), is refused: Keystead does not enforce it.
Stored as the tenant setting `mfa_policies` ({"policies": [...]}) and read through the per-worker
configuration cache (storage/config_cache.py), so the check costs no query on the hot path.
"""

from __future__ import annotations

from typing import Any, Final

from keystead.storage.repositories import Repositories

SETTING: Final = "mfa_policies"
ALL_APPLICATIONS: Final = "all-applications"
SUPPORTED: Final = frozenset({ALL_APPLICATIONS})
KNOWN: Final = frozenset({ALL_APPLICATIONS, "confidence-score"})  # Auth0's MFAPolicyEnum


def policies_of(stored: Any) -> list[str]:
    """The policies in a stored setting; anything malformed reads as none Keystead knows."""
    found = stored.get("policies") if isinstance(stored, dict) else stored
    if not isinstance(found, list):
        return []
    return [p for p in dict.fromkeys(found) if isinstance(p, str) and p in SUPPORTED]


async def mfa_policies(repos: Repositories) -> list[str]:
    return policies_of(await repos.tenant_settings.get(SETTING))


async def enrolment_required(repos: Repositories) -> bool:
    """Must every login give a second factor, enrolling one if the user has none?"""
    return ALL_APPLICATIONS in await mfa_policies(repos)
