"""The alert path end to end with a real Redis: scheduler tick cost, tick-to-enqueue, tick-to-turn.

Where `alerts_bench.py` measures the pure trigger index, this one measures what a session pays: the
`AlertScheduler` (lock, index, event, Lua enqueue with de-duplication, the leg's status written back
through the store) and the `AlertRunner` picking the entry up from the Redis stream.

Set-up per size n: n watcher pairs on one market stored in Redis (upper legs at 100000 + i, lower legs
at 50000 - i/4), then `AlertScheduler.load()` (rebuild from the store). Figures:
- `load_ms`: `load()` (read every pair, the queue's seen keys, `build_index`).
- `max_loop_block_ms`: the longest time the event loop could not run anything else during `load()`:
  a ticker task sleeps 10 ms at a time and records its largest gap beyond those 10 ms (what a lease
  renewal, the websocket or the TUI would have waited).
- `reload_all_ms`, `reload_max_loop_block_ms`: `reload_pairs()` (every pair re-read and reconciled, what
  follows a reconnect of the invalidation channel), nothing changed.
- `load_with_corrections`: `load()` again over a store where every 10th pair expired while the session
  was down and every 10th other pair's upper trigger key is among the queue's seen keys (enqueued before
  a crash): `legs_written` leg statuses go back to the store (EXPIRED x2, FIRED + DISARMED).
- `idle_tick`: `on_mids` with a price between the legs (nothing fires): the common case.
- `fire_tick`: `on_mids` moving the price 1 above the previous upper leg, so exactly one leg fires:
  tick to event enqueued and the pair's legs recorded (FIRED / DISARMED).
- `fire_tick_with_writeback`: `fire_tick` and then until the legs' write-back is done (since issue 18.3
  it follows the enqueue off the tick's path: `fire_tick` ends at the enqueue).
- `enqueue_only`: the Lua enqueue inside `fire_tick`; `bare_xadd`: one XADD of the same client beside
  each fire (`fire_tick_over_xadd` the ratio, the machine's load cancelled out).
- `tick_to_turn` (n = 1,000): from `on_mids` to the runner's handler being called (one entry at a time,
  the runner blocked on `XREADGROUP`).

Run: `python benchmarks/alerts_e2e_bench.py` (10, 1,000, 100,000) or `--quick` (10, 1,000; fewer samples).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parse_args, run_before, summary_us, write_results
from revagent.alerts.runner import AlertRunner, TurnOutcome, thread_id_for
from revagent.alerts.scheduler import AlertScheduler
from revagent.bus import Bus
from revagent.models import LegDirection, SessionId, WatcherLeg, WatcherPair
from revagent.store.alert_events import AlertEvent, level_trigger_key
from revagent.store.alert_queue import AlertQueue
from revagent.store.connection import connect
from revagent.store.repos import SessionStore
from revagent.store.server import spawn_redis

T0 = datetime(2026, 11, 24, 8, 0, tzinfo=UTC)


class TimedQueue(AlertQueue):
    """The real queue, timing each enqueue."""

    samples: list[float]

    async def enqueue(self, event: AlertEvent, *, attempt: int = 1, dedupe: bool = True) -> str | None:
        started = time.perf_counter()
        entry = await super().enqueue(event, attempt=attempt, dedupe=dedupe)
        self.samples.append(time.perf_counter() - started)
        return entry


class LoopTicker:
    """Measures how long the event loop is blocked: a task sleeping `period_s` at a time records the
    largest overshoot of its wake-ups (ms). `start()` then `await stop()` around the code measured."""

    def __init__(self, period_s: float = 0.010) -> None:
        self.period_s = period_s
        self.max_gap_s = 0.0
        self._sleeping_since: float | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="bench-loop-ticker")

    async def _run(self) -> None:
        while True:
            self._sleeping_since = time.perf_counter()
            await asyncio.sleep(self.period_s)
            self._record(time.perf_counter())

    def _record(self, now: float) -> None:
        if self._sleeping_since is not None:
            self.max_gap_s = max(self.max_gap_s, now - self._sleeping_since - self.period_s)

    async def stop(self) -> float:
        """Stop; the largest gap in ms, counting the one still open (a block that ended the code measured)."""
        assert self._task is not None, "start() first"
        self._record(time.perf_counter())
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.max_gap_s * 1000


async def timed_with_blocks(work: Awaitable[object]) -> tuple[float, float]:
    """Await `work`: (its wall time in ms, the longest event-loop block meanwhile in ms)."""
    ticker = LoopTicker()
    ticker.start()
    started = time.perf_counter()
    await work
    elapsed_ms = (time.perf_counter() - started) * 1000
    return elapsed_ms, await ticker.stop()


def pairs(n: int) -> list[WatcherPair]:
    return [WatcherPair(id=f"w_{i:07d}", market="BTC",
                        upper=WatcherLeg(level=Decimal(100_000 + i), direction=LegDirection.ABOVE),
                        lower=WatcherLeg(level=Decimal(50_000) - Decimal(i) / 4, direction=LegDirection.BELOW),
                        created_at=T0) for i in range(n)]


async def measure(url: str, n: int, *, idle_samples: int, fire_samples: int, turn_samples: int) -> dict[str, Any]:
    redis = await connect(url)
    try:
        await redis.flushall()
        store = SessionStore(redis, SessionId(network="paper", address="0x" + "be" * 20))
        every = pairs(n)
        for start in range(0, n, 5000):
            await store.watchers.put_many(every[start:start + 5000])
        queue = TimedQueue(redis, store.keys)
        queue.samples = []
        bus = Bus()
        sch = AlertScheduler(store, queue, bus, clock=lambda: T0)
        load_ms, max_block_ms = await timed_with_blocks(sch.load())
        reload_ms, reload_block_ms = await timed_with_blocks(sch.reload_pairs())
        idle: list[float] = []
        for i in range(idle_samples):
            px = Decimal(75_000 + (i % 7))
            t = time.perf_counter()
            await sch.on_mids({"BTC": px})
            idle.append(time.perf_counter() - t)
        fire: list[float] = []
        with_writeback: list[float] = []
        bare_xadd: list[float] = []
        legs_written = getattr(sch, "legs_written", None)  # absent before issue 18.3: written in the tick
        for i in range(min(fire_samples, n)):
            t = time.perf_counter()
            fired = await sch.on_mids({"BTC": Decimal(100_000 + i)})
            fire.append(time.perf_counter() - t)
            if legs_written is not None:
                await legs_written()
            with_writeback.append(time.perf_counter() - t)
            assert len(fired) == 1, fired
            await sch.on_mids({"BTC": Decimal(75_000)})  # back between the legs (not timed)
            t = time.perf_counter()
            await redis.xadd("bench:bare", {"k": "v"}, maxlen=1000, approximate=True)
            bare_xadd.append(time.perf_counter() - t)
        figures: dict[str, Any] = {
            "pairs": n,
            "armed_levels": 2 * n,
            "load_ms": round(load_ms, 1),
            "max_loop_block_ms": round(max_block_ms, 1),
            "reload_all_ms": round(reload_ms, 1),
            "reload_max_loop_block_ms": round(reload_block_ms, 1),
            "idle_tick": summary_us(idle),
            "fire_tick": summary_us(fire),
            "fire_tick_with_writeback": summary_us(with_writeback),
            "enqueue_only": summary_us(queue.samples[-len(fire):]),
            "bare_xadd": summary_us(bare_xadd),
        }
        figures["fire_tick_over_xadd"] = {
            q: round(figures["fire_tick"][q] / figures["bare_xadd"][q], 2) for q in ("p50_us", "p99_us")}
        if turn_samples:
            figures["tick_to_turn"] = await tick_to_turn(sch, queue, bus, n, turn_samples, offset=len(fire))
        await sch.aclose()
        return figures
    finally:
        await redis.aclose()


async def measure_corrections(url: str, n: int) -> dict[str, Any]:
    """`load()` when a tenth of the pairs expired and a tenth were enqueued before a crash."""
    redis = await connect(url)
    try:
        await redis.flushall()
        store = SessionStore(redis, SessionId(network="paper", address="0x" + "be" * 20))
        every = [p.model_copy(update={"expires_at": T0 - timedelta(minutes=1)}) if i % 10 == 5 else p
                 for i, p in enumerate(pairs(n))]
        for start in range(0, n, 5000):
            await store.watchers.put_many(every[start:start + 5000])
        queue = AlertQueue(redis, store.keys)
        seen = {level_trigger_key(p.id, "upper", 1): 1.0 for i, p in enumerate(every) if i % 10 == 0}
        if seen:
            await redis.zadd(queue.k.seen, seen)
        expired = sum(1 for i in range(n) if i % 10 == 5)
        sch = AlertScheduler(store, queue, Bus(), clock=lambda: T0)
        load_ms, max_block_ms = await timed_with_blocks(sch.load())
        await sch.aclose()
        assert len(sch.index) == 2 * (n - len(seen) - expired), len(sch.index)
        return {"pairs": n, "legs_written": 2 * (len(seen) + expired), "load_ms": round(load_ms, 1),
                "max_loop_block_ms": round(max_block_ms, 1)}
    finally:
        await redis.aclose()


async def tick_to_turn(sch: AlertScheduler, queue: AlertQueue, bus: Bus, n: int, samples: int,
                       offset: int) -> dict[str, float]:
    called: asyncio.Queue[float] = asyncio.Queue()

    async def handler(item: Any) -> TurnOutcome:
        called.put_nowait(time.perf_counter())
        return TurnOutcome(thread_id=thread_id_for(item.event))

    runner = AlertRunner(queue, bus, handler, block_ms=1000)
    task = asyncio.get_running_loop().create_task(runner.run(), name="bench-runner")
    out: list[float] = []
    try:
        for _ in range(offset):  # the entries `fire_tick` queued run first
            await asyncio.wait_for(called.get(), 10)
        for i in range(offset, min(offset + samples, n)):
            await asyncio.sleep(0.005)  # let the runner block on the stream again
            t = time.perf_counter()
            await sch.on_mids({"BTC": Decimal(100_000 + i)})
            out.append(await asyncio.wait_for(called.get(), 10) - t)
            await sch.on_mids({"BTC": Decimal(75_000)})
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    return summary_us(out)


async def main() -> None:
    args = parse_args(__doc__ or "")
    sizes = (10, 1_000) if args.quick else (10, 1_000, 100_000)
    before = run_before("alerts_e2e_bench", quick=args.quick)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        server = spawn_redis(Path(tmp), fsync="everysec")
        try:
            figures: dict[str, Any] = {}
            for n in sizes:
                figures[f"n={n}"] = await measure(
                    server.url, n, idle_samples=300 if args.quick else 3000,
                    fire_samples=50 if args.quick else 300,
                    turn_samples=(20 if args.quick else 200) if n == 1_000 else 0)
                figures[f"n={n}"]["load_with_corrections"] = await measure_corrections(server.url, n)
        finally:
            server.stop()
    figures["load_avg_1m"] = {"before": round(load, 2), "after": round(os.getloadavg()[0], 2)}
    if before is not None:
        figures["before"] = before
        figures["fire_tick_after_over_before"] = {
            size: {q: round(figures[size]["fire_tick"][q] / before["figures"][size]["fire_tick"][q], 3)
                   for q in ("p50_us", "p99_us")} for size in (f"n={n}" for n in sizes)}
    write_results("alerts_e2e_bench", figures, quick=args.quick)


if __name__ == "__main__":
    asyncio.run(main())
