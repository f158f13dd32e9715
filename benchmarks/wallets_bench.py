"""Many wallets on one machine: paper wallets under `revagent daemon --all` (one daemon process each).

Per size n (full: 1, 10, 50; --quick: 1, 3): n paper wallets in one config, each armed in the store
with W watcher pairs on BTC (full: 1,000; --quick: 100) before the supervisor starts; one paper
venue (the simulator, manual clock, in this process) serves them all; one redis-server (AOF on).
- `startup_all_s`: from starting the supervisor until every wallet's daemon says `running` and its
  sync `consistent` (read from the store, as `revagent server status` does).
- `rss_mb`: each daemon's resident set (VmRSS) once running: median, max, and the supervisor's own.
- `tick_to_alert_ms`: each round moves BTC across one more upper leg of every wallet; from the price
  move (the venue's control call) to each wallet's `alert.queued` note arriving here on its events
  channel (the entry is in the queue by then): p50 / p99 / max over all wallets and rounds.
- `stop_all_s`: SIGTERM to the supervisor until it exited (every daemon stopped in order).
Then `store_paths`: the same session paths (a watcher written in its transaction, every watcher
read, an alert enqueued / taken / acknowledged through the consumer group) on one redis-server over
TCP versus a local 3-master Redis Cluster (`spawn_cluster`, TCP): median and p99 per path and the
ratio cluster / single (and the single server on its unix socket, the embedded Redis's default).

Run: `python benchmarks/wallets_bench.py` or `--quick` (under ~60 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parse_args, percentile, write_results
from revagent.config import load_config
from revagent.models import LegDirection, SessionId, WatcherLeg, WatcherPair, utc_now
from revagent.store.alert_events import AlertEvent, AlertKind, trigger_key
from revagent.store.alert_queue import AlertQueue
from revagent.store.cluster import spawn_cluster
from revagent.store.connection import connect, resolve_session_id
from revagent.store.keys import Keyspace
from revagent.store.lease import current_holder
from revagent.store.repos import SessionStore
from revagent.store.server import spawn_redis

ROUND_TIMEOUT_S = 60.0


def pairs(n: int) -> list[WatcherPair]:
    now = utc_now()
    return [WatcherPair(market="BTC", created_at=now,
                        upper=WatcherLeg(level=Decimal(110500 + 1000 * i), direction=LegDirection.ABOVE, thesis="t"),
                        lower=WatcherLeg(level=Decimal(1000 + i), direction=LegDirection.BELOW))
            for i in range(n)]


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def arm(url: str, env: dict[str, str], watchers: int) -> dict[str, Keyspace]:
    cfg = load_config(environ=env)
    redis = await connect(url)
    keys: dict[str, Keyspace] = {}
    try:
        for name in cfg.wallet_names():
            sid = await resolve_session_id(cfg, cfg.wallet(name))
            store = SessionStore(redis, sid)
            for pair in pairs(watchers):
                await store.watchers.put(pair)
            keys[name] = Keyspace(sid)
    finally:
        await redis.aclose()
    return keys


async def all_running(redis: Any, keys: dict[str, Keyspace]) -> dict[str, int] | None:
    pids: dict[str, int] = {}
    for name, k in keys.items():
        holder = await current_holder(redis, k)
        own = await redis.hgetall(k.owner_status)
        if holder is None or own.get("pid") != str(holder.pid) or own.get("startup_phase") != "running" \
                or own.get("sync_phase") != "consistent":
            return None
        pids[name] = holder.pid
    return pids


class QueuedListener:
    """Every wallet's `alert.queued` notes on its events channel (pub/sub), with the time each arrived
    here: the queue's entry is deleted once its turn ends, so a poll of the stream can miss it."""

    def __init__(self, redis: Any, keys: dict[str, Keyspace]) -> None:
        self.redis = redis
        self.by_channel = {k.events: name for name, k in keys.items()}
        self.seen: dict[str, list[float]] = {name: [] for name in keys}
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.pubsub = self.redis.pubsub()
        await self.pubsub.subscribe(*self.by_channel)
        self.task = asyncio.get_running_loop().create_task(self._run(), name="bench:queued-listener")

    async def _run(self) -> None:
        while True:
            msg = await self.pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
            if msg is None:
                continue
            at = time.time()
            data = msg["data"]
            if isinstance(data, bytes):
                data = data.decode()
            if "alert.queued" in str(data):
                self.seen[self.by_channel[str(msg["channel"])]].append(at)

    def first_after(self, name: str, since: float) -> float | None:
        return next((t for t in self.seen[name] if t >= since), None)

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.pubsub.aclose()


async def run_size(n: int, watchers: int, rounds: int, sim: Any, venue_url: str, base: Path) -> dict[str, Any]:
    home = base / f"n{n}"
    (home / "config").mkdir(parents=True)
    body = 'default_wallet = "w0"\n\n' + "".join(f'[wallets.w{i}]\nnetwork = "paper"\n\n' for i in range(n))
    (home / "config" / "config.toml").write_text(body)
    server = spawn_redis(home / "redis", fsync="everysec")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVAGENT_")}
    env.update(REVAGENT_CONFIG=str(home / "config" / "config.toml"), REVAGENT_DATA_DIR=str(home / "data"),
               REVAGENT_REDIS__URL=server.url, REVAGENT_PAPER__VENUE_URL=venue_url,
               REVAGENT_LOG_LEVEL="info")
    try:
        sim.call(lambda s: s.set_price("BTC", "60000"))
        keys = await arm(server.url, env, watchers)
        redis = await connect(server.url)
        err = (home / "supervisor.err").open("w")
        started = time.perf_counter()
        sup = subprocess.Popen([sys.executable, "-m", "revagent", "daemon", "--all"], env=env,  # noqa: ASYNC220
                               stdout=subprocess.DEVNULL, stderr=err)
        try:
            pids = None
            while pids is None:
                if sup.poll() is not None:
                    raise SystemExit(f"the supervisor exited {sup.returncode}: see {home / 'supervisor.err'}")
                if time.perf_counter() - started > 60 + 6 * n:
                    raise SystemExit(f"not all {n} daemons running in time")
                await asyncio.sleep(0.2)
                pids = await all_running(redis, keys)
            startup_s = time.perf_counter() - started
            await asyncio.sleep(1.0)  # the alert schedulers have loaded their watchers
            rss = [rss_kb(p) / 1024 for p in pids.values()]
            latencies: list[float] = []
            missing: list[tuple[int, str]] = []
            listener = QueuedListener(redis, keys)
            await listener.start()
            for r in range(rounds):
                since = time.time()
                price = str(111000 + 1000 * r)
                sim.call(lambda s, px=price: s.set_price("BTC", px))
                got: dict[str, float] = {}
                deadline = time.monotonic() + ROUND_TIMEOUT_S
                while len(got) < n and time.monotonic() < deadline:
                    for name in keys:
                        t = listener.first_after(name, since)
                        if name not in got and t is not None:
                            got[name] = t
                    await asyncio.sleep(0.005)
                missing += [(r, name) for name in keys if name not in got]
                latencies += [(t - since) * 1000 for t in got.values()]
                await asyncio.sleep(0.3)
            await listener.stop()
            stopping = time.perf_counter()
            sup.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(sup.wait, 120)
            stop_s = time.perf_counter() - stopping
            if code != 0:
                raise SystemExit(f"the supervisor exited {code} on SIGTERM")
        finally:
            if sup.poll() is None:
                sup.kill()
                sup.wait(10)
            err.close()
            await redis.aclose()
        return {"wallets": n, "watchers_per_wallet": watchers, "rounds": rounds,
                "startup_all_s": round(startup_s, 2), "stop_all_s": round(stop_s, 2),
                "rss_mb": {"median": round(statistics.median(rss), 1), "max": round(max(rss), 1),
                           "total": round(sum(rss), 1)},
                "tick_to_alert_ms": {"n": len(latencies), "p50": round(percentile(latencies, 50), 1),
                                     "p99": round(percentile(latencies, 99), 1), "max": round(max(latencies), 1),
                                     "missing": len(missing), "timeout_s": ROUND_TIMEOUT_S},
                "missing_example": _log_tail(home, missing[0][1]) if missing else None,
                "load_avg_1m_after": round(os.getloadavg()[0], 2)}
    finally:
        server.stop()


def _log_tail(home: Path, wallet: str) -> list[str]:
    """The warnings and errors of a wallet whose alert did not come (for the JSON)."""
    log = home / "data" / "logs" / f"daemon-{wallet}.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line[:300] for line in lines if " WARNING " in line or " ERROR " in line or "alert" in line][-10:]


async def store_paths(url: str, samples: int) -> dict[str, list[float]]:
    redis = await connect(url)
    store = SessionStore(redis, SessionId(network="paper", address="0x" + "34" * 20))
    queue = AlertQueue(redis, store.keys)
    await queue.ensure_groups()
    out: dict[str, list[float]] = {"watcher_put": [], "watchers_all": [], "alert_cycle": []}
    try:
        for i, pair in enumerate(pairs(samples)):
            t = time.perf_counter()
            await store.watchers.put(pair)
            out["watcher_put"].append(time.perf_counter() - t)
            t = time.perf_counter()
            await store.watchers.all()
            out["watchers_all"].append(time.perf_counter() - t)
            event = AlertEvent(alert_id=f"w_{i}", kind=AlertKind.WATCHER,
                               trigger_key=trigger_key(f"w_{i}", "upper:g1"), fired_at=utc_now())
            t = time.perf_counter()
            await queue.enqueue(event)
            [item] = await queue.take(block_ms=0)
            await queue.mark_running(item, f"alert:w_{i}")
            await queue.done(item, summary="bench")
            out["alert_cycle"].append(time.perf_counter() - t)
    finally:
        await redis.aclose()
    return out


def summary_ms(samples: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(samples) * 1000, 3), "p99": round(percentile(samples, 99) * 1000, 3)}


async def cluster_ratio(base: Path, samples: int) -> dict[str, Any]:
    single = spawn_redis(base / "single", fsync="everysec", unix_socket=False)  # TCP, as the cluster's nodes
    try:
        one = await store_paths(single.url, samples)
    finally:
        single.stop()
    local = spawn_redis(base / "socket", fsync="everysec")  # the embedded Redis's own unix socket
    try:
        sock = await store_paths(local.url, samples)
    finally:
        local.stop()
    cluster = await asyncio.to_thread(spawn_cluster, base / "cluster")
    try:
        many = await store_paths(cluster.url, samples)
    finally:
        await asyncio.to_thread(cluster.stop)
    doc: dict[str, Any] = {"samples": samples}
    for path in one:
        a, b = summary_ms(one[path]), summary_ms(many[path])
        doc[path] = {"single_tcp_ms": a, "single_unix_socket_ms": summary_ms(sock[path]), "cluster_ms": b,
                     "ratio_median": round(b["median"] / a["median"], 2)}
    return doc


async def main() -> None:
    args = parse_args(__doc__ or "")
    sizes, watchers, rounds = ((1, 3), 100, 5) if args.quick else ((1, 10, 50), 1000, 10)
    from revagent.exchange.sim import SimConfig
    from revagent.exchange.sim.threaded import ThreadedSim

    sim = ThreadedSim(SimConfig(seed=5, controls=True, manual_clock=True, history_minutes=0))
    venue_url = sim.start()
    figures: dict[str, Any] = {"load_avg_1m_before": round(os.getloadavg()[0], 2), "sizes": []}
    try:
        with tempfile.TemporaryDirectory(prefix="wallets-bench-") as tmp:
            for n in sizes:
                figures["sizes"].append(await run_size(n, watchers, rounds, sim, venue_url, Path(tmp)))
            figures["store_paths"] = await cluster_ratio(Path(tmp), 100 if args.quick else 500)
    finally:
        sim.stop()
    write_results("wallets_bench", figures, quick=args.quick)
    print(json.dumps({"done": True}))


if __name__ == "__main__":
    asyncio.run(main())
