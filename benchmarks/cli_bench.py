"""Foundation figures: `revagent --help` wall time, and adding and listing 1,000 watchers through
the store against a real redis-server (AOF on, fsync everysec)."""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parse_args, write_results
from revagent.models import LegDirection, SessionId, WatcherLeg, WatcherPair, utc_now
from revagent.store.connection import connect
from revagent.store.repos import SessionStore
from revagent.store.server import spawn_redis


def help_times(runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "revagent", "--help"], capture_output=True, check=True)
        out.append(time.perf_counter() - started)
    return out


async def watchers_figures(url: str, n: int) -> dict[str, float]:
    redis = await connect(url)
    store = SessionStore(redis, SessionId(network="paper", address="0x" + "12" * 20))
    now = utc_now()
    pairs = [WatcherPair(market="BTC", created_at=now,
                         upper=WatcherLeg(level=Decimal(100000 + i), direction=LegDirection.ABOVE, thesis="t"),
                         lower=WatcherLeg(level=Decimal(50000 + i), direction=LegDirection.BELOW))
             for i in range(n)]
    started = time.perf_counter()
    for pair in pairs:  # one transaction each, as the CLI and the agent write them
        await store.watchers.put(pair)
    add_s = time.perf_counter() - started
    started = time.perf_counter()
    listed = await store.watchers.all()
    list_s = time.perf_counter() - started
    assert len(listed) == n
    await redis.aclose()
    return {"watchers": n, "add_total_ms": round(add_s * 1000, 1), "add_per_watcher_us": round(add_s / n * 1e6, 1),
            "list_all_ms": round(list_s * 1000, 1)}


def main() -> None:
    args = parse_args(__doc__ or "")
    runs = 3 if args.quick else 15
    times = help_times(runs)
    with tempfile.TemporaryDirectory() as tmp:
        server = spawn_redis(Path(tmp) / "redis", fsync="everysec")
        try:
            store_figures = asyncio.run(watchers_figures(server.url, 100 if args.quick else 1000))
        finally:
            server.stop()
    write_results("cli_bench", {
        "help_wall_ms": {"median": round(statistics.median(times) * 1000, 1), "max": round(max(times) * 1000, 1),
                         "runs": runs},
        "store": store_figures,
    }, quick=args.quick)


if __name__ == "__main__":
    main()
