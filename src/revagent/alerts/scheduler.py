"""The alert scheduler: from stored alerts and live prices to `AlertEvent`s in the durable queue.

One `AlertScheduler` per session, owned by the session (its coroutines run as named session tasks,
see `alerts/service.py`). It keeps:

- the **price trigger index** (`triggers.PriceTriggerIndex`): watcher legs and trade-management levels,
  loaded at start with `build_index` (trigger keys the queue has already seen count as fired, levels
  the current prices already crossed fire at once, marked late), then fed every `MidsUpdated` (mid
  books) and `MarksUpdated` (mark books) tick: O(log n + fired) per market;
- the **time alerts** in a `DueQueue` with one timer for the next due occurrence or leg expiry;
- **trade management** for every open trade (`TradeBook`): early warning, profit target and
  liquidation warning levels (re-placed when the plan's generation changes), and **stop-loss
  verification**: the exchange-side stop is checked against the plan, and when it is missing or
  wrong the `protect` callable (the gateway's `ensure_stop`) runs **at once**, and only then is the
  alert enqueued (protection never waits for a model, invariant 9). While the account's websocket is
  down (`ConnectionChanged(link="exchange_ws", up=False)` until it is up again) the session hears of
  no cancelled stop, so the stop check **polls** the exchange instead: every `stop_grace / 2` (never
  more often than `blind_poll_min`) while a managed trade with a stop is open, one `frontendOpenOrders`
  read for all of them (weight 20) on the rate budget's `protect` lane; a stop deleted meanwhile is
  seen within half the grace and re-placed at once. Once the websocket is back, the 30 s refresh and
  the events (order updates, drift) take over again;
- **system alerts**: lockout start and end (`RiskStateChanged`), drift that matters (the sync loop's
  `DriftFound`, at most once per drift and hour; it also re-verifies stops at once), and health while
  positions are open (a link down or prices stale for longer than `health_grace`).

Every change written from another process is picked up at once: `store.changed` on the session channel
(`StoreInvalidations`) reloads the pair, the time alert or the trades it names.

Ordering and crash safety: an event is enqueued (durable, de-duplicated by trigger key) *before* the
leg's status is written back; a crash in between leaves the leg ARMED in the store, and the next
start's `build_index` finds its trigger key among the queue's seen keys and corrects it to FIRED.
Every mutation of the index and the due queue happens under one lock, so a reload never races a tick.

Start-up at scale (100,000 pairs): the store reads in batches and parses in a worker thread, `build_index`
runs in a worker thread, and the leg statuses written after it go in batches (`_write_legs`: one `HMGET`
and one transaction per `LEG_WRITE_BATCH` pairs), so the event loop keeps running (lease renewal,
websocket, TUI). A load of `QUIET_HEAP_MIN_PAIRS` pairs or more also pauses the cyclic garbage collector
while it allocates and then freezes the heap (`_quiet_heap`): the ~15 tracked objects per pair would
otherwise make every full collection walk them all, holding the GIL for most of a second each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from revagent.alerts.firing import event_for_fired, event_for_stop_check, event_for_time, system_event
from revagent.alerts.levels import LOWER, UPPER, EntryKey
from revagent.alerts.runner import check_cancelled
from revagent.alerts.time_rules import DEFAULT_LATE_AFTER, DueQueue, apply, evaluate
from revagent.alerts.trade_alerts import (
    StopCheck,
    TradeLevel,
    TriggerOrder,
    check_trade_stop,
    trade_levels,
)
from revagent.alerts.trade_book import AccountTradeBook, OpenTrade, Protect, TradeBook, managed_trade
from revagent.alerts.triggers import (
    ArmedLevel,
    Expired,
    Fired,
    LevelAlreadyPassed,
    PriceTriggerIndex,
    RebuiltIndex,
    StaleGeneration,
    build_index,
)
from revagent.bus import Bus, Subscription
from revagent.config import AlertSettings
from revagent.events import (
    AlertSignal,
    ConnectionChanged,
    DriftFound,
    MarksUpdated,
    MidsUpdated,
    RiskStateChanged,
    StoreChanged,
)
from revagent.models import LegDirection, LegStatus, TimeAlert, TradePlan, WatcherLeg, WatcherPair, utc_now
from revagent.store.alert_events import AlertEvent, AlertKind
from revagent.store.alert_queue import AlertQueue
from revagent.store.invalidations import RELOAD_ALL, StoreInvalidations
from revagent.store.repos import SessionStore

log = logging.getLogger(__name__)

__all__ = [
    "AccountTradeBook",
    "AlertScheduler",
    "LegWrite",
    "OpenTrade",
    "Protect",
    "SchedulerTimings",
    "StopVerification",
    "TradeBook",
    "apply_leg_writes",
    "managed_trade",
    "validate_new_pair",
]

LOCKED_STATES = frozenset({"locked", "halted"})
LEG_WRITE_BATCH = 1000
"""Pairs per `HMGET` and per transaction when leg statuses are written back in bulk."""
QUIET_HEAP_MIN_PAIRS = 10_000
"""From this many stored pairs on, `load()` pauses the cyclic GC while it runs and freezes the heap after."""
RECONCILE_YIELD_EVERY = 500
"""A reload of every pair lets the event loop run after this many pairs."""


@contextlib.contextmanager
def _quiet_heap(active: bool) -> Iterator[None]:
    """While the body runs, no automatic cyclic garbage collection; when it succeeds, `gc.freeze()`.

    Why: a big load allocates millions of GC-tracked objects (pydantic models, their dicts, index
    entries). Collections triggered meanwhile walk them again and again (most of the load's time), and
    each full collection holds the GIL, so the event loop, for up to a second. Freezing moves every
    object alive at the end into the permanent generation, so later collections skip them (the loaded
    pairs are long-lived and hold no reference cycles; they are still freed by reference counting when
    dropped). The cost: a reference cycle that was alive at the freeze is never collected. The state
    before (enabled or not) is restored. Process-wide: only `load()` and a reload of every pair use it.
    """
    if not active:
        yield
        return
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
        gc.freeze()
    finally:
        if was_enabled:
            gc.enable()


# --- events this module adds to the bus ------------------------------------------------------------





# --- refusing a level the price already passed -----------------------------------------------------


def _leg_slots(pair: WatcherPair) -> list[tuple[str, LegDirection, WatcherLeg]]:
    out: list[tuple[str, LegDirection, WatcherLeg]] = []
    if pair.upper is not None:
        out.append((UPPER, LegDirection.ABOVE, pair.upper))
    if pair.lower is not None:
        out.append((LOWER, LegDirection.BELOW, pair.lower))
    return out


def validate_new_pair(pair: WatcherPair, mid: Decimal | None) -> None:
    """Refuse a pair with an ARMED leg whose level the current mid has already reached or passed.

    Raises `LevelAlreadyPassed` (its message carries the current price and which side to choose). With
    no known mid nothing is refused (the first tick decides). The CLI and the agent's tools call this
    before writing a pair; the scheduler applies the same rule when it picks a pair up.
    """
    if mid is None:
        return
    for slot, direction, leg in _leg_slots(pair):
        if leg.status is not LegStatus.ARMED:
            continue
        if mid >= leg.level if direction is LegDirection.ABOVE else mid <= leg.level:
            raise LevelAlreadyPassed(EntryKey(pair.id, slot), pair.market, direction, leg.level, mid)


# --- the scheduler ---------------------------------------------------------------------------------


@dataclass
class SchedulerTimings:
    """Timers of the scheduler (all wall-clock durations)."""

    late_after: timedelta = DEFAULT_LATE_AFTER
    trade_refresh: timedelta = timedelta(seconds=30)
    """How often open trades are re-read and their stops verified even without any event."""
    trade_refresh_min: timedelta = timedelta(seconds=1)
    """Debounce: at most one trade refresh per this interval, however many events ask."""
    stop_grace: timedelta = timedelta(seconds=10)
    """A trade younger than this is not stop-checked yet (its stop may still be on its way). Only a
    fallback: a session's scheduler reads the user's `risk.stop_grace` (the `stop_grace` callable), the
    same setting the sync's corrections use."""
    health_grace: timedelta = timedelta(seconds=30)
    """A link down, or prices silent, for this long while positions are open raises a health alert."""
    stale_after: timedelta = timedelta(seconds=60)
    max_sleep: timedelta = timedelta(seconds=1)
    """The timer wakes at least this often (health checks, retries of unsent events)."""
    approval_warning: timedelta = timedelta(hours=24)
    """While positions are open, warn when the agent's approval expires within this long."""
    approval_check_every: timedelta = timedelta(minutes=10)
    stop_px_tolerance_bps: Decimal = Decimal("5")
    """An exchange stop within this many basis points of the planned stop counts as at the level."""
    stop_move_settle: timedelta = timedelta(seconds=15)
    """A stop move still `moving` after this long (its gateway never finished it) no longer holds the
    stop check back."""
    stop_move_recheck: timedelta = timedelta(milliseconds=200)
    """A stop check that met a move in flight runs again this soon."""
    blind_poll_min: timedelta = timedelta(milliseconds=1500)
    """While the websocket is down, stops are polled every `stop_grace / 2`, but never more often than
    this (one 20-weight read: 800 per minute at the floor, of Hyperliquid's 1,200)."""


@dataclass
class SchedulerStats:
    ticks: int = 0
    fired: int = 0
    enqueued: int = 0
    duplicates: int = 0
    stop_checks: int = 0
    stop_checks_held: int = 0
    protections: int = 0
    throttled: int = 0
    last_tick_at: datetime | None = None
    refused: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class LegWrite:
    """A watcher leg's new status, recorded only while the stored leg is still ARMED at `generation`."""

    pair_id: str
    slot: str
    generation: int
    status: LegStatus
    fired_at: datetime | None = None
    fired_price: Decimal | None = None


def apply_leg_writes(pair: WatcherPair, writes: Iterable[LegWrite]) -> WatcherPair | None:
    """The pair with these leg statuses applied in order (each only if its leg is still ARMED at its
    generation), or None when none applies. Pure."""
    changed = False
    for w in writes:
        leg = pair.upper if w.slot == UPPER else pair.lower
        if leg is None or leg.generation != w.generation or leg.status is not LegStatus.ARMED:
            continue
        update: dict[str, Any] = {"status": w.status}
        if w.fired_at is not None:
            update["fired_at"] = w.fired_at
            update["fired_price"] = w.fired_price
        pair = pair.model_copy(update={"upper" if w.slot == UPPER else "lower": leg.model_copy(update=update)})
        changed = True
    return pair if changed else None


@dataclass(frozen=True, slots=True)
class StopVerification:
    """What one stop check did for one trade: the check, the protection result, the event enqueued."""

    trade_id: str
    check: StopCheck
    protected: object = None
    event: AlertEvent | None = None


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
        self.store = store
        self.queue = queue
        self.bus = bus
        self.settings = settings or AlertSettings()
        self.trades = trades
        self.protect = protect
        self.timings = timings or SchedulerTimings()
        self.clock = clock
        self._initial_mids = initial_mids
        self._initial_marks = initial_marks
        self.approval_expiry = approval_expiry
        self.stop_grace = stop_grace
        """The user's stop grace (`risk.stop_grace`), read at every stop check; None: `timings.stop_grace`."""
        self.notify = notify
        """`notify(kind, title, message, data=..., urgent=...)`: the notifier, for the turn budget's notice."""
        self._trade_turns: dict[str, deque[datetime]] = {}
        self._throttle_noticed: set[str] = set()
        self._approval_checked: datetime | None = None
        self.index = PriceTriggerIndex()
        self.due = DueQueue()
        self.stats = SchedulerStats()
        self._lock = asyncio.Lock()
        self._refresh_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._trades_wanted = asyncio.Event()
        self._trade_ids: set[str] = set()
        self._open_trades: dict[str, OpenTrade] = {}
        self._unsent: list[AlertEvent] = []
        # the legs' write-back after a fire (issue 18.3): off the tick, in order (one at a time)
        self._leg_tasks: set[asyncio.Task[None]] = set()
        self._leg_order = asyncio.Lock()
        self._legs_pending: dict[str, int] = {}  # pair id -> write-backs not yet landed
        self._reconcile_after_legs: set[str] = set()  # pairs whose reconcile waited for their write-back
        self._price_sub: Subscription | None = None
        self._event_sub: Subscription | None = None
        self._invalidations = StoreInvalidations(store.redis, store.keys.events)
        self._locked: bool | None = None
        self._down: dict[str, tuple[datetime, str]] = {}
        self._health_fired: set[str] = set()
        self._loaded = False

    # -- start ---------------------------------------------------------------------------------
    async def load(self) -> None:
        """Subscribe (bus, invalidations), then rebuild the index and the due queue from the store."""
        if self._loaded:
            return
        self._price_sub = self.bus.subscribe(MidsUpdated, MarksUpdated, maxsize=10_000)
        self._event_sub = self.bus.subscribe(RiskStateChanged, ConnectionChanged, DriftFound)
        await self._invalidations.subscribe()
        await self.queue.ensure_groups()
        big = await self.store.watchers.count() >= QUIET_HEAP_MIN_PAIRS
        with _quiet_heap(big):
            rebuilt, open_trades = await self._rebuild()
        self._loaded = True
        log.info("alert scheduler loaded: %d armed levels, %d time alerts, %d open trades, %d fired late",
                 len(self.index), len(self.due), len(open_trades), len(rebuilt.fired))
        self.request_trade_refresh()
        self._wake.set()

    async def _rebuild(self) -> tuple[RebuiltIndex, list[OpenTrade]]:
        """The body of `load()`: read the store, build the index off the loop, write back corrections."""
        now = self.clock()
        seen = await self._seen_keys()
        pairs = await self.store.watchers.all()
        open_trades = await self._read_trades()
        levels = [tl for ot in open_trades for tl in self._levels_of(ot)]
        mids = await self._prices(self._initial_mids, "mids")
        marks = await self._prices(self._initial_marks, "marks")
        async with self._lock:
            # pure and CPU-bound (about 1 s for 100,000 pairs): off the loop so the lease keeps renewing
            rebuilt = await asyncio.to_thread(build_index, pairs, levels, mids, now=now, marks=marks,
                                              already_fired=seen)
            self.index = rebuilt.index
            self._open_trades = {ot.trade_id: ot for ot in open_trades}
            self._trade_ids = set(self._open_trades)
            await self._write_legs(
                [LegWrite(c.pair_id, c.slot, c.generation, c.status) for c in rebuilt.corrections]
                + [LegWrite(lv.key.alert_id, lv.key.slot, lv.generation, LegStatus.EXPIRED) for lv in rebuilt.expired])
            await self._handle_fired(rebuilt.fired, late=True)
            for alert in await self.store.time_alerts.all():
                self.due.schedule_alert(alert)
        return rebuilt, open_trades

    async def aclose(self) -> None:
        with contextlib.suppress(TimeoutError):  # short writes: let them land (a restart corrects them)
            async with asyncio.timeout(5):
                await self.legs_written()
        for task in self._leg_tasks:
            task.cancel()
        for sub in (self._price_sub, self._event_sub):
            if sub is not None:
                sub.close()
        await self._invalidations.aclose()

    async def _seen_keys(self) -> set[str]:
        # The queue's de-duplication set (trigger key -> first enqueue time); read through its client.
        keys: set[str] = set(await self.queue.seen_keys())
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
        validate_new_pair(pair, self.index.last_price(pair.market))

    def last_mid(self, market: str) -> Decimal | None:
        return self.index.last_price(market)

    def request_trade_refresh(self) -> None:
        """Re-read open trades, re-place their levels and verify their stops soon (debounced)."""
        self._trades_wanted.set()

    # -- prices --------------------------------------------------------------------------------
    async def on_mids(self, mids: Mapping[str, Decimal], *, source: str = "") -> list[Fired]:
        """Evaluate one price message (mids, or marks with `source="mark"`); enqueue what fired."""
        now = self.clock()
        async with self._lock:
            fired = self.index.on_mids(mids, now, source=source)
            self.stats.ticks += 1
            if not source:
                self.stats.last_tick_at = now
            if fired:
                await self._handle_fired(fired, late=False)
        return fired

    async def run_prices(self) -> None:
        """Consume `MidsUpdated` / `MarksUpdated` from the bus (owned task)."""
        assert self._price_sub is not None, "call load() first"
        async for event in self._price_sub:
            check_cancelled()
            if isinstance(event, MidsUpdated):
                await self.on_mids(event.mids)
            elif isinstance(event, MarksUpdated):
                await self.on_mids(event.marks, source="mark")

    async def _handle_fired(self, fired: Iterable[Fired], *, late: bool) -> None:
        """Enqueue each fired level, then write the watcher legs back in one batch (FIRED, siblings
        DISARMED): every leg is written after its event is queued. Lock held. The enqueue is the
        durable fact and ends the tick; the write-back follows off the tick's path (`legs_written`)
        unless `late` (start-up). Meanwhile a reload never re-arms a fired leg (`fired_generation`)."""
        writes: list[LegWrite] = []
        for f in fired:
            self.stats.fired += 1
            try:
                event = event_for_fired(f, late=late)
            except TypeError:
                log.error("a level armed with an unknown payload fired: %s", f.trigger_key)
                continue
            if isinstance(f.level.payload, TradeLevel) and not self._turn_budget(f.level.payload.trade_id, event):
                continue
            await self._enqueue(event)
            if isinstance(f.level.payload, WatcherPair):
                writes.append(LegWrite(f.key.alert_id, f.key.slot, f.level.generation, LegStatus.FIRED,
                                       fired_at=f.fired_at, fired_price=f.price))
                writes += [LegWrite(s.key.alert_id, s.key.slot, s.generation, LegStatus.DISARMED)
                           for s in f.disarmed]
        if not writes:
            return
        if late:
            await self._write_legs(writes)
            return
        pair_ids = {w.pair_id for w in writes}
        for pid in pair_ids:
            self._legs_pending[pid] = self._legs_pending.get(pid, 0) + 1
        task = asyncio.get_running_loop().create_task(self._write_legs_in_order(writes, pair_ids),
                                                      name="alerts:leg-writes")
        self._leg_tasks.add(task)
        task.add_done_callback(self._leg_tasks.discard)

    async def _write_legs_in_order(self, writes: Sequence[LegWrite], pair_ids: set[str]) -> None:
        try:
            async with self._leg_order:  # FIFO: a later write-back of the same pair never lands first
                await self._write_legs(writes)
        finally:
            waited = []
            for pid in pair_ids:
                left = self._legs_pending.get(pid, 1) - 1
                if left > 0:
                    self._legs_pending[pid] = left
                    continue
                self._legs_pending.pop(pid, None)
                if pid in self._reconcile_after_legs:
                    self._reconcile_after_legs.discard(pid)
                    waited.append(pid)
        for pid in waited:  # a change of the pair came in meanwhile: take it now
            await self.reload_pairs(pid)

    async def legs_written(self) -> None:
        """Wait until every leg write-back started so far is done."""
        while self._leg_tasks:
            await asyncio.gather(*self._leg_tasks, return_exceptions=True)

    async def _enqueue(self, event: AlertEvent) -> bool:
        """Enqueue once per trigger key; an event that cannot be written now is retried by the timer."""
        try:
            entry = await self.queue.enqueue(event)
        except Exception as exc:
            log.error("could not enqueue %s (%r): retrying", event.trigger_key, exc)
            self._unsent.append(event)
            self._wake.set()
            return False
        if entry is None:
            self.stats.duplicates += 1
            log.debug("already queued once: %s", event.trigger_key)
            return False
        self.stats.enqueued += 1
        log.info("alert queued: %s %s%s", event.kind.value, event.trigger_key, " (late)" if event.late else "")
        self.bus.publish(AlertSignal(status="queued", trigger_key=event.trigger_key, kind=event.kind.value,
                                     detail=_describe(event)))
        return True

    async def _write_leg(self, pair_id: str, slot: str, generation: int, status: LegStatus, *,
                         fired_at: datetime | None = None, fired_price: Decimal | None = None) -> None:
        """Record a leg's new status, unless the stored leg moved on (re-armed at a later generation)."""
        await self._write_legs([LegWrite(pair_id, slot, generation, status, fired_at, fired_price)])

    async def _write_legs(self, writes: Sequence[LegWrite]) -> None:
        """Record leg statuses (see `apply_leg_writes`), `LEG_WRITE_BATCH` pairs at a time: one `HMGET`,
        then one transaction announcing each changed pair's id. A batch that fails is logged and skipped
        (the queue already holds the events; a restart corrects the statuses)."""
        by_pair: dict[str, list[LegWrite]] = {}
        for w in writes:
            by_pair.setdefault(w.pair_id, []).append(w)
        ids = list(by_pair)
        for start in range(0, len(ids), LEG_WRITE_BATCH):
            chunk = ids[start:start + LEG_WRITE_BATCH]
            try:
                stored: dict[str, WatcherPair] = await self.store.watchers.get_many(chunk)
                updated = [p for p in (apply_leg_writes(stored[i], by_pair[i]) for i in chunk if i in stored)
                           if p is not None]
                if updated:
                    await self.store.watchers.put_many(updated, announce_each=True)
            except Exception as exc:
                first = by_pair[chunk[0]][0]
                log.error("could not record %d leg statuses (first: %s %s as %s): %r", len(chunk), first.pair_id,
                          first.slot, first.status.value, exc)

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
            await self.reload_pairs(changed.id if what == "watchers" else None)
        if what == "time_alerts" or what == RELOAD_ALL:
            await self.reload_time_alerts(changed.id if what == "time_alerts" else None)
        if what in ("trades", "orders", RELOAD_ALL):
            self.request_trade_refresh()

    async def reload_pairs(self, pair_id: str | None = None) -> None:
        """Bring the index in line with the stored pair (or all pairs when `pair_id` is None)."""
        async with self._lock:
            if pair_id is not None:
                pair = await self.store.watchers.get(pair_id)
                if pair is None:
                    self.index.forget(pair_id)
                else:
                    await self._reconcile_pair(pair)
                return
            with _quiet_heap(await self.store.watchers.count() >= QUIET_HEAP_MIN_PAIRS):
                await self._reconcile_all_pairs()

    async def _reconcile_all_pairs(self) -> None:
        """`reload_pairs()` for every pair: forget the deleted ones, reconcile the rest. Lock held."""
        pairs = await self.store.watchers.all()
        # a pure read of the index (the lock is held, so nothing changes it meanwhile): off the loop
        for alert_id in await asyncio.to_thread(self._pairs_not_in, pairs):
            self.index.forget(alert_id)
        # Taken one by one, so a pair the index does not keep is freed as the loop goes (freeing 100,000
        # parsed pairs at once takes ~0.4 s of the loop).
        todo = deque(pairs)
        del pairs
        done = 0
        while todo:
            await self._reconcile_pair(todo.popleft())
            done += 1
            if done % RECONCILE_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # the loop runs (lease, websocket); ticks wait for the lock

    def _pairs_not_in(self, pairs: Iterable[WatcherPair]) -> set[str]:
        """Ids of the watcher pairs armed in the index that are not among `pairs`. Pure read."""
        stored = {p.id for p in pairs}
        return {v.key.alert_id for v in self.index.armed()
                if isinstance(v.payload, WatcherPair) and v.key.alert_id not in stored}

    async def _reconcile_pair(self, pair: WatcherPair) -> None:
        """Arm what the store says is ARMED (refusing passed levels), disarm the rest. Lock held.
        A pair whose legs' write-back is still on its way is taken after it lands (the store still says
        ARMED for the leg that fired and its disarmed sibling)."""
        if self._legs_pending.get(pair.id):
            self._reconcile_after_legs.add(pair.id)
            return
        now = self.clock()
        expired = pair.expires_at is not None and pair.expires_at <= now
        equal_payload: object = pair  # a payload known to equal `pair` (both legs' views usually share one)
        for slot, direction, leg in _leg_slots(pair):
            key = EntryKey(pair.id, slot)
            view = self.index.get(key)
            if leg.status is not LegStatus.ARMED:
                if view is not None:
                    self.index.disarm(key)
                continue
            if self.index.fired_generation(key) >= leg.generation:
                continue  # fired here; its status write is on its way
            if expired:
                if view is not None:
                    self.index.disarm(key)
                await self._write_leg(pair.id, slot, leg.generation, LegStatus.EXPIRED)
                continue
            if view is not None and view.generation == leg.generation and view.level == leg.level:
                same = view.payload is equal_payload or view.payload == pair
                if same:
                    equal_payload = view.payload
                if not same or view.expires_at != pair.expires_at:
                    self.index.disarm(key)  # same level: refresh the payload (thesis, expiry)
                    self._arm_leg(pair, slot, direction, leg, check=False)
                continue
            if view is not None:
                self.index.disarm(key)
            try:
                self._arm_leg(pair, slot, direction, leg, check=True)
            except LevelAlreadyPassed as exc:
                self.stats.refused.append(str(exc))
                log.warning("watcher refused: %s", exc)
                await self._write_leg(pair.id, slot, leg.generation, LegStatus.CANCELLED)
            except StaleGeneration as exc:
                log.warning("watcher leg not re-armed: %s", exc)

    def _arm_leg(self, pair: WatcherPair, slot: str, direction: LegDirection, leg: WatcherLeg, *,
                 check: bool) -> ArmedLevel:
        return self.index.arm(EntryKey(pair.id, slot), pair.market, direction, leg.level,
                              generation=leg.generation, exclusive=True, expires_at=pair.expires_at,
                              payload=pair, check_passed=check)

    async def reload_time_alerts(self, alert_id: str | None = None) -> None:
        async with self._lock:
            if alert_id is not None:
                alert = await self.store.time_alerts.get(alert_id)
                if alert is None:
                    self.due.cancel(alert_id)
                else:
                    self.due.schedule_alert(alert)
            else:
                due = DueQueue()
                for alert in await self.store.time_alerts.all():
                    due.schedule_alert(alert)
                self.due = due
        self._wake.set()

    # -- the single timer ----------------------------------------------------------------------
    def wake_timer(self) -> None:
        """Run a timer pass now (a replay calls it after moving market time)."""
        self._wake.set()

    async def run_timer(self) -> None:
        """Fire due time alerts, expire legs, raise health alerts, retry unsent events (owned task)."""
        while True:
            self._wake.clear()
            try:
                await self.on_timer()
            except Exception:
                check_cancelled()
                log.exception("alert timer pass failed; trying again")
            check_cancelled()
            now = self.clock()
            deadline = now + self.timings.max_sleep
            for at in (self.due.next_due(), self.index.next_expiry()):
                if at is not None and at < deadline:
                    deadline = at
            delay = max((deadline - now).total_seconds(), 0.0)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def on_timer(self) -> None:
        now = self.clock()
        async with self._lock:
            if self._unsent:
                unsent, self._unsent = self._unsent, []
                for event in unsent:
                    await self._enqueue(event)
            for alert_id in self.due.pop_due(now):
                await self._fire_time_alert(alert_id, now)
            await self._record_expired(self.index.expire_due(now))
        await self._check_health(now)

    async def _fire_time_alert(self, alert_id: str, now: datetime) -> None:
        alert: TimeAlert | None = await self.store.time_alerts.get(alert_id)
        if alert is None:
            return
        evaluation = evaluate(alert, now, late_after=self.timings.late_after, horizon=self.settings.missed_horizon)
        if evaluation.fire is not None and not await self._enqueue_or_keep(event_for_time(evaluation.fire, alert)):
            self.due.schedule(alert.id, now + timedelta(seconds=1))
            return
        if evaluation.skipped is not None:
            log.warning("time alert %s skipped: %s", alert.id, evaluation.skipped.reason)
        updated = apply(alert, evaluation)
        if evaluation.changed:
            await self.store.time_alerts.put(updated)
        self.due.schedule_alert(updated)

    async def _enqueue_or_keep(self, event: AlertEvent) -> bool:
        """Enqueue; False only when the write failed (a duplicate counts as done)."""
        before = len(self._unsent)
        await self._enqueue(event)
        if len(self._unsent) > before:
            self._unsent.pop()  # the caller retries the whole occurrence instead
            return False
        return True

    async def _record_expired(self, expired: Iterable[Expired]) -> None:
        writes: list[LegWrite] = []
        for e in expired:
            if isinstance(e.level.payload, WatcherPair):
                key = e.level.key
                log.info("watcher %s %s expired", key.alert_id, key.slot)
                writes.append(LegWrite(key.alert_id, key.slot, e.level.generation, LegStatus.EXPIRED))
        await self._write_legs(writes)

    # -- trades: levels and stop verification --------------------------------------------------
    async def run_trades(self) -> None:
        """Refresh trade levels and verify stops when asked, and every `trade_refresh` (owned task)."""
        if self.trades is None:
            return
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            wait = await self._trade_wait() - (loop.time() - started)  # counted from the last refresh's start
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trades_wanted.wait(), max(wait, 0.0))
            self._trades_wanted.clear()
            started = loop.time()
            try:
                await self.refresh_trades()
                await self.check_approval()
            except Exception:
                check_cancelled()
                log.exception("trade refresh failed; trying again later")
            check_cancelled()
            rest = self.timings.trade_refresh_min.total_seconds() - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    def _blind(self) -> bool:
        """True while the account's websocket is down and a managed trade has a stop to watch: no order
        update would tell of its deletion, so the stop check polls (see the module docstring)."""
        return "exchange_ws" in self._down and bool(self._open_trades) and self.protect is not None

    async def _trade_wait(self) -> float:
        """Seconds until the next trade refresh unless an event asks sooner: `trade_refresh`, or while
        blind `stop_grace / 2` (at least `blind_poll_min`)."""
        refresh = self.timings.trade_refresh.total_seconds()
        if not self._blind():
            return refresh
        half = (await self._stop_grace()).total_seconds() / 2
        return min(refresh, max(half, self.timings.blind_poll_min.total_seconds()))

    async def _trigger_orders(self) -> list[TriggerOrder]:
        """The exchange's trigger orders for a stop check; while blind, read on the `protect` lane."""
        assert self.trades is not None
        reader = getattr(self.trades, "protective_trigger_orders", None) if self._blind() else None
        orders: list[TriggerOrder] = await (reader() if reader is not None else self.trades.trigger_orders())
        return orders

    async def _read_trades(self) -> list[OpenTrade]:
        if self.trades is None:
            return []
        try:
            return await self.trades.open_trades()
        except Exception as exc:
            log.warning("could not read open trades (%r); trade alerts wait for the next refresh", exc)
            return []

    def _levels_of(self, ot: OpenTrade) -> list[TradeLevel]:
        return trade_levels(ot.trade, early_warning_fraction=self.settings.early_warning_fraction,
                            liquidation_warning_pct=self.settings.liquidation_warning_pct)

    async def refresh_trades(self) -> list[StopVerification]:
        """Re-place every open trade's levels, drop closed trades' levels, then verify stops."""
        if self.trades is None:
            return []
        async with self._refresh_lock:  # one refresh at a time: a stop is never repaired twice at once
            moves = await self._stop_moves()  # read before the plans: see verify_stops
            open_trades = await self.trades.open_trades()
            await self.apply_trades(open_trades)
            return await self.verify_stops(open_trades, moves_before=moves)

    async def apply_trades(self, open_trades: list[OpenTrade]) -> None:
        """Arm the levels of these open trades (the only open ones) from the side the price is on."""
        async with self._lock:
            wanted: dict[EntryKey, TradeLevel] = {}
            for ot in open_trades:
                for tl in self._levels_of(ot):
                    wanted[tl.key] = tl
            current = {ot.trade_id for ot in open_trades}
            for gone in self._trade_ids - current:
                self.index.forget(gone)
                log.info("trade %s closed: its alerts are removed", gone)
            if current:  # one pass over the index (it may hold 200,000 watcher levels), not one per trade
                for view in self.index.armed():
                    if view.key.alert_id in current and view.key not in wanted:
                        self.index.disarm(view.key)
            for key, tl in wanted.items():
                armed = self.index.get(key)
                if armed is not None and armed.generation == tl.generation and armed.level == tl.level:
                    continue
                if self.index.fired_generation(key) >= tl.generation:
                    continue
                if tl.kind is AlertKind.PROFIT_TARGET and self.index.fired_level(key) == tl.level:
                    continue  # this target already fired: only a new target arms it again
                if armed is not None:
                    self.index.disarm(key)
                # From the side the price is on now: a level already passed waits for the price to come
                # back and fires at the next crossing, never for the crossing it (or its previous
                # generation) already reported.
                self.index.arm(key, tl.book, tl.direction, tl.level, generation=tl.generation, payload=tl,
                               check_passed=False, wait_if_passed=True)
            self._trade_ids = current
            self._open_trades = {ot.trade_id: ot for ot in open_trades}

    async def verify_stops(self, open_trades: list[OpenTrade], *,
                           moves_before: Mapping[str, Any] | None = None) -> list[StopVerification]:
        """Check each trade's exchange stop; when it is not right, protect at once, then enqueue.

        A stop move is one journaled transition (`store.orders.StopMove`): the plans, the exchange's
        orders and the journal are read at different moments, so a check that fails is trusted only
        when no move of that trade was in flight across it: the moves read before the plans
        (`moves_before`, else now) and after the orders are the same and not `moving`. Otherwise the
        check is held back and runs again in `stop_move_recheck` (a move the gateway never finishes
        stops holding it back after `stop_move_settle`)."""
        if self.trades is None or not open_trades:
            return []
        if moves_before is None:
            moves_before = await self._stop_moves()
        now = self.clock()
        grace = await self._stop_grace()
        checkable = [ot for ot in open_trades if ot.opened_at is None or now - ot.opened_at >= grace]
        if len(checkable) < len(open_trades):
            wait = min(grace - (now - ot.opened_at) for ot in open_trades if ot.opened_at is not None)
            log.debug("stop check deferred %.1fs (risk.stop_grace %s)", wait.total_seconds(), grace)
            asyncio.get_running_loop().call_later(max(wait.total_seconds(), 0.0) + 0.05,
                                                  self.request_trade_refresh)
        if not checkable:
            return []
        orders = await self._trigger_orders()
        out: list[StopVerification] = []
        moves_after: Mapping[str, Any] | None = None
        for ot in checkable:
            self.stats.stop_checks += 1
            tolerance = ot.trade.stop * self.timings.stop_px_tolerance_bps / Decimal(10_000)
            check = check_trade_stop(ot.trade, orders, px_tolerance=tolerance)
            if check.ok:
                continue
            if moves_after is None:
                moves_after = await self._stop_moves()  # after the orders were read
            if self._stop_moving(ot.trade_id, moves_before, moves_after, now):
                self.stats.stop_checks_held += 1
                log.debug("stop check of %s held back: its stop is moving (%s)", ot.trade_id, check.detail)
                asyncio.get_running_loop().call_later(self.timings.stop_move_recheck.total_seconds(),
                                                      self.request_trade_refresh)
                continue
            log.warning("stop check failed for %s %s: %s %s", ot.trade_id, ot.trade.market, check.status.value,
                        check.detail)
            protected = await self._protect(ot.plan)
            event = event_for_stop_check(ot.trade, check, fired_at=now, stop_generation=ot.plan.stop_generation)
            if event is not None:
                event = event.model_copy(update={"context": {**event.context, "protection": _jsonable(protected)}})
                if self._turn_budget(ot.trade_id, event):
                    await self._enqueue(event)
            out.append(StopVerification(ot.trade_id, check, protected, event))
        return out

    async def _stop_moves(self) -> Mapping[str, Any]:
        """The journal's last stop move per trade (empty when the trade book keeps none or fails)."""
        reader = getattr(self.trades, "stop_moves", None)
        if reader is None:
            return {}
        try:
            moves: Mapping[str, Any] = await reader()
        except Exception as exc:
            check_cancelled()
            log.warning("could not read the stop moves (%r): stop checks judge without them", exc)
            return {}
        return moves

    def _stop_moving(self, trade_id: str, before: Mapping[str, Any], after: Mapping[str, Any],
                     now: datetime) -> bool:
        """True when a move of this trade's stop may have been in flight while it was checked."""
        move = after.get(trade_id)
        if move is None:
            return False
        if move.in_flight(now, self.timings.stop_move_settle):
            return True
        return bool(before.get(trade_id) != move)  # a move began or ended between the reads

    def owns_stop(self, market: str) -> bool:
        """True when this scheduler verifies and repairs the stop on `market` (an open trade it manages,
        with a `protect` to repair with): the one watcher of that position's stop. The sync's
        corrections leave such a position to it (`SyncService.stop_owner`)."""
        if self.protect is None or self.trades is None:
            return False
        return any(ot.trade.market == market for ot in self._open_trades.values())

    async def _stop_grace(self) -> timedelta:
        """The grace a new trade's stop gets: the user's `risk.stop_grace` when the session gave it."""
        if self.stop_grace is None:
            return self.timings.stop_grace
        try:
            return await self.stop_grace()
        except Exception as exc:
            check_cancelled()
            log.warning("could not read risk.stop_grace (%r); using %s", exc, self.timings.stop_grace)
            return self.timings.stop_grace

    def _turn_budget(self, trade_id: str, event: AlertEvent) -> bool:
        """True when one more alert turn for this trade fits `alerts.max_trade_turns_per_hour` (and
        counts it). Past it: False, and one notification per trade until the hour frees a turn."""
        now = self.clock()
        turns = self._trade_turns.setdefault(trade_id, deque())
        while turns and now - turns[0] >= timedelta(hours=1):
            turns.popleft()
        bound = self.settings.max_trade_turns_per_hour
        if len(turns) < bound:
            turns.append(now)
            self._throttle_noticed.discard(trade_id)
            return True
        self.stats.throttled += 1
        log.warning("alert %s not queued: trade %s already had %d alert turns this hour", event.trigger_key,
                    trade_id, bound)
        if trade_id not in self._throttle_noticed:
            self._throttle_noticed.add(trade_id)
            if self.notify is not None:
                try:
                    self.notify("alert_throttled", f"trade {trade_id}: alert turns paused",
                                f"{bound} alert turns in the last hour; {_describe(event)} and later alerts of "
                                "this trade get no turn until the hour frees one. Check the trade yourself.",
                                data={"trade_id": trade_id, "trigger_key": event.trigger_key}, urgent=True)
                except Exception:
                    log.exception("the turn budget's notification failed")
        return False

    async def _protect(self, plan: TradePlan) -> object:
        if self.protect is None:
            log.error("no protect callable: the stop of %s is not repaired by the scheduler", plan.trade_id)
            return {"status": "not_configured"}
        self.stats.protections += 1
        try:
            result = await self.protect(plan)
        except Exception as exc:
            log.exception("protecting %s failed", plan.trade_id)
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
        log.info("protected %s %s: %s", plan.trade_id, plan.market, result)
        return result

    # -- system alerts -------------------------------------------------------------------------
    async def run_events(self) -> None:
        """Consume risk state, connection health and drift events (owned task)."""
        assert self._event_sub is not None, "call load() first"
        async for event in self._event_sub:
            try:
                if isinstance(event, RiskStateChanged):
                    await self._on_risk(event)
                elif isinstance(event, ConnectionChanged):
                    self._on_connection(event)
                    if event.link == "model" and not event.up and event.config_error:
                        await self._on_model_refused(event)
                elif isinstance(event, DriftFound):
                    await self._on_drift(event)
            except Exception:
                check_cancelled()
                log.exception("handling %s failed", event.type)

    async def _on_risk(self, event: RiskStateChanged) -> None:
        locked = event.state in LOCKED_STATES
        previous, self._locked = self._locked, locked
        if locked == previous or (previous is None and not locked):
            return
        now = self.clock()
        if locked:
            stamp = event.locked_until.isoformat() if event.locked_until else now.date().isoformat()
            occurrence = f"start:{event.state}:{stamp}"
        else:
            occurrence = f"end:{now.isoformat()}"
        await self._enqueue(system_event(
            AlertKind.LOCKOUT, "lockout", occurrence, fired_at=now,
            context={"state": event.state, "reason": event.reason, "multiplier": str(event.multiplier),
                     "locked_until": event.locked_until.isoformat() if event.locked_until else None,
                     "phase": "start" if locked else "end"}))

    async def _on_drift(self, event: DriftFound) -> bool:
        """A drift that matters becomes one DRIFT alert per (kind, market, detail) and hour."""
        if event.kind in ("stop_missing", "order_vanished", "position_appeared", "position_vanished",
                          "position_changed", "untracked_position"):
            self.request_trade_refresh()
        if not event.matters:
            return False
        now = self.clock()
        digest = hashlib.sha1(event.detail.encode(), usedforsecurity=False).hexdigest()[:8]
        occurrence = f"{event.kind}:{event.market}:{digest}:{now:%Y%m%dT%H}"
        return await self._enqueue(system_event(
            AlertKind.DRIFT, "drift", occurrence, fired_at=now,
            context={"drift": event.kind, "market": event.market, "detail": event.detail, "source": event.source}))

    def _on_connection(self, event: ConnectionChanged) -> None:
        if event.up:
            if self._down.pop(event.link, None) is not None:
                log.info("%s is back", event.link)
            if event.link.startswith("exchange"):
                self.request_trade_refresh()
        elif event.link not in self._down and not event.config_error:  # a refusal: `_on_model_refused`
            self._down[event.link] = (self.clock(), event.detail)
            if event.link == "exchange_ws":
                self.request_trade_refresh()  # blind from now on: check at once, then poll

    async def _on_model_refused(self, event: ConnectionChanged) -> bool:
        """The model refused an alert turn as misconfigured (400/401/403/404): the alert ran on the
        offline policy, and this will not heal by itself. A health alert (at once, open trades or not:
        every alert runs offline until the `[llm]` settings are fixed) and an urgent notification say
        why; one per refusal, the runner reports it again only after the model answered."""
        now = self.clock()
        detail = (f"the model refused an alert turn as misconfigured ({event.detail}); alerts run on the "
                  "offline policy until the [llm] settings are fixed (revagent doctor checks them)")
        if self.notify is not None:
            self.notify("health", "model misconfigured: alerts run offline", detail, urgent=True,
                        data={"link": "model", "detail": event.detail})
        return await self._enqueue(system_event(
            AlertKind.HEALTH, "health-model", f"config:{now.replace(microsecond=0).isoformat()}", fired_at=now,
            context={"link": "model", "down_since": now.isoformat(), "detail": detail, "config_error": True,
                     "open_trades": sorted(self._trade_ids)}))

    async def _check_health(self, now: datetime) -> None:
        if not self._trade_ids:
            return
        grace = self.timings.health_grace
        problems: list[tuple[str, datetime, str]] = [
            (link, since, detail) for link, (since, detail) in self._down.items() if now - since >= grace]
        last = self.stats.last_tick_at
        if last is not None and now - last >= max(self.timings.stale_after, grace):
            problems.append(("prices", last, f"no mid price since {last.isoformat()}"))
        for link, since, detail in problems:
            alert_id = f"health-{link}"
            occurrence = since.replace(microsecond=0).isoformat()
            marker = f"{alert_id}@{occurrence}"
            if marker in self._health_fired:
                continue
            self._health_fired.add(marker)
            await self._enqueue(system_event(
                AlertKind.HEALTH, alert_id, occurrence, fired_at=now,
                context={"link": link, "down_since": since.isoformat(), "detail": detail,
                         "open_trades": sorted(self._trade_ids)}))

    async def check_approval(self, *, force: bool = False) -> AlertEvent | None:
        """While positions are open, raise a health alert when the agent's approval expires soon (at most
        one check per `approval_check_every`; one alert per expiry time)."""
        if self.approval_expiry is None or not self._trade_ids:
            return None
        now = self.clock()
        last = self._approval_checked
        if not force and last is not None and now - last < self.timings.approval_check_every:
            return None
        self._approval_checked = now
        expiry = await self.approval_expiry()
        if expiry is None or expiry - now > self.timings.approval_warning:
            return None
        event = system_event(
            AlertKind.HEALTH, "health-approval", expiry.replace(microsecond=0), fired_at=now,
            context={"link": "approval", "expires_at": expiry.isoformat(), "open_trades": sorted(self._trade_ids),
                     "detail": "the agent key's approval expires soon: renew it (revagent wallet approve)"})
        await self._enqueue(event)
        return event

    # -- views ---------------------------------------------------------------------------------
    def trade_alerts(self) -> list[ArmedLevel]:
        """The armed trade-management levels (for `alerts list` from the owner, and the UI)."""
        return [v for v in self.index.armed() if isinstance(v.payload, TradeLevel)]


def _describe(event: AlertEvent) -> str:
    ctx = event.context
    market = ctx.get("market")
    where = f" {market}" if market else ""
    price = f" at {event.price}" if event.price is not None else ""
    return f"{event.kind.value}{where}{price}"


def _jsonable(value: object) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if value is None or isinstance(value, str | int | float | bool | dict | list):
        return value
    return str(value)
