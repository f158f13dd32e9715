"""The bridge against the embedded simulator (`revagent.exchange.sim`): real signing, an agent wallet
approved for a master, every action of the issue, faults injected by the simulator."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import eth_account
import pytest

from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget, RetryPolicy, cloid_for
from revagent.exchange.protocol import (
    ActionOk,
    ActionRejected,
    CancelRequest,
    Disconnected,
    Filled,
    FillsEvent,
    LimitType,
    MidsEvent,
    ModifyRequest,
    OrderRequest,
    OrderUpdatesEvent,
    OutcomeUnknown,
    Reconnected,
    Rejected,
    Resting,
    SendResult,
    Success,
    TriggerType,
)
from revagent.exchange.sim import SimConfig, SimServer

START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
FAST = RetryPolicy(attempts=5, timeout_s=2.0, base_delay_s=0.01, max_delay_s=0.05)
D = Decimal


@pytest.fixture
async def sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=1))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def master() -> str:
    return str(eth_account.Account.create().address).lower()


@pytest.fixture
def agent(sim: SimServer, master: str) -> Any:
    account = eth_account.Account.create()
    assert sim.venue.approve_agent(master, account.address.lower(), "revagent", 2**62) is None
    return account


@pytest.fixture
async def bridge(sim: SimServer, master: str, agent: Any) -> AsyncIterator[HyperliquidBridge]:
    budget = LocalRateBudget(pause_base_s=0.02, pause_max_s=0.1)
    async with HyperliquidBridge(
        network="paper", base_url=sim.base_url, master=master, signer=agent, policy=FAST, budget=budget
    ) as b:
        yield b


def ok(result: SendResult) -> ActionOk:
    assert isinstance(result, ActionOk), result
    return result


async def next_of(stream: Any, kind: type[Any], timeout: float = 5.0, where: Any = None) -> Any:
    async with asyncio.timeout(timeout):
        while True:
            event = await stream.next_event()
            if isinstance(event, kind) and (where is None or where(event)):
                return event


# ---------------------------------------------------------------------------------------- reads


async def test_reads(bridge: HyperliquidBridge, sim: SimServer, master: str) -> None:
    sim.set_price("BTC", "60000")
    meta = await bridge.meta()
    assert meta.universe[0].name == "BTC" and (await bridge.asset("SOL"))[0] == 2
    mids = await bridge.all_mids()
    assert abs(mids["BTC"] - D(60000)) < D(100)
    state = await bridge.account_state()
    assert state.margin_summary.account_value == D(10_000) and state.positions == []
    assert await bridge.open_orders() == []
    _, ctxs = await bridge.meta_and_asset_ctxs()
    assert len(ctxs) == len(meta.universe)
    book = await bridge.l2_book("ETH")
    assert book.levels[0] and book.levels[1] and book.levels[0][0].px < book.levels[1][0].px
    assert (await bridge.order_status_by_cloid(cloid_for("never"))).known is False


async def test_agent_checks_and_the_classic_trap(
    bridge: HyperliquidBridge, sim: SimServer, master: str, agent: Any
) -> None:
    check = await bridge.check_agent()
    assert check.ok, check.problem
    assert check.agent_name == "revagent"
    # Configured with the agent's address as the account: its account is empty, and the check says why.
    async with HyperliquidBridge(
        network="paper", base_url=sim.base_url, master=agent.address, signer=agent, policy=FAST
    ) as trapped:
        trap = await trapped.check_agent()
    assert not trap.ok and "itself an agent wallet" in str(trap.problem)
    stranger = eth_account.Account.create()
    unknown = await bridge.check_agent(agent=stranger.address)
    assert not unknown.ok and "not approved" in str(unknown.problem)


# -------------------------------------------------------------------------------------- actions


async def test_limit_rests_then_cancel_by_cloid(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("BTC", "60000")
    cloid = cloid_for("thread-1", "call-1")
    placed = ok(await bridge.place_orders([OrderRequest("BTC", True, D("0.01"), D(59000), cloid=cloid)]))
    (resting,) = placed.statuses
    assert isinstance(resting, Resting) and resting.cloid == cloid
    (order,) = await bridge.open_orders()
    assert (order.oid, order.cloid, order.limit_px, order.sz) == (resting.oid, cloid, D(59000), D("0.01"))
    status = await bridge.order_status_by_cloid(cloid)
    assert status.order is not None and status.order.status == "open"
    cancelled = ok(await bridge.cancel_orders([CancelRequest("BTC", cloid=cloid)]))
    assert cancelled.statuses == (Success(cloid),)
    again = ok(await bridge.cancel_orders([CancelRequest("BTC", oid=resting.oid)]))
    assert isinstance(again.statuses[0], Rejected) and "never placed" in again.statuses[0].message
    assert await bridge.open_orders() == []
    final = await bridge.order_status_by_cloid(cloid)
    assert final.order is not None and final.order.status == "canceled"


async def test_modify_moves_the_order(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("ETH", "3000")
    cloid = cloid_for("t", "modify")
    placed = ok(await bridge.place_orders([OrderRequest("ETH", True, D("0.1"), D(2900), cloid=cloid)]))
    first = placed.statuses[0]
    assert isinstance(first, Resting)
    moved = ok(
        await bridge.modify_orders(
            [ModifyRequest(first.oid, OrderRequest("ETH", True, D("0.2"), D(2950), cloid=cloid))]
        )
    )
    assert len(moved.statuses) == 1 and not isinstance(moved.statuses[0], Rejected)
    (order,) = await bridge.open_orders()
    assert (order.limit_px, order.sz) == (D(2950), D("0.2"))


async def test_entry_with_its_stop_as_one_normal_tpsl_group(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("SOL", "150")
    assert ok(await bridge.update_leverage("SOL", 5, is_cross=False)).statuses == ()
    entry_cloid, stop_cloid = cloid_for("t", "open", "entry"), cloid_for("t", "open", "stop")
    result = ok(
        await bridge.place_orders(
            [
                OrderRequest("SOL", True, D(2), D(152), LimitType("Ioc"), cloid=entry_cloid),
                OrderRequest(
                    "SOL", False, D(2), D(130), TriggerType(D(140), True, "sl"), reduce_only=True, cloid=stop_cloid
                ),
            ],
            grouping="normalTpsl",
        )
    )
    entry, stop = result.statuses
    assert isinstance(entry, Filled) and entry.total_sz == D(2) and entry.cloid == entry_cloid
    assert not isinstance(stop, Rejected)
    state = await bridge.account_state()
    (position,) = state.positions
    assert position.szi == D(2) and position.leverage.type == "isolated" and position.leverage.value == 5
    orders = await bridge.open_orders()
    stops = [o for o in orders if o.is_trigger]
    assert len(stops) == 1 and stops[0].reduce_only and stops[0].trigger_px == D(140)
    start = START_MS - 1
    sim.set_price("SOL", "139")  # through the stop: it fires on mark as a market order
    assert (await bridge.account_state()).positions == []
    fills = await bridge.fills_since(start)
    assert [f.dir for f in fills] == ["Close Long", "Open Long"]  # newest first, as Hyperliquid answers
    assert all(f.tid is not None for f in fills)


async def test_leverage_above_the_market_max_is_refused_locally(bridge: HyperliquidBridge) -> None:
    with pytest.raises(ValueError, match="at most 20x"):
        await bridge.update_leverage("SOL", 25)


async def test_exchange_rejections_come_back_typed(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("ETH", "3000")
    tiny = ok(await bridge.place_orders([OrderRequest("ETH", True, D("0.001"), D(2900))]))
    assert isinstance(tiny.statuses[0], Rejected) and "minimum value" in tiny.statuses[0].message


async def test_expired_action_is_refused_by_the_exchange(sim: SimServer, master: str, agent: Any) -> None:
    async with HyperliquidBridge(
        network="paper", base_url=sim.base_url, master=master, signer=agent, policy=FAST, action_ttl_s=-1
    ) as late:
        result = await late.place_orders([OrderRequest("ETH", True, D(1), D(2900))])
    assert isinstance(result, ActionRejected) and "expired" in result.message.lower()


# ---------------------------------------------------------------------------------------- faults


async def test_injected_5xx_is_retried_and_places_once(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("BTC", "60000")
    await bridge.meta()
    sim.inject_http_fault(502, count=2, path="/exchange")
    result = ok(await bridge.place_orders([OrderRequest("BTC", True, D("0.01"), D(59000), cloid=cloid_for("5xx"))]))
    assert isinstance(result.statuses[0], Resting)
    assert len(await bridge.open_orders()) == 1


async def test_429_storm_slows_down_then_succeeds(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("BTC", "60000")
    await bridge.meta()
    sim.inject_http_fault(429, count=3, path="/exchange")
    result = ok(await bridge.place_orders([OrderRequest("BTC", True, D("0.01"), D(59000), cloid=cloid_for("429"))]))
    assert isinstance(result.statuses[0], Resting)
    budget = bridge.budget
    assert isinstance(budget, LocalRateBudget)
    assert budget.rate_limited_count == 3 and budget.waited_s > 0 and budget.effective_capacity < 1200
    assert len(await bridge.open_orders()) == 1


async def test_info_5xx_and_429_are_retried(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.inject_http_fault(500, count=1, path="/info")
    sim.inject_http_fault(429, count=1, path="/info")
    assert (await bridge.account_state()).margin_summary.account_value == D(10_000)


async def resolve_unknown(bridge: HyperliquidBridge, order: OrderRequest, unknown: OutcomeUnknown) -> Any:
    """What the gateway does with an unknown outcome: `settle` it; resend (same cloid) only what the
    exchange provably never got. Returns the order's status when known, else the resend's result."""
    assert order.cloid is not None
    result: SendResult = unknown
    while isinstance(result, OutcomeUnknown):
        status = (await bridge.settle(result, margin_ms=50))[order.cloid]
        if status.known:
            return status
        result = await bridge.place_orders([order])
    return result


async def test_lost_response_is_unknown_then_resolved_by_cloid(bridge: HyperliquidBridge, sim: SimServer) -> None:
    sim.set_price("BTC", "60000")
    cloid = cloid_for("thread-9", "call-3")
    order = OrderRequest("BTC", True, D("0.01"), D(59000), cloid=cloid)
    await bridge.meta()
    sim.faults.lose_order_responses = 1
    first = await bridge.place_orders([order])
    assert isinstance(first, OutcomeUnknown) and first.cloids == (cloid,)
    resolved = await resolve_unknown(bridge, order, first)
    assert resolved.known and resolved.order.order.cloid == cloid and resolved.order.status == "open"
    orders = await bridge.open_orders()
    assert [o.cloid for o in orders] == [cloid]  # exactly one order on the exchange
    # A blind resend of the same cloid would be refused by the venue while the first one rests.
    blind = ok(await bridge.place_orders([order]))
    assert isinstance(blind.statuses[0], Rejected) and "Duplicate cloid" in blind.statuses[0].message


async def test_unknown_outcome_of_an_order_that_never_landed_is_resent_after_expiry(
    sim: SimServer, master: str, agent: Any
) -> None:
    sim.set_price("BTC", "60000")
    cloid = cloid_for("thread-9", "call-4")
    order = OrderRequest("BTC", True, D("0.01"), D(59000), cloid=cloid)
    async with HyperliquidBridge(
        network="paper",
        base_url=sim.base_url,
        master=master,
        signer=agent,
        policy=RetryPolicy(attempts=2, timeout_s=0.3, base_delay_s=0.01),
        action_ttl_s=0.5,
    ) as b:
        await b.meta()
        sim.faults.latency_ms = 1000  # the first send times out and, arriving late, is already expired
        first = await b.place_orders([order])
        assert isinstance(first, OutcomeUnknown) and first.expires_after_ms is not None
        sim.faults.latency_ms = 0
        result = await resolve_unknown(b, order, first)
        assert isinstance(result, ActionOk) and isinstance(result.statuses[0], Resting)
        await asyncio.sleep(0.8)  # let the late original reach the venue (and be refused as expired)
        assert [o.cloid for o in await b.open_orders()] == [cloid]


# ------------------------------------------------------------------------------------- websocket


async def test_stream_events_and_reconnect(bridge: HyperliquidBridge, sim: SimServer, master: str) -> None:
    sim.set_price("ETH", "3000")
    stream = bridge.stream()
    await stream.start()
    await asyncio.wait_for(stream.connected.wait(), 5)
    await asyncio.sleep(0.1)  # subscriptions acknowledged
    sim.set_price("ETH", "3001")
    mids = await next_of(stream, MidsEvent)
    assert "ETH" in mids.mids
    cloid = cloid_for("ws", "1")
    ok(await bridge.place_orders([OrderRequest("ETH", True, D("0.1"), D(3100), LimitType("Ioc"), cloid=cloid)]))
    update = await next_of(stream, OrderUpdatesEvent, where=lambda e: any(u.order.cloid == cloid for u in e.updates))
    assert update.updates
    fills = await next_of(stream, FillsEvent, where=lambda e: not e.is_snapshot)
    assert fills.user == master and fills.fills[0].coin == "ETH"

    assert await sim.drop_websockets() >= 1
    await next_of(stream, Disconnected)
    await next_of(stream, Reconnected)
    # resubscribed: events flow again for the same user
    ok(
        await bridge.place_orders(
            [
                OrderRequest(
                    "ETH", False, D("0.1"), D(2900), LimitType("Ioc"), reduce_only=True, cloid=cloid_for("ws", "2")
                )
            ]
        )
    )
    after = await next_of(stream, FillsEvent, where=lambda e: not e.is_snapshot and e.fills[0].dir == "Close Long")
    assert after.fills[0].sz == D("0.1")
    await stream.aclose()


async def test_fills_missed_while_disconnected_come_back_through_rest_exactly_once(
    bridge: HyperliquidBridge, sim: SimServer
) -> None:
    """What sync does on `Reconnected`: a REST snapshot of fills since the last one seen, merged by tid."""
    sim.set_price("ETH", "3000")
    start_ms = (await bridge.account_state()).time or 0
    stream = bridge.stream()
    await stream.start()
    await asyncio.wait_for(stream.connected.wait(), 5)
    seen: dict[int, Any] = {}

    async def buy(tag: str) -> None:
        order = OrderRequest("ETH", True, D("0.1"), D(3100), LimitType("Ioc"), cloid=cloid_for("mid-fill", tag))
        assert isinstance(ok(await bridge.place_orders([order])).statuses[0], Filled)

    await buy("1")
    live = await next_of(stream, FillsEvent, where=lambda e: not e.is_snapshot)
    seen.update({f.tid: f for f in live.fills if f.tid is not None})
    await sim.drop_websockets()
    await next_of(stream, Disconnected)
    await buy("2")  # filled while the socket is down: no websocket event will ever carry it live
    await next_of(stream, Reconnected)
    rest = await bridge.fills_since(start_ms)  # the resync
    for fill in rest:
        assert fill.tid is not None
        seen.setdefault(fill.tid, fill)
    assert set(seen) == {f.tid for f in rest}  # nothing seen live is missing from REST, nothing twice
    assert sum(f.sz for f in seen.values()) == D("0.2")
    position = (await bridge.account_state()).positions[0]
    assert position.szi == D("0.2")
    await stream.aclose()
