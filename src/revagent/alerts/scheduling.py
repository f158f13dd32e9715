"""What the alert scheduler's jobs share: their timings and counters, the clock, the one lock, the
price trigger index, the links that are down, and the outbox every job enqueues through.

The jobs, one module each: `price_watch` (watcher pairs in the price index), `time_watch` (time
alerts), `trade_watch` (trade-management levels and the stop check of managed trades),
`system_alerts` (lockout, drift, health, approval). `scheduler.AlertScheduler` composes them.

Every mutation of the index and the due queue happens under `SchedulerCore.lock`, so a reload never
races a tick.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal

from revagent.alerts.time_rules import DEFAULT_LATE_AFTER
from revagent.alerts.triggers import PriceTriggerIndex
from revagent.bus import Bus
from revagent.config import AlertSettings
from revagent.events import AlertSignal
from revagent.store.alert_events import AlertEvent
from revagent.store.alert_queue import AlertQueue
from revagent.store.repos import SessionStore

log = logging.getLogger(__name__)


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


class SchedulerCore:
    """The state the jobs share, and the two things every job does the same way: enqueue an event
    once per trigger key (keeping what cannot be written now for the timer to retry), and count alert
    turns per trade against `alerts.max_trade_turns_per_hour`."""

    def __init__(self, store: SessionStore, queue: AlertQueue, bus: Bus, *, settings: AlertSettings,
                 timings: SchedulerTimings, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.queue = queue
        self.bus = bus
        self.settings = settings
        self.timings = timings
        self.clock = clock
        self.stats = SchedulerStats()
        self.lock = asyncio.Lock()
        """Held by every mutation of the index and the due queue."""
        self.wake = asyncio.Event()
        """Wakes the timer early (an unsent event, a changed due queue)."""
        self.index = PriceTriggerIndex()
        """Watcher legs and trade-management levels (rebuilt by `load()`)."""
        self.down: dict[str, tuple[datetime, str]] = {}
        """Links down now (since, detail), from `ConnectionChanged`: health alerts and blind stop polling."""
        self.notify: Callable[..., object] | None = None
        """`notify(kind, title, message, data=..., urgent=...)`: the notifier, for notices without a turn."""
        self.unsent: list[AlertEvent] = []
        self._trade_turns: dict[str, deque[datetime]] = {}
        self._throttle_noticed: set[str] = set()

    async def enqueue(self, event: AlertEvent) -> bool:
        """Enqueue once per trigger key; an event that cannot be written now is retried by the timer."""
        try:
            entry = await self.queue.enqueue(event)
        except Exception as exc:
            log.error("could not enqueue %s (%r): retrying", event.trigger_key, exc)
            self.unsent.append(event)
            self.wake.set()
            return False
        if entry is None:
            self.stats.duplicates += 1
            log.debug("already queued once: %s", event.trigger_key)
            return False
        self.stats.enqueued += 1
        log.info("alert queued: %s %s%s", event.kind.value, event.trigger_key, " (late)" if event.late else "")
        self.bus.publish(AlertSignal(status="queued", trigger_key=event.trigger_key, kind=event.kind.value,
                                     detail=describe(event)))
        return True

    async def enqueue_or_keep(self, event: AlertEvent) -> bool:
        """Enqueue; False only when the write failed (a duplicate counts as done)."""
        before = len(self.unsent)
        await self.enqueue(event)
        if len(self.unsent) > before:
            self.unsent.pop()  # the caller retries the whole occurrence instead
            return False
        return True

    async def retry_unsent(self) -> None:
        """Enqueue again what could not be written before. Lock held."""
        if self.unsent:
            unsent, self.unsent = self.unsent, []
            for event in unsent:
                await self.enqueue(event)

    def turn_budget(self, trade_id: str, event: AlertEvent) -> bool:
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
                                f"{bound} alert turns in the last hour; {describe(event)} and later alerts of "
                                "this trade get no turn until the hour frees one. Check the trade yourself.",
                                data={"trade_id": trade_id, "trigger_key": event.trigger_key}, urgent=True)
                except Exception:
                    log.exception("the turn budget's notification failed")
        return False


def describe(event: AlertEvent) -> str:
    ctx = event.context
    market = ctx.get("market")
    where = f" {market}" if market else ""
    price = f" at {event.price}" if event.price is not None else ""
    return f"{event.kind.value}{where}{price}"
