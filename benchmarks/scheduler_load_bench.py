"""The alert scheduler's start-up at scale (issue 18.4): `AlertScheduler.load()` over n stored pairs.

Set-up per size n, with a real Redis: the same pairs as `alerts_e2e_bench.py` (one market, upper legs
at 100000 + i, lower legs at 50000 - i/4). Figures:
- `load_ms`, `max_loop_block_ms`: `load()` over a store that needs no correction, and the longest
  time the event loop could not run meanwhile.
- `with_corrections`: `load()` over a store where every 10th pair expired while the session was down
  and every 10th other pair's upper trigger key is among the queue's seen keys (enqueued before a
  crash); `legs_written_ms` is from the start of `load()` until those statuses are in the store
  (after issue 18.4 they follow the load, off its path; before, `load()` wrote them itself).

Run: `python benchmarks/scheduler_load_bench.py` (1,000, 10,000, 100,000) or `--quick` (1,000, 10,000).
With REVAGENT_BENCH_BEFORE set to another source tree (see `_common.run_before`) the same run measures
that tree first and embeds its figures as `before`, with the ratios.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parse_args, run_before, write_results
from alerts_e2e_bench import T0, pairs, timed_with_blocks
from revagent.alerts.scheduler import AlertScheduler
from revagent.bus import Bus
from revagent.models import SessionId
from revagent.store.alert_events import level_trigger_key
from revagent.store.alert_queue import AlertQueue
from revagent.store.connection import connect
from revagent.store.repos import SessionStore
from revagent.store.server import spawn_redis


async def measure(url: str, n: int, *, corrections: bool) -> dict[str, Any]:
    redis = await connect(url)
    try:
        await redis.flushall()
        store = SessionStore(redis, SessionId(network="paper", address="0x" + "be" * 20))
        every = pairs(n)
        if corrections:
            every = [p.model_copy(update={"expires_at": T0 - timedelta(minutes=1)}) if i % 10 == 5 else p
                     for i, p in enumerate(every)]
        for start in range(0, n, 5000):
            await store.watchers.put_many(every[start:start + 5000])
        del every
        queue = AlertQueue(redis, store.keys)
        seen = {level_trigger_key(f"w_{i:07d}", "upper", 1): 1.0 for i in range(0, n, 10)} if corrections else {}
        if seen:
            await redis.zadd(queue.k.seen, seen)
        sch = AlertScheduler(store, queue, Bus(), clock=lambda: T0)
        started = time.perf_counter()
        load_ms, max_block_ms = await timed_with_blocks(sch.load())
        legs_written = getattr(sch, "legs_written", None)
        if legs_written is not None:
            await legs_written()
        written_ms = (time.perf_counter() - started) * 1000
        expired = n // 10 if corrections else 0
        assert len(sch.index) == 2 * (n - len(seen) - expired), len(sch.index)
        await sch.aclose()
        out: dict[str, Any] = {"pairs": n, "load_ms": round(load_ms, 1), "max_loop_block_ms": round(max_block_ms, 1)}
        if corrections:
            out["legs_written"] = 2 * (len(seen) + expired)
            out["legs_written_ms"] = round(written_ms, 1)
        return out
    finally:
        await redis.aclose()


async def main() -> None:
    args = parse_args(__doc__ or "")
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 100_000)
    before = run_before("scheduler_load_bench", quick=args.quick)
    load = os.getloadavg()[0]
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        server = spawn_redis(Path(tmp), fsync="everysec")
        try:
            for n in sizes:
                figures[f"n={n}"] = await measure(server.url, n, corrections=False)
                figures[f"n={n}"]["with_corrections"] = await measure(server.url, n, corrections=True)
        finally:
            server.stop()
    figures["load_avg_1m"] = {"before": round(load, 2), "after": round(os.getloadavg()[0], 2)}
    if before is not None:
        figures["before"] = before
        figures["after_over_before"] = {
            size: {"load_ms": round(figures[size]["load_ms"] / before["figures"][size]["load_ms"], 3),
                   "with_corrections_load_ms": round(figures[size]["with_corrections"]["load_ms"]
                                                     / before["figures"][size]["with_corrections"]["load_ms"], 3)}
            for size in (f"n={n}" for n in sizes)}
    write_results("scheduler_load_bench", figures, quick=args.quick)


if __name__ == "__main__":
    asyncio.run(main())
