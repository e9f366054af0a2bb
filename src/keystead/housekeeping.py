"""Periodic housekeeping for a running server: the purge of expired rows (storage/purge.py).

Started by the app's lifespan, one task per worker; the jitter keeps workers from purging in
step, and each run's batches are short transactions, so requests barely notice.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Final

from keystead.deps import AppState
from keystead.ratelimit.wiring import policy_of
from keystead.storage.purge import purge_expired

log = logging.getLogger("keystead.housekeeping")

PURGE_EVERY: Final = 600.0  # seconds between runs, on average
PURGE_JITTER: Final = 0.2  # each wait is PURGE_EVERY ± 20 %


async def purge_periodically(
    state: AppState, *, every: float = PURGE_EVERY, jitter: float = PURGE_JITTER
) -> None:
    """Purge expired rows forever, waiting first; a failed run is logged and tried next time."""
    while True:
        await asyncio.sleep(every * (1 + random.uniform(-jitter, jitter)))
        try:
            counts = await purge_expired(
                state.transaction, now=state.clock.now(), policy=policy_of(state)
            )
        except Exception:
            log.exception("purge of expired rows failed; trying again at the next run")
            continue
        if any(counts.values()):
            log.info("purged expired rows: %s", counts)
