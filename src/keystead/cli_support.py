"""What the `keystead` commands share: the server's start-up without serving, checks of the
database URL and the tenant file, one-line database errors, output helpers."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING

from keystead.errors import ConfigError
from keystead.settings import Settings

if TYPE_CHECKING:
    from keystead.deps import AppState


@asynccontextmanager
async def open_state(settings: Settings) -> AsyncIterator[AppState]:
    """The server's own start-up (migrations, seed records, keys) without serving."""
    from keystead.app import create_app

    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    with database_errors(settings.database_url):
        await lifespan.__aenter__()
    try:
        yield app.state.keystead
    finally:
        await lifespan.__aexit__(None, None, None)


@contextmanager
def database_errors(database_url: str) -> Iterator[None]:
    """Turn a driver or connection failure into one ConfigError line naming the database."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (SQLAlchemyError, OSError) as exc:
        cause = getattr(exc, "orig", None) or exc
        text = str(cause).strip().splitlines()
        reason = text[0] if text else type(cause).__name__
        raise ConfigError(f"cannot use database {shown_url(database_url)}: {reason}") from None


def check_database_url(database_url: str) -> None:
    """Malformed URL, unsupported database or a file that is not SQLite: refuse before start."""
    from keystead.storage.db import async_url, check_sqlite_file

    check_sqlite_file(async_url(database_url))


def check_tenant_file(path: str) -> None:
    """Read and validate the file before any database work; `apply` parses it again."""
    from keystead.core.tenant import parse_tenant
    from keystead.storage.tenant import read_tenant_file

    parse_tenant(read_tenant_file(path), source=path, environ=os.environ)


def shown_url(database_url: str) -> str:
    """The URL with any password masked, for output."""
    from sqlalchemy.engine import make_url

    return make_url(database_url).render_as_string(hide_password=True)


def command_logging(settings: Settings) -> None:
    """One-shot commands log warnings and worse, unless debugging was asked for."""
    from keystead.logconfig import check_level, configure

    level = check_level(settings.log_level)
    configure(level if level in ("debug", "trace") else "warning")


async def apply_file(state: AppState, path: str) -> str:
    from keystead.storage.tenant import apply_tenant_file

    return str(await apply_tenant_file(state, path))


def fail(message: str) -> None:
    print(f"keystead: {message}", file=sys.stderr, flush=True)
