"""The alert scheduler: from stored alerts and live prices to `AlertEvent`s in the durable queue.

One `AlertScheduler` per session, owned by the session (its coroutines run as named session tasks,
see `alerts/service.py`). It composes four jobs over one shared core (`scheduling.SchedulerCore`: the
clock, the lock, the price trigger index, the outbox that enqueues once per trigger key):

- `price_watch.PriceWatch`: watcher pairs in the price trigger index, fed every `MidsUpdated` and
  `MarksUpdated` tick; the legs' statuses written back after the enqueue;
- `time_watch.TimeWatch`: the time alerts in a `DueQueue`;
- `trade_watch.TradeWatch`: trade management for every open trade (early warning, profit target and
  liquidation warning levels) and the stop-loss verification of managed trades, repaired at once;
- `system_alerts.SystemAlerts`: lockout start and end, drift that matters, health and approval.

The scheduler itself starts them (`load()`: subscribe, then rebuild the index and the due queue from
the store in one pass), runs the single timer (due time alerts, leg expiries, health, retries of
unsent events), and follows `store.changed` on the session channel (`StoreInvalidations`): every
change written from another process reloads the pair, the time alert or the trades it names.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from revagent.alerts.price_watch import LegWrite, PriceWatch, quiet_heap
from revagent.alerts.runner import check_cancelled
from revagent.alerts.scheduling import SchedulerCore, SchedulerStats, SchedulerTimings
from revagent.alerts.system_alerts import SystemAlerts
from revagent.alerts.time_rules import DueQueue
from revagent.alerts.time_watch import TimeWatch
from revagent.alerts.trade_book import OpenTrade, Protect, TradeBook
from revagent.alerts.trade_watch import StopVerification, TradeWatch
from revagent.alerts.triggers import ArmedLevel, Fired, PriceTriggerIndex, RebuiltIndex, build_index
from revagent.bus import Bus
from revagent.config import AlertSettings
from revagent.events import StoreChanged
from revagent.models import LegStatus, WatcherPair, utc_now
from revagent.store.alert_events import AlertEvent
from revagent.store.alert_queue import AlertQueue
from revagent.store.invalidations import RELOAD_ALL, StoreInvalidations
from revagent.store.repos import SessionStore

log = logging.getLogger(__name__)

class AlertScheduler:
    """Turns stored alerts and live prices into queued `AlertEvent`s. See the module docstring.

    Life cycle (the service does this): `await load()` once (subscribes to the bus and the invalidation
    channel, then rebuilds from the store), then run `run_prices()`, `run_events()`,
    `run_invalidations()`, `run_timer()` and `run_trades()` as owned tasks; `aclose()` at the end.
    """

    def __init__(
        self,
        store: SessionStore,
        queue: AlertQueue,
        bus: Bus,
        *,
        settings: AlertSettings | None = None,
        trades: TradeBook | None = None,
        protect: Protect | None = None,
        initial_mids: Callable[[], Awaitable[Mapping[str, Decimal]]] | None = None,
        initial_marks: Callable[[], Awaitable[Mapping[str, Decimal]]] | None = None,
        approval_expiry: Callable[[], Awaitable[datetime | None]] | None = None,
        timings: SchedulerTimings | None = None,
        clock: Callable[[], datetime] = utc_now,
        stop_grace: Callable[[], Awaitable[timedelta]] | None = None,
        notify: Callable[..., object] | None = None,
    ) -> None:
        self.core = SchedulerCore(store, queue, bus, settings=settings or AlertSettings(),
                                  timings=timings or SchedulerTimings(), clock=clock)
        self.core.notify = notify
        self.prices = PriceWatch(self.core)
        self.times = TimeWatch(self.core)
        self.trade_watch = TradeWatch(self.core, trades=trades, protect=protect, stop_grace=stop_grace)
        self.system = SystemAlerts(self.core, self.trade_watch, approval_expiry=approval_expiry)
        self.expire_entries: Callable[[], Awaitable[object]] | None = None
        """Cancels limit entries past their expiry (`Gateway.expire_entries`), at every trade refresh."""
        self._initial_mids = initial_mids
        self._initial_marks = initial_marks
        self._invalidations = StoreInvalidations(store.redis, store.keys.events)
        self._loaded = False

    # -- the shared parts and the jobs' settings, as the session and its tests see them ---------
    @property
    def store(self) -> SessionStore:
        return self.core.store

    @property
    def queue(self) -> AlertQueue:
        return self.core.queue

    @property
    def bus(self) -> Bus:
        return self.core.bus

    @property
    def settings(self) -> AlertSettings:
        return self.core.settings

    @property
    def timings(self) -> SchedulerTimings:
        return self.core.timings

    @property
    def clock(self) -> Callable[[], datetime]:
        return self.core.clock

    @property
    def stats(self) -> SchedulerStats:
        return self.core.stats

    @property
    def index(self) -> PriceTriggerIndex:
        return self.core.index

    @property
    def due(self) -> DueQueue:
        return self.times.due

    @property
    def links_down(self) -> Mapping[str, tuple[datetime, str]]:
        """Links down now (since, detail)."""
        return self.core.down

    @property
    def trades(self) -> TradeBook | None:
        return self.trade_watch.trades

    @trades.setter
    def trades(self, trades: TradeBook | None) -> None:
        self.trade_watch.trades = trades

    @property
    def protect(self) -> Protect | None:
        return self.trade_watch.protect

    @protect.setter
    def protect(self, protect: Protect | None) -> None:
        self.trade_watch.protect = protect

    @property
    def stop_grace(self) -> Callable[[], Awaitable[timedelta]] | None:
        """The user's stop grace (`risk.stop_grace`), read at every stop check; None: `timings.stop_grace`."""
        return self.trade_watch.stop_grace

    @stop_grace.setter
    def stop_grace(self, stop_grace: Callable[[], Awaitable[timedelta]] | None) -> None:
        self.trade_watch.stop_grace = stop_grace

    @property
    def approval_expiry(self) -> Callable[[], Awaitable[datetime | None]] | None:
        return self.system.approval_expiry

    @approval_expiry.setter
    def approval_expiry(self, approval_expiry: Callable[[], Awaitable[datetime | None]] | None) -> None:
        self.system.approval_expiry = approval_expiry

    @property
    def notify(self) -> Callable[..., object] | None:
        """`notify(kind, title, message, data=..., urgent=...)`: the notifier, for the turn budget's notice."""
        return self.core.notify

    @notify.setter
    def notify(self, notify: Callable[..., object] | None) -> None:
        self.core.notify = notify

    # -- start ---------------------------------------------------------------------------------
    async def load(self) -> None:
        """Subscribe (bus, invalidations), then rebuild the index and the due queue from the store."""
        if self._loaded:
            return
        self.prices.subscribe()
        self.system.subscribe()
        await self._invalidations.subscribe()
        await self.core.queue.ensure_groups()
        with quiet_heap(await self.prices.big()):
            rebuilt, open_trades = await self._rebuild()
        self._loaded = True
        log.info("alert scheduler loaded: %d armed levels, %d time alerts, %d open trades, %d fired late",
                 len(self.core.index), len(self.times.due), len(open_trades), len(rebuilt.fired))
        self.request_trade_refresh()
        self.core.wake.set()

    async def _rebuild(self) -> tuple[RebuiltIndex, list[OpenTrade]]:
        """The body of `load()`: read the store, build the index off the loop, write back corrections."""
        core = self.core
        now = core.clock()
        seen = await self._seen_keys()
        pairs = await core.store.watchers.all()
        open_trades = await self.trade_watch.read_trades()
        levels = [tl for ot in open_trades for tl in self.trade_watch.levels_of(ot)]
        mids = await self._prices(self._initial_mids, "mids")
        marks = await self._prices(self._initial_marks, "marks")
        async with core.lock:
            # pure and CPU-bound (about 1 s for 100,000 pairs): off the loop so the lease keeps renewing
            rebuilt = await asyncio.to_thread(build_index, pairs, levels, mids, now=now, marks=marks,
                                              already_fired=seen)
            core.index = rebuilt.index
            self.trade_watch.set_open(open_trades)
            # the statuses the index already knows go back to the store after the load (`legs_written`)
            self.prices.write_back(
                [LegWrite(c.pair_id, c.slot, c.generation, c.status) for c in rebuilt.corrections]
                + [LegWrite(lv.key.alert_id, lv.key.slot, lv.generation, LegStatus.EXPIRED) for lv in rebuilt.expired])
            await self.prices.handle_fired(rebuilt.fired, late=True)
            await self.times.load()
        return rebuilt, open_trades

    async def aclose(self) -> None:
        await self.prices.aclose()
        self.system.aclose()
        await self._invalidations.aclose()

    async def _seen_keys(self) -> set[str]:
        # The queue's de-duplication set (trigger key -> first enqueue time); read through its client.
        keys: set[str] = set(await self.core.queue.seen_keys())
        return keys

    async def _prices(self, source: Callable[[], Awaitable[Mapping[str, Decimal]]] | None,
                      what: str) -> dict[str, Decimal]:
        if source is None:
            return {}
        try:
            return dict(await source())
        except Exception as exc:  # no prices at start: the first tick decides
            log.warning("no %s at start (%r): levels crossed while down fire on the first tick", what, exc)
            return {}

    # -- public API ----------------------------------------------------------------------------
    def validate_pair(self, pair: WatcherPair) -> None:
        """`validate_new_pair` against the last mid this scheduler saw for the pair's market."""
        self.prices.validate_pair(pair)

    def last_mid(self, market: str) -> Decimal | None:
        return self.prices.last_mid(market)

    def request_trade_refresh(self) -> None:
        """Re-read open trades, re-place their levels and verify their stops soon (debounced)."""
        self.trade_watch.request_refresh()

    def owns_stop(self, market: str) -> bool:
        """True when this scheduler verifies and repairs the stop on `market` (see `TradeWatch.owns_stop`)."""
        return self.trade_watch.owns_stop(market)

    def trade_alerts(self) -> list[ArmedLevel]:
        """The armed trade-management levels (for `alerts list` from the owner, and the UI)."""
        return self.trade_watch.trade_alerts()

    # -- the jobs' entry points ----------------------------------------------------------------
    async def on_mids(self, mids: Mapping[str, Decimal], *, source: str = "") -> list[Fired]:
        """Evaluate one price message (mids, or marks with `source="mark"`); enqueue what fired."""
        return await self.prices.on_mids(mids, source=source)

    async def run_prices(self) -> None:
        """Consume `MidsUpdated` / `MarksUpdated` from the bus (owned task)."""
        await self.prices.run_prices()

    async def legs_written(self) -> None:
        """Wait until every leg write-back started so far is done."""
        await self.prices.legs_written()

    async def reload_pairs(self, pair_id: str | None = None) -> None:
        """Bring the index in line with the stored pair (or all pairs when `pair_id` is None)."""
        await self.prices.reload_pairs(pair_id)

    async def reload_time_alerts(self, alert_id: str | None = None) -> None:
        await self.times.reload(alert_id)

    async def run_trades(self) -> None:
        """Refresh trade levels and verify stops when asked, and every `trade_refresh` (owned task)."""
        async def after_refresh() -> None:
            if self.expire_entries is not None:
                await self.expire_entries()
            await self.check_approval()

        await self.trade_watch.run(after_refresh=after_refresh)

    async def refresh_trades(self) -> list[StopVerification]:
        """Re-place every open trade's levels, drop closed trades' levels, then verify stops."""
        return await self.trade_watch.refresh()

    async def apply_trades(self, open_trades: list[OpenTrade]) -> None:
        """Arm the levels of these open trades (the only open ones) from the side the price is on."""
        await self.trade_watch.apply(open_trades)

    async def verify_stops(self, open_trades: list[OpenTrade], *,
                           moves_before: Mapping[str, Any] | None = None) -> list[StopVerification]:
        """Check each trade's exchange stop; when it is not right, protect at once, then enqueue."""
        return await self.trade_watch.verify_stops(open_trades, moves_before=moves_before)

    async def run_events(self) -> None:
        """Consume risk state, connection health and drift events (owned task)."""
        await self.system.run_events()

    async def check_approval(self, *, force: bool = False) -> AlertEvent | None:
        """While positions are open, raise a health alert when the agent's approval expires soon."""
        return await self.system.check_approval(force=force)

    # -- invalidations -------------------------------------------------------------------------
    async def run_invalidations(self) -> None:
        """Follow `store.changed` on the session channel (owned task)."""
        try:
            async for changed in self._invalidations:
                try:
                    await self.on_store_changed(changed)
                except Exception:
                    check_cancelled()
                    log.exception("reloading after %s/%s failed", changed.what, changed.id)
        finally:
            await self._invalidations.aclose()

    async def on_store_changed(self, changed: StoreChanged) -> None:
        what = changed.what
        if what == "watchers" or what == RELOAD_ALL:
            await self.prices.reload_pairs(changed.id if what == "watchers" else None)
        if what == "time_alerts" or what == RELOAD_ALL:
            await self.times.reload(changed.id if what == "time_alerts" else None)
        if what in ("trades", "orders", RELOAD_ALL):
            self.request_trade_refresh()

    # -- the single timer ----------------------------------------------------------------------
    def wake_timer(self) -> None:
        """Run a timer pass now (a replay calls it after moving market time)."""
        self.core.wake.set()

    async def run_timer(self) -> None:
        """Fire due time alerts, expire legs, raise health alerts, retry unsent events (owned task)."""
        core = self.core
        while True:
            core.wake.clear()
            try:
                await self.on_timer()
            except Exception:
                check_cancelled()
                log.exception("alert timer pass failed; trying again")
            check_cancelled()
            now = core.clock()
            deadline = now + core.timings.max_sleep
            for at in (self.times.due.next_due(), core.index.next_expiry()):
                if at is not None and at < deadline:
                    deadline = at
            delay = max((deadline - now).total_seconds(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(core.wake.wait(), timeout=delay)

    async def on_timer(self) -> None:
        core = self.core
        now = core.clock()
        async with core.lock:
            await core.retry_unsent()
            await self.times.fire_due(now)
            await self.prices.record_expired(core.index.expire_due(now))
        await self.system.check_health(now)
