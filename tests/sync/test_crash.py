"""SIGKILL of the process that records the ledger, mid-trade, then a restart: the ledger is exact."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from decimal import Decimal
from pathlib import Path

import redis.asyncio as aioredis

from revagent.bus import Bus
from revagent.exchange.protocol import ActionOk, LimitType, OrderRequest
from revagent.exchange.sim import SimServer
from revagent.models import SessionId
from revagent.store.keys import Keyspace
from revagent.store.ledger import fill_key
from tests.sync.conftest import build_sync, make_bridge, sim_fills

ROOT = Path(__file__).resolve().parents[2]
D = Decimal


async def test_sigkill_mid_trade_then_restart_leaves_the_ledger_exact(
        sim: SimServer, master: str, redis_url: str, redis_client: aioredis.Redis) -> None:
    other = await make_bridge(sim, master)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.sync.sync_child", redis_url, sim.base_url, master,
        stdout=asyncio.subprocess.PIPE, cwd=ROOT, env={**os.environ, "PYTHONASYNCIODEBUG": "0"})
    try:
        assert child.stdout is not None
        async with asyncio.timeout(30):
            assert (await child.stdout.readline()).strip() == b"consistent"
        sizes = ["0.01", "0.02", "-0.01", "0.03", "-0.02", "-0.03", "0.01", "0.01", "-0.02"]
        for i, size in enumerate(sizes):
            sz = D(size)
            result = await other.place_orders([OrderRequest("BTC", sz > 0, abs(sz), D(61000) if sz > 0 else D(59000),
                                                            LimitType("Ioc"))])
            assert isinstance(result, ActionOk)
            if i == 4:
                await asyncio.sleep(0.05)  # let it record some of them, then kill it mid-way
                child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
        keys = Keyspace(SessionId(network="paper", address=master))
        recorded_before_restart = await redis_client.xlen(keys.key("ledger:fills"))
        assert recorded_before_restart < len(sizes)  # the last trades happened after the kill
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()

    bridge = await make_bridge(sim, master)
    try:
        sync, _, ledger, *_ = build_sync(redis_client, keys, Bus(), bridge)
        report = await sync.reconcile_now()
        assert sync.phase == "consistent" and report.rounds == 1
        expected = sim_fills(sim, master)
        assert len(expected) == len(sizes)
        fills = await ledger.fills()
        assert sorted(f.tid or 0 for f in fills) == sorted(int(f["tid"]) for f in expected)
        assert len({fill_key(f) for f in fills}) == len(fills) == len(sizes)
        book = sync.recorder.book
        assert book.total_closed_pnl() == sum(D(f["closedPnl"]) for f in expected)
        assert book.positions()["BTC"] == sum(D(s) for s in sizes)
        again = await sync.reconcile_now()
        assert again.new_fills == 0 and await ledger.count("fills") == len(sizes)
    finally:
        await bridge.aclose()
        await other.aclose()
