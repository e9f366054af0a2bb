"""Tenant-wide settings: named JSON documents (`self_service`, `rate_limits`, …)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.storage.config_cache import cached_config
from keystead.storage.models import TenantSettingRow
from keystead.storage.repositories._common import doc


@dataclass
class SqlTenantSettings:
    session: AsyncSession

    async def get(self, name: str) -> dict[str, Any] | None:
        if (config := await cached_config(self.session)) is not None:
            value = config.settings.get(name)
            return doc(value) if value is not None else None
        row = await self.session.get(TenantSettingRow, name)
        return doc(row.value) if row else None

    async def set(self, name: str, value: dict[str, Any]) -> None:
        row = await self.session.get(TenantSettingRow, name)
        if row is None:
            self.session.add(TenantSettingRow(name=name, value=doc(value)))
        else:
            row.value = doc(value)
        await self.session.flush()

    async def all(self) -> dict[str, dict[str, Any]]:
        rows = await self.session.scalars(select(TenantSettingRow).order_by(TenantSettingRow.name))
        return {row.name: doc(row.value) for row in rows}
