"""Protection while the websocket is down (issue 12 item 3, invariant 3), end to end on the simulator:
a trading daemon session with its alert service holds a managed, protected position; the venue drops
every websocket and refuses new ones; right after a REST snapshot of the sync loop, another client
of the account deletes the position's stop. The session cannot hear of the deletion (no order
update comes), so its stop check must poll the exchange: the stop must be back on the simulator's own
book within `stop_grace` (plus a small margin), while the websocket is still down. Parametrized over
the snapshot interval: the repair must not wait for the next snapshot, however far off it is."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import eth_account
import pytest

from revagent.alerts.runner import TurnOutcome, thread_id_for
from revagent.alerts.service import AlertService
from revagent.config import load_config
from revagent.events import ConnectionChanged
from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget, RetryPolicy
from revagent.exchange.protocol import ActionOk, CancelRequest
from revagent.exchange.sim import SimServer
from revagent.exchange.sim.controls import SimControls
from revagent.gateway import Action
from revagent.risk import OpenTrade
from revagent.runtime.session import Session
from revagent.store.alert_queue import QueuedAlert
from tests.alerts_runtime.conftest import eventually
from tests.paper_venue import paper_venue

STOP_GRACE_S = 3.0
MARGIN_S = 1.5


@pytest.fixture
async def sim(revagent_home: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[SimServer]:
    monkeypatch.setenv("REVAGENT_RISK__STOP_GRACE", f"{STOP_GRACE_S:g}s")
    async with paper_venue(monkeypatch, seed=11, prices={"BTC": "60000"}, history_minutes=0) as server:
        yield server


def exchange_stops(sim: SimServer, master: str) -> list[int]:
    """The BTC stop triggers the simulator itself holds for `master` (its truth, not through REST)."""
    return [o.oid for o in sim.venue.open_by_user.get(master, {}).values()
            if o.coin == "BTC" and o.trigger is not None and o.trigger.tpsl == "sl"]


async def someone_else(sim: SimServer, master: str) -> HyperliquidBridge:
    """A second client of the account (a human with the SDK)."""
    agent = eth_account.Account.create()
    assert sim.venue.approve_agent(master, agent.address.lower(), f"w{agent.address[2:8]}", 2**62) is None
    bridge = HyperliquidBridge(network="paper", base_url=sim.base_url, master=master, signer=agent,
                               policy=RetryPolicy(attempts=2, timeout_s=2.0, base_delay_s=0.01, max_delay_s=0.05),
                               budget=LocalRateBudget())
    await bridge.meta()
    return bridge


async def handler(item: QueuedAlert) -> TurnOutcome:
    return TurnOutcome(thread_id=thread_id_for(item.event), summary="seen")


@pytest.mark.timeout(120)
@pytest.mark.parametrize("snapshot_interval", ["10s", "30s"])
async def test_a_stop_deleted_during_a_websocket_outage_is_back_within_stop_grace(
        sim: SimServer, snapshot_interval: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REVAGENT_SYNC__SNAPSHOT_INTERVAL", snapshot_interval)
    cfg = load_config()
    session = Session(cfg, cfg.wallet(), role="daemon")
    await session.start(serve_commands=False)
    other: HyperliquidBridge | None = None
    service: AlertService | None = None
    try:
        service = AlertService.for_session(session, handler=handler, stream_mids=False, poll_marks=False)
        await service.start(session.tasks)
        await session.start_trading()
        assert service.enable_trading(session.tasks, session, stream_mids=False)
        gateway, sync = session.gateway, session.sync
        assert gateway is not None and sync is not None and session.bridge is not None
        master = session.bridge.master
        opened = await gateway.submit(OpenTrade(market="BTC", side="long", stop_px=Decimal("59000"),
                                                risk_usd=Decimal("20"), target_px=Decimal("63000"), conviction=60),
                                      Action.command("wsgap-1"))
        assert opened.status == "done", opened.message
        (stop_oid,) = await eventually(lambda: asyncio.sleep(0, exchange_stops(sim, master)), timeout=10)
        await eventually(lambda: asyncio.sleep(0, sync.phase == "consistent"), timeout=10)
        other = await someone_else(sim, master)
        await asyncio.sleep(STOP_GRACE_S)  # the position is older than its grace: a missing stop is due at once
        await eventually(lambda: asyncio.sleep(0, service.scheduler.owns_stop("BTC")), timeout=10)

        rest_ok = session.bus.subscribe(ConnectionChanged, maxsize=100)
        async with SimControls(sim.base_url) as ctl:
            assert await ctl.websocket_outage() >= 1
            await eventually(lambda: asyncio.sleep(0, sync.phase == "checking"), timeout=10)
            while True:  # right after a REST snapshot ran: the next one is a whole interval away
                event = await asyncio.wait_for(rest_ok.get(), timeout=40)
                if isinstance(event, ConnectionChanged) and event.link == "exchange_rest" and event.up:
                    break
            rest_ok.close()
            # ... and after the stop check it asks for (it read the exchange's orders): nothing is due soon
            checks = service.scheduler.stats.stop_checks
            await eventually(lambda: asyncio.sleep(0, service.scheduler.stats.stop_checks > checks), timeout=5)
            await asyncio.sleep(0.2)
            spent = getattr(session.bridge.budget, "spent_by_lane", {})
            protect_before = spent.get("protect", 0)
            cancelled = await other.cancel_orders([CancelRequest("BTC", oid=stop_oid)])
            assert isinstance(cancelled, ActionOk), cancelled
            t0 = time.monotonic()
            assert exchange_stops(sim, master) == []
            deadline = STOP_GRACE_S + MARGIN_S
            while not exchange_stops(sim, master):
                if time.monotonic() - t0 > deadline:
                    raise AssertionError(f"no stop back on the exchange {deadline:g} s after it was deleted during "
                                         f"a websocket outage (snapshot interval {snapshot_interval}, sync phase "
                                         f"{sync.phase})")
                await asyncio.sleep(0.05)
            took = time.monotonic() - t0
            print(f"stop back after {took:.2f} s during a websocket outage (snapshots every {snapshot_interval})")
            assert sync.phase == "checking", "the websocket stayed down through the repair"
            assert sim.venue.view_account(master).positions, "the repair closed nothing"
            await asyncio.sleep(STOP_GRACE_S)  # further checks while still down find the stop: no second one
            assert len(exchange_stops(sim, master)) == 1, exchange_stops(sim, master)
            # the polls read on the budget's protect lane (20 each), besides the repair's order (1)
            assert spent.get("protect", 0) - protect_before >= 2 * 20 + 1, spent
            await ctl.websocket_outage(down=False)
    finally:
        if other is not None:
            await other.aclose()
        await session.stop("test finished")
