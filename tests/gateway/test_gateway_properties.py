"""Property: for random interleavings of intents, retries, lost responses and price moves, the
exchange never holds two orders from one client order id, and every open position has a stop."""

from __future__ import annotations

import asyncio
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revagent.bus import Bus
from revagent.config.keys import SecretKey
from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
from revagent.exchange.hyperliquid.rate_budget import LocalRateBudget
from revagent.exchange.onboarding import approve_agent
from revagent.exchange.sim import SimConfig, SimServer
from revagent.gateway import Action, Gateway
from revagent.models import SessionId
from revagent.risk import ClosePosition, ModifyStop, OpenTrade, RiskSettings
from revagent.store.connection import connect
from revagent.store.keys import Keyspace
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.risk import RiskStore
from revagent.sync.reader import BridgeAccountReader

MARKETS = ("BTC", "ETH")
PRICES = {"BTC": Decimal(60000), "ETH": Decimal(3000)}

step = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(MARKETS), st.sampled_from(["long", "short"]), st.integers(0, 5)),
    st.tuples(st.just("retry"), st.integers(0, 5)),
    st.tuples(st.just("lose_next"), st.just(0)),
    st.tuples(st.just("close"), st.sampled_from(MARKETS)),
    st.tuples(st.just("tighten"), st.sampled_from(MARKETS)),
    st.tuples(st.just("move"), st.sampled_from(MARKETS), st.sampled_from([-0.03, -0.01, 0.01, 0.03])),
)


async def scenario(redis_url: str, steps: list[tuple[object, ...]]) -> None:
    sim = SimServer(SimConfig(seed=5, controls=True, manual_clock=True))
    base_url = await sim.start()
    for m, p in PRICES.items():
        sim.set_price(m, p)
    master, agent = SecretKey.generate(), SecretKey.generate()
    await approve_agent(base_url, master, agent.address(), "prop", is_mainnet=False)
    redis = await connect(redis_url)
    keys = Keyspace(SessionId(network="paper", address=master.address()))
    # The local venue has no IP limit; Hyperliquid's 1200/min budget would throttle this test for minutes.
    bridge = HyperliquidBridge(network="paper", base_url=base_url, master=master.address(), signer=agent.account(),
                               budget=LocalRateBudget(capacity=1_000_000))
    journal, plans = OrderJournal(redis, keys), TradePlans(redis, keys)
    risk = RiskStore(redis, keys, RiskSettings(max_risk_per_trade_usd=Decimal(30), max_portfolio_risk_usd=Decimal(100),
                                               max_orders_per_minute=1000))
    reader = BridgeAccountReader(bridge, plans, journal)
    gateway = Gateway(exchange=bridge, journal=journal, plans=plans, account=reader, settings=risk.settings,
                      risk_state=risk, bus=Bus(), lease=None)
    sent: dict[int, tuple[OpenTrade, Action]] = {}
    try:
        for n, s in enumerate(steps):
            kind = s[0]
            if kind == "open":
                _, market, side, slot = s
                account = await reader()
                mark = account.markets[str(market)].mark_px
                direction = 1 if side == "long" else -1
                intent = OpenTrade.model_validate({
                    "market": market, "side": side, "stop_px": mark * (1 - direction * Decimal("0.02")),
                    "target_px": mark * (1 + direction * Decimal("0.05")), "risk_usd": Decimal(15),
                    "conviction": 50})
                action = Action.tool("th", f"call-{n}")
                sent[int(slot)] = (intent, action)  # type: ignore[call-overload]
                await gateway.submit(intent, action)
            elif kind == "retry" and int(s[1]) in sent:  # type: ignore[call-overload]
                intent, action = sent[int(s[1])]  # type: ignore[call-overload]
                await gateway.submit(intent, action)
            elif kind == "lose_next":
                sim.faults.lose_order_responses = 1
            elif kind == "close":
                await gateway.submit(ClosePosition(market=str(s[1]), origin="human"), Action.command(f"close-{n}"))
            elif kind == "tighten":
                account = await reader()
                pos = account.position(str(s[1]))
                if pos is not None and pos.stop_px is not None:
                    new = (pos.stop_px + pos.mark_px) / 2
                    await gateway.submit(ModifyStop(market=str(s[1]), origin="human", stop_px=new),
                                         Action.command(f"tighten-{n}"))
            elif kind == "move":
                market = str(s[1])
                mark_now = (await reader()).markets[market].mark_px
                sim.set_price(market, mark_now * (1 + Decimal(str(s[2]))))
                sim.advance(1000)
            # Invariants after every step.
            sim.faults.lose_order_responses = 0 if kind != "lose_next" else sim.faults.lose_order_responses
            orders = await bridge.open_orders()
            fills = await bridge.fills()
            oids_by_cloid: dict[str, set[int]] = {}
            for o in orders:
                if o.cloid:
                    oids_by_cloid.setdefault(o.cloid, set()).add(o.oid)
            for f in fills:
                if f.cloid:
                    oids_by_cloid.setdefault(f.cloid, set()).add(f.oid)
            doubled = {c: o for c, o in oids_by_cloid.items() if len(o) > 1}
            assert not doubled, f"a client order id was placed twice: {doubled}"
            account = await reader()
            unprotected = [p.market for p in account.positions if p.stop_px is None]
            assert not unprotected, f"positions without a stop after {s}: {unprotected}"
    finally:
        await bridge.aclose()
        await redis.aclose()
        await sim.stop()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(step, min_size=3, max_size=10))
def test_no_double_orders_and_every_position_protected(redis_url: str, steps: list[tuple[object, ...]]) -> None:
    asyncio.run(scenario(redis_url, steps))
