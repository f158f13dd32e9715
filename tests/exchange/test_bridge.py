"""The bridge against a real local HTTP server with scripted faults: reads, signed actions, retries,
unknown outcomes, 429s, unreachable exchanges, the agent-wallet checks."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import eth_account
import pytest

from revagent.errors import ConfigError, ExchangeUnavailableError, NotFoundError
from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget, cloid_for
from revagent.exchange.protocol import (
    ActionOk,
    ActionRejected,
    CancelRequest,
    Exchange,
    Filled,
    LimitType,
    ModifyRequest,
    OrderRequest,
    OutcomeUnknown,
    Rejected,
    Resting,
    Success,
    TriggerType,
    Waiting,
)
from revagent.exchange.types import ExchangeResponseError
from tests.exchange.conftest import FAST, recorded
from tests.exchange.scripted_server import (
    ScriptedServer,
    drop_connection,
    garbage,
    hang,
    http_status,
)

CLOID = cloid_for("thread-1", "call-1")


def limit(coin: str = "ETH", *, cloid: str | None = CLOID, tif: Any = "Gtc") -> OrderRequest:
    return OrderRequest(coin, True, Decimal("0.5"), Decimal("1800.5"), LimitType(tif), cloid=cloid)


def test_bridge_satisfies_the_exchange_protocol(bridge: HyperliquidBridge, agent: Any) -> None:
    assert isinstance(bridge, Exchange)
    assert agent.key.hex().removeprefix("0x") not in repr(bridge)
    assert bridge.network == "paper" and not bridge.is_mainnet


# ---------------------------------------------------------------------------------------- reads


async def test_reads_use_the_master_address_and_parse(
    bridge: HyperliquidBridge, server: ScriptedServer, master: str
) -> None:
    server.info_answers.update(
        allMids=recorded("all_mids.json"),
        clearinghouseState=recorded("user_state.json"),
        frontendOpenOrders=recorded("frontend_open_orders.json"),
        userFillsByTime=recorded("user_fills_by_time.json"),
        orderStatus={"status": "unknownOid"},
        l2Book=recorded("l2_snapshot.json"),
    )
    mids = await bridge.all_mids()
    assert mids["BTC"] == Decimal("30135.0")
    state = await bridge.account_state()
    assert len(state.positions) == 12
    orders = await bridge.open_orders()
    assert orders[-1].children
    fills = await bridge.fills_since(1683245555699, 1683245884863)
    assert len(fills) == 500
    status = await bridge.order_status_by_cloid(CLOID)
    assert not status.known
    book = await bridge.l2_book("DYDX")
    assert book.coin == "DYDX"
    users = {r["user"] for r in server.info_requests if "user" in r}
    assert users == {master}
    by_time = next(r for r in server.info_requests if r["type"] == "userFillsByTime")
    assert (by_time["startTime"], by_time["endTime"]) == (1683245555699, 1683245884863)
    assert next(r for r in server.info_requests if r["type"] == "orderStatus")["oid"] == CLOID


async def test_meta_is_cached_and_assets_resolve(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    assert (await bridge.asset("SOL"))[0] == 2
    assert (await bridge.asset("BTC"))[1].sz_decimals == 5
    assert sum(1 for r in server.info_requests if r["type"] == "meta") == 1
    await bridge.meta(refresh=True)
    assert sum(1 for r in server.info_requests if r["type"] == "meta") == 2
    with pytest.raises(NotFoundError, match="DOGE"):
        await bridge.asset("DOGE")


async def test_info_retries_5xx_and_then_succeeds(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.info_answers["allMids"] = {"BTC": "1"}
    server.info_faults += [http_status(502), http_status(503)]
    assert await bridge.all_mids() == {"BTC": Decimal(1)}
    assert len(server.info_requests) == 3


async def test_info_gives_up_with_exchange_unavailable(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.info_faults += [http_status(500)] * 3
    with pytest.raises(ExchangeUnavailableError, match="allMids after 3 attempts"):
        await bridge.all_mids()


async def test_info_4xx_and_malformed_answers_are_clear_errors(
    bridge: HyperliquidBridge, server: ScriptedServer
) -> None:
    with pytest.raises(ExchangeResponseError, match=r"userFunding.*HTTP 422"):
        await bridge.user_funding(0)  # the scripted server does not know it: 422 plain text
    broken = recorded("user_state.json")
    del broken["marginSummary"]["accountValue"]
    server.info_answers["clearinghouseState"] = broken
    with pytest.raises(ExchangeResponseError) as info:
        await bridge.account_state()
    assert info.value.field == "marginSummary.accountValue"
    server.info_faults.append(garbage())
    with pytest.raises(ExchangeResponseError, match="not JSON"):
        await bridge.all_mids()


async def test_unreachable_exchange(agent: Any, master: str) -> None:
    async with HyperliquidBridge(
        network="paper", base_url="http://127.0.0.1:9", master=master, signer=agent, policy=FAST
    ) as dead:
        with pytest.raises(ExchangeUnavailableError):
            await dead.info({"type": "allMids"})
        dead._meta = None
        with pytest.raises(ExchangeUnavailableError):
            await dead.place_orders([limit()])


# -------------------------------------------------------------------------------------- actions


async def test_place_signs_with_the_agent_and_maps_statuses(
    bridge: HyperliquidBridge, server: ScriptedServer, agent: Any
) -> None:
    entry = OrderRequest("BTC", True, Decimal("0.001"), Decimal("60100"), LimitType("Ioc"), cloid=CLOID)
    stop = OrderRequest(
        "BTC",
        False,
        Decimal("0.001"),
        Decimal("54000"),
        TriggerType(Decimal("57000"), True, "sl"),
        reduce_only=True,
        cloid=cloid_for("thread-1", "call-1", "stop"),
    )
    result = await bridge.place_orders([entry, stop], grouping="normalTpsl")
    assert isinstance(result, ActionOk)
    assert result.statuses == (
        Filled(100, Decimal("0.001"), Decimal("60100"), CLOID),
        Waiting("waitingForFill", stop.cloid),
    )
    (got,) = server.received
    assert got.signer == agent.address.lower()
    assert got.action["grouping"] == "normalTpsl"
    assert got.action["orders"][1]["t"] == {"trigger": {"isMarket": True, "triggerPx": "57000", "tpsl": "sl"}}
    assert got.action["orders"][0]["c"] == CLOID and got.nonce == result.nonce

    resting = await bridge.place_orders([limit()])
    assert isinstance(resting, ActionOk) and resting.statuses == (Resting(100, CLOID),)


async def test_mainnet_network_signs_as_mainnet(server: ScriptedServer, agent: Any, master: str) -> None:
    server.is_mainnet = True
    async with HyperliquidBridge(
        network="mainnet", base_url=server.url, master=master, signer=agent, policy=FAST
    ) as main:
        assert isinstance(await main.place_orders([limit()]), ActionOk)
    assert server.received[0].signer == agent.address.lower()


async def test_cancel_modify_leverage(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    cancelled = await bridge.cancel_orders([CancelRequest("ETH", cloid=CLOID), CancelRequest("SOL", cloid=CLOID)])
    assert isinstance(cancelled, ActionOk) and cancelled.statuses == (Success(CLOID), Success(CLOID))
    assert server.received[-1].action == {
        "type": "cancelByCloid",
        "cancels": [{"asset": 1, "cloid": CLOID}, {"asset": 2, "cloid": CLOID}],
    }
    by_oid = await bridge.cancel_orders([CancelRequest("ETH", oid=7)])
    assert isinstance(by_oid, ActionOk) and server.received[-1].action["type"] == "cancel"
    modified = await bridge.modify_orders([ModifyRequest(7, limit())])
    assert isinstance(modified, ActionOk) and modified.statuses == (Resting(500, CLOID),)
    lev = await bridge.update_leverage("SOL", 5, is_cross=False)
    assert isinstance(lev, ActionOk) and lev.statuses == ()
    assert server.received[-1].action == {"type": "updateLeverage", "asset": 2, "isCross": False, "leverage": 5}
    with pytest.raises(ValueError, match="at most 20x"):
        await bridge.update_leverage("SOL", 21)
    nonces = [r.nonce for r in server.received]
    assert nonces == sorted(nonces) and len(set(nonces)) == len(nonces)


async def test_rejections_are_typed_results(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.exchange_answer = lambda got: {
        "status": "ok",
        "response": {
            "type": "order",
            "data": {"statuses": [{"error": "Order must have minimum value of $10. asset=1"}]},
        },
    }
    result = await bridge.place_orders([limit()])
    assert isinstance(result, ActionOk) and result.statuses == (
        Rejected("Order must have minimum value of $10. asset=1", CLOID),
    )
    server.exchange_answer = lambda got: {"status": "err", "response": "User or API Wallet 0x1 does not exist."}
    whole = await bridge.place_orders([limit()])
    assert isinstance(whole, ActionRejected) and "does not exist" in whole.message
    server.exchange_faults.append(http_status(422, "Failed to deserialize the JSON body"))
    bad = await bridge.place_orders([limit()])
    assert isinstance(bad, ActionRejected) and bad.http_status == 422


async def test_5xx_is_retried_with_the_same_signed_body(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.exchange_faults.append(http_status(502))
    result = await bridge.place_orders([limit()])
    assert isinstance(result, ActionOk)
    assert len(server.received) == 1 and server.received[0].nonce == result.nonce


async def test_5xx_after_execution_never_places_twice(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.exchange_faults.append(http_status(502, processed=True))
    result = await bridge.place_orders([limit()])
    assert isinstance(result, OutcomeUnknown)  # the retry hit "duplicate nonce": the first one went through
    assert result.cloids == (CLOID,)
    assert len(server.received) == 1


async def test_timeout_is_an_unknown_outcome_without_resend(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.exchange_faults.append(hang(1.0))
    result = await bridge.place_orders([limit()])
    assert isinstance(result, OutcomeUnknown)
    assert "no answer within 0.5s" in result.reason and result.cloids == (CLOID,) and result.action == "order"
    assert result.expires_after_ms == result.nonce + 60_000  # after this the original cannot land any more
    await asyncio.sleep(0.1)
    assert len(server.received) == 1  # executed once, never resent
    server.info_answers["orderStatus"] = lambda body: {
        "status": "order",
        "order": {
            "order": {
                "coin": "ETH",
                "side": "B",
                "limitPx": "1800.5",
                "sz": "0.5",
                "oid": 100,
                "timestamp": 1,
                "origSz": "0.5",
                "cloid": body["oid"],
            },
            "status": "open",
            "statusTimestamp": 1,
        },
    }
    status = await bridge.order_status_by_cloid(CLOID)
    assert status.known and status.order is not None and status.order.order.cloid == CLOID


async def test_lost_connection_and_garbage_are_unknown_outcomes(
    bridge: HyperliquidBridge, server: ScriptedServer
) -> None:
    server.exchange_faults.append(drop_connection())
    lost = await bridge.place_orders([limit()])
    assert isinstance(lost, OutcomeUnknown) and "connection lost" in lost.reason
    server.exchange_faults.append(garbage())
    unreadable = await bridge.place_orders([limit()])
    assert isinstance(unreadable, OutcomeUnknown) and "unreadable" in unreadable.reason
    assert len(server.received) == 2


async def test_429_slows_down_then_succeeds(server: ScriptedServer, agent: Any, master: str) -> None:
    budget = LocalRateBudget()
    async with HyperliquidBridge(
        network="paper", base_url=server.url, master=master, signer=agent, policy=FAST, budget=budget
    ) as b:
        await b.meta()
        server.exchange_faults += [http_status(429, headers={"Retry-After": "0.2"})] * 2
        result = await b.place_orders([limit()])
    assert isinstance(result, ActionOk)
    assert budget.rate_limited_count == 2 and budget.effective_capacity < 1200
    assert budget.waited_s >= 0.25  # both pauses were honoured (minus the short backoffs)
    assert len(server.received) == 1


async def test_concurrent_sends_get_distinct_increasing_nonces(
    bridge: HyperliquidBridge, server: ScriptedServer
) -> None:
    results = await asyncio.gather(*(bridge.place_orders([limit(cloid=cloid_for("c", str(i)))]) for i in range(20)))
    assert all(isinstance(r, ActionOk) for r in results)
    nonces = [r.nonce for r in server.received]
    assert len(set(nonces)) == 20
    assert sorted(r.nonce for r in results if isinstance(r, ActionOk)) == sorted(nonces)
    assert sum(1 for r in server.info_requests if r["type"] == "meta") == 1  # the 20 first calls shared it


async def test_read_only_bridge_refuses_actions(server: ScriptedServer, master: str) -> None:
    async with HyperliquidBridge(network="paper", base_url=server.url, master=master, policy=FAST) as ro:
        with pytest.raises(ConfigError, match="no agent key"):
            await ro.place_orders([limit()])
    assert server.received == []


# ---------------------------------------------------------------------------------- agent checks


def _roles(table: dict[str, Any]) -> Any:
    def answer(body: dict[str, Any]) -> Any:
        return table.get(body["user"], {"role": "missing"})

    return answer


async def test_check_agent_approved(bridge: HyperliquidBridge, server: ScriptedServer, agent: Any, master: str) -> None:
    me = agent.address.lower()
    server.info_answers["userRole"] = _roles(
        {master: {"role": "user"}, me: {"role": "agent", "data": {"user": master}}}
    )
    server.info_answers["extraAgents"] = [{"name": "revagent", "address": agent.address, "validUntil": 2**62}]
    check = await bridge.check_agent()
    assert check.ok and check.problem is None and check.agent_name == "revagent"


async def test_check_agent_problems(bridge: HyperliquidBridge, server: ScriptedServer, agent: Any, master: str) -> None:
    me = agent.address.lower()
    other = str(eth_account.Account.create().address).lower()
    server.info_answers["extraAgents"] = [{"name": "old", "address": me, "validUntil": 1}]
    server.info_answers["userRole"] = _roles(
        {master: {"role": "user"}, me: {"role": "agent", "data": {"user": master}}}
    )
    assert "expired" in str((await bridge.check_agent()).problem)
    server.info_answers["userRole"] = _roles({master: {"role": "user"}})
    assert "not approved" in str((await bridge.check_agent()).problem)
    server.info_answers["userRole"] = _roles({master: {"role": "user"}, me: {"role": "agent", "data": {"user": other}}})
    assert f"approved for {other}" in str((await bridge.check_agent()).problem)
    # The classic trap: the agent's address configured as the account to query.
    server.info_answers["userRole"] = _roles({me: {"role": "agent", "data": {"user": master}}})
    trap = await bridge.check_agent(master=me, agent=me)
    assert not trap.ok and "itself an agent wallet" in str(trap.problem) and master in str(trap.problem)


async def test_clock_skew_against_the_exchange_time(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    from revagent.exchange.hyperliquid import wall_clock_ms

    state = recorded("user_state.json")
    server.info_answers["clearinghouseState"] = lambda body: dict(state, time=wall_clock_ms() - 5_000)
    skew = await bridge.clock_skew_ms()
    assert skew is not None and 4_000 <= skew <= 6_000
    server.info_answers["clearinghouseState"] = state  # old records carry no time
    assert await bridge.clock_skew_ms() is None


async def test_actions_carry_an_expiry_unless_disabled(server: ScriptedServer, agent: Any, master: str) -> None:
    async with HyperliquidBridge(
        network="paper", base_url=server.url, master=master, signer=agent, policy=FAST, action_ttl_s=5
    ) as short:
        await short.place_orders([limit()])
    async with HyperliquidBridge(
        network="paper", base_url=server.url, master=master, signer=agent, policy=FAST, action_ttl_s=None
    ) as forever:
        server.exchange_faults.append(hang(1.0))
        unknown = await forever.place_orders([limit()])
    assert isinstance(unknown, OutcomeUnknown) and unknown.expires_after_ms is None
    first, second = server.received
    assert first.expires_after == first.nonce + 5_000  # signed over: the server recovered the agent with it
    assert first.signer == second.signer == agent.address.lower()
    assert second.expires_after is None


async def test_settle_answers_at_once_for_a_known_order(bridge: HyperliquidBridge, server: ScriptedServer) -> None:
    server.exchange_faults.append(hang(1.0))
    unknown = await bridge.place_orders([limit()])
    assert isinstance(unknown, OutcomeUnknown)
    server.info_answers["orderStatus"] = lambda body: {
        "status": "order",
        "order": {
            "order": {
                "coin": "ETH",
                "side": "B",
                "limitPx": "1800.5",
                "sz": "0.5",
                "oid": 100,
                "timestamp": 1,
                "origSz": "0.5",
                "cloid": body["oid"],
            },
            "status": "open",
            "statusTimestamp": 1,
        },
    }
    loop = asyncio.get_running_loop()
    started = loop.time()
    statuses = await bridge.settle(unknown)
    assert statuses[CLOID].known and loop.time() - started < 1.0  # no wait for the 60 s expiry


async def test_settle_waits_out_the_expiry_before_saying_unknown(
    server: ScriptedServer, agent: Any, master: str
) -> None:
    server.info_answers["orderStatus"] = {"status": "unknownOid"}
    async with HyperliquidBridge(
        network="paper", base_url=server.url, master=master, signer=agent, policy=FAST, action_ttl_s=0.6
    ) as b:
        server.exchange_faults.append(drop_connection())
        unknown = await b.place_orders([limit()])
        assert isinstance(unknown, OutcomeUnknown) and unknown.expires_after_ms is not None
        statuses = await b.settle(unknown, margin_ms=100)
        from revagent.exchange.hyperliquid import wall_clock_ms

        assert wall_clock_ms() >= unknown.expires_after_ms + 100
        assert not statuses[CLOID].known
    status_queries = [r for r in server.info_requests if r["type"] == "orderStatus"]
    assert len(status_queries) == 2  # once at once, once after the expiry


async def test_an_outcome_without_expiry_cannot_be_settled(server: ScriptedServer, agent: Any, master: str) -> None:
    server.info_answers["orderStatus"] = {"status": "unknownOid"}
    async with HyperliquidBridge(
        network="paper", base_url=server.url, master=master, signer=agent, policy=FAST, action_ttl_s=None
    ) as b:
        server.exchange_faults.append(drop_connection())
        unknown = await b.place_orders([limit()])
        assert isinstance(unknown, OutcomeUnknown)
        with pytest.raises(ValueError, match="never be settled"):
            await b.settle(unknown)
