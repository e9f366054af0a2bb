"""Shared fixtures: settings, app (lifespan run), http (in-process ASGI client), database URLs.

Under CI=true a missing PostgreSQL or Redis is a failure, never a skip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from keystead.app import create_app
from keystead.core.clock import FixedClock
from keystead.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ISSUER = "http://keystead.test/"
POSTGRES_URL = os.environ.get("KEYSTEAD_TEST_POSTGRES_URL") or (
    "postgresql://postgres@127.0.0.1:5432/test" if IN_CI else ""
)
REDIS_URL = os.environ.get("KEYSTEAD_TEST_REDIS_URL") or (
    "redis://127.0.0.1:6379/15" if IN_CI else ""
)


def need_service(name: str, available: bool, reason: str) -> None:
    """Skip outside CI when a service is missing; fail under CI."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{name} is required under CI=true: {reason}")
    pytest.skip(f"{name} not available: {reason}")


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'keystead.db'}"


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        issuer=ISSUER, database_url=database_url, data_dir=str(tmp_path / "data")
    ).with_defaults()


@pytest.fixture
async def app(settings: Settings):  # type: ignore[no-untyped-def]
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
async def http(app) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER.rstrip("/")) as client:
        yield client


_CONFIGURED_LOGGERS = ("keystead", "uvicorn", "uvicorn.error", "uvicorn.access")


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """`keystead.logconfig.configure` (run by CLI tests) gives our loggers handlers on the
    stream pytest captured for that test and stops propagation; put them back afterwards, so
    later tests neither write to a closed stream nor lose their records to caplog."""
    saved = {
        name: (list(logger.handlers), logger.propagate, logger.level, logger.disabled)
        for name in _CONFIGURED_LOGGERS
        for logger in [logging.getLogger(name)]
    }
    yield
    for name, (handlers, propagate, level, disabled) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.propagate, logger.level, logger.disabled = propagate, level, disabled
