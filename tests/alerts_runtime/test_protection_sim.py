"""Invariant 9 end to end: a trading Session on the simulator opens a trade through the gateway; its
exchange stop disappears behind the agent's back; the scheduler repairs it through `ensure_stop` at
once, before any alert turn runs, and only then queues the stop-loss verification alert."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from revagent.alerts.runner import TurnOutcome, thread_id_for
from revagent.alerts.service import AlertService
from revagent.alerts.trade_alerts import trigger_orders_from_open_orders
from revagent.config import load_config
from revagent.events import SyncCorrection
from revagent.exchange.protocol import CancelRequest
from revagent.exchange.sim import SimConfig, SimServer
from revagent.gateway import Action
from revagent.risk import OpenTrade
from revagent.runtime.session import Session
from revagent.store.alert_events import AlertKind
from revagent.store.alert_queue import QueuedAlert
from tests.alerts_runtime.conftest import FAST, eventually


@pytest.fixture
async def trading(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[Session, SimServer]]:
    sim = SimServer(SimConfig(seed=3, controls=True, manual_clock=True, history_minutes=0))
    await sim.start()
    sim.set_price("BTC", "60000")
    monkeypatch.setenv("REVAGENT_PAPER__VENUE_URL", sim.base_url)
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    try:
        yield session, sim
    finally:
        await session.stop("test finished")
        await sim.stop()


async def stops(session: Session) -> list[Any]:
    assert session.bridge is not None
    return [o for o in trigger_orders_from_open_orders(await session.bridge.open_orders())
            if o.market == "BTC" and o.is_stop]


async def test_a_vanished_stop_is_repaired_before_the_alert_is_queued(trading: tuple[Session, SimServer]) -> None:
    session, _sim = trading
    turns: list[tuple[str, int]] = []

    async def handler(item: QueuedAlert) -> TurnOutcome:
        if item.event.kind is not AlertKind.HEALTH:  # (this test feeds no prices: a staleness alert may come)
            turns.append((item.event.trigger_key, len(await stops(session))))  # a stop exists when the turn runs
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="verified")

    # The service starts with the session; trading parts come later (start_trading is lazy).
    service = AlertService.for_session(session, handler=handler, stream_mids=False, poll_marks=False, timings=FAST)
    await service.start(session.tasks)
    assert service.scheduler.trades is None
    await session.start_trading()
    assert service.enable_trading(session.tasks, session, stream_mids=False)
    assert session.gateway is not None and session.bridge is not None and session.risk is not None
    await session.risk.set("stop_grace", "0s")  # the one grace both watchers used to have separately
    opened = await session.gateway.submit(
        OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"), risk_usd=Decimal("20"),
                  target_px=Decimal("63000"), conviction=60), Action.command("open-1"))
    assert opened.status == "done", opened.message
    [stop] = await eventually(lambda: stops(session))
    sch = service.scheduler
    await sch.refresh_trades()
    assert {v.key.slot for v in sch.trade_alerts()} >= {"early_warning", "profit_target"}
    assert await sch.refresh_trades() == []  # the stop is there: nothing to do
    await sch.check_approval(force=True)  # the paper approval answers (whatever its validity)

    # The stop disappears behind the agent's back (cancelled on the exchange).
    await session.bridge.cancel_orders([CancelRequest("BTC", oid=stop.oid)])
    assert await stops(session) == []
    # Whoever looks first (this call, or the scheduler's own refresh on the sync's order_vanished drift)
    # repairs it, once, and only then queues the alert.
    await sch.refresh_trades()
    [replaced] = await eventually(lambda: stops(session))
    assert replaced.trigger_px == Decimal("59000") and replaced.oid != stop.oid
    assert sch.stats.protections == 1
    await eventually(lambda: _is(len(turns) == 1))
    key, stops_when_turn_ran = turns[0]
    assert key.endswith("#stop_loss_verification:g1") and stops_when_turn_ran == 1
    event = next(h["event"] for h in await service.queue.history() if h["trigger_key"] == key)
    assert event["context"]["status"] == "missing" and event["context"]["protection"]["status"] == "done"
    # Checked again: the repaired stop passes, nothing new is queued.
    assert await sch.refresh_trades() == []
    assert [h["trigger_key"] for h in await service.queue.history() if not h["trigger_key"].startswith("health")] \
        == [key]


async def _is(value: bool) -> bool:
    return value


async def test_one_watcher_repairs_a_vanished_stop_after_the_users_stop_grace(
        trading: tuple[Session, SimServer]) -> None:
    """Issue 14.4: `risk.stop_grace` is the one grace, and one component repairs a managed trade's stop
    (the scheduler, through `ensure_stop`); the sync's corrections leave that position to it."""
    session, _sim = trading

    async def handler(item: QueuedAlert) -> TurnOutcome:
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="seen")

    service = AlertService.for_session(session, handler=handler, stream_mids=False, poll_marks=False, timings=FAST)
    await service.start(session.tasks)
    await session.start_trading()
    assert service.enable_trading(session.tasks, session, stream_mids=False)
    assert session.gateway is not None and session.bridge is not None and session.risk is not None
    await session.risk.set("stop_grace", "4s")
    corrections = session.bus.subscribe(SyncCorrection)
    loop = asyncio.get_running_loop()
    opened_at = loop.time()
    opened = await session.gateway.submit(
        OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"), risk_usd=Decimal("20"),
                  target_px=Decimal("63000"), conviction=60), Action.command("open-grace"))
    assert opened.status == "done", opened.message
    [stop] = await eventually(lambda: stops(session), interval=0.2)
    await session.bridge.cancel_orders([CancelRequest("BTC", oid=stop.oid)])
    await asyncio.sleep(max(0.0, opened_at + 2.5 - loop.time()))
    assert await stops(session) == []  # within the user's grace: nobody repairs yet
    # (polled gently: every REST read spends the host's request weight, which the repair needs too)
    [replaced] = await eventually(lambda: stops(session), timeout=20, interval=0.5)
    assert loop.time() - opened_at >= 4
    assert replaced.trigger_px == Decimal("59000")
    assert service.scheduler.stats.protections == 1  # the scheduler repaired...
    await asyncio.sleep(0.5)
    placed = []
    while not corrections.queue.empty():
        event = corrections.queue.get_nowait()
        if isinstance(event, SyncCorrection) and event.kind == "place_stop":
            placed.append(event)
    assert placed == []  # ...and the sync's corrections did not place a second one
    assert len(await stops(session)) == 1
    corrections.close()
