"""Every Info method the issue lists, through the unmodified SDK, with shapes compared key by key to the
real responses recorded from Hyperliquid (shape, not content)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info
from hyperliquid.utils.error import ClientError
from hyperliquid.utils.types import Cloid

from revagent.exchange.sim import SimServer
from tests.sim.conftest import SPOT_META, START_MS, meta, recorded

# Fields the 2023 recordings carry that the current API dropped.
OBSOLETE = {"maxTradeSzs"}


def covers(ours: dict[str, Any], real: dict[str, Any], where: str) -> None:
    missing = set(real) - set(ours) - OBSOLETE
    assert not missing, f"{where}: the simulator lacks {sorted(missing)}"
    for key in set(real) & set(ours):
        if real[key] is not None and ours[key] is not None:
            assert type(ours[key]) is type(real[key]), f"{where}.{key}: {ours[key]!r} vs {real[key]!r}"


@pytest.fixture
async def busy(sim: SimServer, wallet: LocalAccount) -> tuple[SimServer, LocalAccount, Info]:
    """An account with a position, resting and trigger orders, fills and an hour of funding."""
    sim.set_price("ETH", "3000")
    sim.set_price("BTC", "60000")
    ex = Exchange(wallet, sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
    await asyncio.to_thread(ex.market_open, "ETH", True, 1.0)
    await asyncio.to_thread(ex.order, "BTC", True, 0.001, 50000, {"limit": {"tif": "Gtc"}}, False, Cloid.from_int(9))
    await asyncio.to_thread(ex.order, "ETH", False, 1.0, 2700,
                            {"trigger": {"triggerPx": 2800, "isMarket": True, "tpsl": "sl"}}, True)
    sim.deposit(wallet.address, "500")
    sim.advance(3_600_000 + 60_000)
    info = Info(sim.base_url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10)
    return sim, wallet, info


async def test_constructor_fetches_meta_and_spot_meta(sim: SimServer) -> None:
    info = await asyncio.to_thread(Info, sim.base_url, True)  # no meta given: the SDK asks the simulator
    assert info.name_to_asset("BTC") == 0 and info.asset_to_sz_decimals[0] == 5
    assert info.name_to_asset("SOL") == 2


async def test_meta_all_mids_and_ctxs(busy: tuple[SimServer, LocalAccount, Info]) -> None:
    sim, _, info = busy
    m = await asyncio.to_thread(info.meta)
    for ours in m["universe"]:
        covers(ours, recorded("meta")["universe"][0], "meta.universe")
    mids = await asyncio.to_thread(info.all_mids)
    assert mids["ETH"] == f"{sim.venue.markets['ETH'].mid:f}" and all(isinstance(v, str) for v in mids.values())
    meta_, ctxs = await asyncio.to_thread(info.meta_and_asset_ctxs)
    assert len(ctxs) == len(meta_["universe"])
    assert {"funding", "openInterest", "prevDayPx", "dayNtlVlm", "premium", "oraclePx", "markPx", "midPx",
            "impactPxs", "dayBaseVlm"} <= set(ctxs[1])
    assert ctxs[1]["openInterest"] == "1.0"


async def test_user_state_shape_and_identity(busy: tuple[SimServer, LocalAccount, Info]) -> None:
    _, wallet, info = busy
    state = await asyncio.to_thread(info.user_state, wallet.address)
    real = recorded("user_state")
    covers(state, real, "clearinghouseState")
    covers(state["marginSummary"], real["marginSummary"], "marginSummary")
    covers(state["assetPositions"][0], real["assetPositions"][0], "assetPositions[]")
    covers(state["assetPositions"][0]["position"], real["assetPositions"][0]["position"], "position")
    ms = state["marginSummary"]
    mids = await asyncio.to_thread(info.all_mids)
    total = float(ms["totalRawUsd"]) + sum(
        float(p["position"]["szi"]) * float(mids[p["position"]["coin"]]) for p in state["assetPositions"])
    assert abs(float(ms["accountValue"]) - total) < 1e-5


async def test_orders_fills_and_status_shapes(busy: tuple[SimServer, LocalAccount, Info]) -> None:
    _, wallet, info = busy
    opened = await asyncio.to_thread(info.open_orders, wallet.address)
    assert len(opened) == 2
    for o in opened:
        covers(o, recorded("open_orders")[0], "openOrders[]")
    front = await asyncio.to_thread(info.frontend_open_orders, wallet.address)
    for o in front:
        covers(o, recorded("frontend_open_orders")[0], "frontendOpenOrders[]")
    fills = await asyncio.to_thread(info.user_fills, wallet.address)
    covers(fills[0], recorded("user_fills")[0], "userFills[]")
    by_time = await asyncio.to_thread(info.user_fills_by_time, wallet.address, START_MS, START_MS + 10 ** 8)
    assert by_time == fills
    assert await asyncio.to_thread(info.user_fills_by_time, wallet.address, START_MS + 10 ** 8) == []
    status = await asyncio.to_thread(info.query_order_by_cloid, wallet.address, Cloid.from_int(9))
    covers(status["order"]["order"], recorded("historical_orders")[0]["order"], "orderStatus.order.order")
    assert set(status["order"]) == {"order", "status", "statusTimestamp"}
    hist = await asyncio.to_thread(info.historical_orders, wallet.address)
    covers(hist[0], recorded("historical_orders")[0], "historicalOrders[]")


async def test_book_candles_and_funding_shapes(busy: tuple[SimServer, LocalAccount, Info]) -> None:
    sim, wallet, info = busy
    book = await asyncio.to_thread(info.l2_snapshot, "ETH")
    covers(book, recorded("l2_snapshot"), "l2Book")
    assert len(book["levels"]) == 2 and 0 < len(book["levels"][0]) <= 20
    covers(book["levels"][0][0], recorded("l2_snapshot")["levels"][0][0], "l2Book.level")
    bids = [float(lv["px"]) for lv in book["levels"][0]]
    assert bids == sorted(bids, reverse=True)
    candles = await asyncio.to_thread(info.candles_snapshot, "ETH", "1m", START_MS, sim.venue.now_ms)
    assert len(candles) >= 60
    covers(candles[0], recorded("candles_snapshot")[0], "candle")
    hourly = await asyncio.to_thread(info.candles_snapshot, "ETH", "1h", START_MS, sim.venue.now_ms)
    assert [c["t"] for c in hourly] == [START_MS, START_MS + 3_600_000]
    funding = await asyncio.to_thread(info.funding_history, "ETH", START_MS)
    assert [f["time"] for f in funding] == [START_MS + 3_600_000]
    covers(funding[0], recorded("funding_history")[0], "fundingHistory[]")
    paid = await asyncio.to_thread(info.user_funding_history, wallet.address, START_MS)
    real = recorded("user_funding_history_without_end_time")[0]
    covers(paid[0], real, "userFunding[]")
    covers(paid[0]["delta"], real["delta"], "userFunding.delta")
    assert paid[0]["delta"]["fundingRate"] == "0.0000125" and paid[0]["delta"]["usdc"].startswith("-")


async def test_ledger_rate_limit_agents_and_role(busy: tuple[SimServer, LocalAccount, Info]) -> None:
    _, wallet, info = busy
    ledger = await asyncio.to_thread(info.user_non_funding_ledger_updates, wallet.address, 0)
    assert [e["delta"]["type"] for e in ledger] == ["deposit", "deposit"]
    assert [e["delta"]["usdc"] for e in ledger] == ["10000.0", "500.0"]
    limit = await asyncio.to_thread(info.user_rate_limit, wallet.address)
    covers(limit, recorded("user_rate_limit"), "userRateLimit")
    assert limit["nRequestsUsed"] == 3
    assert await asyncio.to_thread(info.extra_agents, wallet.address) == []
    assert await asyncio.to_thread(info.user_role, wallet.address) == {"role": "user"}
    assert await asyncio.to_thread(info.user_role, "0x" + "1" * 40) == {"role": "missing"}
    assert await asyncio.to_thread(info.spot_user_state, wallet.address) == {"balances": []}


async def test_unknown_type_is_422_plain_text(sim: SimServer) -> None:
    info = Info(sim.base_url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10)
    with pytest.raises(ClientError) as caught:
        await asyncio.to_thread(info.post, "/info", {"type": "noSuchThing"})
    assert caught.value.status_code == 422
    assert "noSuchThing" in caught.value.error_message
