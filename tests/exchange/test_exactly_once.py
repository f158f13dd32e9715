"""Property: whatever faults hit a send (lost responses, 5xx, 429 storms, timeouts with a late arrival
inside or after the action's expiry), the bridge's results plus the unknown-outcome procedure place every
intent exactly once: the exchange never holds two orders with one cloid, and none is missing."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import eth_account
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget, RetryPolicy, cloid_for
from revagent.exchange.protocol import (
    ActionOk,
    Filled,
    LimitType,
    OrderRequest,
    OutcomeUnknown,
    Rejected,
    Resting,
    SendResult,
)
from revagent.exchange.sim import SimConfig, SimServer
from tests.exchange.delay_proxy import DelayProxy

TIMEOUT_S = 0.25
TTL_S = 0.5
MARGIN_MS = 50  # one machine, one clock

Fault = tuple[str, int]
Intent = tuple[Fault, bool]  # (what goes wrong on the first send, is it a market (IOC) entry)
FAULTS = st.one_of(
    st.just(("none", 0)),
    st.just(("lost_response", 1)),
    st.tuples(st.just("http_502"), st.integers(1, 3)),
    st.tuples(st.just("http_429"), st.integers(1, 3)),
    st.just(("late_but_valid", 350)),  # delivered after the client gave up, before it expires: it executes
    st.just(("late_and_expired", 700)),  # delivered after it expired: the venue refuses it
)


async def resolve(bridge: HyperliquidBridge, order: OrderRequest, result: SendResult) -> SendResult | None:
    """The gateway's procedure for `OutcomeUnknown`: `settle`, then resend only an order the exchange
    provably never got. Returns None once the order is known to the exchange."""
    assert order.cloid is not None
    while isinstance(result, OutcomeUnknown):
        statuses = await bridge.settle(result, margin_ms=MARGIN_MS)
        if statuses[order.cloid].known:
            return None
        result = await bridge.place_orders([order])
    return result


async def scenario(intents: list[Intent]) -> None:
    async with SimServer(SimConfig(manual_clock=True, start_ms=1_767_225_600_000, seed=3)) as sim:
        proxy = DelayProxy(sim.base_url)
        await proxy.start()
        try:
            await run_intents(sim, proxy, intents)
        finally:
            await proxy.stop()


async def run_intents(sim: SimServer, proxy: DelayProxy, intents: list[Intent]) -> None:
    sim.set_price("ETH", "3000")
    master = str(eth_account.Account.create().address).lower()
    agent = eth_account.Account.create()
    assert sim.venue.approve_agent(master, agent.address.lower(), "bot", 2**62) is None
    policy = RetryPolicy(attempts=5, timeout_s=TIMEOUT_S, base_delay_s=0.005, max_delay_s=0.02)
    budget = LocalRateBudget(pause_base_s=0.005, pause_max_s=0.02)
    async with HyperliquidBridge(
        network="paper",
        base_url=proxy.url,
        master=master,
        signer=agent,
        policy=policy,
        budget=budget,
        action_ttl_s=TTL_S,
    ) as bridge:
        await bridge.meta()
        limit_cloids: list[str] = []
        market_cloids: list[str] = []
        for i, ((kind, arg), is_market) in enumerate(intents):
            cloid = cloid_for("intent", str(i))
            if is_market:  # a market entry: IOC through the ask, filled at once (no open order to collide with)
                order = OrderRequest("ETH", True, Decimal("0.1"), Decimal(3100), LimitType("Ioc"), cloid=cloid)
                market_cloids.append(cloid)
            else:  # a resting limit
                order = OrderRequest("ETH", True, Decimal("0.1"), Decimal(2900 - i), cloid=cloid)
                limit_cloids.append(cloid)
            if kind == "lost_response":
                sim.faults.lose_order_responses = 1
            elif kind.startswith("http_"):
                sim.inject_http_fault(int(kind[5:]), count=arg, path="/exchange")
            elif kind.startswith("late"):
                proxy.exchange_delays_s.append(arg / 1000)
            first = await bridge.place_orders([order])
            sim.faults.clear()
            final = await resolve(bridge, order, first)
            if final is not None:
                assert isinstance(final, ActionOk), final
                status = final.statuses[0]
                assert isinstance(status, Resting | Filled | Rejected), status
                if isinstance(status, Rejected):
                    assert "Duplicate cloid" in status.message  # the original landed after all
        await proxy.drain()  # every late original has reached the venue by now
        assert proxy.forwarded_late == sum(1 for (kind, _), _ in intents if kind.startswith("late"))
        held = [o.cloid or "" for o in await bridge.open_orders()]
        assert sorted(held) == sorted(limit_cloids), (intents, held)
        positions = (await bridge.account_state()).positions
        bought = positions[0].szi if positions else Decimal(0)
        assert bought == Decimal("0.1") * len(market_cloids), (intents, bought)
        for cloid in market_cloids:
            known = await bridge.order_status_by_cloid(cloid)
            assert known.order is not None and known.order.status == "filled"


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(FAULTS, st.booleans()), min_size=1, max_size=3))
def test_every_intent_lands_exactly_once(intents: list[Intent]) -> None:
    asyncio.run(scenario(intents))


def test_the_late_but_valid_race_explicitly() -> None:
    """The dangerous case: the client times out, asks at once (unknown: not there yet), and the original
    lands afterwards. Waiting out the expiry before resending is what keeps it single."""
    # a market (IOC) entry that fills twice if resent before the late original lands
    asyncio.run(
        scenario(
            [
                (("late_but_valid", 350), True),
                (("late_and_expired", 700), True),
                (("late_but_valid", 350), False),
                (("lost_response", 1), True),
            ]
        )
    )
