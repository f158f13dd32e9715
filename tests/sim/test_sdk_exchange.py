"""The unmodified SDK's Exchange against the simulator: every action the issue lists, with real signing."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import eth_account
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.types import Cloid

from revagent.exchange.sim import SimServer
from tests.sim.conftest import SPOT_META, meta


def make(url: str, wallet: LocalAccount, **kw: Any) -> tuple[Exchange, Info]:
    ex = Exchange(wallet, url, meta=meta(), spot_meta=SPOT_META, timeout=10, **kw)
    return ex, Info(url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10)


def statuses(resp: Any) -> list[Any]:
    assert resp["status"] == "ok", resp
    return list(resp["response"]["data"]["statuses"])


async def test_limit_gtc_rests_and_shows_everywhere(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("BTC", "60000")
    ex, info = make(sim.base_url, wallet)
    cloid = Cloid.from_int(42)
    resp = await asyncio.to_thread(ex.order, "BTC", True, 0.01, 59000, {"limit": {"tif": "Gtc"}}, False, cloid)
    oid = statuses(resp)[0]["resting"]["oid"]
    assert statuses(resp)[0]["resting"]["cloid"] == cloid.to_raw()
    opened = await asyncio.to_thread(info.open_orders, wallet.address)
    assert [(o["oid"], o["coin"], o["side"], o["limitPx"], o["sz"]) for o in opened] == [
        (oid, "BTC", "B", "59000.0", "0.01")]
    front = await asyncio.to_thread(info.frontend_open_orders, wallet.address)
    assert front[0]["orderType"] == "Limit" and front[0]["tif"] == "Gtc" and front[0]["cloid"] == cloid.to_raw()
    by_oid = await asyncio.to_thread(info.query_order_by_oid, wallet.address, oid)
    by_cloid = await asyncio.to_thread(info.query_order_by_cloid, wallet.address, cloid)
    assert by_oid == by_cloid
    assert by_oid["status"] == "order" and by_oid["order"]["status"] == "open"
    # the market falls through the bid: a maker fill at the limit price
    sim.set_price("BTC", "58900")
    fills = await asyncio.to_thread(info.user_fills, wallet.address)
    assert [(f["px"], f["sz"], f["crossed"], f["dir"], f["fee"]) for f in fills] == [
        ("59000.0", "0.01", False, "Open Long", "0.0885")]  # 590 * 0.015%
    assert (await asyncio.to_thread(info.query_order_by_oid, wallet.address, oid))["order"]["status"] == "filled"
    assert await asyncio.to_thread(info.open_orders, wallet.address) == []


async def test_ioc_alo_and_their_errors(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("ETH", "3000")
    ex, _ = make(sim.base_url, wallet)
    far = await asyncio.to_thread(ex.order, "ETH", True, 0.1, 2900, {"limit": {"tif": "Ioc"}})
    assert statuses(far) == [{"error": "Order could not immediately match against any resting orders."}]
    took = await asyncio.to_thread(ex.order, "ETH", True, 0.1, 3010, {"limit": {"tif": "Ioc"}})
    filled = statuses(took)[0]["filled"]
    assert filled["totalSz"] == "0.1" and Decimal(filled["avgPx"]) > Decimal(3000)
    alo_bad = await asyncio.to_thread(ex.order, "ETH", True, 0.1, 3010, {"limit": {"tif": "Alo"}})
    err = statuses(alo_bad)[0]["error"]
    assert err.startswith("Post only order would have immediately matched, bbo was ") and err.endswith(".")
    alo_ok = await asyncio.to_thread(ex.order, "ETH", True, 0.1, 2990, {"limit": {"tif": "Alo"}})
    assert "resting" in statuses(alo_ok)[0]
    sim.set_liquidity("ETH", 0)  # an empty book on the other side
    empty = await asyncio.to_thread(ex.market_open, "ETH", False, 0.1)
    assert statuses(empty) == [{"error": "No liquidity available for market order."}]


async def test_validation_errors_one_status_per_order_in_batch_order(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("SOL", "150")
    ex, _ = make(sim.base_url, wallet)
    reqs: list[Any] = [
        {"coin": "SOL", "is_buy": True, "sz": 1.0, "limit_px": 140.123, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": False},
        {"coin": "SOL", "is_buy": True, "sz": 0.05, "limit_px": 140, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": False},
        {"coin": "SOL", "is_buy": False, "sz": 1.0, "limit_px": 160, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": True},
        {"coin": "SOL", "is_buy": True, "sz": 2000.0, "limit_px": 140, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": False},
        {"coin": "SOL", "is_buy": True, "sz": 1.0, "limit_px": 140, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": False},
    ]
    got = statuses(await asyncio.to_thread(ex.bulk_orders, reqs))
    assert got[:4] == [
        {"error": "Price must be divisible by tick size."},
        {"error": "Order must have minimum value of $10."},
        {"error": "Reduce only order would increase position."},
        {"error": "Insufficient margin to place order."},
    ]
    assert "resting" in got[4]


async def test_market_open_and_close_round_trip(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("ETH", "3000")
    ex, info = make(sim.base_url, wallet)
    opened = statuses(await asyncio.to_thread(ex.market_open, "ETH", False, 0.5))[0]["filled"]
    assert opened["totalSz"] == "0.5"
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["assetPositions"][0]["position"]["szi"] == "-0.5"
    closed = statuses(await asyncio.to_thread(ex.market_close, "ETH"))[0]["filled"]
    assert closed["totalSz"] == "0.5"
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["assetPositions"] == []
    fills = await asyncio.to_thread(info.user_fills, wallet.address)
    assert [f["dir"] for f in fills] == ["Close Short", "Open Short"]


async def test_trigger_orders_fire_on_mark(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("ETH", "3000")
    ex, info = make(sim.base_url, wallet)
    await asyncio.to_thread(ex.market_open, "ETH", True, 1.0)
    sl = {"trigger": {"triggerPx": 2900, "isMarket": True, "tpsl": "sl"}}
    tp = {"trigger": {"triggerPx": 3200, "isMarket": False, "tpsl": "tp"}}
    sl_resp = await asyncio.to_thread(ex.order, "ETH", False, 1.0, 2800, sl, True, Cloid.from_int(1))
    tp_resp = await asyncio.to_thread(ex.order, "ETH", False, 1.0, 3190, tp, True)
    sl_oid = statuses(sl_resp)[0]["resting"]["oid"]
    tp_oid = statuses(tp_resp)[0]["resting"]["oid"]
    front = {o["oid"]: o for o in await asyncio.to_thread(info.frontend_open_orders, wallet.address)}
    assert front[sl_oid]["orderType"] == "Stop Market"
    assert front[sl_oid]["triggerCondition"] == "Price below 2900.0"
    assert front[tp_oid]["orderType"] == "Take Profit Limit" and front[tp_oid]["isTrigger"] is True
    sim.set_price("ETH", "2950")
    assert (await asyncio.to_thread(info.query_order_by_oid, wallet.address, sl_oid))["order"]["status"] == "open"
    sim.set_price("ETH", "2899")
    assert (await asyncio.to_thread(info.query_order_by_oid, wallet.address, sl_oid))["order"]["status"] == "filled"
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["assetPositions"] == []
    # the take-profit is reduce-only: with the position gone it is cancelled when it fires
    sim.set_price("ETH", "3300")
    tp_status = (await asyncio.to_thread(info.query_order_by_oid, wallet.address, tp_oid))["order"]["status"]
    assert tp_status == "reduceOnlyCanceled"


async def test_normal_tpsl_children_wait_for_parent(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("SOL", "150")
    ex, info = make(sim.base_url, wallet)
    parent = {"coin": "SOL", "is_buy": True, "sz": 1.0, "limit_px": 149, "order_type": {"limit": {"tif": "Gtc"}},
              "reduce_only": False}
    tp = {"coin": "SOL", "is_buy": False, "sz": 1.0, "limit_px": 160,
          "order_type": {"trigger": {"triggerPx": 160, "isMarket": True, "tpsl": "tp"}}, "reduce_only": True}
    sl = {"coin": "SOL", "is_buy": False, "sz": 1.0, "limit_px": 140,
          "order_type": {"trigger": {"triggerPx": 141, "isMarket": True, "tpsl": "sl"}}, "reduce_only": True}
    got = statuses(await asyncio.to_thread(ex.bulk_orders, [parent, tp, sl], None, "normalTpsl"))
    assert "resting" in got[0] and got[1:] == ["waitingForFill", "waitingForFill"]
    front = await asyncio.to_thread(info.frontend_open_orders, wallet.address)
    parent_row = next(o for o in front if o["oid"] == got[0]["resting"]["oid"])
    assert len(parent_row["children"]) == 2
    sim.set_price("SOL", "160")  # children are not active yet: nothing fires
    assert (await asyncio.to_thread(info.user_state, wallet.address))["assetPositions"] == []
    sim.set_price("SOL", "148")  # parent fills
    sim.set_price("SOL", "140.5")  # the stop fires
    fills = await asyncio.to_thread(info.user_fills, wallet.address)
    assert [f["dir"] for f in fills] == ["Close Long", "Open Long"]
    assert await asyncio.to_thread(info.open_orders, wallet.address) != []  # the take-profit remains...
    sim.set_price("SOL", "161")  # ...and is cancelled when it fires with no position
    assert await asyncio.to_thread(info.open_orders, wallet.address) == []


async def test_cancel_cancel_by_cloid_and_errors(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("BTC", "60000")
    ex, info = make(sim.base_url, wallet)
    a = statuses(await asyncio.to_thread(ex.order, "BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}}))
    cloid = Cloid.from_str("0x" + "ab" * 16)
    await asyncio.to_thread(ex.order, "BTC", True, 0.001, 50001, {"limit": {"tif": "Gtc"}}, False, cloid)
    oid = a[0]["resting"]["oid"]
    assert statuses(await asyncio.to_thread(ex.cancel, "BTC", oid)) == ["success"]
    assert statuses(await asyncio.to_thread(ex.cancel, "BTC", oid)) == [
        {"error": "Order was never placed, already canceled, or filled."}]
    assert statuses(await asyncio.to_thread(ex.cancel_by_cloid, "BTC", cloid)) == ["success"]
    assert await asyncio.to_thread(info.open_orders, wallet.address) == []
    assert (await asyncio.to_thread(info.query_order_by_oid, wallet.address, oid))["order"]["status"] == "canceled"
    assert await asyncio.to_thread(info.query_order_by_oid, wallet.address, 123) == {"status": "unknownOid"}


async def test_modify_order(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("BTC", "60000")
    ex, info = make(sim.base_url, wallet)
    oid = statuses(await asyncio.to_thread(ex.order, "BTC", True, 0.001, 50000,
                                           {"limit": {"tif": "Gtc"}}))[0]["resting"]["oid"]
    resp = await asyncio.to_thread(ex.modify_order, oid, "BTC", True, 0.002, 51000, {"limit": {"tif": "Gtc"}})
    new_oid = statuses(resp)[0]["resting"]["oid"]
    opened = await asyncio.to_thread(info.open_orders, wallet.address)
    assert [(o["oid"], o["limitPx"], o["sz"]) for o in opened] == [(new_oid, "51000.0", "0.002")]
    bad = await asyncio.to_thread(ex.modify_order, oid, "BTC", True, 0.002, 51000, {"limit": {"tif": "Gtc"}})
    assert "error" in statuses(bad)[0]


async def test_update_leverage_and_isolated_margin(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("ETH", "3000")
    ex, info = make(sim.base_url, wallet)
    assert await asyncio.to_thread(ex.update_leverage, 10, "ETH", False) == {
        "status": "ok", "response": {"type": "default"}}
    too_high = await asyncio.to_thread(ex.update_leverage, 26, "ETH")
    assert too_high["status"] == "err"
    await asyncio.to_thread(ex.market_open, "ETH", True, 1.0)
    pos = (await asyncio.to_thread(info.user_state, wallet.address))["assetPositions"][0]["position"]
    assert pos["leverage"]["type"] == "isolated" and pos["leverage"]["value"] == 10
    before = Decimal(pos["marginUsed"])
    assert (await asyncio.to_thread(ex.update_isolated_margin, 50, "ETH"))["status"] == "ok"
    pos = (await asyncio.to_thread(info.user_state, wallet.address))["assetPositions"][0]["position"]
    assert Decimal(pos["marginUsed"]) == before + 50
    assert (await asyncio.to_thread(ex.update_leverage, 5, "ETH", True))["status"] == "err"  # switch with a position


async def test_schedule_cancel_and_noop(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("BTC", "60000")
    ex, info = make(sim.base_url, wallet)
    await asyncio.to_thread(ex.order, "BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}})
    too_soon = await asyncio.to_thread(ex.schedule_cancel, sim.venue.now_ms + 1000)
    assert too_soon["status"] == "err"
    assert (await asyncio.to_thread(ex.schedule_cancel, sim.venue.now_ms + 10_000))["status"] == "ok"
    sim.advance(11_000)
    assert await asyncio.to_thread(info.open_orders, wallet.address) == []
    import time

    assert (await asyncio.to_thread(ex.noop, int(time.time() * 1000)))["response"] == {"type": "default"}


async def test_nonce_rules(sim: SimServer, wallet: LocalAccount) -> None:
    import time

    ex, _ = make(sim.base_url, wallet)
    now = int(time.time() * 1000)
    assert (await asyncio.to_thread(ex.noop, now))["status"] == "ok"
    dup = await asyncio.to_thread(ex.noop, now)
    assert dup == {"status": "err", "response": f"Invalid nonce: duplicate nonce {now}"}
    stale = await asyncio.to_thread(ex.noop, now - 3 * 24 * 3600 * 1000)
    assert stale["status"] == "err" and stale["response"].startswith("Invalid nonce")
    for i in range(1, 101):
        assert (await asyncio.to_thread(ex.noop, now + i))["status"] == "ok"
    low = await asyncio.to_thread(ex.noop, now - 1)  # below the smallest of the 100 kept
    assert low["status"] == "err" and "too low" in low["response"]


async def test_approve_agent_then_trade_with_the_agent_key(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("ETH", "3000")
    ex, info = make(sim.base_url, wallet)
    resp, agent_key = await asyncio.to_thread(ex.approve_agent)
    assert resp == {"status": "ok", "response": {"type": "default"}}
    agent = eth_account.Account.from_key(agent_key)
    named, named_key = await asyncio.to_thread(ex.approve_agent, "bot")
    assert named["status"] == "ok"
    agents = await asyncio.to_thread(info.extra_agents, wallet.address)
    assert {a["address"] for a in agents} == {agent.address.lower(), eth_account.Account.from_key(
        named_key).address.lower()}
    role = await asyncio.to_thread(info.user_role, agent.address)
    assert role == {"role": "agent", "data": {"user": wallet.address.lower()}}
    agent_ex, _ = make(sim.base_url, agent, account_address=wallet.address)
    filled = statuses(await asyncio.to_thread(agent_ex.market_open, "ETH", True, 0.1))[0]["filled"]
    assert filled["totalSz"] == "0.1"
    master = await asyncio.to_thread(info.user_state, wallet.address)
    assert master["assetPositions"][0]["position"]["szi"] == "0.1"
    agent_view = await asyncio.to_thread(info.user_state, agent.address)
    assert agent_view["assetPositions"] == [] and agent_view["marginSummary"]["accountValue"] == "0.0"
    closed = statuses(await asyncio.to_thread(agent_ex.market_close, "ETH"))[0]["filled"]
    assert closed["totalSz"] == "0.1"
    # an agent cannot approve agents, and an address that already trades cannot become one
    other = eth_account.Account.create()
    other_ex, _ = make(sim.base_url, other)
    await asyncio.to_thread(other_ex.noop, __import__("time").time_ns() // 1_000_000)
    sim.venue.account(other.address.lower())
    refused = await asyncio.to_thread(_approve_specific, ex, other)
    assert refused["status"] == "err" and "already has an account" in refused["response"]


def _approve_specific(ex: Exchange, agent: LocalAccount) -> Any:
    """Approve a chosen address (the SDK's approve_agent always mints a new key): the SDK's own signing."""
    from hyperliquid.utils.signing import get_timestamp_ms, sign_agent

    nonce = get_timestamp_ms()
    action = {"type": "approveAgent", "agentAddress": agent.address, "agentName": "x", "nonce": nonce}
    signature = sign_agent(ex.wallet, action, False)
    return ex._post_action(action, signature, nonce)


async def test_tampered_action_never_reaches_the_signers_account(sim: SimServer, wallet: LocalAccount) -> None:
    from hyperliquid.utils.signing import get_timestamp_ms, sign_l1_action

    sim.set_price("BTC", "60000")
    sim.exchange.auto_fund = False  # strict mode: an unknown signer is refused as on Hyperliquid
    ex, info = make(sim.base_url, wallet)
    sim.venue.account(wallet.address.lower())
    nonce = get_timestamp_ms()
    action = {"type": "order", "orders": [{"a": 0, "b": True, "p": "50000", "s": "0.001", "r": False,
                                           "t": {"limit": {"tif": "Gtc"}}}], "grouping": "na"}
    signature = sign_l1_action(wallet, action, None, nonce, None, False)
    action["orders"][0]["s"] = "0.002"  # tampered after signing
    resp = await asyncio.to_thread(ex._post_action, action, signature, nonce)
    assert resp["status"] == "err"
    assert resp["response"].startswith("User or API Wallet 0x") and resp["response"].endswith("does not exist.")
    assert await asyncio.to_thread(info.open_orders, wallet.address) == []
    garbage = await asyncio.to_thread(ex._post_action, action, {"r": "0x0", "s": "0x0", "v": 27}, nonce + 1)
    assert garbage == {"status": "err", "response": "Unable to recover signer."}


async def test_fresh_key_is_funded_with_the_configured_balance(sim: SimServer, wallet: LocalAccount) -> None:
    _, info = make(sim.base_url, wallet)
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["marginSummary"]["accountValue"] == "10000.0"
    assert state["withdrawable"] == "10000.0"


async def test_withdraw_from_bridge_is_a_user_signed_action(sim: SimServer, wallet: LocalAccount) -> None:
    ex, info = make(sim.base_url, wallet)
    resp = await asyncio.to_thread(ex.withdraw_from_bridge, 100.0, wallet.address)
    assert resp == {"status": "ok", "response": {"type": "default"}}
    ledger = await asyncio.to_thread(info.user_non_funding_ledger_updates, wallet.address, 0)
    assert [(e["delta"]["type"], e["delta"]["usdc"]) for e in ledger] == [("deposit", "10000.0"),
                                                                          ("withdraw", "100.0")]
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["withdrawable"] == "9899.0"  # 1 USDC bridge fee


async def test_position_tpsl_follows_the_position(sim: SimServer, wallet: LocalAccount) -> None:
    sim.set_price("SOL", "150")
    ex, info = make(sim.base_url, wallet)
    await asyncio.to_thread(ex.market_open, "SOL", True, 2.0)

    def tpsl(kind: str, px: float) -> Any:
        return {"coin": "SOL", "is_buy": False, "sz": 2.0, "limit_px": px * 0.9,
                "order_type": {"trigger": {"triggerPx": px, "isMarket": True, "tpsl": kind}}, "reduce_only": True}

    got = statuses(await asyncio.to_thread(ex.bulk_orders, [tpsl("tp", 170), tpsl("sl", 140)], None,
                                           "positionTpsl"))
    assert all("resting" in g for g in got)
    front = await asyncio.to_thread(info.frontend_open_orders, wallet.address)
    assert {o["isPositionTpsl"] for o in front} == {True}
    await asyncio.to_thread(ex.market_open, "SOL", True, 1.0)  # the position grows: the stop covers all of it
    sim.set_price("SOL", "139")
    state = await asyncio.to_thread(info.user_state, wallet.address)
    assert state["assetPositions"] == []
    assert await asyncio.to_thread(info.open_orders, wallet.address) == []  # the take-profit went with it
    fills = await asyncio.to_thread(info.user_fills, wallet.address)
    assert (fills[0]["dir"], fills[0]["sz"]) == ("Close Long", "3.0")
