"""A paper account survives a restart: the venue's state is written atomically and loaded at start."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import eth_account
from hyperliquid.exchange import Exchange
from hyperliquid.info import Info

from revagent.exchange.sim import SimConfig, SimServer
from tests.sim.conftest import SPOT_META, START_MS, meta


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "venue.json"
    cfg = SimConfig(manual_clock=True, start_ms=START_MS, seed=5, state_file=path)
    wallet = eth_account.Account.create()
    sim = SimServer(cfg)
    await sim.start()
    try:
        sim.set_price("ETH", "3000")
        ex = Exchange(wallet, sim.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
        await asyncio.to_thread(ex.market_open, "ETH", True, 0.5)
        rest = await asyncio.to_thread(ex.order, "ETH", True, 0.1, 2500, {"limit": {"tif": "Gtc"}})
        oid = rest["response"]["data"]["statuses"][0]["resting"]["oid"]
        _, agent_key = await asyncio.to_thread(ex.approve_agent, "paper")
        nonce = int(time.time() * 1000) + 5
        assert (await asyncio.to_thread(ex.noop, nonce))["status"] == "ok"
        sim.advance(3_600_000, steps=2)
        info = Info(sim.base_url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10)
        before = await asyncio.to_thread(info.user_state, wallet.address)
        fills_before = await asyncio.to_thread(info.user_fills, wallet.address)
        clock_before = sim.venue.now_ms
    finally:
        await sim.stop()
    doc = json.loads(path.read_text())
    assert doc["version"] == 1 and not list(tmp_path.glob(".*.tmp"))

    again = SimServer(cfg)
    await again.start()
    try:
        assert again.venue.now_ms >= clock_before
        info = Info(again.base_url, skip_ws=True, meta=meta(), spot_meta=SPOT_META, timeout=10)
        after = await asyncio.to_thread(info.user_state, wallet.address)
        assert after["assetPositions"] == before["assetPositions"]
        assert after["marginSummary"] == before["marginSummary"]
        assert await asyncio.to_thread(info.user_fills, wallet.address) == fills_before
        assert [o["oid"] for o in await asyncio.to_thread(info.open_orders, wallet.address)] == [oid]
        funding = await asyncio.to_thread(info.user_funding_history, wallet.address, 0)
        assert len(funding) == 1
        # the agent still trades for its master, and used nonces stay used
        agent = eth_account.Account.from_key(agent_key)
        agent_ex = Exchange(agent, again.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10,
                            account_address=wallet.address)
        closed = await asyncio.to_thread(agent_ex.market_close, "ETH")
        assert closed["response"]["data"]["statuses"][0]["filled"]["totalSz"] == "0.5"
        ex = Exchange(wallet, again.base_url, meta=meta(), spot_meta=SPOT_META, timeout=10)
        dup = await asyncio.to_thread(ex.noop, nonce)
        assert dup["status"] == "err" and "duplicate" in dup["response"]
        # new ids continue after the old ones
        new = await asyncio.to_thread(ex.order, "ETH", True, 0.1, 2500, {"limit": {"tif": "Gtc"}})
        assert new["response"]["data"]["statuses"][0]["resting"]["oid"] > oid
    finally:
        await again.stop()


async def test_writes_are_batched_while_running(tmp_path: Path) -> None:
    path = tmp_path / "state" / "venue.json"
    sim = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, state_file=path, persist_interval_s=0.05))
    await sim.start()
    try:
        sim.deposit("0x" + "c3" * 20, "250")
        for _ in range(100):
            if path.exists() and "0xc3c3" in path.read_text():
                break
            await asyncio.sleep(0.05)
        accounts = json.loads(path.read_text())["accounts"]
        assert [a["balance"] for a in accounts] == ["10250"]
    finally:
        await sim.stop()
