"""Accounting worked by hand: open, add, partial close, flip, fees, funding, isolated margin, liquidation.

Driven in-process (no HTTP) on a manual clock with the synthetic walk held still, so every number is exact.
ETH's tick is 0.1 here and its synthetic half-spread is fixed at one tick: with the mid at M a taker buy
fills at M + 0.1 and a taker sell at M - 0.1.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.info import clearinghouse, user_fills
from tests.sim.conftest import START_MS

USER = "0x" + "a1" * 20


@pytest.fixture
async def venue_sim() -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=3))
    server.set_volatility(None, 0.0)
    server.set_liquidity("ETH", 1, spread_ticks=1)
    yield server
    await server.stop()


def taker(sim: SimServer, is_buy: bool, sz: str, *, coin: str = "ETH", reduce_only: bool = False) -> Any:
    limit = "10000" if is_buy else "1"
    wire = {"a": sim.venue.specs[coin].asset, "b": is_buy, "p": limit, "s": sz, "r": reduce_only,
            "t": {"limit": {"tif": "Ioc"}}}
    return sim.venue.place_orders(USER, [wire], "na", sim.venue.new_hash())[0]


def position(sim: SimServer) -> dict[str, Any]:
    rows = clearinghouse(sim.venue, USER)["assetPositions"]
    return rows[0]["position"] if rows else {}


async def test_open_add_partial_close_flip(venue_sim: SimServer) -> None:
    sim = venue_sim
    sim.set_price("ETH", "2999.9")
    assert taker(sim, True, "1") == {"filled": {"totalSz": "1.0", "avgPx": "3000.0", "oid": 1001}}
    sim.set_price("ETH", "3099.9")
    taker(sim, True, "1")
    pos = position(sim)
    assert (pos["szi"], pos["entryPx"]) == ("2.0", "3050.0")
    sim.set_price("ETH", "3200.1")
    taker(sim, False, "0.5")
    taker(sim, False, "2.5")  # closes 1.5 and opens a 1.0 short
    fills = list(reversed(user_fills(sim.venue, USER)))
    assert [(f["px"], f["sz"], f["startPosition"], f["dir"], f["closedPnl"], f["fee"]) for f in fills] == [
        ("3000.0", "1.0", "0.0", "Open Long", "0.0", "1.35"),
        ("3100.0", "1.0", "1.0", "Open Long", "0.0", "1.395"),
        ("3200.0", "0.5", "2.0", "Close Long", "75.0", "0.72"),
        ("3200.0", "2.5", "1.5", "Long > Short", "225.0", "3.6"),
    ]
    pos = position(sim)
    assert (pos["szi"], pos["entryPx"], pos["unrealizedPnl"]) == ("-1.0", "3200.0", "-0.1")
    state = clearinghouse(sim.venue, USER)
    balance = Decimal(10000) - Decimal("1.35") - Decimal("1.395") + 75 - Decimal("0.72") + 225 - Decimal("3.6")
    assert Decimal(state["marginSummary"]["totalRawUsd"]) == balance + 3200  # cash minus szi * entry
    assert Decimal(state["marginSummary"]["accountValue"]) == balance - Decimal("0.1")
    assert state["marginSummary"]["totalNtlPos"] == "3200.1"
    assert state["marginSummary"]["totalMarginUsed"] == "160.005"  # 3200.1 / 20x
    assert state["crossMaintenanceMarginUsed"] == "64.002"  # 3200.1 / (2 * 25)


async def test_reduce_only_never_flips(venue_sim: SimServer) -> None:
    sim = venue_sim
    sim.set_price("ETH", "2999.9")
    taker(sim, True, "1")
    got = taker(sim, False, "3", reduce_only=True)
    assert got["filled"]["totalSz"] == "1.0"
    assert position(sim) == {}
    assert taker(sim, False, "1", reduce_only=True) == {"error": "Reduce only order would increase position."}


async def test_hourly_funding_by_the_published_rule(venue_sim: SimServer) -> None:
    sim = venue_sim
    sim.set_price("ETH", "3200.1")
    taker(sim, False, "1")  # short 1 at 3200.0
    sim.advance(3_600_000)
    paid = sim.venue.accounts[USER].funding
    # interest only: 0.01% per 8h = 0.00125% per hour; the short receives 1 * 3200.1 * 0.0000125
    assert [(f["time"], f["delta"]["fundingRate"], f["delta"]["usdc"]) for f in paid] == [
        (START_MS + 3_600_000, "0.0000125", "0.040001")]
    sim.set_funding_premium("ETH", "0.001")  # (0.001 + clamp(0.0001 - 0.001, +-0.0005)) / 8 = 0.0000625
    sim.advance(3_600_000)
    assert paid[-1]["delta"]["fundingRate"] == "0.0000625" and paid[-1]["delta"]["usdc"] == "0.200006"
    pos = position(sim)
    assert pos["cumFunding"]["allTime"] == "-0.240007"  # received, so negative as Hyperliquid reports it
    history = sim.venue.funding_history["ETH"]
    assert [h["fundingRate"] for h in history] == ["0.0000125", "0.0000625"]


async def test_isolated_margin_accounting(venue_sim: SimServer) -> None:
    sim = venue_sim
    sim.set_price("ETH", "2999.9")
    assert sim.venue.update_leverage(USER, 1, False, 10) is None
    taker(sim, True, "1")
    pos = position(sim)
    assert pos["leverage"] == {"type": "isolated", "value": 10, "rawUsd": "-2700.0"}  # 300 margin - 3000
    assert pos["marginUsed"] == "299.9"  # 300 + uPnL (-0.1)
    state = clearinghouse(sim.venue, USER)
    assert state["crossMarginSummary"]["accountValue"] == "9698.65"  # 10000 - 1.35 fee - 300 isolated
    assert sim.venue.update_isolated_margin(USER, 1, 100_000_000) is None
    assert position(sim)["marginUsed"] == "399.9"


async def test_liquidation_at_the_published_liquidation_price() -> None:
    sim = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=3, balance=Decimal(1000)))
    try:
        sim.set_volatility(None, 0.0)
        sim.set_liquidity("ETH", 1, spread_ticks=1)
        sim.set_price("ETH", "2999.9")
        taker(sim, True, "6")  # 18000 notional at 20x: 900 initial margin; fee 8.1
        pos = position(sim)
        # (|sz| * entry - (cash)) / (|sz| * (1 - 1/(2 * 25))) = (18000 - 991.9) / 5.88
        assert pos["liquidationPx"] == "2892.53401361"
        sim.set_price("ETH", "2892.6")
        assert position(sim) != {}
        sim.set_price("ETH", "2892.5")
        assert position(sim) == {}
        last = user_fills(sim.venue, USER)[0]
        assert last["dir"] == "Close Long" and last["liquidation"]["liquidatedUser"] == USER
        assert last["px"] == "2892.5"
        events = [e for e in sim.venue.events if e[0] == "userEvent"]
        assert events == [] or "liquidation" in events[-1][2]
    finally:
        await sim.stop()


async def test_maker_fill_fee_and_price(venue_sim: SimServer) -> None:
    sim = venue_sim
    sim.set_price("ETH", "3000")
    wire = {"a": 1, "b": True, "p": "2990", "s": "2", "r": False, "t": {"limit": {"tif": "Gtc"}}}
    assert "resting" in sim.venue.place_orders(USER, [wire], "na", "0x00")[0]
    sim.set_price("ETH", "2990.1")  # best ask 2990.2: not through yet
    assert user_fills(sim.venue, USER) == []
    sim.set_price("ETH", "2989.9")  # best ask 2990.0 touches the bid
    fill = user_fills(sim.venue, USER)[0]
    assert (fill["px"], fill["sz"], fill["crossed"], fill["fee"]) == ("2990.0", "2.0", False, "0.897")
