"""Management API jobs (`/api/v2/jobs`): one `jobs` row each, shared by every worker and replica,
so a job made through one is read through any other. A job is readable until it expires;
storage/purge.py deletes it after.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from keystead.storage.models import JobRow


@dataclass(frozen=True)
class Job:
    id: str
    type: str
    status: str
    created_at: float
    expires_at: float
    details: dict[str, Any] = field(default_factory=dict)  # its other fields, as returned


@dataclass
class SqlJobs:
    session: AsyncSession

    async def add(self, job: Job) -> Job:
        self.session.add(
            JobRow(
                id=job.id,
                type=job.type,
                status=job.status,
                created_at=job.created_at,
                expires_at=job.expires_at,
                details=dict(job.details),
            )
        )
        await self.session.flush()
        return job

    async def get(self, job_id: str, *, now: float) -> Job | None:
        """The job, or None when it is unknown or has expired (a purge may not have run yet)."""
        row = await self.session.scalar(
            select(JobRow).where(JobRow.id == job_id, JobRow.expires_at > now)
        )
        if row is None:
            return None
        return Job(row.id, row.type, row.status, row.created_at, row.expires_at, dict(row.details))
