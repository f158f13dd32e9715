"""Sync fixtures: the embedded simulator, a bridge for the session (agent-signed) and one for "someone
else" trading the same account behind the session's back, and a wired SyncService with its gateway."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import eth_account
import pytest
import redis.asyncio as aioredis

from revagent.bus import Bus
from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget, RetryPolicy
from revagent.exchange.sim import SimConfig, SimServer
from revagent.gateway import Gateway
from revagent.models import SessionId
from revagent.risk import RiskSettings
from revagent.store.keys import Keyspace
from revagent.store.ledger import LedgerStore
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.risk import RiskStore
from revagent.sync.options import SyncOptions
from revagent.sync.service import SyncService

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FAST = RetryPolicy(attempts=5, timeout_s=2.0, base_delay_s=0.01, max_delay_s=0.05)
QUICK = SyncOptions(snapshot_interval=timedelta(seconds=1), risk_interval=timedelta(milliseconds=500),
                    confirm_delay=timedelta(milliseconds=100), backoff_initial=timedelta(milliseconds=100),
                    backoff_max=timedelta(seconds=1), correction_cooldown=timedelta(milliseconds=500))


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=3))
    await server.start()
    server.set_price("BTC", "60000")
    server.set_price("ETH", "3000")
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def master() -> str:
    return str(eth_account.Account.create().address).lower()


async def make_bridge(sim: SimServer, master: str) -> HyperliquidBridge:
    agent = eth_account.Account.create()
    assert sim.venue.approve_agent(master, agent.address.lower(), f"a{agent.address[2:8]}", 2**62) is None
    return HyperliquidBridge(network="paper", base_url=sim.base_url, master=master, signer=agent, policy=FAST,
                             budget=LocalRateBudget(pause_base_s=0.02, pause_max_s=0.1))


@dataclass
class Rig:
    """A session's sync and gateway over one Redis keyspace, plus `other`: a second client of the same
    account (a human with the SDK) whose trades the session never sees coming."""

    sim: SimServer
    master: str
    redis: aioredis.Redis
    keys: Keyspace
    bus: Bus
    bridge: HyperliquidBridge
    other: HyperliquidBridge
    ledger: LedgerStore
    plans: TradePlans
    journal: OrderJournal
    risk: RiskStore
    sync: SyncService
    gateway: Gateway
    task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self.sync.run(), name="test:sync")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            done, _ = await asyncio.wait({self.task}, timeout=5)
            if not done:
                for t in asyncio.all_tasks():
                    print("TASK", t.get_name(), t.get_stack(limit=8), flush=True)
            assert done, "the sync task did not stop within 5 s of its cancellation"
            self.task = None

    async def until(self, check: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "") -> None:
        """Wait until `check()` is true (polling every 50 ms); fail with `what` after `timeout` s."""
        async with asyncio.timeout(timeout):
            while not await check():
                await asyncio.sleep(0.05)
        if self.task is not None and self.task.done():
            raise AssertionError(f"the sync task died: {self.task.exception()!r}")


def build_sync(redis: aioredis.Redis, keys: Keyspace, bus: Bus, bridge: HyperliquidBridge,
               options: SyncOptions = QUICK) -> tuple[SyncService, Gateway, LedgerStore, TradePlans, OrderJournal,
                                                       RiskStore]:
    ledger = LedgerStore(redis, keys)
    plans = TradePlans(redis, keys)
    journal = OrderJournal(redis, keys)
    risk = RiskStore(redis, keys, RiskSettings(stop_grace=timedelta(seconds=1)))
    sync = SyncService(venue=bridge, ledger=ledger, plans=plans, journal=journal, risk=risk, bus=bus,
                       options=options)
    gateway = Gateway(exchange=bridge, journal=journal, plans=plans, account=sync.account, settings=risk.settings,
                      risk_state=risk, bus=bus, lease=None)
    sync.attach_gateway(gateway)
    return sync, gateway, ledger, plans, journal, risk


@pytest.fixture
async def rig(sim: SimServer, master: str, redis_client: aioredis.Redis) -> AsyncIterator[Rig]:
    keys = Keyspace(SessionId(network="paper", address=master))
    bus = Bus()
    bridge = await make_bridge(sim, master)
    other = await make_bridge(sim, master)
    sync, gateway, ledger, plans, journal, risk = build_sync(redis_client, keys, bus, bridge)
    r = Rig(sim, master, redis_client, keys, bus, bridge, other, ledger, plans, journal, risk, sync, gateway)
    try:
        yield r
    finally:
        await r.stop()
        await bridge.aclose()
        await other.aclose()


def sim_fills(sim: SimServer, master: str) -> list[dict[str, Any]]:
    """Every fill the simulator has for `master` (its own record, not through the API)."""
    return list(sim.venue.view_account(master).fills)
