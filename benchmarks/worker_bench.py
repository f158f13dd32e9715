"""The python worker: start to first result for a 20-line pandas script on 1,000 candles.

Goal: under 300 ms warm (the session's pool keeps one spare worker ready: its numpy, pandas and
matplotlib are imported before the job arrives). Measured: warm (from `WorkerPool.run` with a ready
spare to the result: the inputs' JSON, the hand-over, the DataFrame, the script, the result back and
the worker's end) and cold (`Worker.start` to the result, imports included), plus the worker's own
time in the script; and a session's first call: the engine's start warms a spare in the
background (`WorkerPool.start`), the first run arrives `FIRST_CALL_AFTER_S` later (or when the
spare is ready, if later) and should be as fast as a warm one.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, percentile, write_results
from revagent.worker import Limits, Worker, WorkerPool, detect, probe
from revagent.worker.sandbox import MECHANISMS

SCRIPT = """
c = df["close"]
returns = c.pct_change()
ema20 = c.ewm(span=20, adjust=False).mean()
ema50 = c.ewm(span=50, adjust=False).mean()
prev = c.shift()
tr = pd.concat([df["high"] - df["low"], (df["high"] - prev).abs(), (df["low"] - prev).abs()], axis=1).max(axis=1)
atr = tr.ewm(alpha=1 / 14, adjust=False).mean()
typical = (df["high"] + df["low"] + c) / 3
vwap = (typical * df["volume"]).cumsum() / df["volume"].cumsum()
hourly = df.resample("1h").agg({"open": "first", "high": "max", "low": "min", "close": "last"})
vol = returns.rolling(24).std() * np.sqrt(24 * 365)
z = (c - c.rolling(50).mean()) / c.rolling(50).std()
swings = df[(df["high"] > df["high"].shift(1)) & (df["high"] > df["high"].shift(-1))]
levels = swings["high"].round(-1).value_counts().head(5)
distance = (c.iloc[-1] - vwap.iloc[-1]) / atr.iloc[-1]
ind_atr = indicators.atr(df["high"].tolist(), df["low"].tolist(), c.tolist(), 14)[-1]
print(f"{len(df)} candles, {len(hourly)} hours, {len(swings)} swing highs")
print(levels.to_dict())
summary = {"distance_vwap_atr": round(float(distance), 3), "z50": round(float(z.iloc[-1]), 3)}
summary | {"vol": round(float(vol.iloc[-1]), 4), "atr": round(float(atr.iloc[-1]), 2), "ind_atr": round(ind_atr, 2)}
"""


FIRST_CALL_AFTER_S = 5.0
"""When the session's first `run_python` arrives after the engine's start (the model's first reply, or
the later of the two: the spare's warm-up under load takes about as long)."""


def candles(n: int = 1000) -> dict[str, Any]:
    rows, px, t0 = [], 60_000.0, 1_767_225_600_000
    for i in range(n):
        o = px
        px = px * (1 + 0.002 * math.sin(i / 7) + 0.001 * math.cos(i / 3))
        hi, lo = max(o, px) * 1.001, min(o, px) * 0.999
        rows.append([t0 + i * 60_000, o, hi, lo, px, 10 + (i % 17)])
    return {"candles": [{"market": "BTC", "interval": "1m", "columns": ["t_ms", "open", "high", "low", "close",
                                                                        "volume"], "rows": rows}]}


def ms(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "p50_ms": round(percentile(samples, 50) * 1e3, 1),
            "p90_ms": round(percentile(samples, 90) * 1e3, 1), "max_ms": round(max(samples) * 1e3, 1)}


async def main(quick: bool) -> dict[str, Any]:
    reason = detect()
    if reason not in MECHANISMS or (reason := await probe()) is not None:
        return {"skipped": f"no confinement on this machine: {reason}"}
    inputs = candles()
    limits = Limits()
    warm_runs, cold_runs, first_runs = (3, 1, 1) if quick else (20, 5, 3)
    warm, inside, cold = [], [], []
    value = None
    pool = WorkerPool(limits)
    try:
        for _ in range(warm_runs):
            assert await pool.prewarm()
            started = time.perf_counter()
            result = await pool.run(SCRIPT, inputs)
            warm.append(time.perf_counter() - started)
            assert result.ok, result.error
            inside.append(result.elapsed_s)
            value = result.value
    finally:
        await pool.aclose()
    ready_after, first_call, first_warm = [], [], 0
    for _ in range(first_runs):  # a session: the engine's start warms a spare; the model's first reply takes a while
        pool = WorkerPool(limits)
        try:
            began = time.perf_counter()
            assert pool.start()
            spare = pool._spare
            assert spare is not None
            await asyncio.shield(spare.task)
            ready_after.append(time.perf_counter() - began)
            await asyncio.sleep(max(0.0, FIRST_CALL_AFTER_S - (time.perf_counter() - began)))
            started = time.perf_counter()
            result = await pool.run(SCRIPT, inputs)
            first_call.append(time.perf_counter() - started)
            assert result.ok, result.error
            first_warm += result.warm
        finally:
            await pool.aclose()
    for _ in range(cold_runs):
        started = time.perf_counter()
        result = await (await Worker.start(limits)).run(SCRIPT, inputs)
        cold.append(time.perf_counter() - started)
        assert result.ok, result.error
    return {"mechanism": str(detect()), "load_avg_1m": round(os.getloadavg()[0], 2), "candles": 1000,
            "script_lines": len(SCRIPT.strip().splitlines()), "warm": ms(warm), "cold": ms(cold),
            "script_inside_worker": ms(inside), "goal_warm_ms": 300, "value": value,
            "first_call_after_session_start": {"issued_after_s": FIRST_CALL_AFTER_S, **ms(first_call),
                                               "warm": f"{first_warm}/{first_runs}",
                                               "spare_ready_after_start": ms(ready_after)}}


if __name__ == "__main__":
    args = parse_args(__doc__ or "")
    write_results("worker_bench", asyncio.run(main(args.quick)), quick=args.quick)
