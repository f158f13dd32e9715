"""The price index job of the alert scheduler: watcher pairs in the price trigger index, fed by ticks.

The index (`triggers.PriceTriggerIndex`, shared with `trade_watch`'s levels) is loaded at start with
`build_index` (trigger keys the queue has already seen count as fired, levels the current prices
already crossed fire at once, marked late), then fed every `MidsUpdated` (mid books) and
`MarksUpdated` (mark books) tick: O(log n + fired) per market. A change of a stored pair (from this
process or another) reloads it (`reload_pairs`).

Ordering and crash safety: an event is enqueued (durable, de-duplicated by trigger key) *before* the
leg's status is written back; a crash in between leaves the leg ARMED in the store, and the next
start's `build_index` finds its trigger key among the queue's seen keys and corrects it to FIRED.

Start-up at scale (100,000 pairs): the store reads in batches and parses in a worker thread,
`build_index` runs in a worker thread, and the leg statuses it finds to correct (expired while down,
enqueued before a crash, crossed while down) are written after the load, off its path (`write_back`,
in batches: one `HMGET` and one transaction per `LEG_WRITE_BATCH` pairs), so the index is ready at
once and the event loop keeps running (lease renewal, websocket, TUI). A load of
`QUIET_HEAP_MIN_PAIRS` pairs or more also pauses the cyclic garbage collector while it allocates and
then freezes the heap (`quiet_heap`): the ~15 tracked objects per pair would otherwise make every
full collection walk them all, holding the GIL for most of a second each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from revagent.alerts.firing import event_for_fired
from revagent.alerts.levels import LOWER, UPPER, EntryKey
from revagent.alerts.runner import check_cancelled
from revagent.alerts.scheduling import SchedulerCore
from revagent.alerts.trade_alerts import TradeLevel
from revagent.alerts.triggers import ArmedLevel, Expired, Fired, LevelAlreadyPassed, StaleGeneration
from revagent.bus import Subscription
from revagent.events import MarksUpdated, MidsUpdated
from revagent.models import LegDirection, LegStatus, WatcherLeg, WatcherPair

log = logging.getLogger(__name__)

LEG_WRITE_BATCH = 1000
"""Pairs per `HMGET` and per transaction when leg statuses are written back in bulk."""
QUIET_HEAP_MIN_PAIRS = 10_000
"""From this many stored pairs on, `load()` pauses the cyclic GC while it runs and freezes the heap after."""
RECONCILE_YIELD_EVERY = 500
"""A reload of every pair lets the event loop run after this many pairs."""


@contextlib.contextmanager
def quiet_heap(active: bool) -> Iterator[None]:
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


# --- leg statuses written back ---------------------------------------------------------------------


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


# --- the job ---------------------------------------------------------------------------------------


class PriceWatch:
    """Watcher pairs in the shared price index: ticks, fires, the legs' write-back, reloads."""

    def __init__(self, core: SchedulerCore) -> None:
        self.core = core
        # the legs' write-back after a fire (issue 18.3): off the tick, in order (one at a time)
        self._leg_tasks: set[asyncio.Task[None]] = set()
        self._leg_order = asyncio.Lock()
        self._legs_pending: dict[str, int] = {}  # pair id -> write-backs not yet landed
        self._reconcile_after_legs: set[str] = set()  # pairs whose reconcile waited for their write-back
        self._price_sub: Subscription | None = None

    def subscribe(self) -> None:
        self._price_sub = self.core.bus.subscribe(MidsUpdated, MarksUpdated, maxsize=10_000)

    async def big(self) -> bool:
        """True when the store holds enough pairs for a load under `quiet_heap`."""
        return await self.core.store.watchers.count() >= QUIET_HEAP_MIN_PAIRS

    async def aclose(self) -> None:
        with contextlib.suppress(TimeoutError):  # short writes: let them land (a restart corrects them)
            async with asyncio.timeout(5):
                await self.legs_written()
        for task in self._leg_tasks:
            task.cancel()
        if self._price_sub is not None:
            self._price_sub.close()

    # -- public API ----------------------------------------------------------------------------
    def validate_pair(self, pair: WatcherPair) -> None:
        """`validate_new_pair` against the last mid this scheduler saw for the pair's market."""
        validate_new_pair(pair, self.core.index.last_price(pair.market))

    def last_mid(self, market: str) -> Decimal | None:
        return self.core.index.last_price(market)

    # -- prices --------------------------------------------------------------------------------
    async def on_mids(self, mids: Mapping[str, Decimal], *, source: str = "") -> list[Fired]:
        """Evaluate one price message (mids, or marks with `source="mark"`); enqueue what fired."""
        core = self.core
        now = core.clock()
        async with core.lock:
            fired = core.index.on_mids(mids, now, source=source)
            core.stats.ticks += 1
            if not source:
                core.stats.last_tick_at = now
            if fired:
                await self.handle_fired(fired, late=False)
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

    async def handle_fired(self, fired: Iterable[Fired], *, late: bool) -> None:
        """Enqueue each fired level (`late`: found crossed at start-up), then write the watcher legs back
        in one batch (FIRED, siblings DISARMED): every leg is written after its event is queued. Lock
        held. The enqueue is the durable fact and ends the tick; the write-back follows off the tick's
        path (`write_back`). Meanwhile a reload never re-arms a fired leg (`fired_generation`)."""
        core = self.core
        writes: list[LegWrite] = []
        for f in fired:
            core.stats.fired += 1
            try:
                event = event_for_fired(f, late=late)
            except TypeError:
                log.error("a level armed with an unknown payload fired: %s", f.trigger_key)
                continue
            if isinstance(f.level.payload, TradeLevel) and not core.turn_budget(f.level.payload.trade_id, event):
                continue
            await core.enqueue(event)
            if isinstance(f.level.payload, WatcherPair):
                writes.append(LegWrite(f.key.alert_id, f.key.slot, f.level.generation, LegStatus.FIRED,
                                       fired_at=f.fired_at, fired_price=f.price))
                writes += [LegWrite(s.key.alert_id, s.key.slot, s.generation, LegStatus.DISARMED)
                           for s in f.disarmed]
        self.write_back(writes)

    def write_back(self, writes: Sequence[LegWrite]) -> None:
        """Write these leg statuses off the caller's path, in order with every earlier write-back
        (`legs_written` waits for them). Until a pair's write-back lands, a reload of that pair waits
        for it (the store still says ARMED for what fired, expired or was disarmed here) and is taken
        after. A crash before it lands is corrected at the next start (the queue's seen keys, the
        expiry times), so this is bookkeeping, never the durable fact."""
        if not writes:
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
                await self.write_legs(writes)
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

    async def _write_leg(self, pair_id: str, slot: str, generation: int, status: LegStatus, *,
                         fired_at: datetime | None = None, fired_price: Decimal | None = None) -> None:
        """Record a leg's new status, unless the stored leg moved on (re-armed at a later generation)."""
        await self.write_legs([LegWrite(pair_id, slot, generation, status, fired_at, fired_price)])

    async def write_legs(self, writes: Sequence[LegWrite]) -> None:
        """Record leg statuses (see `apply_leg_writes`), `LEG_WRITE_BATCH` pairs at a time: one `HMGET`,
        then one transaction announcing each changed pair's id. A batch that fails is logged and skipped
        (the queue already holds the events; a restart corrects the statuses)."""
        by_pair: dict[str, list[LegWrite]] = {}
        for w in writes:
            by_pair.setdefault(w.pair_id, []).append(w)
        ids = list(by_pair)
        watchers = self.core.store.watchers
        for start in range(0, len(ids), LEG_WRITE_BATCH):
            chunk = ids[start:start + LEG_WRITE_BATCH]
            try:
                stored: dict[str, WatcherPair] = await watchers.get_many(chunk)
                updated = [p for p in (apply_leg_writes(stored[i], by_pair[i]) for i in chunk if i in stored)
                           if p is not None]
                if updated:
                    await watchers.put_many(updated, announce_each=True)
            except Exception as exc:
                first = by_pair[chunk[0]][0]
                log.error("could not record %d leg statuses (first: %s %s as %s): %r", len(chunk), first.pair_id,
                          first.slot, first.status.value, exc)

    async def record_expired(self, expired: Iterable[Expired]) -> None:
        writes: list[LegWrite] = []
        for e in expired:
            if isinstance(e.level.payload, WatcherPair):
                key = e.level.key
                log.info("watcher %s %s expired", key.alert_id, key.slot)
                writes.append(LegWrite(key.alert_id, key.slot, e.level.generation, LegStatus.EXPIRED))
        await self.write_legs(writes)

    # -- reloads -------------------------------------------------------------------------------
    async def reload_pairs(self, pair_id: str | None = None) -> None:
        """Bring the index in line with the stored pair (or all pairs when `pair_id` is None)."""
        core = self.core
        async with core.lock:
            if pair_id is not None:
                pair = await core.store.watchers.get(pair_id)
                if pair is None:
                    core.index.forget(pair_id)
                else:
                    await self._reconcile_pair(pair)
                return
            with quiet_heap(await self.big()):
                await self._reconcile_all_pairs()

    async def _reconcile_all_pairs(self) -> None:
        """`reload_pairs()` for every pair: forget the deleted ones, reconcile the rest. Lock held."""
        pairs = await self.core.store.watchers.all()
        # a pure read of the index (the lock is held, so nothing changes it meanwhile): off the loop
        for alert_id in await asyncio.to_thread(self._pairs_not_in, pairs):
            self.core.index.forget(alert_id)
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
        return {v.key.alert_id for v in self.core.index.armed()
                if isinstance(v.payload, WatcherPair) and v.key.alert_id not in stored}

    async def _reconcile_pair(self, pair: WatcherPair) -> None:
        """Arm what the store says is ARMED (refusing passed levels), disarm the rest. Lock held.
        A pair whose legs' write-back is still on its way is taken after it lands (the store still says
        ARMED for the leg that fired and its disarmed sibling)."""
        if self._legs_pending.get(pair.id):
            self._reconcile_after_legs.add(pair.id)
            return
        index = self.core.index
        now = self.core.clock()
        expired = pair.expires_at is not None and pair.expires_at <= now
        equal_payload: object = pair  # a payload known to equal `pair` (both legs' views usually share one)
        for slot, direction, leg in _leg_slots(pair):
            key = EntryKey(pair.id, slot)
            view = index.get(key)
            if leg.status is not LegStatus.ARMED:
                if view is not None:
                    index.disarm(key)
                continue
            if index.fired_generation(key) >= leg.generation:
                continue  # fired here; its status write is on its way
            if expired:
                if view is not None:
                    index.disarm(key)
                await self._write_leg(pair.id, slot, leg.generation, LegStatus.EXPIRED)
                continue
            if view is not None and view.generation == leg.generation and view.level == leg.level:
                same = view.payload is equal_payload or view.payload == pair
                if same:
                    equal_payload = view.payload
                if not same or view.expires_at != pair.expires_at:
                    index.disarm(key)  # same level: refresh the payload (thesis, expiry)
                    self._arm_leg(pair, slot, direction, leg, check=False)
                continue
            if view is not None:
                index.disarm(key)
            try:
                self._arm_leg(pair, slot, direction, leg, check=True)
            except LevelAlreadyPassed as exc:
                self.core.stats.refused.append(str(exc))
                log.warning("watcher refused: %s", exc)
                await self._write_leg(pair.id, slot, leg.generation, LegStatus.CANCELLED)
            except StaleGeneration as exc:
                log.warning("watcher leg not re-armed: %s", exc)

    def _arm_leg(self, pair: WatcherPair, slot: str, direction: LegDirection, leg: WatcherLeg, *,
                 check: bool) -> ArmedLevel:
        return self.core.index.arm(EntryKey(pair.id, slot), pair.market, direction, leg.level,
                                   generation=leg.generation, exclusive=True, expires_at=pair.expires_at,
                                   payload=pair, check_passed=check)
