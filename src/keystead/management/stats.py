"""Management API statistics (contract §10.9).

    GET /stats/active-users   read:stats   a bare JSON number: users logged in in the last 30 days

Auth0's definition: "the number of active users that logged in during the last 30 days". A user
counts once however often they logged in, by their `last_login`, measured on the app's clock;
users who never logged in do not count. One COUNT over ix_users_last_login, so it stays cheap on
a large users table.
"""

from __future__ import annotations

from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from keystead.deps import get_state
from keystead.management.api import Caller, json_response

ACTIVE_WINDOW_SECONDS: Final = 30 * 24 * 60 * 60


async def get_active_users(request: Request, caller: Caller) -> Response:
    state = get_state(request)
    since = state.clock.now() - ACTIVE_WINDOW_SECONDS
    async with state.sessions() as session:  # a read: nothing to commit
        count = await state.repos(session).users.count_logged_in_since(since)
    return json_response(count)
