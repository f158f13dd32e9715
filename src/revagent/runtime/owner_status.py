"""What a daemon says about itself in the store, for `revagent server status` (no command channel
needed to read it): its pid, start-up phase, sync phase and reason, refreshed every few seconds and
at each sync phase change, in the session's `owner_status` hash. Redis down: skipped, never fatal."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING

from revagent.events import SyncPhaseChanged

if TYPE_CHECKING:
    from revagent.runtime.session import Session

log = logging.getLogger("revagent.owner_status")

REFRESH_SECONDS = 5.0
POLL_SECONDS = 0.5
"""The start-up phase has no event: it is looked at this often and written when it changed."""


async def publish_owner_status(session: Session, *, refresh: float = REFRESH_SECONDS) -> None:
    """Keep the session's `owner_status` hash current until cancelled: on each change of the start-up
    or sync phase (within `POLL_SECONDS`), and every `refresh` seconds."""
    sub = session.bus.subscribe(SyncPhaseChanged, maxsize=16)
    loop = asyncio.get_running_loop()
    last: dict[str, str] = {}
    written = 0.0
    try:
        while True:
            sync = session.sync
            doc = {"pid": str(os.getpid()), "role": session.role, "startup_phase": session.startup_phase,
                   "sync_phase": sync.phase if sync is not None else "", "sync_reason":
                   sync.phase_reason if sync is not None else ""}
            if doc != last or loop.time() - written >= refresh:
                try:
                    await session.store.redis.hset(session.store.keys.owner_status,
                                                   mapping={**doc, "updated": f"{time.time():.3f}"})
                    last, written = doc, loop.time()
                except Exception as exc:  # the store may be away; the daemon rides that out
                    log.debug("owner status not published: %s", exc)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):  # not wait_for: on 3.11 it can swallow a cancel
                    await sub.get()
    finally:
        sub.close()
