"""The runtime snapshot's caches of watchers, time alerts and notes, and what keeps them fresh.

With `live=True` the caches re-read a hash only after an invalidation of it (or every 30 s, a
safety net): an HGETALL of 500 watchers costs milliseconds in redis-py's pure-Python reply parser,
so a turn that re-reads them all is several times slower than one that does not.

Invalidations come from the bus: every store write, from this process or another, is published on
the session's Redis channel in the same transaction, and the Session re-publishes each one on the
bus as a `StoreChanged` (its store-events task). `follow(bus)` starts the one task that feeds
those into the caches (`engine:invalidations`); a subscriber that fell behind (`missed`) reloads
everything. Only a process whose bus carries those events may use `live=True`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from revagent.bus import Bus, Subscription
from revagent.events import StoreChanged
from revagent.models import Note, TimeAlert, WatcherPair
from revagent.store.threads import ParsedHashCache
from revagent.tasks import cancel_and_wait

if TYPE_CHECKING:
    from revagent.store.repos import SessionStore

log = logging.getLogger(__name__)

RELOAD_ALL = "*"


class SnapshotCaches:
    """Parsed-model caches over one session's watchers, time alerts and notes (see the module
    docstring). `by_name` maps the `store.changed` name of each hash to its cache."""

    def __init__(self, store: SessionStore, *, live: bool, max_age_s: float = 30.0) -> None:
        self.live = live
        self.watchers: ParsedHashCache[WatcherPair] = ParsedHashCache(
            store.redis, store.watchers.hash_key, WatcherPair, key=lambda w: (w.created_at, w.id), live=live,
            max_age_s=max_age_s)
        self.time_alerts: ParsedHashCache[TimeAlert] = ParsedHashCache(
            store.redis, store.time_alerts.hash_key, TimeAlert, key=lambda a: (a.fire_at, a.id), live=live,
            max_age_s=max_age_s)
        self.notes: ParsedHashCache[Note] = ParsedHashCache(
            store.redis, store.notes.hash_key, Note, key=lambda n: (n.created_at, n.id), live=live,
            max_age_s=max_age_s)
        self.by_name: dict[str, ParsedHashCache[Any]] = {"watchers": self.watchers, "time_alerts": self.time_alerts,
                                                         "notes": self.notes}
        self._task: asyncio.Task[None] | None = None
        self._sub: Subscription | None = None

    def invalidate(self, what: str, record_id: str | None = None) -> None:
        """A `store.changed` of `what` (`*`: anything may have changed); `record_id` when it names
        the one record that changed (then only that record is read again)."""
        for name, cache in self.by_name.items():
            if what == name:
                cache.invalidate(record_id)
            elif what == RELOAD_ALL:
                cache.invalidate()

    def follow(self, bus: Bus) -> None:
        """Start feeding the bus's `StoreChanged` events into the caches (idempotent; a no-op unless
        live). Call from the loop; `aclose()` stops it."""
        if not self.live or self._task is not None:
            return
        sub = self._sub = bus.subscribe(StoreChanged)
        self._task = asyncio.get_running_loop().create_task(self._follow(sub), name="engine:invalidations")
        self._task.add_done_callback(_log_death)

    async def _follow(self, sub: Subscription) -> None:
        missed = sub.missed
        try:
            while True:
                event = await sub.get()
                if sub.missed != missed:  # events were dropped for us: anything may have changed
                    missed = sub.missed
                    self.invalidate(RELOAD_ALL)
                if isinstance(event, StoreChanged):
                    self.invalidate(event.what, event.id)
        finally:
            sub.close()

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait([task])
        if self._sub is not None:  # a task cancelled before it ran never reached its finally
            self._sub.close()
            self._sub = None


def _log_death(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("%s died: %r (the snapshot caches now refresh only every 30 s)", task.get_name(),
                  task.exception(), exc_info=task.exception())
