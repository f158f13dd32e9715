"""The trade levels and stop checks job of the alert scheduler: trade management for every open trade.

For each open trade (`TradeBook`): early warning, profit target and liquidation warning levels in the
shared price index (re-placed when the plan's generation changes), and **stop-loss verification**:
the exchange-side stop is checked against the plan, and when it is missing or wrong the `protect`
callable (the gateway's `ensure_stop`) runs **at once**, and only then is the alert enqueued
(protection never waits for a model, invariant 9). While the account's websocket is down
(`ConnectionChanged(link="exchange_ws", up=False)` until it is up again) the session hears of no
cancelled stop, so the stop check **polls** the exchange instead: every `stop_grace / 2` (never more
often than `blind_poll_min`) while a managed trade with a stop is open, one `frontendOpenOrders` read
for all of them (weight 20) on the rate budget's `protect` lane; a stop deleted meanwhile is seen
within half the grace and re-placed at once. Once the websocket is back, the 30 s refresh and the
events (order updates, drift) take over again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from revagent.alerts.firing import event_for_stop_check
from revagent.alerts.levels import EntryKey
from revagent.alerts.runner import check_cancelled
from revagent.alerts.scheduling import SchedulerCore
from revagent.alerts.trade_alerts import StopCheck, TradeLevel, TriggerOrder, check_trade_stop, trade_levels
from revagent.alerts.trade_book import OpenTrade, Protect, TradeBook
from revagent.alerts.triggers import ArmedLevel
from revagent.models import TradePlan
from revagent.store.alert_events import AlertEvent, AlertKind

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StopVerification:
    """What one stop check did for one trade: the check, the protection result, the event enqueued."""

    trade_id: str
    check: StopCheck
    protected: object = None
    event: AlertEvent | None = None


class TradeWatch:
    """Trade-management levels and the stop check of the open trades the trade book manages."""

    def __init__(self, core: SchedulerCore, *, trades: TradeBook | None = None, protect: Protect | None = None,
                 stop_grace: Callable[[], Awaitable[timedelta]] | None = None) -> None:
        self.core = core
        self.trades = trades
        self.protect = protect
        self.stop_grace = stop_grace
        """The user's stop grace (`risk.stop_grace`), read at every stop check; None: `timings.stop_grace`."""
        self.trade_ids: set[str] = set()
        self.open_trades: dict[str, OpenTrade] = {}
        self._refresh_lock = asyncio.Lock()
        self._trades_wanted = asyncio.Event()

    def request_refresh(self) -> None:
        """Re-read open trades, re-place their levels and verify their stops soon (debounced)."""
        self._trades_wanted.set()

    def set_open(self, open_trades: list[OpenTrade]) -> None:
        """The open trades as the start-up found them (their levels are in the rebuilt index)."""
        self.open_trades = {ot.trade_id: ot for ot in open_trades}
        self.trade_ids = set(self.open_trades)

    async def run(self, after_refresh: Callable[[], Awaitable[object]]) -> None:
        """Refresh trade levels and verify stops when asked, and every `trade_refresh` (owned task);
        `after_refresh` runs after each refresh (the approval check)."""
        if self.trades is None:
            return
        timings = self.core.timings
        loop = asyncio.get_running_loop()
        started = loop.time()
        while True:
            wait = await self._trade_wait() - (loop.time() - started)  # counted from the last refresh's start
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._trades_wanted.wait(), max(wait, 0.0))
            self._trades_wanted.clear()
            started = loop.time()
            try:
                await self.refresh()
                await after_refresh()
            except Exception:
                check_cancelled()
                log.exception("trade refresh failed; trying again later")
            check_cancelled()
            rest = timings.trade_refresh_min.total_seconds() - (loop.time() - started)
            if rest > 0:
                await asyncio.sleep(rest)

    def _blind(self) -> bool:
        """True while the account's websocket is down and a managed trade has a stop to watch: no order
        update would tell of its deletion, so the stop check polls (see the module docstring)."""
        return "exchange_ws" in self.core.down and bool(self.open_trades) and self.protect is not None

    async def _trade_wait(self) -> float:
        """Seconds until the next trade refresh unless an event asks sooner: `trade_refresh`, or while
        blind `stop_grace / 2` (at least `blind_poll_min`)."""
        timings = self.core.timings
        refresh = timings.trade_refresh.total_seconds()
        if not self._blind():
            return refresh
        half = (await self._stop_grace()).total_seconds() / 2
        return min(refresh, max(half, timings.blind_poll_min.total_seconds()))

    async def _trigger_orders(self) -> list[TriggerOrder]:
        """The exchange's trigger orders for a stop check; while blind, read on the `protect` lane."""
        assert self.trades is not None
        reader = getattr(self.trades, "protective_trigger_orders", None) if self._blind() else None
        orders: list[TriggerOrder] = await (reader() if reader is not None else self.trades.trigger_orders())
        return orders

    async def read_trades(self) -> list[OpenTrade]:
        if self.trades is None:
            return []
        try:
            return await self.trades.open_trades()
        except Exception as exc:
            log.warning("could not read open trades (%r); trade alerts wait for the next refresh", exc)
            return []

    def levels_of(self, ot: OpenTrade) -> list[TradeLevel]:
        settings = self.core.settings
        return trade_levels(ot.trade, early_warning_fraction=settings.early_warning_fraction,
                            liquidation_warning_pct=settings.liquidation_warning_pct)

    async def refresh(self) -> list[StopVerification]:
        """Re-place every open trade's levels, drop closed trades' levels, then verify stops."""
        if self.trades is None:
            return []
        async with self._refresh_lock:  # one refresh at a time: a stop is never repaired twice at once
            moves = await self._stop_moves()  # read before the plans: see verify_stops
            open_trades = await self.trades.open_trades()
            await self.apply(open_trades)
            return await self.verify_stops(open_trades, moves_before=moves)

    async def apply(self, open_trades: list[OpenTrade]) -> None:
        """Arm the levels of these open trades (the only open ones) from the side the price is on."""
        core = self.core
        async with core.lock:
            index = core.index
            wanted: dict[EntryKey, TradeLevel] = {}
            for ot in open_trades:
                for tl in self.levels_of(ot):
                    wanted[tl.key] = tl
            current = {ot.trade_id for ot in open_trades}
            for gone in self.trade_ids - current:
                index.forget(gone)
                log.info("trade %s closed: its alerts are removed", gone)
            if current:  # one pass over the index (it may hold 200,000 watcher levels), not one per trade
                for view in index.armed():
                    if view.key.alert_id in current and view.key not in wanted:
                        index.disarm(view.key)
            for key, tl in wanted.items():
                armed = index.get(key)
                if armed is not None and armed.generation == tl.generation and armed.level == tl.level:
                    continue
                if index.fired_generation(key) >= tl.generation:
                    continue
                if tl.kind is AlertKind.PROFIT_TARGET and index.fired_level(key) == tl.level:
                    continue  # this target already fired: only a new target arms it again
                if armed is not None:
                    index.disarm(key)
                # From the side the price is on now: a level already passed waits for the price to come
                # back and fires at the next crossing, never for the crossing it (or its previous
                # generation) already reported.
                index.arm(key, tl.book, tl.direction, tl.level, generation=tl.generation, payload=tl,
                          check_passed=False, wait_if_passed=True)
            self.trade_ids = current
            self.open_trades = {ot.trade_id: ot for ot in open_trades}

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
        core = self.core
        if moves_before is None:
            moves_before = await self._stop_moves()
        now = core.clock()
        grace = await self._stop_grace()
        checkable = [ot for ot in open_trades if ot.opened_at is None or now - ot.opened_at >= grace]
        if len(checkable) < len(open_trades):
            wait = min(grace - (now - ot.opened_at) for ot in open_trades if ot.opened_at is not None)
            log.debug("stop check deferred %.1fs (risk.stop_grace %s)", wait.total_seconds(), grace)
            asyncio.get_running_loop().call_later(max(wait.total_seconds(), 0.0) + 0.05, self.request_refresh)
        if not checkable:
            return []
        orders = await self._trigger_orders()
        out: list[StopVerification] = []
        moves_after: Mapping[str, Any] | None = None
        for ot in checkable:
            core.stats.stop_checks += 1
            tolerance = ot.trade.stop * core.timings.stop_px_tolerance_bps / Decimal(10_000)
            check = check_trade_stop(ot.trade, orders, px_tolerance=tolerance)
            if check.ok:
                continue
            if moves_after is None:
                moves_after = await self._stop_moves()  # after the orders were read
            if self._stop_moving(ot.trade_id, moves_before, moves_after, now):
                core.stats.stop_checks_held += 1
                log.debug("stop check of %s held back: its stop is moving (%s)", ot.trade_id, check.detail)
                asyncio.get_running_loop().call_later(core.timings.stop_move_recheck.total_seconds(),
                                                      self.request_refresh)
                continue
            log.warning("stop check failed for %s %s: %s %s", ot.trade_id, ot.trade.market, check.status.value,
                        check.detail)
            protected = await self._protect(ot.plan)
            event = event_for_stop_check(ot.trade, check, fired_at=now, stop_generation=ot.plan.stop_generation)
            if event is not None:
                event = event.model_copy(update={"context": {**event.context, "protection": _jsonable(protected)}})
                if core.turn_budget(ot.trade_id, event):
                    await core.enqueue(event)
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
        if move.in_flight(now, self.core.timings.stop_move_settle):
            return True
        return bool(before.get(trade_id) != move)  # a move began or ended between the reads

    def owns_stop(self, market: str) -> bool:
        """True when this scheduler verifies and repairs the stop on `market` (an open trade it manages,
        with a `protect` to repair with): the one watcher of that position's stop. The sync's
        corrections leave such a position to it (`SyncService.stop_owner`)."""
        if self.protect is None or self.trades is None:
            return False
        return any(ot.trade.market == market for ot in self.open_trades.values())

    async def _stop_grace(self) -> timedelta:
        """The grace a new trade's stop gets: the user's `risk.stop_grace` when the session gave it."""
        fallback = self.core.timings.stop_grace
        if self.stop_grace is None:
            return fallback
        try:
            return await self.stop_grace()
        except Exception as exc:
            check_cancelled()
            log.warning("could not read risk.stop_grace (%r); using %s", exc, fallback)
            return fallback

    async def _protect(self, plan: TradePlan) -> object:
        if self.protect is None:
            log.error("no protect callable: the stop of %s is not repaired by the scheduler", plan.trade_id)
            return {"status": "not_configured"}
        self.core.stats.protections += 1
        try:
            result = await self.protect(plan)
        except Exception as exc:
            log.exception("protecting %s failed", plan.trade_id)
            return {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
        log.info("protected %s %s: %s", plan.trade_id, plan.market, result)
        return result

    def trade_alerts(self) -> list[ArmedLevel]:
        """The armed trade-management levels (for `alerts list` from the owner, and the UI)."""
        return [v for v in self.core.index.armed() if isinstance(v.payload, TradeLevel)]


def _jsonable(value: object) -> Any:
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if value is None or isinstance(value, str | int | float | bool | dict | list):
        return value
    return str(value)
