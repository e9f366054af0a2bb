"""create_app(settings): the ASGI application, its route tables, error handlers and state."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from keystead.core.clock import Clock, SystemClock
from keystead.core.sealing import Sealer
from keystead.deps import AppState
from keystead.housekeeping import purge_periodically
from keystead.http.errors import HANDLERS
from keystead.http.limits import BodySizeLimit
from keystead.management.routes import routes as management_routes
from keystead.oauth.routes import routes as oauth_routes
from keystead.ratelimit import wiring as ratelimit_wiring
from keystead.settings import Settings
from keystead.storage.config_cache import CACHE_KEY, ConfigCache
from keystead.storage.db import create_engine, session_factory
from keystead.storage.keys import load_keyring
from keystead.storage.log_writer import WRITER_KEY, LogWriter
from keystead.storage.migrate import upgrade_to_head
from keystead.storage.repositories.config_snapshot import snapshot_loader
from keystead.storage.seed import seed
from keystead.web.routes import routes as web_routes

log = logging.getLogger("keystead")


def create_app(
    settings: Settings, *, clock: Clock | None = None, migrate: bool = True
) -> Starlette:
    """Build the application. Settings must already have passed `with_defaults()`."""
    engine = create_engine(settings.database_url)
    config = ConfigCache(
        snapshot_loader(Sealer(settings.secret_key)),
        max_age=settings.config_refresh_ms / 1000,
    )
    log_writer = LogWriter(session_factory(engine))
    state = AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine, **{CACHE_KEY: config, WRITER_KEY: log_writer}),
        clock=clock or SystemClock(),
        config=config,
        log_writer=log_writer,
    )

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if migrate:
            await upgrade_to_head(engine)
            async with state.transaction() as session:
                await seed(session, settings.issuer, state.clock)
        state.keys = await load_keyring(state)
        await ratelimit_wiring.start(state)  # after seeding: reads the tenant's rateLimits
        log_writer.start()
        purge = asyncio.create_task(purge_periodically(state))  # expired codes, sessions …
        try:
            yield
        finally:
            purge.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purge
            await ratelimit_wiring.stop(state)
            await log_writer.stop()
            await engine.dispose()

    routes: list[BaseRoute] = [*oauth_routes, *management_routes, *web_routes]
    app = Starlette(
        routes=routes,
        exception_handlers=HANDLERS,
        middleware=[Middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)],
        lifespan=lifespan,
    )
    app.state.keystead = state
    return app
