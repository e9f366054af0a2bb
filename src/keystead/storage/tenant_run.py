"""Applying a tenant file (tenant.py): what every step shares.

    ApplySummary    counts per kind, and the credentials generated for the operator
    TenantRun       one run: session, spec, clock reading, sealer, summary, shared lookups

The steps subclass TenantRun: tenant_clients.py (steps 1-3) and tenant_users.py (steps 4-5).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.sealing import Sealer
from keystead.core.tenant import TenantSpec
from keystead.core.users import DATABASE_CONNECTION
from keystead.errors import ConfigError
from keystead.storage.models import ResourceServerRow, UserRow

KINDS = ("settings", "resourceServers", "clients", "clientGrants", "users", "roles")


@dataclass(frozen=True)
class GeneratedCredential:
    """A client_id or secret the file did not give: printed once so the operator can use it."""

    name: str
    client_id: str
    client_id_generated: bool
    client_secret: str | None = field(default=None, repr=False)


@dataclass
class ApplySummary:
    source: str
    counts: dict[str, dict[str, int]] = field(
        default_factory=lambda: {k: {"created": 0, "updated": 0, "unchanged": 0} for k in KINDS}
    )
    generated: list[GeneratedCredential] = field(default_factory=list)

    def count(self, kind: str, outcome: str) -> None:
        self.counts[kind][outcome] += 1

    def lines(self) -> list[str]:
        parts = [
            f"{kind} {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
            for kind, c in self.counts.items()
            if any(c.values())
        ]
        out = [f"{self.source}: " + ("; ".join(parts) if parts else "nothing to apply")]
        for g in self.generated:
            if g.client_id_generated:
                out.append(f"  generated client_id for {g.name!r}: {g.client_id}")
            if g.client_secret is not None:
                out.append(f"  generated client_secret for {g.client_id}: {g.client_secret}")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def assign(row: Any, values: Mapping[str, Any]) -> bool:
    """Set the attributes that differ; True when anything changed."""
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, copy.deepcopy(value))  # JSON columns must not alias the spec
            changed = True
    return changed


@dataclass
class TenantRun:
    session: AsyncSession
    spec: TenantSpec
    management_api: str
    now: float
    sealer: Sealer
    summary: ApplySummary

    def error(self, at: str, message: str) -> ConfigError:
        return self.spec.error(at, message)

    def _saved(self, kind: str, created: bool, changed: bool) -> None:
        self.summary.count(kind, "created" if created else "updated" if changed else "unchanged")

    async def _api(self, identifier: str) -> ResourceServerRow | None:
        return await self.session.scalar(
            select(ResourceServerRow).where(ResourceServerRow.identifier == identifier)
        )

    async def _user_by_email(self, email: str) -> UserRow | None:
        return await self.session.scalar(
            select(UserRow).where(UserRow.connection == DATABASE_CONNECTION, UserRow.email == email)
        )


def api_scopes(api: ResourceServerRow) -> frozenset[str]:
    return frozenset(
        s["value"] if isinstance(s, dict) else str(s) for s in api.config.get("scopes") or ()
    )
