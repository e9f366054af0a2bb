"""Route table of the Management API: every route with the scopes it accepts."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
