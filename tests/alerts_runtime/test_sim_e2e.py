"""End to end against the simulator: its websocket mids and polled marks through the feed, the
scheduler, the durable queue and the runner, with prices moved by the simulator's controls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import eth_account
import pytest

from revagent.alerts.runner import TurnOutcome, thread_id_for
from revagent.alerts.service import AlertService
from revagent.events import ConnectionChanged
from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget, RetryPolicy
from revagent.exchange.sim import SimConfig, SimServer
from revagent.models import LegDirection, LegStatus, WatcherLeg, WatcherPair, utc_now
from revagent.runtime.session import Session
from revagent.store.alert_queue import QueuedAlert
from tests.alerts_runtime.conftest import FAST, eventually

START_MS = 1_767_225_600_000
FAST_HTTP = RetryPolicy(attempts=3, timeout_s=2.0, base_delay_s=0.01, max_delay_s=0.05)


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=3, history_minutes=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def bridge(sim: SimServer) -> AsyncIterator[HyperliquidBridge]:
    master = str(eth_account.Account.create().address).lower()
    async with HyperliquidBridge(network="paper", base_url=sim.base_url, master=master, policy=FAST_HTTP,
                                 budget=LocalRateBudget(pause_base_s=0.02, pause_max_s=0.1)) as b:
        yield b


def pair(upper: Decimal | None, lower: Decimal | None) -> WatcherPair:
    return WatcherPair(
        market="BTC",
        upper=WatcherLeg(level=upper, direction=LegDirection.ABOVE, thesis="up") if upper else None,
        lower=WatcherLeg(level=lower, direction=LegDirection.BELOW, thesis="down") if lower else None,
        created_at=utc_now())


async def test_sim_prices_fire_watchers_through_the_whole_path(session: Session, sim: SimServer,
                                                               bridge: HyperliquidBridge) -> None:
    mid = (await bridge.all_mids())["BTC"]
    up = await session.store.watchers.put(pair((mid * Decimal("1.02")).quantize(Decimal(1)),
                                               (mid * Decimal("0.98")).quantize(Decimal(1))))
    ran: list[tuple[str, Any]] = []

    async def handler(item: QueuedAlert) -> TurnOutcome:
        ran.append((item.event.trigger_key, item.event.price))
        return TurnOutcome(thread_id=thread_id_for(item.event), summary="seen")

    service = AlertService(session.store, session.bus, bridge=bridge, handler=handler, timings=FAST)
    assert service.feed is not None
    service.feed.marks_interval = timedelta(milliseconds=100)
    health = session.bus.subscribe(ConnectionChanged)
    await service.start(session.tasks)
    sch = service.scheduler
    await eventually(lambda: _is(sch.last_mid("BTC") is not None))
    await eventually(lambda: _is(sch.index.last_price("BTC:mark") is not None))

    sim.set_price("BTC", mid * Decimal("1.03"))  # crossing up
    await eventually(lambda: _is(len(ran) == 1))
    assert ran[0][0] == f"{up.id}#upper:g1" and ran[0][1] >= up.upper.level  # type: ignore[union-attr]
    sim.set_price("BTC", mid * Decimal("0.9"))  # through the lower level: the pair is consumed
    await eventually(lambda: _is((sch.last_mid("BTC") or mid) < mid * Decimal("0.95")))
    down = await session.store.watchers.put(pair((mid * Decimal("0.95")).quantize(Decimal(1)),
                                                 (mid * Decimal("0.85")).quantize(Decimal(1))))
    await eventually(lambda: _is(len(sch.index) == 2))
    sim.set_price("BTC", mid * Decimal("0.8"))  # crossing down
    await eventually(lambda: _is(len(ran) == 2))
    assert [k for k, _ in ran] == [f"{up.id}#upper:g1", f"{down.id}#lower:g1"]
    stored = await session.store.watchers.get(up.id)
    assert stored is not None and stored.lower is not None and stored.lower.status is LegStatus.DISARMED

    # The websocket drops: down and up on the bus, and the mids snapshot keeps prices flowing.
    assert await sim.drop_websockets() >= 1
    seen = []
    async with asyncio.timeout(10):
        while len(seen) < 2:
            ev = await health.get()
            if isinstance(ev, ConnectionChanged) and ev.link == "exchange_ws":
                seen.append(ev.up)
    assert seen == [False, True]
    sim.set_price("BTC", mid * Decimal("0.81"))
    await eventually(lambda: _is((sch.last_mid("BTC") or mid) > mid * Decimal("0.805")))
    history = await service.queue.history()
    assert sorted(h["trigger_key"] for h in history) == sorted(k for k, _ in ran)


async def _is(value: bool) -> bool:
    return value
