"""Shell figures: `revagent --help`, and the read-only one-shots (`status`, `positions`, `orders`,
`risk show`) as whole processes on a fresh paper wallet, with no daemon (a one-shot session reads
the venue) and with a daemon owning the wallet (the command is forwarded to it); twelve `positions`
back to back without a daemon (a read never waits on the rate budget); and adding and listing
1,000 watchers through the store against a real redis-server (AOF on, fsync everysec).

Wall and CPU seconds per run come from the operating system's accounting of each finished child
(`resource.getrusage(RUSAGE_CHILDREN)`); quote medians (the machine is shared)."""

from __future__ import annotations

import asyncio
import json
import os
import resource
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

from _common import parse_args, write_results
from revagent.models import LegDirection, SessionId, WatcherLeg, WatcherPair, utc_now
from revagent.store.connection import connect
from revagent.store.repos import SessionStore
from revagent.store.server import spawn_redis

READS = (("status",), ("positions",), ("orders",), ("risk", "show"))
GOALS_S = {"help": 0.3, "with_daemon": 0.5, "without_daemon": 1.0}


def timed(args: tuple[str, ...], env: dict[str, str]) -> tuple[float, float]:
    """One run of `revagent ARGS`: (wall, cpu) seconds; a failed run stops the benchmark."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True, env=env,
                         timeout=120)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise SystemExit(f"revagent {' '.join(args)} exited {out.returncode}: {out.stderr[-1000:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def figures_of(runs: list[tuple[float, float]]) -> dict[str, Any]:
    walls, cpus = [w for w, _ in runs], [c for _, c in runs]
    return {"wall_ms": {"median": round(statistics.median(walls) * 1000, 1), "max": round(max(walls) * 1000, 1)},
            "cpu_ms": {"median": round(statistics.median(cpus) * 1000, 1)}, "runs": len(runs)}


def reads(env: dict[str, str], runs: int) -> dict[str, Any]:
    timed(("status",), env)  # warm-up: the wallet's keys, the venue, the embedded services exist
    return {" ".join(args): figures_of([timed(args, env) for _ in range(runs)]) for args in READS}


def start_daemon(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as fh:
        proc = subprocess.Popen([sys.executable, "-m", "revagent", "daemon"], stdout=fh, stderr=subprocess.STDOUT,
                                env=env, start_new_session=True)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the daemon exited: {log.read_text()[-2000:]}")
        out = subprocess.run([sys.executable, "-m", "revagent", "status", "--json"], capture_output=True, text=True,
                             env=env, timeout=60)
        if out.returncode == 0 and (json.loads(out.stdout).get("owner") or {}).get("pid") == proc.pid:
            return proc
        time.sleep(0.5)
    raise SystemExit("the daemon never took the lease")


def stop_daemon(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def stop_venue(data_dir: Path) -> None:
    from revagent.exchange.sim import service as venue

    for record in data_dir.rglob(venue.PID_NAME):
        venue.stop(record.parent)


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
    runs = 3 if args.quick else 9
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "config").mkdir()
        (home / "data").mkdir()
        server = spawn_redis(home / "redis", fsync="everysec")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REVAGENT_")}
        env.update({"REVAGENT_CONFIG": str(home / "config" / "config.toml"), "REVAGENT_DATA_DIR": str(home / "data"),
                    "REVAGENT_REDIS__URL": server.url, "REVAGENT_PAPER__PRICES": "synthetic"})
        daemon = None
        try:
            help_runs = [timed(("--help",), env) for _ in range(runs if args.quick else 15)]
            without = reads(env, runs)
            burst = [timed(("positions",), env) for _ in range(12)]
            daemon = start_daemon(env, home / "daemon.log")
            with_daemon = reads(env, runs)
            store_figures = asyncio.run(watchers_figures(server.url, 100 if args.quick else 1000))
        finally:
            if daemon is not None:
                stop_daemon(daemon)
            stop_venue(home / "data")
            server.stop()
    write_results("cli_bench", {
        "load_average_1m": round(load, 2),
        "goals_s": GOALS_S,
        "help": figures_of(help_runs),
        "without_daemon": without,
        "with_daemon": with_daemon,
        "positions_12_back_to_back_without_daemon": figures_of(burst),
        "store": store_figures,
    }, quick=args.quick)


if __name__ == "__main__":
    main()
