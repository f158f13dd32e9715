"""The SDK's own `examples/` scripts (hyperliquid-python-sdk), their calls as the scripts make them, against the
simulator with every exchange rule on (as `revagent sim serve` and the paper venue run): issue 17.

`examples/basic_tpsl.py` (both runs: the default short and `--is_buy`): an aggressive GTC entry, a lone stop and a
lone take-profit (each cancelled), then an entry with its TP and SL grouped `normalTpsl`, whose take-profit
triggers at the entry's own limit price. Hyperliquid accepts that example as written (it is the SDK's published
example, run against testnet); the simulator refused the grouped TP with "Invalid TP/SL price" because it required
a child's trigger to be strictly beyond the parent's limit price."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import eth_account
import pytest
from hyperliquid.exchange import Exchange

from revagent.exchange.sim import SimConfig, SimServer
from tests.sim.conftest import SPOT_META, START_MS, meta


@pytest.fixture
async def strict_sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig.exchange_like(manual_clock=True, start_ms=START_MS, seed=1, controls=True,
                                               history_minutes=0))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def basic_tpsl(exchange: Exchange, is_buy: bool) -> list[Any]:
    """examples/basic_tpsl.py's main(), its prices "set when ETH was at 3000"; every response, in order."""
    out: list[Any] = []
    coin, sz = "ETH", 0.02
    px = 3500 if is_buy else 2500
    trigger_px = 2600 if is_buy else 3400
    sl_px = 2500 if is_buy else 3500
    out.append(exchange.order(coin, is_buy, sz, px, {"limit": {"tif": "Gtc"}}))
    stop_order_type: Any = {"trigger": {"triggerPx": trigger_px, "isMarket": True, "tpsl": "sl"}}
    out.append(stop_result := exchange.order("ETH", not is_buy, sz, sl_px, stop_order_type, reduce_only=True))
    if stop_result["status"] == "ok":
        status = stop_result["response"]["data"]["statuses"][0]
        if "resting" in status:
            out.append(exchange.cancel("ETH", status["resting"]["oid"]))
    tp_order_type: Any = {"trigger": {"triggerPx": px, "isMarket": True, "tpsl": "tp"}}
    out.append(tp_result := exchange.order("ETH", not is_buy, sz, px, tp_order_type, reduce_only=True))
    if tp_result["status"] == "ok":
        status = tp_result["response"]["data"]["statuses"][0]
        if "resting" in status:
            out.append(exchange.cancel("ETH", status["resting"]["oid"]))
    orders: Any = [
        {"coin": "ETH", "is_buy": is_buy, "sz": sz, "limit_px": px, "order_type": {"limit": {"tif": "Gtc"}},
         "reduce_only": False},
        {"coin": "ETH", "is_buy": not is_buy, "sz": sz, "limit_px": px,
         "order_type": {"trigger": {"isMarket": True, "triggerPx": px, "tpsl": "tp"}}, "reduce_only": True},
        {"coin": coin, "is_buy": not is_buy, "sz": sz, "limit_px": sl_px,
         "order_type": {"trigger": {"isMarket": True, "triggerPx": trigger_px, "tpsl": "sl"}}, "reduce_only": True},
    ]
    out.append(exchange.bulk_orders(orders, grouping="normalTpsl"))
    return out


@pytest.mark.parametrize("is_buy", [False, True], ids=["default-short", "is_buy"])
async def test_basic_tpsl_example_runs_as_on_the_exchange(strict_sim: SimServer, is_buy: bool) -> None:
    strict_sim.set_price("ETH", "3000")
    wallet = eth_account.Account.create()
    strict_sim.deposit(wallet.address, "10000")
    exchange = Exchange(wallet, strict_sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
    responses = await asyncio.to_thread(basic_tpsl, exchange, is_buy)
    assert all(r["status"] == "ok" for r in responses), responses
    statuses = [s for r in responses for s in r["response"]["data"]["statuses"]]
    assert not [s for s in statuses if isinstance(s, dict) and "error" in s], statuses
    entry, _stop, _cancel, _tp, _cancel2, grouped = responses
    assert "filled" in entry["response"]["data"]["statuses"][0]
    assert ["filled" in grouped["response"]["data"]["statuses"][0], *grouped["response"]["data"]["statuses"][1:]] \
        == [True, "waitingForTrigger", "waitingForTrigger"]


async def test_a_grouped_child_on_the_wrong_side_of_the_entry_is_still_refused(strict_sim: SimServer) -> None:
    strict_sim.set_price("ETH", "3000")
    wallet = eth_account.Account.create()
    strict_sim.deposit(wallet.address, "10000")
    exchange = Exchange(wallet, strict_sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)

    def grouped(tp_px: int, sl_px: int) -> list[Any]:
        orders: Any = [
            {"coin": "ETH", "is_buy": True, "sz": 0.02, "limit_px": 2900, "order_type": {"limit": {"tif": "Gtc"}},
             "reduce_only": False},
            {"coin": "ETH", "is_buy": False, "sz": 0.02, "limit_px": tp_px,
             "order_type": {"trigger": {"isMarket": True, "triggerPx": tp_px, "tpsl": "tp"}}, "reduce_only": True},
            {"coin": "ETH", "is_buy": False, "sz": 0.02, "limit_px": sl_px,
             "order_type": {"trigger": {"isMarket": True, "triggerPx": sl_px, "tpsl": "sl"}}, "reduce_only": True},
        ]
        return list(exchange.bulk_orders(orders, grouping="normalTpsl")["response"]["data"]["statuses"])

    wrong = await asyncio.to_thread(grouped, 2800, 2950)  # a long's TP below its entry, its SL above
    assert wrong[1:] == [{"error": "Invalid TP/SL price. asset=1"}] * 2
