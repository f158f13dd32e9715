"""`revagent sim record` records an upstream's market frames and `replay:FILE` plays them back as the paper venue's
market: books and trades, not only prices (issue 17 item 4). The upstream is a local "market" simulator."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import eth_account
import pytest
from hyperliquid.exchange import Exchange

from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.recording import RecordingFeed, is_recording
from tests.sim.conftest import SPOT_META, START_MS
from tests.sim.test_upstream import eventually, trader, vwap

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def market() -> AsyncIterator[SimServer]:
    # on the wall clock (the recorder asks candles up to now, as on Hyperliquid), prices held still
    server = SimServer(SimConfig(seed=11, controls=True, history_minutes=5))
    await server.start()
    try:
        server.set_volatility(None, 0)
        server.set_price("BTC", "60000")
        server.set_liquidity("BTC", "0.002")  # thin levels: a small paper order walks several of them
        yield server
    finally:
        await server.stop()


async def run_record(*args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "revagent", "sim", "record", *args,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def frames(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


@pytest.fixture
async def recording(market: SimServer, tmp_path: Path) -> Path:
    """About 4 s of the market: a seller walks three bid levels 1.5 s in (trades below the best bid)."""
    out = tmp_path / "market.jsonl"
    bids = market.venue.markets["BTC"].l2_levels()[0]

    async def sell_later() -> None:
        await asyncio.sleep(1.5)
        seller = eth_account.Account.create()
        ex = Exchange(seller, market.base_url, meta=market.venue.meta_json(), spot_meta=SPOT_META, timeout=10)
        sold = sum(Decimal(b["sz"]) for b in bids[:3])
        resp = await asyncio.to_thread(ex.order, "BTC", False, float(sold), 50000, {"limit": {"tif": "Ioc"}})
        assert "filled" in resp["response"]["data"]["statuses"][0], resp

    seller = asyncio.ensure_future(sell_later())
    rc, stdout, stderr = await run_record("--upstream", market.base_url, "--minutes", "0.07", "--out", str(out),
                                          "--coins", "BTC", "--candles", "1m")
    await seller
    assert rc == 0, (stdout, stderr)
    assert f"to {out}" in stdout and "trades" in stdout
    return out


async def test_record_then_replay_fills_against_the_recorded_book_and_trades(
        market: SimServer, recording: Path) -> None:
    assert is_recording(recording)
    recorded = frames(recording)
    kinds = {f["info"]["req"]["type"] for f in recorded if "info" in f} | {f["ws"]["channel"] for f in recorded
                                                                          if "ws" in f}
    assert {"metaAndAssetCtxs", "allMids", "l2Book", "candleSnapshot", "trades"} <= kinds
    books = [f["info"]["resp"] for f in recorded if "info" in f and f["info"]["req"]["type"] == "l2Book"]
    books += [f["ws"]["data"] for f in recorded if "ws" in f and f["ws"]["channel"] == "l2Book"]
    prints = [t for f in recorded if "ws" in f and f["ws"]["channel"] == "trades" for t in f["ws"]["data"]]
    assert prints

    paper = SimServer(SimConfig.exchange_like(manual_clock=True, start_ms=START_MS, seed=2, history_minutes=0,
                                              prices=f"replay:{recording}"))
    await paper.start()
    try:
        feed = paper.feed
        assert isinstance(feed, RecordingFeed)
        source = paper.price_source()
        assert source["summary"] == f"replayed prices from {recording.name} (recorded from {market.base_url})"
        assert source["prices"] == f"replay:{recording}"
        wallet, ex, info = await trader(paper)
        assert await asyncio.to_thread(info.meta) == market.venue.meta_json()
        first_mids = next(f["info"]["resp"] for f in recorded if "info" in f and f["info"]["req"]["type"] == "allMids")
        assert Decimal((await asyncio.to_thread(info.all_mids))["BTC"]) == Decimal(first_mids["BTC"])

        # a marketable paper order walks the recorded book's levels
        start_asks = books[0]["levels"][1]
        size = Decimal(start_asks[0]["sz"]) * 10
        resp = await asyncio.to_thread(ex.order, "BTC", True, float(size), 65000, {"limit": {"tif": "Ioc"}})
        filled = resp["response"]["data"]["statuses"][0]["filled"]
        assert Decimal(filled["totalSz"]) == size
        q = Decimal("0.00000001")
        recorded_vwaps = {vwap(b["levels"][1], size).quantize(q).normalize() for b in books}
        assert Decimal(filled["avgPx"]) in recorded_vwaps
        assert Decimal(filled["avgPx"]) > Decimal(start_asks[0]["px"])

        # a resting paper bid at the recorded best bid fills when the recorded prints go below it
        best_bid = Decimal(books[0]["levels"][0][0]["px"])
        assert min(Decimal(t["px"]) for t in prints) < best_bid
        resp = await asyncio.to_thread(ex.order, "BTC", True, 0.001, float(best_bid), {"limit": {"tif": "Gtc"}})
        assert "resting" in resp["response"]["data"]["statuses"][0], resp
        fills = await eventually(lambda: [f for f in paper.venue.accounts[wallet.address.lower()].fills
                                          if not f["crossed"]], timeout=20)
        assert Decimal(fills[0]["px"]) == best_bid and fills[0]["sz"] == "0.001"

        # the candles asked are the recorded ones
        creq = next(f["info"] for f in recorded if "info" in f and f["info"]["req"]["type"] == "candleSnapshot")
        r = creq["req"]["req"]
        got = await asyncio.to_thread(info.candles_snapshot, "BTC", "1m", r["startTime"], r["endTime"])
        assert got == creq["resp"] and got
    finally:
        await paper.stop()


async def test_record_refuses_an_unreachable_upstream_and_a_bad_coin(market: SimServer, tmp_path: Path) -> None:
    from tests.sim.test_upstream import _free_port

    rc, _, err = await run_record("--upstream", f"http://127.0.0.1:{_free_port()}", "--minutes", "0.01",
                                  "--out", str(tmp_path / "x.jsonl"))
    assert rc == 8 and "unreachable" in err
    rc, _, err = await run_record("--upstream", market.base_url, "--minutes", "0.01", "--out",
                                  str(tmp_path / "y.jsonl"), "--coins", "NOPE")
    assert rc == 2 and "does not list NOPE" in err
    assert not (tmp_path / "y.jsonl").exists()


async def test_an_unreadable_recording_runs_synthetic_and_says_so(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"format": "revagent-upstream-recording", "version": 1}\n{"t": 1, "ws": {}}\n')
    paper = SimServer(SimConfig.exchange_like(manual_clock=True, history_minutes=0, prices=f"replay:{bad}"))
    await paper.start()
    try:
        source = paper.price_source()
        assert source["prices"] == "synthetic" and source["requested"] == f"replay:{bad}"
        assert source["summary"] == f"synthetic prices: {bad} unreadable"
        assert "BTC" in paper.venue.markets
    finally:
        await paper.stop()
