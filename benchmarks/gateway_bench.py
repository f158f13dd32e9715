"""Intent-to-ack latency of the order gateway against the local simulator, split by where time goes.

Setup (as in a session): the simulator as its own process (`revagent sim serve`, synthetic prices),
a real redis-server, the real bridge (coincurve signing, the Redis-backed host rate budget with a
capacity the simulator never exhausts), the REST account reader the gateway uses before every
verdict until sync's live view lands, and a held lease (fenced journal writes, `ensure_held`).

One cycle = three intents, each timed from `Gateway.submit` to its `GatewayResult`:
- `open`: market entry (IOC) + its stop as one normalTpsl group;
- `modify_stop`: the stop moved (batchModify);
- `close`: reduce-only IOC of the whole position.
(After each cycle the leftover stop is cancelled, untimed.)

Each intent's time is split into (wall-time sums of the calls, so `other` is what remains):
- `account_read`: the account view read before the verdict (4 parallel /info requests + projection);
- `risk`: `revagent.risk.evaluate` (pure CPU);
- `signing`: building and signing the action (`signed_payload`, CPU);
- `network`: POST /exchange until the answer (the venue's matching included);
- `order_status`: `orderStatus` queries by cloid (a batchModify's answer lacks the new oid);
- `bookkeeping`: journal writes (before and after sending), trade plans, risk state and settings, the
  lease check: every Redis round trip the gateway makes;
- `rate_budget`: time in the host rate budget's `acquire` (already inside `network`, `order_status`
  and `account_read`: not added again to the total).
- `calls_per_intent_p50.redis_round_trips`: every send to Redis during the intent (the account
  read's, the rate budget's and the bookkeeping's; a pipeline or a script is one).
Figures: p50/p99 per component and of the total, in microseconds.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import parse_args, run_before, summary_us, write_results

COMPONENTS = ("account_read", "risk", "signing", "network", "order_status", "bookkeeping", "rate_budget")
INTENTS = ("open", "modify_stop", "close")


class Split:
    """Per-intent accumulators: `add(component, seconds)`; `take()` returns and resets them."""

    def __init__(self) -> None:
        self.current: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)

    def add(self, component: str, seconds: float) -> None:
        self.current[component] += seconds
        self.calls[component] += 1

    def take(self) -> dict[str, float]:
        out = {**self.current, **{f"calls:{k}": float(v) for k, v in self.calls.items()}}
        self.current, self.calls = defaultdict(float), defaultdict(int)
        return out


def timed_async(split: Split, component: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return await fn(*args, **kwargs)
        finally:
            split.add(component, time.perf_counter() - started)

    return wrapper


def timed_sync(split: Split, component: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            split.add(component, time.perf_counter() - started)

    return wrapper


@contextmanager
def simulator(balance: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="gwbench-sim-") as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, "-m", "revagent.cli.sim", "serve", "--port", "0", "--seed", "7",
                                 "--balance", balance, "--port-file", str(port_file)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the simulator did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{int(port_file.read_text())}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


async def run(url: str, redis_url: str, cycles: int, warmup: int) -> dict[str, Any]:
    import revagent.exchange.hyperliquid.bridge as bridge_mod
    import revagent.gateway as gateway_mod
    from revagent.bus import Bus
    from revagent.config.keys import SecretKey
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.exchange.onboarding import approve_paper_agent
    from revagent.exchange.protocol import CancelRequest
    from revagent.gateway import Action, Gateway
    from revagent.models import SessionId
    from revagent.risk import ClosePosition, ModifyStop, OpenTrade, RiskSettings
    from revagent.store.connection import connect
    from revagent.store.keys import Keyspace
    from revagent.store.lease import Lease
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.store.rate_budget import RedisRateBudget
    from revagent.store.risk import RiskStore
    from revagent.sync.reader import BridgeAccountReader

    split = Split()
    master, agent = SecretKey.generate(), SecretKey.generate()
    await approve_paper_agent(url, master, agent.address(), "bench")  # `sim serve` is exchange-strict
    redis = await connect(redis_url)
    await redis.aclose()
    redis = _counting_client(redis_url, split)  # every send to Redis (one round trip) counted as `redis_round_trips`
    keys = Keyspace(SessionId(network="paper", address=master.address()))
    lease = Lease(redis, keys, role="bench")
    await lease.acquire()

    async def lost(reason: str) -> None:
        raise RuntimeError(f"the benchmark lost its lease: {reason}")

    renewer = asyncio.create_task(lease.keep_renewed(lost), name="gateway-bench:lease")
    budget = RedisRateBudget(redis, capacity=10**9, scope="gateway-bench")
    budget.acquire = timed_async(split, "rate_budget", budget.acquire)  # type: ignore[method-assign, assignment]
    bridge = HyperliquidBridge(network="paper", base_url=url, master=master.address(), signer=agent.account(),
                               budget=budget)
    bridge._http.exchange = timed_async(split, "network", bridge._http.exchange)  # type: ignore[method-assign, assignment]
    bridge.order_status_by_cloid = timed_async(  # type: ignore[method-assign, assignment]
        split, "order_status", bridge.order_status_by_cloid)
    vars(bridge_mod)["signed_payload"] = timed_sync(split, "signing", vars(bridge_mod)["signed_payload"])
    vars(gateway_mod)["evaluate"] = timed_sync(split, "risk", vars(gateway_mod)["evaluate"])
    journal, plans = OrderJournal(redis, keys, lease), TradePlans(redis, keys, lease)
    for obj, names in ((journal, ("record", "get", "for_action")), (plans, ("save", "open_for")),
                       (lease, ("ensure_held",))):
        for name in names:
            setattr(obj, name, timed_async(split, "bookkeeping", getattr(obj, name)))
    settings = RiskSettings(max_risk_per_trade_usd=Decimal(50), max_portfolio_risk_usd=Decimal(500),
                            max_order_notional_usd=Decimal(100_000), max_orders_per_minute=100_000)
    risk = RiskStore(redis, keys, settings, lease)
    for name in ("get", "put", "settings"):
        setattr(risk, name, timed_async(split, "bookkeeping", getattr(risk, name)))
    reader = BridgeAccountReader(bridge, plans, journal)
    # the reader's own calls to plans count as part of the read, not of bookkeeping: time the whole read
    account = timed_async(split, "account_read", reader.__call__)
    gateway = Gateway(exchange=bridge, journal=journal, plans=plans, account=account, settings=risk.settings,
                      risk_state=risk, bus=Bus(), lease=lease)
    samples: dict[str, list[dict[str, float]]] = {k: [] for k in INTENTS}
    failures: list[str] = []
    try:
        for i in range(warmup + cycles):
            mark = (await bridge.all_mids())["BTC"]
            steps: list[tuple[str, Any]] = [
                ("open", OpenTrade(market="BTC", side="long", origin="human", stop_px=_grid(mark * Decimal("0.98")),
                                   risk_usd=Decimal(20))),
                ("modify_stop", ModifyStop(market="BTC", origin="human", stop_px=_grid(mark * Decimal("0.985")))),
                ("close", ClosePosition(market="BTC", origin="human")),
            ]
            for kind, intent in steps:
                split.take()
                started = time.perf_counter()
                result = await gateway.submit(intent, Action.command(f"bench-{i}-{kind}"))
                total = time.perf_counter() - started
                parts = split.take()
                if not result.ok:
                    failures.append(f"{kind}: {result.status} {result.message}")
                    continue
                if i >= warmup:
                    samples[kind].append({"total": total, **parts})
            leftovers = [o for o in await bridge.open_orders() if o.coin == "BTC"]
            if leftovers:
                await bridge.cancel_orders([CancelRequest("BTC", oid=o.oid) for o in leftovers])
    finally:
        renewer.cancel()
        await asyncio.gather(renewer, return_exceptions=True)
        await bridge.aclose()
        await lease.release()
        await redis.aclose()
    return _figures(samples, failures)


def _counting_client(url: str, split: Split) -> Any:
    """A client like `connect`'s whose connections count their sends: one send is one round trip
    (a pipeline or a script is one)."""
    import redis.asyncio as aioredis

    base = aioredis.ConnectionPool.from_url(url).connection_class

    class Counting(base):  # type: ignore[valid-type, misc]
        async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
            split.calls["redis_round_trips"] += 1
            await super().send_packed_command(command, check_health)

    return aioredis.Redis.from_url(url, decode_responses=True, socket_connect_timeout=5, socket_timeout=10,
                                   connection_class=Counting)


def _grid(px: Decimal) -> Decimal:
    return px.quantize(Decimal(1))


def _figures(samples: dict[str, list[dict[str, float]]], failures: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {"failures": len(failures), "first_failures": failures[:5]}
    for kind, rows in samples.items():
        if not rows:
            continue
        doc: dict[str, Any] = {"total": summary_us([r["total"] for r in rows])}
        for comp in COMPONENTS:
            doc[comp] = summary_us([r.get(comp, 0.0) for r in rows])
        doc["other"] = summary_us([max(0.0, r["total"] - sum(r.get(c, 0.0) for c in COMPONENTS
                                                              if c != "rate_budget")) for r in rows])
        doc["calls_per_intent_p50"] = {comp: sorted(r.get(f"calls:{comp}", 0.0) for r in rows)[len(rows) // 2]
                                       for comp in (*COMPONENTS, "redis_round_trips")}
        doc["share_of_p50_total"] = {
            comp: round(doc[comp]["p50_us"] / doc["total"]["p50_us"], 3) for comp in (*COMPONENTS, "other")}
        figures[kind] = doc
    return figures


def main() -> None:
    args = parse_args(__doc__ or "gateway benchmark")
    from revagent.store.server import spawn_redis

    cycles, warmup = (15, 3) if args.quick else (300, 20)
    before = run_before("gateway_bench", quick=args.quick)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="gwbench-redis-") as tmp, simulator("1000000") as url:
        redis = spawn_redis(Path(tmp), fsync="everysec")
        try:
            figures = asyncio.run(run(url, redis.url, cycles, warmup))
        finally:
            redis.stop()
    figures["cycles"] = cycles
    figures["load_avg_1m"] = {"before": round(load_before[0], 2), "after": round(os.getloadavg()[0], 2)}
    if before is not None:
        figures["before"] = before
        figures["after_over_before"] = {
            kind: {q: round(figures[kind]["total"][q] / before["figures"][kind]["total"][q], 3)
                   for q in ("p50_us", "p99_us")}
            for kind in INTENTS if kind in figures and kind in before["figures"]}
    write_results("gateway_bench", figures, quick=args.quick)


if __name__ == "__main__":
    main()
