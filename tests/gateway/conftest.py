"""A paper trading desk for gateway tests: the simulator in-process, a master and an agent key (the
agent approved for the master), the real bridge, and a Gateway over a real Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal

import pytest

from revagent.bus import Bus
from revagent.config.keys import SecretKey
from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
from revagent.exchange.onboarding import approve_agent
from revagent.exchange.sim import SimConfig, SimServer
from revagent.gateway import Gateway
from revagent.models import SessionId
from revagent.risk import RiskSettings
from revagent.store.connection import AnyRedis, connect
from revagent.store.keys import Keyspace
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.risk import RiskStore
from revagent.sync.reader import BridgeAccountReader


@dataclass
class Desk:
    sim: SimServer
    bridge: HyperliquidBridge
    gateway: Gateway
    journal: OrderJournal
    plans: TradePlans
    risk: RiskStore
    reader: BridgeAccountReader
    bus: Bus
    master: SecretKey
    redis: AnyRedis


@pytest.fixture
async def desk(redis_url: str) -> AsyncIterator[Desk]:
    sim = SimServer(SimConfig(seed=3, controls=True, manual_clock=True))
    base_url = await sim.start()
    sim.set_price("BTC", "60000")
    sim.set_price("ETH", "3000")
    master, agent = SecretKey.generate(), SecretKey.generate()
    await approve_agent(base_url, master, agent.address(), "test", is_mainnet=False)
    redis = await connect(redis_url)
    keys = Keyspace(SessionId(network="paper", address=master.address()))
    bridge = HyperliquidBridge(network="paper", base_url=base_url, master=master.address(), signer=agent.account())
    journal, plans = OrderJournal(redis, keys), TradePlans(redis, keys)
    risk = RiskStore(redis, keys, RiskSettings(max_risk_per_trade_usd=Decimal(50), max_portfolio_risk_usd=Decimal(200)))
    reader = BridgeAccountReader(bridge, plans, journal)
    bus = Bus()
    gateway = Gateway(exchange=bridge, journal=journal, plans=plans, account=reader, settings=risk.settings,
                      risk_state=risk, bus=bus, lease=None)
    try:
        yield Desk(sim, bridge, gateway, journal, plans, risk, reader, bus, master, redis)
    finally:
        await bridge.aclose()
        await redis.aclose()
        await sim.stop()
