"""Apply a tenant file to the database: upserts in one transaction (core/tenant.py parses it).

    resourceServers → settings → clients → clientGrants → users → roles

Entries are matched by `client_id` (or, without one, by client name), API `identifier`, the
grant's (client_id, audience), user email and role name. Clients, APIs and grants take exactly
what the file says; users change only the fields the file states; role permissions are set to
the file's list and its `users` are added. Nothing is deleted. Any error raises ConfigError
naming file, entry and field, and the caller's transaction rolls everything back.

The steps: tenant_clients.py (APIs, settings, clients, grants) and tenant_users.py (users,
roles); tenant_run.py holds the summary and what the steps share.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.core.clock import Clock
from keystead.core.sealing import Sealer
from keystead.core.tenant import TenantSpec, parse_tenant
from keystead.deps import AppState
from keystead.errors import ConfigError
from keystead.storage.seed import management_api_identifier
from keystead.storage.tenant_clients import ClientSteps
from keystead.storage.tenant_run import ApplySummary
from keystead.storage.tenant_users import UserSteps


async def apply_tenant_file(
    state: AppState, path: str | os.PathLike[str], environ: Mapping[str, str] = os.environ
) -> ApplySummary:
    """Read, parse and apply a tenant file in one transaction of `state`."""
    text = read_tenant_file(path)
    spec = parse_tenant(text, source=str(path), environ=environ)
    async with state.transaction() as session:
        return await apply_tenant(
            session,
            spec,
            issuer=state.settings.issuer,
            clock=state.clock,
            sealer=Sealer(state.settings.secret_key),
        )


def read_tenant_file(path: str | os.PathLike[str]) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: tenant file not found") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory, not a tenant file") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: tenant file is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read tenant file: {exc.strerror}") from None


async def apply_tenant(
    session: AsyncSession, spec: TenantSpec, *, issuer: str, clock: Clock, sealer: Sealer
) -> ApplySummary:
    """Upsert everything in `spec`; never commits (the caller's transaction decides)."""
    run = _Run(
        session,
        spec.with_issuer(issuer),
        management_api_identifier(issuer),
        clock.now(),
        sealer,
        ApplySummary(spec.source),
    )
    try:
        for step in (
            run.resource_servers,
            run.settings,
            run.clients,
            run.client_grants,
            run.users,
            run.roles,
        ):
            await step()
            await session.flush()
    except IntegrityError as exc:  # a concurrent writer; the checks above prevent the rest
        raise ConfigError(
            f"{spec.source}: conflicting change in the database: {exc.orig}"
        ) from None
    return run.summary


class _Run(ClientSteps, UserSteps):
    """Every step of one run; apply_tenant calls them in order."""
