"""Sync: start-up reconciliation with a long history, and event-to-account-view latency.

Setup: the embedded simulator (in-process, manual clock), a real redis-server (temp dir, AOF off), the
real bridge and `SyncService`.

1. `startup_*`: a wallet whose history holds N fills (10,000; 1,000 with --quick) on the simulator,
   written straight into the simulated account (placing 10,000 orders would only measure the venue),
   ending flat. Timed from `reconcile_now()` to the phase `consistent`:
   - `startup_cold`: an empty ledger: every fill is fetched (paged by time windows, 2,000 a page),
     recorded exactly once and folded into trades;
   - `startup_warm`: the usual start: the ledger already holds the history; it is loaded from Redis and
     only what is newer than the newest recorded fill is fetched (best of 3).
2. `event_to_view_*`: websocket events handed to `SyncService.handle` (no network: the latency of sync
   itself), timed from the call until the `AccountChanged` is published with the new view built
   (the first read of `sync.view` after it); `*_handled` is the whole call, including the ledger's
   Redis write of the fill:
   - `fill`: a fill on BTC (the position moves from the fill's startPosition);
   - `order_update`: an order update adding then removing a resting order.
Figures in microseconds (p50/p90/p99/max) and seconds.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import parse_args, summary_us, write_results

D = Decimal
START_MS = 1_767_225_600_000


def history(n: int, end_ms: int) -> list[dict[str, Any]]:
    """N fills on four markets in the simulator's wire form, oldest first: per market open, add, close
    (average-cost closedPnl, 6 decimals), so every position is flat at the end (N a multiple of 12)."""
    base = {"BTC": (D(60000), D("0.01")), "ETH": (D(3000), D("0.1")), "SOL": (D(150), D(1)), "DOGE": (D("0.2"), D(100))}
    names = list(base)
    pos = dict.fromkeys(names, D(0))
    entry = dict.fromkeys(names, D(0))
    out: list[dict[str, Any]] = []
    n -= n % 12
    for i in range(n):
        coin, step = names[i % 4], (i // 4) % 3
        px0, size = base[coin]
        px = px0 * (D(1) + D(i % 7 - 3) / D(1000))
        delta = size if step < 2 else -pos[coin]
        start = pos[coin]
        closed = D(0)
        if step < 2:
            entry[coin] = (entry[coin] * start + px * delta) / (start + delta)
        else:
            closed = ((px - entry[coin]) * start).quantize(D("0.000001"))
        pos[coin] = start + delta
        tid = i + 1
        out.append({"coin": coin, "px": str(px), "sz": str(abs(delta)), "side": "B" if delta > 0 else "A",
                    "time": end_ms - (n - i) * 1000, "startPosition": str(start),
                    "dir": "Open Long" if step < 2 else "Close Long", "closedPnl": str(closed),
                    "hash": "0x" + f"{tid:064x}", "oid": tid, "crossed": True,
                    "fee": str((abs(delta) * px * D("0.00045")).quantize(D("0.000001"))), "tid": tid,
                    "feeToken": "USDC"})
    return out


async def run(quick: bool) -> dict[str, Any]:
    import eth_account

    from revagent.bus import Bus
    from revagent.events import AccountChanged
    from revagent.exchange.hyperliquid import HyperliquidBridge, LocalRateBudget
    from revagent.exchange.protocol import FillsEvent, OrderUpdatesEvent
    from revagent.exchange.sim import SimConfig, SimServer
    from revagent.exchange.types import Fill, WsBasicOrder, WsOrderUpdate
    from revagent.models import SessionId
    from revagent.risk import RiskSettings
    from revagent.store.connection import connect
    from revagent.store.keys import Keyspace
    from revagent.store.ledger import LedgerStore
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.store.risk import RiskStore
    from revagent.store.server import spawn_redis
    from revagent.sync.service import SyncService

    n_fills = 1_008 if quick else 10_008
    n_events = 200 if quick else 2_000
    figures: dict[str, Any] = {"history_fills": n_fills}
    tmp = Path(tempfile.mkdtemp(prefix="sync-bench-"))
    redis_proc = spawn_redis(tmp, fsync="no")
    sim = SimServer(SimConfig(manual_clock=True, start_ms=START_MS, seed=5))
    await sim.start()
    redis = await connect(redis_proc.url)
    try:
        master = str(eth_account.Account.create().address).lower()
        account = sim.venue.account(master)
        account.fills.extend(history(n_fills, START_MS))
        bridge = HyperliquidBridge(network="paper", base_url=sim.base_url, master=master, budget=LocalRateBudget())

        def service(keys: Keyspace, bus: Bus) -> SyncService:
            return SyncService(venue=bridge, ledger=LedgerStore(redis, keys), plans=TradePlans(redis, keys),
                               journal=OrderJournal(redis, keys), risk=RiskStore(redis, keys, RiskSettings()), bus=bus)

        keys = Keyspace(SessionId(network="paper", address=master))
        cold = service(keys, Bus())
        t0 = time.perf_counter()
        report = await cold.reconcile_now()
        figures["startup_cold_s"] = round(time.perf_counter() - t0, 4)
        figures["startup_cold_requests"] = report.requests
        figures["startup_cold_recorded"] = report.new_fills
        assert report.new_fills == len(account.fills), (report.new_fills, len(account.fills))
        warm_times = []
        for _ in range(3):
            warm = service(keys, Bus())
            t0 = time.perf_counter()
            report = await warm.reconcile_now()
            warm_times.append(time.perf_counter() - t0)
            assert report.new_fills == 0
        figures["startup_warm_s"] = round(min(warm_times), 4)
        figures["startup_warm_requests"] = report.requests
        figures["trades_folded"] = len(warm.recorder.book.trades())

        # ---- event -> view latency
        bus = Bus()
        sync = service(keys, bus)
        await sync.reconcile_now()
        published: list[float] = []
        original = sync._changed

        def changed(what: list[str]) -> None:
            original(what)
            if "positions" in what or "orders" in what:
                _ = sync.view  # consumers read the view on AccountChanged: build it
                published.append(time.perf_counter())

        sync._changed = changed  # type: ignore[method-assign]
        sync.request_snapshot = lambda delay=None: None  # type: ignore[method-assign]
        sub = bus.subscribe(AccountChanged, maxsize=100_000)
        state_ms = sync.live.state.time if sync.live.state is not None and sync.live.state.time else START_MS
        position = D(0)
        fill_view, fill_total, order_view = [], [], []
        tid = 10**9
        for i in range(n_events):
            size = D("0.01") if i % 2 == 0 else D("-0.01")
            tid += 1
            fill = Fill(coin="BTC", px=D(60000), sz=abs(size), side="B" if size > 0 else "A", time=state_ms + 1 + i,
                        start_position=position, dir="Open Long" if size > 0 else "Close Long", closed_pnl=D(0),
                        hash="0x" + f"{tid:064x}", oid=tid, crossed=True, fee=D("0.27"), tid=tid)
            position += size
            published.clear()
            t0 = time.perf_counter()
            await sync.handle(FillsEvent(user=master, fills=(fill,), is_snapshot=False))
            t1 = time.perf_counter()
            assert published and sync.view is not None
            fill_view.append(published[0] - t0)
            fill_total.append(t1 - t0)
            for status in ("open", "canceled"):
                upd = WsOrderUpdate(order=WsBasicOrder(coin="BTC", side="B", limit_px=D(50000), sz=D("0.01"),
                                                       oid=tid + 10**6, timestamp=state_ms, orig_sz=D("0.01")),
                                    status=status, status_timestamp=state_ms)
                published.clear()
                t0 = time.perf_counter()
                await sync.handle(OrderUpdatesEvent(updates=(upd,)))
                assert published
                order_view.append(published[0] - t0)
        sub.close()
        figures["event_to_view_fill"] = summary_us(fill_view)
        figures["event_to_view_fill_handled"] = summary_us(fill_total)
        figures["event_to_view_order_update"] = summary_us(order_view)
        await bridge.aclose()
    finally:
        await redis.aclose()
        await sim.stop()
        redis_proc.stop()
    return figures


def main() -> None:
    args = parse_args(__doc__ or "sync benchmark")
    figures = asyncio.run(run(args.quick))
    write_results("sync_bench", figures, quick=args.quick)


if __name__ == "__main__":
    main()
