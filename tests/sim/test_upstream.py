"""The paper venue on the real market (issue 17 items 1-4): a second simulator acts as "the market" upstream
(Hyperliquid's public API shapes), and a small server replays recorded real responses. No internet."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import eth_account
import pytest
from aiohttp import web
from eth_account.signers.local import LocalAccount
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from revagent.exchange.onboarding import fund_paper_account
from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim import accounting as acc
from revagent.exchange.sim.upstream import UpstreamFeed
from tests.sim.conftest import SPOT_META, START_MS, recorded

pytestmark = pytest.mark.timeout(60)


async def eventually(check: Any, timeout: float = 10.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await check() if asyncio.iscoroutinefunction(check) else check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture
async def market() -> AsyncIterator[SimServer]:
    """The market: an ordinary simulator (anyone trades on it), its clock still."""
    server = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=11, controls=True, history_minutes=0))
    await server.start()
    try:
        server.set_price("BTC", "60000")
        server.set_liquidity("BTC", "0.002")  # thin levels: a small paper order walks several of them
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def paper(market: SimServer) -> AsyncIterator[SimServer]:
    server = SimServer(SimConfig.exchange_like(manual_clock=True, start_ms=START_MS, seed=2, prices="live",
                                               upstream=market.base_url, history_minutes=0))
    await server.start()
    try:
        feed = server.feed
        assert isinstance(feed, UpstreamFeed)
        await eventually(lambda: feed.link == "connected")
        yield server
    finally:
        await server.stop()


async def trader(paper: SimServer) -> tuple[LocalAccount, Exchange, Info]:
    wallet = eth_account.Account.create()
    await fund_paper_account(paper.base_url, wallet.address)
    meta = paper.venue.meta_json()
    return (wallet, Exchange(wallet, paper.base_url, meta=meta, spot_meta=SPOT_META, timeout=10),
            Info(paper.base_url, skip_ws=True, meta=meta, spot_meta=SPOT_META, timeout=10))


def vwap(levels: list[dict[str, str]], size: Decimal) -> Decimal:
    left, notional = size, Decimal(0)
    for lvl in levels:
        take = min(left, Decimal(lvl["sz"]))
        notional += take * Decimal(lvl["px"])
        left -= take
        if left == 0:
            break
    assert left == 0
    return notional / size


async def test_universe_mids_and_price_source_follow_the_upstream(market: SimServer, paper: SimServer) -> None:
    _, _, info = await trader(paper)
    assert await asyncio.to_thread(info.meta) == market.venue.meta_json()
    assert (await asyncio.to_thread(info.all_mids))["BTC"] == "60000.0"
    market.set_price("BTC", "61000")
    await eventually(lambda: paper.venue.markets["BTC"].mid == Decimal(61000))
    source = await asyncio.to_thread(info.post, "/info", {"type": "revagentPriceSource"})
    assert source["prices"] == "live" and source["state"] == "connected" and source["upstream"] == market.base_url


async def test_market_order_walks_the_upstream_book_at_its_vwap(market: SimServer, paper: SimServer) -> None:
    _, ex, info = await trader(paper)
    asks = market.venue.markets["BTC"].l2_levels()[1]
    size = Decimal(asks[0]["sz"]) * 10
    expected = vwap(asks, size)
    resp = await asyncio.to_thread(ex.order, "BTC", True, float(size), 62000, {"limit": {"tif": "Ioc"}})
    filled = resp["response"]["data"]["statuses"][0]["filled"]
    assert Decimal(filled["totalSz"]) == size
    assert Decimal(filled["avgPx"]) == expected.quantize(Decimal("0.00000001")).normalize()
    assert Decimal(filled["avgPx"]) > Decimal(asks[0]["px"])  # slippage as it would be live
    # the depth it took stays taken for this snapshot: the same order again pays more
    again = await asyncio.to_thread(ex.order, "BTC", True, float(size), 62000, {"limit": {"tif": "Ioc"}})
    assert Decimal(again["response"]["data"]["statuses"][0]["filled"]["avgPx"]) > Decimal(filled["avgPx"])
    book = await asyncio.to_thread(info.l2_snapshot, "BTC")
    assert Decimal(book["levels"][1][0]["px"]) > Decimal(asks[0]["px"])


async def test_resting_limit_fills_when_upstream_trades_cross_it(market: SimServer, paper: SimServer) -> None:
    wallet, ex, info = await trader(paper)
    bids = market.venue.markets["BTC"].l2_levels()[0]
    limit = Decimal(bids[0]["px"])
    resp = await asyncio.to_thread(ex.order, "BTC", True, 0.001, float(limit), {"limit": {"tif": "Gtc"}})
    assert "resting" in resp["response"]["data"]["statuses"][0], resp
    assert await asyncio.to_thread(info.user_fills, wallet.address) == []
    # someone sells into the real market through several levels: prints below the paper bid
    seller = eth_account.Account.create()
    mex = Exchange(seller, market.base_url, meta=market.venue.meta_json(), spot_meta=SPOT_META, timeout=10)
    sold = sum(Decimal(b["sz"]) for b in bids[:3])
    out = await asyncio.to_thread(mex.order, "BTC", False, float(sold), 50000, {"limit": {"tif": "Ioc"}})
    assert "filled" in out["response"]["data"]["statuses"][0], out
    fills = await eventually(lambda: paper.venue.accounts[wallet.address.lower()].fills)
    assert Decimal(fills[0]["px"]) == limit
    assert fills[0]["crossed"] is False and fills[0]["sz"] == "0.001"


async def test_paper_funding_is_size_mark_and_upstream_rate(market: SimServer, paper: SimServer) -> None:
    wallet, ex, info = await trader(paper)
    resp = await asyncio.to_thread(ex.order, "BTC", True, 0.01, 62000, {"limit": {"tif": "Ioc"}})
    assert "filled" in resp["response"]["data"]["statuses"][0], resp
    market.set_funding_premium("BTC", "0.0008")
    rate = acc.hourly_funding_rate(Decimal("0.0008"))
    feed = paper.feed
    assert isinstance(feed, UpstreamFeed)
    await feed.refresh_ctxs()
    ctxs = await asyncio.to_thread(info.meta_and_asset_ctxs)
    assert Decimal(ctxs[1][0]["funding"]) == rate
    mark = paper.venue.markets["BTC"].oracle
    paper.advance(3_600_000, steps=1)
    funding = await asyncio.to_thread(info.user_funding_history, wallet.address, START_MS)
    assert len(funding) == 1
    assert Decimal(funding[0]["delta"]["fundingRate"]) == rate
    assert Decimal(funding[0]["delta"]["usdc"]) == (-Decimal("0.01") * mark * rate).quantize(Decimal("0.000001"))


async def test_upstream_drop_freezes_prices_then_reconnects(market: SimServer, paper: SimServer) -> None:
    feed = paper.feed
    assert isinstance(feed, UpstreamFeed)
    market.faults.refuse_websockets = True
    await market.drop_websockets()
    await eventually(lambda: feed.link == "disconnected")
    assert paper.price_source()["summary"].startswith("prices frozen")
    before = paper.venue.markets["BTC"].mid
    market.set_price("BTC", "65000")
    paper.advance(1000)
    assert paper.venue.markets["BTC"].mid == before  # frozen, no synthetic walk
    market.faults.refuse_websockets = False
    await eventually(lambda: feed.link == "connected", timeout=15)
    market.set_price("BTC", "65500")
    await eventually(lambda: paper.venue.markets["BTC"].mid == Decimal(65500))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_unreachable_upstream_falls_back_fast_and_says_so() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    server = SimServer(SimConfig.exchange_like(prices="live", upstream=url, upstream_timeout_s=1.0,
                                               manual_clock=True, history_minutes=0))
    await server.start()
    try:
        assert loop.time() - t0 < 3.0
        source = server.price_source()
        assert source["prices"] == "synthetic" and source["state"] == "unreachable"
        assert source["summary"] == f"synthetic prices: {url} unreachable"
        assert "BTC" in server.venue.markets  # the synthetic universe runs
    finally:
        await server.stop()


# a small server replaying recorded real responses ---------------------------------------------------------
REAL_SPOT_META = {  # shaped as mainnet's spotMeta (PURR/USDC is pair 0 there, "@1" pair 1); ids are placeholders
    "tokens": [{"name": "USDC", "szDecimals": 8, "weiDecimals": 8, "index": 0,
                "tokenId": "0x00000000000000000000000000000000", "isCanonical": True, "evmContract": None,
                "fullName": None},
               {"name": "PURR", "szDecimals": 0, "weiDecimals": 5, "index": 1,
                "tokenId": "0x00000000000000000000000000000001", "isCanonical": True, "evmContract": None,
                "fullName": None},
               {"name": "HFUN", "szDecimals": 2, "weiDecimals": 8, "index": 2,
                "tokenId": "0x00000000000000000000000000000002", "isCanonical": False, "evmContract": None,
                "fullName": None}],
    "universe": [{"name": "PURR/USDC", "tokens": [1, 0], "index": 0, "isCanonical": True},
                 {"name": "@1", "tokens": [2, 0], "index": 1, "isCanonical": False}],
}


@pytest.fixture
async def replayed() -> AsyncIterator[str]:
    meta, mids, book, candles = (recorded("meta"), recorded("all_mids"), recorded("l2_snapshot"),
                                 recorded("candles_snapshot"))
    # metaAndAssetCtxs was not recorded: contexts carry the recorded mids and a fixed funding rate
    ctxs = [{"funding": "0.0000125", "openInterest": "100.0", "prevDayPx": mids.get(u["name"], "1.0"),
             "dayNtlVlm": "0.0", "premium": "0.0", "oraclePx": mids.get(u["name"], "1.0"),
             "markPx": mids.get(u["name"], "1.0"), "midPx": mids.get(u["name"]), "impactPxs": None}
            for u in meta["universe"]]

    async def info(request: web.Request) -> web.Response:
        body = await request.json()
        answers = {"meta": meta, "allMids": mids, "metaAndAssetCtxs": [meta, ctxs], "candleSnapshot": candles,
                   "spotMeta": REAL_SPOT_META}
        if body.get("type") == "l2Book" and body.get("coin") == book["coin"]:
            return web.json_response(book)
        if body.get("type") in answers:
            return web.json_response(answers[body["type"]])
        return web.Response(status=422, text="Failed to deserialize the JSON body into the target type")

    async def ws(request: web.Request) -> web.WebSocketResponse:
        sock = web.WebSocketResponse()
        await sock.prepare(request)
        await sock.send_str("Websocket connection established.")
        async for msg in sock:
            doc = json.loads(msg.data)
            if doc.get("method") == "subscribe":
                await sock.send_json({"channel": "subscriptionResponse", "data": doc})
                if doc["subscription"] == {"type": "l2Book", "coin": book["coin"]}:
                    await sock.send_json({"channel": "l2Book", "data": book})
        return sock

    app = web.Application()
    app.router.add_post("/info", info)
    app.router.add_get("/ws", ws)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_mirror_on_recorded_real_responses(replayed: str) -> None:
    server = SimServer(SimConfig.exchange_like(prices="live", upstream=replayed, manual_clock=True,
                                               start_ms=START_MS, history_minutes=0))
    await server.start()
    try:
        meta = recorded("meta")
        _, ex, info = await trader(server)
        # the upstream's spot names come through (the SDK maps "PURR/USDC" with them); spot is not traded
        plain = await asyncio.to_thread(Info, server.base_url, True, None, None, None, 10)
        assert plain.name_to_coin["PURR/USDC"] == "PURR/USDC" and plain.name_to_coin["@1"] == "@1"
        assert [u["name"] for u in (await asyncio.to_thread(info.meta))["universe"]] == [
            u["name"] for u in meta["universe"]]
        assert (await asyncio.to_thread(info.all_mids))["BTC"] == "30135.0"
        book = recorded("l2_snapshot")
        mirrored = await asyncio.to_thread(info.l2_snapshot, "DYDX")
        for got_side, real_side in zip(mirrored["levels"], book["levels"], strict=True):
            assert [(Decimal(x["px"]), Decimal(x["sz"])) for x in got_side] == [
                (Decimal(x["px"]), Decimal(x["sz"])) for x in real_side]
        req = recorded("candles_snapshot")
        got = await asyncio.to_thread(info.candles_snapshot, "kPEPE", "1h", 1684702007000, 1684784807000)
        assert got == req
        size = Decimal(book["levels"][1][0]["sz"]) * 3
        resp = await asyncio.to_thread(ex.order, "DYDX", True, float(size), 2.5, {"limit": {"tif": "Ioc"}})
        filled = resp["response"]["data"]["statuses"][0]["filled"]
        assert Decimal(filled["avgPx"]) == vwap(book["levels"][1], size).quantize(Decimal("0.00000001")).normalize()
        async with aiohttp.ClientSession() as http, http.post(server.base_url + "/info",
                                                               json={"type": "revagentPriceSource"}) as r:
            assert (await r.json())["state"] == "connected"
    finally:
        await server.stop()


# the paper venue as a service, from the [paper] settings ---------------------------------------------------
async def test_paper_venue_service_live_from_upstream_and_synthetic_when_unreachable(
        market: SimServer, tmp_path: Any) -> None:
    from revagent.exchange.sim import service

    live_dir, dead_dir = tmp_path / "live", tmp_path / "dead"
    try:
        url = await asyncio.to_thread(service.ensure_running, live_dir, prices="live", upstream=market.base_url)
        source = await asyncio.to_thread(service.price_source, url)
        assert source is not None and source["summary"] == f"live prices from {market.base_url}"
        dead = f"http://127.0.0.1:{_free_port()}"
        t0 = asyncio.get_running_loop().time()
        url2 = await asyncio.to_thread(service.ensure_running, dead_dir, prices="live", upstream=dead)
        assert asyncio.get_running_loop().time() - t0 < 10
        source = await asyncio.to_thread(service.price_source, url2)
        assert source is not None and source["summary"] == f"synthetic prices: {dead} unreachable"
    finally:
        await asyncio.to_thread(service.stop, live_dir)
        await asyncio.to_thread(service.stop, dead_dir)


def test_paper_prices_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from revagent.config import PaperSettings

    assert PaperSettings().prices == "live" and PaperSettings().upstream == ""
    assert PaperSettings(prices="replay:/tmp/x.json").prices == "replay:/tmp/x.json"
    with pytest.raises(ValidationError):
        PaperSettings(prices="random")
