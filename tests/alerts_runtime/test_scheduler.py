"""The scheduler against a real store and queue: price crossings, gaps, refusals, expiry, repeats,
missed-while-down, live pick-up of shell writes, stop verification (protect first), system alerts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revagent.alerts.levels import EntryKey
from revagent.alerts.price_watch import validate_new_pair
from revagent.alerts.scheduler import AlertScheduler
from revagent.alerts.trade_alerts import ManagedTrade, TriggerOrder
from revagent.alerts.trade_book import OpenTrade, managed_trade
from revagent.alerts.triggers import LevelAlreadyPassed
from revagent.config import AlertSettings
from revagent.events import AlertSignal, ConnectionChanged, DriftFound, MarksUpdated, MidsUpdated, RiskStateChanged
from revagent.models import (
    LegDirection,
    LegStatus,
    Side,
    TimeAlert,
    TimeAlertStatus,
    TradePlan,
    WatcherLeg,
    WatcherPair,
)
from revagent.risk.settings import RiskSettings
from revagent.runtime.session import Session
from revagent.store.alert_events import AlertKind
from revagent.store.alert_queue import AlertQueue
from revagent.store.risk import RiskStore
from tests.alerts_runtime.conftest import FAST, T0, Clock, eventually

D = Decimal


def pair(market: str = "BTC", upper: str | None = "110", lower: str | None = "90", **kw: Any) -> WatcherPair:
    return WatcherPair(
        market=market,
        upper=WatcherLeg(level=D(upper), direction=LegDirection.ABOVE, thesis="breakout") if upper else None,
        lower=WatcherLeg(level=D(lower), direction=LegDirection.BELOW, thesis="breakdown") if lower else None,
        created_at=T0, **kw)


async def start(session: Session, clock: Clock, *, run: bool = True, **kw: Any) -> AlertScheduler:
    queue = AlertQueue(session.store.redis, session.store.keys)
    sch = AlertScheduler(session.store, queue, session.bus, clock=clock, timings=FAST, **kw)
    await sch.load()
    if run:
        session.tasks.spawn("t:prices", sch.run_prices())
        session.tasks.spawn("t:events", sch.run_events())
        session.tasks.spawn("t:invalidations", sch.run_invalidations())
        session.tasks.spawn("t:timer", sch.run_timer())
        session.tasks.spawn("t:trades", sch.run_trades())
    return sch


async def queued_keys(sch: AlertScheduler) -> list[str]:
    return [q.event.trigger_key for q in await sch.queue.pending()]


async def test_crossing_up_fires_the_upper_leg_once_and_consumes_the_pair(session: Session, clock: Clock) -> None:
    p = await session.store.watchers.put(pair())
    sch = await start(session, clock, run=False)
    assert len(sch.index) == 2
    assert await sch.on_mids({"BTC": D("100")}) == []
    assert await sch.on_mids({"BTC": D("109.99")}) == []
    fired = await sch.on_mids({"BTC": D("110")})  # an exact touch fires
    assert [f.trigger_key for f in fired] == [f"{p.id}#upper:g1"]
    assert await sch.on_mids({"BTC": D("111")}) == []  # a double tick does not fire again
    assert await sch.on_mids({"BTC": D("80")}) == []  # the lower leg was disarmed
    [item] = await sch.queue.pending()
    assert item.event.kind is AlertKind.WATCHER and item.event.price == D("110")
    assert item.event.context["thesis"] == "breakout"
    await sch.legs_written()  # the legs' write-back follows the enqueue, off the tick (issue 18.3)
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.upper is not None and stored.lower is not None
    assert stored.upper.status is LegStatus.FIRED and stored.upper.fired_price == D("110")
    assert stored.lower.status is LegStatus.DISARMED


async def test_crossing_down_fires_the_lower_leg(session: Session, clock: Clock) -> None:
    p = await session.store.watchers.put(pair())
    sch = await start(session, clock, run=False)
    await sch.on_mids({"BTC": D("100"), "ETH": D("3000")})
    await sch.on_mids({"BTC": D("89.5")})
    assert await queued_keys(sch) == [f"{p.id}#lower:g1"]
    await sch.legs_written()
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.lower is not None and stored.lower.status is LegStatus.FIRED


async def test_a_gap_through_the_pair_fires_one_leg_and_nothing_after(session: Session, clock: Clock) -> None:
    p = await session.store.watchers.put(pair())
    other = await session.store.watchers.put(pair(upper="105", lower=None))
    sch = await start(session, clock, run=False)
    await sch.on_mids({"BTC": D("100")})
    fired = await sch.on_mids({"BTC": D("150")})  # one gap through both pairs' upper levels: lowest first
    assert [f.trigger_key for f in fired] == [f"{other.id}#upper:g1", f"{p.id}#upper:g1"]
    assert await sch.on_mids({"BTC": D("50")}) == []  # straight through the lower level: consumed
    assert sorted(await queued_keys(sch)) == sorted([f"{other.id}#upper:g1", f"{p.id}#upper:g1"])


async def test_a_level_already_passed_is_refused_with_the_current_price(session: Session, clock: Clock) -> None:
    with pytest.raises(LevelAlreadyPassed, match=r"already 112\b.*choose a level above 112"):
        validate_new_pair(pair(), D("112"))
    with pytest.raises(LevelAlreadyPassed, match="already 90"):
        validate_new_pair(pair(), D("90"))
    validate_new_pair(pair(), None)  # no price known: the first tick decides
    sch = await start(session, clock)
    await sch.on_mids({"BTC": D("112")})
    with pytest.raises(LevelAlreadyPassed):
        sch.validate_pair(pair())
    # Written anyway (a shell without prices): the scheduler refuses it live and records why.
    p = await session.store.watchers.put(pair())

    async def refused() -> bool:
        stored = await session.store.watchers.get(p.id)
        return stored is not None and stored.upper is not None and stored.upper.status is LegStatus.CANCELLED

    await eventually(refused)
    assert "already 112" in sch.stats.refused[-1]
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.lower is not None and stored.lower.status is LegStatus.ARMED
    assert await queued_keys(sch) == []


async def test_an_expired_pair_never_fires(session: Session, clock: Clock) -> None:
    p = await session.store.watchers.put(pair(expires_at=T0 + timedelta(minutes=5)))
    sch = await start(session, clock)
    await sch.on_mids({"BTC": D("100")})
    clock.advance(timedelta(minutes=5))

    async def expired() -> bool:
        stored = await session.store.watchers.get(p.id)
        return stored is not None and all(leg.status is LegStatus.EXPIRED for leg in stored.legs())

    await eventually(expired)
    assert await sch.on_mids({"BTC": D("200")}) == []
    assert len(sch.index) == 0 and await queued_keys(sch) == []


async def test_a_re_armed_pair_fires_again_under_a_new_key(session: Session, clock: Clock) -> None:
    p = await session.store.watchers.put(pair())
    sch = await start(session, clock)
    await sch.on_mids({"BTC": D("100")})
    await sch.on_mids({"BTC": D("111")})
    await sch.legs_written()
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.upper is not None
    rearmed = stored.model_copy(update={"upper": WatcherLeg(level=D("120"), direction=LegDirection.ABOVE,
                                                            generation=2)})
    await session.store.watchers.put(rearmed)  # the alert thread re-arms at a new level

    async def armed() -> bool:
        view = sch.index.get(sch.index.armed()[0].key) if sch.index.armed() else None
        return view is not None and view.generation == 2

    await eventually(armed)
    await sch.on_mids({"BTC": D("121")})
    assert await queued_keys(sch) == [f"{p.id}#upper:g1", f"{p.id}#upper:g2"]


async def test_a_repeating_time_alert_fires_each_occurrence_once(session: Session, clock: Clock) -> None:
    alert = await session.store.time_alerts.put(TimeAlert(fire_at=T0 + timedelta(minutes=1),
                                                          every=timedelta(minutes=1), prompt="check", created_at=T0))
    sch = await start(session, clock)
    await asyncio.sleep(0.1)
    assert await queued_keys(sch) == []
    clock.advance(timedelta(minutes=1))
    await eventually(lambda: queued_keys(sch))
    clock.advance(timedelta(minutes=1))

    async def two() -> list[str] | None:
        keys = await queued_keys(sch)
        return keys if len(keys) == 2 else None

    keys = await eventually(two)
    assert keys == [f"{alert.id}#2026-11-24T08:01:00Z", f"{alert.id}#2026-11-24T08:02:00Z"]
    stored = await session.store.time_alerts.get(alert.id)
    assert stored is not None and stored.fire_at == T0 + timedelta(minutes=3)
    assert stored.status is TimeAlertStatus.SCHEDULED
    items = await sch.queue.pending()
    assert [i.event.late for i in items] == [False, False]


async def test_missed_while_down_fires_late_at_start(session: Session, clock: Clock) -> None:
    # The process was down at 07:00 (a one-shot) and while the price went through the upper level.
    missed = await session.store.time_alerts.put(TimeAlert(fire_at=T0 - timedelta(hours=1), prompt="morning",
                                                           created_at=T0 - timedelta(days=1)))
    too_old = await session.store.time_alerts.put(TimeAlert(fire_at=T0 - timedelta(days=2), prompt="stale",
                                                            created_at=T0 - timedelta(days=3)))
    p = await session.store.watchers.put(pair())

    async def mids() -> dict[str, Decimal]:
        return {"BTC": D("115")}

    sch = await start(session, clock, initial_mids=mids)
    items = await eventually(lambda: sch.queue.pending())
    by_key = {i.event.trigger_key: i.event for i in await sch.queue.pending()}
    assert by_key[f"{p.id}#upper:g1"].late
    await eventually(lambda: _has(sch, f"{missed.id}#2026-11-24T07:00:00Z"))
    by_key = {i.event.trigger_key: i.event for i in await sch.queue.pending()}
    assert by_key[f"{missed.id}#2026-11-24T07:00:00Z"].late
    assert not any(k.startswith(too_old.id) for k in by_key)  # older than the horizon: skipped
    stored = await session.store.time_alerts.get(too_old.id)
    assert stored is not None and stored.status is TimeAlertStatus.SKIPPED
    assert items


async def _has(sch: AlertScheduler, key: str) -> bool:
    return key in await queued_keys(sch)


async def test_a_crash_between_enqueue_and_status_write_does_not_fire_twice(session: Session, clock: Clock) -> None:
    p = await session.store.watchers.put(pair())
    sch = await start(session, clock, run=False)
    await sch.on_mids({"BTC": D("100")})
    await sch.on_mids({"BTC": D("111")})
    await sch.legs_written()
    # Simulate the crash: the leg is still ARMED in the store, but the queue saw its key.
    await session.store.watchers.put(p)
    again = await start(session, clock, run=False, initial_mids=_const({"BTC": D("111")}))
    assert len(again.index) == 0 and again.stats.enqueued == 0
    await again.legs_written()  # the correction follows the load
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.upper is not None and stored.lower is not None
    assert (stored.upper.status, stored.lower.status) == (LegStatus.FIRED, LegStatus.DISARMED)
    assert await queued_keys(again) == [f"{p.id}#upper:g1"]


def _const(mids: dict[str, Decimal]) -> Any:
    async def read() -> dict[str, Decimal]:
        return mids

    return read


async def test_a_watcher_added_from_the_shell_is_picked_up_live(session: Session, clock: Clock) -> None:
    sch = await start(session, clock)
    session.bus.publish(MidsUpdated(mids={"ETH": D("3000")}, at=clock()))
    # (the shell checks the level against the paper venue's ETH price, about 3,300, too)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "revagent", "watchers", "add", "ETH", "--above", "3600", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    await eventually(lambda: _armed(sch))
    signals = session.bus.subscribe(AlertSignal)
    session.bus.publish(MidsUpdated(mids={"ETH": D("3600.5")}, at=clock()))
    signal = await asyncio.wait_for(signals.get(), 5)
    assert isinstance(signal, AlertSignal) and signal.status == "queued" and signal.kind == "watcher"
    assert signal.trigger_key.endswith("#upper:g1")
    # A time alert added from the shell is scheduled at once too.
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "revagent", "alerts", "add", "--in", "5m", "look at ETH", "--json",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    added = json.loads(out)
    await eventually(lambda: _due(sch, added["id"]))
    clock.now = datetime.fromisoformat(added["fire_at"])
    await eventually(lambda: _has(sch, f"{added['id']}#{added['fire_at'].replace('+00:00', 'Z')}"))
    # And a removal from the shell disarms at once.
    p2 = await session.store.watchers.put(pair(market="ETH", upper="4000", lower="2000"))
    await eventually(lambda: _armed(sch, 2))
    await session.store.watchers.delete(p2.id)
    await eventually(lambda: _armed(sch, 0, exact=True))


async def _armed(sch: AlertScheduler, n: int = 1, exact: bool = False) -> bool:
    return len(sch.index) == n if exact else len(sch.index) >= n


class Book:
    """A TradeBook over in-memory trades and trigger orders (the exchange side under test control)."""

    def __init__(self, trades: list[OpenTrade], orders: list[TriggerOrder]) -> None:
        self.trades = trades
        self.orders = orders

    async def open_trades(self) -> list[OpenTrade]:
        return list(self.trades)

    async def trigger_orders(self) -> list[TriggerOrder]:
        return list(self.orders)


def long_trade(stop_gen: int = 1) -> OpenTrade:
    plan = TradePlan(trade_id="tr_1", market="BTC", side=Side.LONG, stop_px=D("90"), target_px=D("130"),
                     risk_usd=D("100"), status="open", stop_generation=stop_gen, opened_at=T0)
    return OpenTrade(plan, ManagedTrade("tr_1", "BTC", Side.LONG, D("100"), D("90"), D("1"), D("130"),
                                        D("50"), stop_gen), T0)


def stop_order(px: str = "90", size: str = "1") -> TriggerOrder:
    return TriggerOrder(oid=7, market="BTC", is_buy=False, trigger_px=D(px), size=D(size), reduce_only=True,
                        is_stop=True)


async def test_a_missing_stop_is_protected_first_then_queued(session: Session, clock: Clock) -> None:
    book = Book([long_trade()], [])
    calls: list[tuple[str, list[str]]] = []
    holder: dict[str, AlertScheduler] = {}

    async def protect(plan: TradePlan) -> object:
        calls.append((plan.trade_id, await queued_keys(holder["s"])))  # what was queued when protection ran
        book.orders = [stop_order()]
        return {"status": "done", "message": "stop placed"}

    sch = AlertScheduler(session.store, AlertQueue(session.store.redis, session.store.keys), session.bus,
                         clock=clock, timings=FAST, trades=book, protect=protect)
    holder["s"] = sch
    await sch.load()
    results = await sch.refresh_trades()
    assert calls == [("tr_1", [])]  # protection ran before anything was queued
    [item] = await sch.queue.pending()
    assert item.event.kind is AlertKind.STOP_LOSS_VERIFICATION and item.band == "urgent"
    assert item.event.trigger_key == "tr_1#stop_loss_verification:g1"
    assert item.event.context["status"] == "missing"
    assert item.event.context["protection"] == {"status": "done", "message": "stop placed"}
    assert item.event.first_action and "Verify the stop" in item.event.first_action
    assert results[0].check.status.value == "missing"
    assert await sch.refresh_trades() == []  # repaired: the next check passes
    assert len(calls) == 1
    # trade levels were armed: early warning at 95 (mid), target 130 (mid), liquidation 55 (mark)
    levels = {v.key.slot: (v.book, v.level) for v in sch.trade_alerts()}
    assert levels == {"early_warning": ("BTC", D("95.0")), "profit_target": ("BTC", D("130")),
                      "liquidation_warning": ("BTC:mark", D("55.0"))}


async def test_trade_levels_fire_and_follow_the_plan(session: Session, clock: Clock) -> None:
    book = Book([long_trade()], [stop_order()])
    sch = await start(session, clock, run=False, trades=book, protect=None)
    await sch.refresh_trades()
    await sch.on_mids({"BTC": D("100")})
    await sch.on_mids({"BTC": D("94")})
    await sch.on_mids(MarksUpdated(marks={"BTC": D("54")}, at=clock()).marks, source="mark")
    keys = await queued_keys(sch)
    assert keys == ["tr_1#liquidation_warning:g1", "tr_1#early_warning:g1"]  # urgent band first
    # The agent moves the stop: new generation, levels re-placed from the side the price is on. The mid
    # (94) is past the early warning already: it does not fire again for that crossing...
    book.trades = [long_trade(stop_gen=2)]
    book.orders = [stop_order()]
    await sch.refresh_trades()
    assert {v.generation for v in sch.trade_alerts()} == {2}
    assert sch.index.is_waiting(EntryKey("tr_1", "early_warning"))
    await sch.on_mids({"BTC": D("93")})
    assert "tr_1#early_warning:g2" not in await queued_keys(sch)
    # ...only after the price came back above it and crossed it again.
    await sch.on_mids({"BTC": D("96")})
    await sch.on_mids({"BTC": D("93")})
    assert "tr_1#early_warning:g2" in await queued_keys(sch)
    # The trade closes: its alerts go away.
    book.trades = []
    await sch.refresh_trades()
    assert sch.trade_alerts() == []


async def test_lockout_drift_and_health_alerts(session: Session, clock: Clock) -> None:
    book = Book([long_trade()], [stop_order()])
    sch = await start(session, clock, trades=book)
    await sch.refresh_trades()
    bus = session.bus
    bus.publish(RiskStateChanged(state="active", multiplier=D("1")))
    bus.publish(RiskStateChanged(state="locked", multiplier=D("0"), reason="daily loss",
                                 locked_until=T0 + timedelta(hours=24)))
    bus.publish(RiskStateChanged(state="active", multiplier=D("1")))
    bus.publish(DriftFound(kind="position_changed", market="BTC", detail="size 1 vs 2", matters=True))
    bus.publish(DriftFound(kind="position_changed", market="BTC", detail="size 1 vs 2", matters=True))  # again
    bus.publish(DriftFound(kind="order_appeared", market="BTC", detail="oid 5", matters=False))
    bus.publish(ConnectionChanged(link="exchange_ws", up=False, detail="dropped"))

    async def kinds() -> list[str] | None:
        ks = sorted(i.event.kind.value for i in await sch.queue.pending())
        return ks if len(ks) >= 4 else None

    await eventually(lambda: _down(sch))
    clock.advance(timedelta(seconds=1))
    got = await eventually(kinds)
    assert got == ["drift", "health", "lockout", "lockout"]
    items = {i.event.trigger_key: i.event for i in await sch.queue.pending()}
    assert "lockout#start:locked:2026-11-25T08:00:00+00:00" in items
    [drift] = [e for e in items.values() if e.kind is AlertKind.DRIFT]
    assert drift.trigger_key.startswith("drift#position_changed:BTC:") and drift.trigger_key.endswith(":20261124T08")
    assert drift.context["detail"] == "size 1 vs 2"
    health = next(e for e in items.values() if e.kind is AlertKind.HEALTH)
    assert health.alert_id == "health-exchange_ws" and health.context["open_trades"] == ["tr_1"]


async def _down(sch: AlertScheduler) -> bool:
    return "exchange_ws" in sch.links_down


async def _due(sch: AlertScheduler, alert_id: str) -> bool:
    return alert_id in sch.due


async def test_an_approval_close_to_expiry_raises_one_health_alert_while_positions_are_open(
        session: Session, clock: Clock) -> None:
    expires = {"at": T0 + timedelta(days=3)}

    async def expiry() -> Any:
        return expires["at"]

    book = Book([], [stop_order()])
    sch = await start(session, clock, run=False, trades=book, approval_expiry=expiry)
    await sch.refresh_trades()
    assert await sch.check_approval(force=True) is None  # no open position: nothing to protect
    book.trades = [long_trade()]
    await sch.refresh_trades()
    assert await sch.check_approval(force=True) is None  # three days left
    expires["at"] = T0 + timedelta(hours=5)
    event = await sch.check_approval(force=True)
    assert event is not None and event.trigger_key == "health-approval#2026-11-24T13:00:00Z"
    assert await sch.check_approval() is None  # checked a moment ago
    await sch.check_approval(force=True)
    assert await queued_keys(sch) == ["health-approval#2026-11-24T13:00:00Z"]  # once per expiry time


async def test_the_liquidation_warning_follows_a_drifting_liquidation_price(session: Session, clock: Clock) -> None:
    book = Book([long_trade()], [stop_order()])
    sch = await start(session, clock, run=False, trades=book, protect=None)
    await sch.refresh_trades()
    assert {v.key.slot: v.level for v in sch.trade_alerts()}["liquidation_warning"] == D("55.0")
    # Funding and other positions move the cross-margin liquidation price; the plan is unchanged.
    drifted = long_trade()
    book.trades = [OpenTrade(drifted.plan, dataclasses.replace(drifted.trade, liquidation_px=D("70")), T0)]
    await sch.refresh_trades()
    levels = {v.key.slot: (v.level, v.generation) for v in sch.trade_alerts()}
    assert levels["liquidation_warning"] == (D("77.0"), 1)  # moved with it, same generation
    await sch.on_mids(MarksUpdated(marks={"BTC": D("76")}, at=clock()).marks, source="mark")
    assert "tr_1#liquidation_warning:g1" in await queued_keys(sch)


# --- issue 14.2: a trade-management level fires once ------------------------------------------------


def plan_trade(trade_id: str = "tr_1", *, stop: str = "90", target: str | None = "130", stop_gen: int = 1,
               target_gen: int = 1, entry: str = "100") -> OpenTrade:
    """An open long as the real trade book builds it (`managed_trade`: the plan's own generations)."""
    plan = TradePlan(trade_id=trade_id, market="BTC", side=Side.LONG, stop_px=D(stop),
                     target_px=D(target) if target else None, risk_usd=D("100"), status="open",
                     stop_generation=stop_gen, target_generation=target_gen, opened_at=T0)
    trade = managed_trade(plan, entry=D(entry), size=D("1"))
    assert trade is not None
    return OpenTrade(plan, trade, T0)


async def test_a_profit_target_that_fired_is_not_queued_again_when_the_stop_moves(
        session: Session, clock: Clock) -> None:
    book = Book([plan_trade()], [stop_order()])
    sch = await start(session, clock, run=False, trades=book, protect=None)
    await sch.refresh_trades()
    await sch.on_mids({"BTC": D("120")})
    await sch.on_mids({"BTC": D("131")})
    assert await queued_keys(sch) == ["tr_1#profit_target:g1"]
    # The policy took half off and moved the stop to break-even: the plan's stop generation moves on.
    book.trades = [plan_trade(stop="100", stop_gen=2)]
    book.orders = [stop_order("100")]
    await sch.refresh_trades()
    for px in ("131", "129", "132", "128", "133"):  # hovering around the target: no second turn
        await sch.on_mids({"BTC": D(px)})
    assert await queued_keys(sch) == ["tr_1#profit_target:g1"]
    # The target set again at the same level does not re-arm it either; a new target does, from here.
    book.trades = [plan_trade(stop="100", stop_gen=2, target_gen=2)]
    await sch.refresh_trades()
    await sch.on_mids({"BTC": D("131")})
    assert await queued_keys(sch) == ["tr_1#profit_target:g1"]
    book.trades = [plan_trade(stop="100", stop_gen=2, target="140", target_gen=3)]
    await sch.refresh_trades()
    await sch.on_mids({"BTC": D("141")})
    assert await queued_keys(sch) == ["tr_1#profit_target:g1", "tr_1#profit_target:g3"]


async def test_tightening_the_stop_past_the_price_does_not_refire_the_early_warning(
        session: Session, clock: Clock) -> None:
    book = Book([plan_trade()], [stop_order()])
    sch = await start(session, clock, run=False, trades=book, protect=None)
    await sch.refresh_trades()
    await sch.on_mids({"BTC": D("99")})
    await sch.on_mids({"BTC": D("94.5")})  # below the early warning at 95
    assert await queued_keys(sch) == ["tr_1#early_warning:g1"]
    # The stop creeps toward the mark: each new early warning (half-way to the new stop) is above 94.5.
    for gen, stop in enumerate(("91", "92", "93", "93.5", "94", "94.2", "94.3", "94.4"), start=2):
        book.trades = [plan_trade(stop=stop, stop_gen=gen)]
        book.orders = [stop_order(stop)]
        await sch.refresh_trades()
        await sch.on_mids({"BTC": D("94.5")})
        await sch.on_mids({"BTC": D("94.45")})
    assert await queued_keys(sch) == ["tr_1#early_warning:g1"]


async def test_alert_turns_per_trade_are_bounded_per_hour_then_one_notification(
        session: Session, clock: Clock) -> None:
    notes: list[tuple[str, str]] = []

    def notify(kind: str, title: str, message: str = "", **_: Any) -> bool:
        notes.append((kind, title))
        return True

    book = Book([plan_trade()], [stop_order()])
    sch = await start(session, clock, run=False, trades=book, protect=None, notify=notify,
                      settings=AlertSettings(max_trade_turns_per_hour=3))
    for gen in range(1, 7):  # six separate crossings of six plan generations, a minute apart
        book.trades = [plan_trade(stop_gen=gen)]
        await sch.refresh_trades()
        await sch.on_mids({"BTC": D("99")})
        await sch.on_mids({"BTC": D("94")})
        clock.advance(timedelta(minutes=1))
    assert await queued_keys(sch) == [f"tr_1#early_warning:g{g}" for g in (1, 2, 3)]
    assert notes == [("alert_throttled", "trade tr_1: alert turns paused")]  # once, not per firing
    assert sch.stats.throttled == 3
    clock.advance(timedelta(hours=1))  # the hour frees the budget
    book.trades = [plan_trade(stop_gen=7)]
    await sch.refresh_trades()
    await sch.on_mids({"BTC": D("99")})
    await sch.on_mids({"BTC": D("94")})
    assert (await queued_keys(sch))[-1] == "tr_1#early_warning:g7"


@dataclasses.dataclass
class _Step:
    kind: str  # "tick" | "stop" | "target"
    value: Decimal


_steps = st.lists(
    st.one_of(
        st.builds(_Step, st.just("tick"), st.decimals("80", "150", places=0)),
        st.builds(_Step, st.just("stop"), st.decimals("85", "99", places=0)),
        st.builds(_Step, st.just("target"), st.decimals("101", "145", places=0)),
    ),
    min_size=1, max_size=30)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
async def test_property_each_crossing_yields_at_most_one_alert_and_none_without_a_crossing(
        session: Session, clock: Clock, steps: list[_Step]) -> None:
    """For any price path and any stop/target changes: every queued trade alert is a crossing of its level
    from the side it was armed on, after it was armed; each (trade, kind, crossing) queues at most once."""
    trade_id = f"tr_{uuid.uuid4().hex[:10]}"
    state = {"stop": D("90"), "target": D("130"), "stop_gen": 1, "target_gen": 1}

    def current() -> OpenTrade:
        return plan_trade(trade_id, stop=str(state["stop"]), target=str(state["target"]),
                          stop_gen=int(state["stop_gen"]), target_gen=int(state["target_gen"]))

    book = Book([current()], [])
    sch = AlertScheduler(session.store, AlertQueue(session.store.redis, session.store.keys), session.bus,
                         clock=clock, timings=FAST, trades=book, protect=None,
                         settings=AlertSettings(max_trade_turns_per_hour=120))
    await sch.load()
    try:
        await sch.on_mids({"BTC": D("100")})
        await sch.apply_trades([current()])
        # (kind, generation) -> (level, fires below, index in `path` of the price when it was armed)
        armed: dict[tuple[str, int], tuple[Decimal, bool, int]] = {}
        path: list[Decimal] = [D("100")]

        def note_armed() -> None:
            for v in sch.trade_alerts():
                k = (v.key.slot, v.generation)
                if k not in armed:
                    armed[k] = (v.level, v.direction is LegDirection.BELOW, len(path) - 1)

        note_armed()
        for step in steps:
            if step.kind == "tick":
                await sch.on_mids({"BTC": step.value})
                path.append(step.value)
            elif step.kind == "stop" and step.value != state["stop"]:
                state["stop"], state["stop_gen"] = step.value, int(state["stop_gen"]) + 1
                await sch.apply_trades([current()])
            elif step.kind == "target" and step.value != state["target"]:
                state["target"], state["target_gen"] = step.value, int(state["target_gen"]) + 1
                await sch.apply_trades([current()])
            note_armed()
        keys = [q.event.trigger_key for q in await sch.queue.pending() if q.event.alert_id == trade_id]
        assert len(keys) == len(set(keys))  # one alert per (trade, kind, generation)
        for key in keys:
            slot, gen = key.split("#", 1)[1].split(":g")
            level, below, at = armed[(slot, int(gen))]
            # a crossing after it was armed: the price was strictly on the armed side at or after arming,
            # then reached the level
            seen_safe, crossed = False, False
            for px in path[at:]:
                if seen_safe and (px <= level if below else px >= level):
                    crossed = True
                    break
                seen_safe = seen_safe or (px > level if below else px < level)
            assert crossed, (key, level, path[at:])
        # a profit target fires at most once per target level
        targets = [k for k in keys if "#profit_target:" in k]
        levels = [armed[("profit_target", int(k.rsplit(":g", 1)[1]))][0] for k in targets]
        assert len(levels) == len(set(levels))
    finally:
        await sch.aclose()


# --- issue 14.4: one owner for "no position without a stop", one setting ---------------------------


async def test_the_stop_check_waits_for_the_users_risk_stop_grace(session: Session, clock: Clock) -> None:
    risk = RiskStore(session.store.redis, session.store.keys, RiskSettings())
    await risk.set("stop_grace", "60s")  # raised by the user (the scheduler's own fallback is 0 here)

    async def grace() -> timedelta:
        return (await risk.settings()).stop_grace

    book = Book([long_trade()], [])  # opened at T0, no stop on the exchange
    protected: list[datetime] = []

    async def protect(plan: TradePlan) -> object:
        protected.append(clock())
        return {"status": "done"}

    sch = await start(session, clock, run=False, trades=book, protect=protect, stop_grace=grace)
    clock.now = T0 + timedelta(seconds=30)  # past the old fixed 10 s, within the user's 60 s
    assert await sch.refresh_trades() == [] and protected == []
    clock.now = T0 + timedelta(seconds=61)
    [verification] = await sch.refresh_trades()
    assert verification.check.status.value == "missing" and protected == [T0 + timedelta(seconds=61)]
    assert sch.owns_stop("BTC") and not sch.owns_stop("ETH")  # the one watcher of this trade's stop


async def test_a_fire_tick_ends_at_the_enqueue_and_the_legs_follow(session: Session, clock: Clock) -> None:
    """Issue 18.3: the enqueue is the durable fact; the legs' write-back is off the tick's path."""
    p = await session.store.watchers.put(pair())
    sch = await start(session, clock, run=False)
    await sch.on_mids({"BTC": D("100")})
    fired = await sch.on_mids({"BTC": D("111")})
    assert [f.trigger_key for f in fired] == [f"{p.id}#upper:g1"]
    assert await queued_keys(sch) == [f"{p.id}#upper:g1"]  # queued when the tick returns
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.upper is not None
    assert stored.upper.status is LegStatus.ARMED  # not yet written back: the tick did not wait for it
    await sch.reload_pairs(p.id)  # a reload meanwhile re-arms neither the fired leg nor its sibling
    assert await sch.on_mids({"BTC": D("112")}) == []
    assert await sch.on_mids({"BTC": D("80")}) == []  # the lower leg stays disarmed: one leg per pair
    await sch.legs_written()
    assert await queued_keys(sch) == [f"{p.id}#upper:g1"]
    stored = await session.store.watchers.get(p.id)
    assert stored is not None and stored.upper is not None and stored.lower is not None
    assert (stored.upper.status, stored.lower.status) == (LegStatus.FIRED, LegStatus.DISARMED)
