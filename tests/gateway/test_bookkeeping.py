"""The gateway's bookkeeping (issue 18.1): each step's writes (the journal records, their log entries,
the action index and the event; a plan with its stop move; the risk state) are one round trip to
Redis, still fenced by the lease: a process that lost the lease writes nothing and sends nothing."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any, ClassVar

import pytest
import redis.asyncio as aioredis
from redis.asyncio.connection import UnixDomainSocketConnection

from revagent.bus import Bus
from revagent.config.keys import SecretKey
from revagent.errors import LeaseLostError
from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
from revagent.exchange.onboarding import approve_agent
from revagent.exchange.sim import SimConfig, SimServer
from revagent.gateway import Action, Gateway
from revagent.models import SessionId
from revagent.risk import ModifyStop, OpenTrade, RiskSettings
from revagent.store.keys import Keyspace
from revagent.store.lease import Lease
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.risk import RiskStore
from revagent.sync.reader import BridgeAccountReader


class CountingConnection(UnixDomainSocketConnection):
    """A real connection that counts what it sends: one packed send is one round trip."""

    sends = 0
    by_task: ClassVar[weakref.WeakKeyDictionary[asyncio.Task[Any], int]] = weakref.WeakKeyDictionary()
    in_flight = 0  # connections that sent and have not read their (first) reply yet
    most_in_flight = 0
    _waiting = False

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        cls = type(self)
        cls.sends += 1
        task = asyncio.current_task()
        if task is not None:  # per task: steps that run together are each counted on their own
            cls.by_task[task] = cls.by_task.get(task, 0) + 1
        if not self._waiting:
            self._waiting = True
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        await super().send_packed_command(command, check_health)

    async def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().read_response(*args, **kwargs)
        finally:
            if self._waiting:
                self._waiting = False
                type(self).in_flight -= 1


@dataclass
class LeasedDesk:
    sim: SimServer
    bridge: HyperliquidBridge
    gateway: Gateway
    journal: OrderJournal
    plans: TradePlans
    lease: Lease
    keys: Keyspace
    redis: Any


@pytest.fixture
async def leased(redis_url: str) -> AsyncIterator[LeasedDesk]:
    sim = SimServer(SimConfig(seed=5, controls=True, manual_clock=True))
    base_url = await sim.start()
    sim.set_price("BTC", "60000")
    master, agent = SecretKey.generate(), SecretKey.generate()
    await approve_agent(base_url, master, agent.address(), "test", is_mainnet=False)
    redis = aioredis.Redis.from_url(redis_url, decode_responses=True, connection_class=CountingConnection)
    keys = Keyspace(SessionId(network="paper", address=master.address()))
    lease = Lease(redis, keys, ttl=timedelta(seconds=30), role="test")
    await lease.acquire()
    bridge = HyperliquidBridge(network="paper", base_url=base_url, master=master.address(), signer=agent.account())
    journal, plans = OrderJournal(redis, keys, lease), TradePlans(redis, keys, lease)
    risk = RiskStore(redis, keys, RiskSettings(max_risk_per_trade_usd=Decimal(50),
                                               max_portfolio_risk_usd=Decimal(200)), lease)
    reader = BridgeAccountReader(bridge, plans, journal)
    gateway = Gateway(exchange=bridge, journal=journal, plans=plans, account=reader,
                      settings=risk.settings, risk_state=risk, bus=Bus(), lease=lease)
    try:
        yield LeasedDesk(sim, bridge, gateway, journal, plans, lease, keys, redis)
    finally:
        await bridge.aclose()
        await lease.release()
        await redis.aclose()
        await sim.stop()


def _open() -> OpenTrade:
    return OpenTrade(market="BTC", side="long", origin="human", stop_px=Decimal(59000), risk_usd=Decimal(20))


def _sends(fn_name: str, counts: dict[str, list[int]]) -> Any:
    def wrap(obj: Any) -> None:
        inner = getattr(obj, fn_name)

        async def counted(*args: Any, **kwargs: Any) -> Any:
            task = asyncio.current_task()
            assert task is not None
            before = CountingConnection.by_task.get(task, 0)
            try:
                return await inner(*args, **kwargs)
            finally:
                counts.setdefault(fn_name, []).append(CountingConnection.by_task.get(task, 0) - before)

        setattr(obj, fn_name, counted)
    return wrap


@pytest.mark.timeout(60)
async def test_each_bookkeeping_write_is_one_round_trip(leased: LeasedDesk) -> None:
    counts: dict[str, list[int]] = {}
    _sends("record", counts)(leased.journal)
    _sends("save", counts)(leased.plans)
    _sends("put", counts)(leased.gateway._risk_state)
    opened = await leased.gateway.submit(_open(), Action.command("bk-open"))
    assert opened.status == "done", opened.message
    moved = await leased.gateway.submit(ModifyStop(market="BTC", origin="human", stop_px=Decimal(59500)),
                                        Action.command("bk-move"))
    assert moved.status == "done", moved.message
    # every write of a step (records + log + action index + event; plan + stop move; risk state) is
    # one script: before, each was a read of the index, WATCH, GET of the lease and MULTI/EXEC (4)
    assert counts["record"] and set(counts["record"]) == {1}, counts
    assert counts["save"] and set(counts["save"]) == {1}, counts
    assert counts["put"] and set(counts["put"]) == {1}, counts
    # the index still merges: the open's pending and final records are one action's, in order
    records = await leased.journal.for_action("cmd:bk-open")
    assert [r.role for r in records] == ["entry", "stop"]
    assert all(r.status != "pending" for r in records)
    plan = await leased.plans.open_for("BTC")
    assert plan is not None and plan.stop_px == Decimal(59500)
    moves = await leased.journal.stop_moves()
    assert moves[plan.trade_id].state == "done" and moves[plan.trade_id].new_stop == Decimal(59500)


@pytest.mark.timeout(60)
async def test_an_open_reads_together_and_reads_the_settings_once(leased: LeasedDesk) -> None:
    """The reads before a verdict (the action's earlier records, the settings, the risk state; for an
    open the market's plan too) are round trips that go out together, the risk state's mark and the
    outcome's journal write after the send too; the settings read for the verdict also price the
    filled entry's realized risk."""
    calls = {"settings": 0}
    inner = leased.gateway._settings

    async def settings() -> RiskSettings:
        calls["settings"] += 1
        return await inner()

    leased.gateway._settings = settings
    CountingConnection.most_in_flight = 0
    opened = await leased.gateway.submit(_open(), Action.command("bk-together"))
    assert opened.status == "done", opened.message
    assert calls["settings"] == 1, calls
    assert CountingConnection.most_in_flight >= 4, CountingConnection.most_in_flight
    records = await leased.journal.for_action("cmd:bk-together")
    assert [r.role for r in records] == ["entry", "stop"] and all(r.status != "pending" for r in records)
    state = await leased.gateway._risk_state.get()
    assert state.recent_orders, state  # the send's mark is in the risk state


@pytest.mark.timeout(60)
async def test_a_lost_lease_writes_nothing_and_sends_nothing(leased: LeasedDesk) -> None:
    # another process takes the wallet over (as after an expiry)
    await leased.redis.delete(leased.keys.lease)
    other = Lease(leased.redis, leased.keys, role="other")
    await other.acquire()
    with pytest.raises(LeaseLostError):
        await leased.gateway.submit(_open(), Action.command("bk-lost"))
    assert await leased.journal.for_action("cmd:bk-lost") == []
    assert await leased.redis.hlen(leased.journal.hash) == 0
    assert await leased.bridge.open_orders() == []
    assert (await leased.bridge.account_state()).asset_positions == []
    await other.release()
