"""Turn engine costs: the runtime snapshot and the per-turn overhead excluding model time.

- `snapshot_build`: `build_snapshot` + `text()` over 20 positions (with plans and stops), 500 watcher
  pairs and 100 notes (pure: inputs already in memory). The same parsed objects every build, as the
  live caches hand them out (the sorted active watchers and their lines are remembered);
  `snapshot_build_fresh`: new objects every build (after any change, or with cold caches).
- `snapshot_gather`: the same inputs read from Redis by `SnapshotSource` (watchers, notes, plans,
  risk state; the account view is in memory, as the sync loop keeps it) plus the build.
- `turn_text`: a whole chat turn with an instant in-process provider (no model time): transcript
  writes, compaction check, snapshot, prompt layers, history replay, usage and cost recorded, events.
- `turn_tool`: a turn with one tool call (`add_note`) and a second model call: twice the history
  work plus a tool through the executor.

Turns run in threads of up to 20 turns (a new thread every 20), so the figures are the overhead at
a typical history length; the history work grows with the live (uncompacted) history.

Each Redis-backed figure is measured twice: `_live` with the snapshot caches fed by invalidations
as a session feeds them (`SnapshotCaches(live=True)` following the bus, onto which the store's
`store.changed` events are forwarded from Redis as the Session's store-events task does: watchers,
notes and time alerts re-read only after a change, e.g. the note each tool turn adds), `_cold`
re-reading them from Redis every turn (`live_caches=False`; redis-py's pure-Python RESP parser makes
an HGETALL of 500 watchers cost milliseconds).

`tokens`: the prompt of each thread kind's first model call (tools + system + turn context with this
world's snapshot) in tokens, and the cached prefix (tools + system, ending at the system breakpoint),
counted by the project's fake Messages server's counting endpoint (`/v1/messages/count_tokens`, 3
characters of JSON per token: Claude's tokenizer differs, so read them as sizes to within ~20%),
with the models whose minimum cacheable length the prefix meets (capability table). The requests
are the ones the runner really sent, through the real SDK, to that fake. The model has vision, so
the watcher, early-warning and profit-target briefs carry their chart (synthetic 1h / 15m candles
here): `image_tokens` is its share of the first call, counted as the real API bills an image
(width * height / 750 tokens, the fake's `image_tokens`).

Aim: per-turn overhead p99 under 10 ms. Redis is a real redis-server on a unix socket (AOF
everysec), started in a temp dir. Turn figures are wall time; `cpu_p50_us` / `cpu_p99_us` are this
process's CPU time in the turn (the loop's thread): on a shared 2-core machine a wall-time tail well
above the CPU tail is time spent waiting for a core (the server, other processes), not the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import parse_args, run_before, summary_us, write_results
from revagent.bus import Bus
from revagent.engine.caches import SnapshotCaches
from revagent.engine.providers.base import (
    Finished,
    ModelRequest,
    StreamEvent,
    TextDelta,
    ToolCall,
    ToolResultBlock,
    Usage,
)
from revagent.engine.runner import TurnRunner
from revagent.engine.settings import EngineSettings
from revagent.engine.snapshot import Health, SnapshotInputs, SnapshotSource, build_snapshot
from revagent.engine.threads import Threads
from revagent.engine.tools import ToolServices, default_tools
from revagent.gateway import Gateway
from revagent.models import LegDirection, Note, SessionId, Side, TimeAlert, TradePlan, WatcherLeg, WatcherPair
from revagent.risk import AccountView, MarketRules, PositionView, RiskSettings, RiskState, TriggerOrder
from revagent.store.connection import connect
from revagent.store.invalidations import StoreInvalidations
from revagent.store.keys import Keyspace
from revagent.store.orders import OrderJournal, TradePlans
from revagent.store.repos import SessionStore
from revagent.store.risk import RiskStore
from revagent.store.server import spawn_redis
from revagent.store.threads import ThreadStore

NOW = datetime.now(UTC)
REPO = str(Path(__file__).resolve().parent.parent)
TURNS_PER_THREAD = 20
TURNS_ONLY_ENV = "REVAGENT_TURN_BENCH_TURNS_ONLY"
D = Decimal


def world(n_positions: int = 20, n_watchers: int = 500, n_notes: int = 100) -> dict[str, Any]:
    markets = {f"M{i:02d}": MarketRules(name=f"M{i:02d}", sz_decimals=2, max_leverage=20, mark_px=D(100 + i),
                                        mid_px=D(100 + i), price_time=NOW) for i in range(n_positions)}
    positions = tuple(PositionView(market=f"M{i:02d}", size=D(2) if i % 2 == 0 else D(-2), entry_px=D(100 + i),
                                   mark_px=D(101 + i), stop_px=D(95 + i) if i % 2 == 0 else D(106 + i), leverage=D(3))
                      for i in range(n_positions))
    triggers = tuple(TriggerOrder(market=p.market, side="sell" if p.size > 0 else "buy", size=D(2),
                                  trigger_px=p.stop_px or D(1), kind="stop", oid=i) for i, p in enumerate(positions))
    account = AccountView(equity=D(100_000), available_margin=D(80_000), positions=positions, triggers=triggers,
                          markets=markets)
    plans = [TradePlan(trade_id=f"tr_{i}", market=f"M{i:02d}", side=Side.LONG if i % 2 == 0 else Side.SHORT,
                       stop_px=positions[i].stop_px, target_px=D(130 + i), conviction=60, risk_usd=D(10),
                       status="open", opened_at=NOW) for i in range(n_positions)]
    watchers = [WatcherPair(market=f"W{i % 40}", upper=WatcherLeg(level=D(200 + i), direction=LegDirection.ABOVE,
                                                                   thesis="breakout of the weekly range"),
                            lower=WatcherLeg(level=D(50 + i % 40), direction=LegDirection.BELOW, thesis="breakdown"),
                            created_at=NOW - timedelta(seconds=i)) for i in range(n_watchers)]
    notes = [Note(text=f"note {i}: keep risk small on Mondays and respect the weekly open " * 2,
                  created_at=NOW - timedelta(minutes=i), updated_at=NOW) for i in range(n_notes)]
    alerts = [TimeAlert(fire_at=NOW + timedelta(hours=i + 1), prompt=f"review {i}", created_at=NOW)
              for i in range(10)]
    return {"account": account, "plans": plans, "watchers": watchers, "notes": notes, "alerts": alerts}


def bench_build(w: dict[str, Any], n: int, *, fresh: bool = False) -> dict[str, float]:
    """`fresh`: new watcher, alert and note objects every build (copied outside the timing)."""
    samples = []
    text_len = 0
    for _ in range(n):
        inputs = SnapshotInputs(now=NOW, settings=RiskSettings(), risk_state=RiskState(), account=w["account"],
                                plans=w["plans"], health=Health("consistent", True, 0.5),
                                **{k: [x.model_copy() for x in w[v]] if fresh else w[v]
                                   for k, v in (("watchers", "watchers"), ("time_alerts", "alerts"),
                                                ("notes", "notes"))})
        t = time.perf_counter()
        snap = build_snapshot(inputs)
        text_len = len(snap.text())
        samples.append(time.perf_counter() - t)
    return {**summary_us(samples), "text_chars": text_len}


class InstantProvider:
    """No model time: answers at once; with `tool`, calls it first and answers after the result."""

    name = "instant"

    def __init__(self, tool: bool) -> None:
        self.tool = tool
        self.n = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamEvent]:
        last = request.messages[-1]
        answered = any(isinstance(b, ToolResultBlock) for b in last.content)
        if self.tool and not answered:
            self.n += 1
            yield ToolCall(f"toolu_b{self.n}", "add_note", {"text": f"bench note {self.n}"})
            yield Usage(1200, 20, 0, 3000, "claude-sonnet-4-6")
            yield Finished("tool_use")
            return
        yield TextDelta("All quiet; ")
        yield TextDelta("nothing to do.")
        yield Usage(1200, 12, 0, 3000, "claude-sonnet-4-6")
        yield Finished("end_turn")


async def bench_turns(w: dict[str, Any], n: int, mode: str) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        proc = spawn_redis(Path(tmp), fsync="everysec")
        redis = await connect(proc.url)
        try:
            sid = SessionId(network="paper", address="0x" + "cd" * 20)
            keys = Keyspace(sid)
            store = SessionStore(redis, sid)
            await store.watchers.put_many(w["watchers"])
            await store.notes.put_many(w["notes"][:100])
            await store.time_alerts.put_many(w["alerts"])
            plans, journal = TradePlans(redis, keys), OrderJournal(redis, keys)
            for p in w["plans"]:
                await plans.save(p)
            risk = RiskStore(redis, keys, RiskSettings())
            account = w["account"]

            async def read_account() -> AccountView:
                return account  # type: ignore[no-any-return]

            bus = Bus()
            gateway = Gateway(exchange=None, journal=journal, plans=plans, account=read_account,
                              settings=risk.settings, risk_state=risk, bus=bus, lease=None)
            # as TurnEngine.build and Session wire it: parsed-model caches over the watchers, time
            # alerts and notes; live, they follow the store's invalidations forwarded onto the bus
            caches = SnapshotCaches(store, live=mode == "live")
            feed = StoreInvalidations(redis, keys.events)
            await feed.subscribe()

            async def forward() -> None:  # the Session's store-events task
                async for changed in feed:
                    bus.publish(changed)

            forwarder = asyncio.get_running_loop().create_task(forward(), name="bench:store-events")
            caches.follow(bus)
            source = SnapshotSource(clock=lambda: datetime.now(UTC), settings=risk.settings, risk_state=risk.get,
                                    account=read_account, plans=plans.open_trades, watchers=caches.watchers.all,
                                    time_alerts=caches.time_alerts.all, notes=caches.notes.all)
            gather = []
            for _ in range(max(5, n // 4)):
                t = time.perf_counter()
                (await source.build()).text()
                gather.append(time.perf_counter() - t)
            services = ToolServices(gateway=gateway, plans=plans, journal=journal, risk=risk, store=store,
                                    clock=lambda: datetime.now(UTC), snapshot=source, account=read_account)
            threads = ThreadStore(redis, keys)
            ops = Threads(threads)
            figures: dict[str, Any] = {f"snapshot_gather_{mode}": summary_us(gather)}
            for label, tool in (("turn_text", False), ("turn_tool", True)):
                runner = TurnRunner(threads=threads, provider=InstantProvider(tool), tools=default_tools(),
                                    services=services, settings=EngineSettings(max_usd_per_day=D(0)), bus=bus)
                thread = await ops.create_chat(label)
                for _ in range(3):  # warm up
                    await runner.submit(thread.id, "warm up")
                samples, cpu = [], []
                for i in range(n):
                    if i % TURNS_PER_THREAD == 0:  # a typical thread: at most 20 earlier turns in its history
                        thread = await ops.create_chat(f"{label} {i}")
                    t, c = time.perf_counter(), time.thread_time()
                    outcome = await runner.submit(thread.id, f"status please {i}")
                    samples.append(time.perf_counter() - t)
                    cpu.append(time.thread_time() - c)
                    assert outcome.status == "done", outcome.error
                on_cpu = summary_us(cpu)
                figures[f"{label}_{mode}"] = {**summary_us(samples), "cpu_p50_us": on_cpu["p50_us"],
                                              "cpu_p99_us": on_cpu["p99_us"], "history_entries_at_end":
                                              await threads.transcript_length(thread.id)}
                await runner.aclose()
            await caches.aclose()
            forwarder.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await forwarder
            await feed.aclose()
            return figures
        finally:
            await redis.aclose()
            proc.stop()


class _Candles:
    """Synthetic candles for the alert briefs (a deterministic wave around each market's mark)."""

    def __init__(self, account: AccountView) -> None:
        self.account = account

    async def candles(self, coin: str, interval: str, start_ms: int, end_ms: int) -> list[Any]:
        from revagent.exchange.types import Candle

        step = {"15m": 900_000, "1h": 3_600_000}[interval]
        rules = self.account.markets.get(coin)
        base = float(rules.mark_px) if rules is not None and rules.mark_px else 100.0
        out = []
        for i, t in enumerate(range(start_ms - start_ms % step, end_ms, step)):
            o = base * (1 + 0.01 * ((i % 12) - 6) / 6)
            c = o * (1.004 if i % 3 else 0.996)
            out.append(Candle.model_validate({"t": t, "T": t + step - 1, "s": coin, "i": interval, "o": str(o),
                                              "c": str(c), "h": str(max(o, c) * 1.003),
                                              "l": str(min(o, c) * 0.997), "v": "10", "n": 5}))
        return out


async def bench_tokens(w: dict[str, Any]) -> dict[str, Any]:
    """The first call of a chat and an alert turn, sized by the fake's token-counting endpoint."""
    sys.path.insert(0, REPO)  # the repository root: tests.fakes
    from tests.fakes.anthropic_server import FakeAnthropic, reply, text

    from revagent.engine.providers.anthropic import AnthropicProvider
    from revagent.engine.providers.capabilities import DEFAULT_MODEL, MODELS
    from revagent.engine.threads import run_alert_turn
    from revagent.store.alert_events import AlertEvent, AlertKind

    key = "sk-bench"
    with tempfile.TemporaryDirectory() as tmp:
        proc = spawn_redis(Path(tmp), fsync="everysec")
        redis = await connect(proc.url)
        try:
            async with FakeAnthropic(api_key=key) as fake:
                sid = SessionId(network="paper", address="0x" + "ef" * 20)
                keys = Keyspace(sid)
                store = SessionStore(redis, sid)
                await store.watchers.put_many(w["watchers"])
                await store.notes.put_many(w["notes"][:100])
                await store.time_alerts.put_many(w["alerts"])
                plans, journal = TradePlans(redis, keys), OrderJournal(redis, keys)
                for p in w["plans"]:
                    await plans.save(p)
                risk = RiskStore(redis, keys, RiskSettings())
                account = w["account"]

                async def read_account() -> AccountView:
                    return account  # type: ignore[no-any-return]

                bus = Bus()
                gateway = Gateway(exchange=None, journal=journal, plans=plans, account=read_account,
                                  settings=risk.settings, risk_state=risk, bus=bus, lease=None)
                caches = SnapshotCaches(store, live=False)
                source = SnapshotSource(clock=lambda: datetime.now(UTC), settings=risk.settings,
                                        risk_state=risk.get, account=read_account, plans=plans.open_trades,
                                        watchers=caches.watchers.all, time_alerts=caches.time_alerts.all,
                                        notes=caches.notes.all)
                services = ToolServices(gateway=gateway, plans=plans, journal=journal, risk=risk, store=store,
                                        clock=lambda: datetime.now(UTC), snapshot=source, account=read_account,
                                        market=_Candles(account))  # type: ignore[arg-type]
                provider = AnthropicProvider(api_key=key, base_url=fake.base_url, max_retries=0)
                runner = TurnRunner(threads=ThreadStore(redis, keys), provider=provider, tools=default_tools(),
                                    services=services, bus=bus,
                                    settings=EngineSettings(model=DEFAULT_MODEL, max_usd_per_day=D(0)))
                ops = Threads(runner.threads)
                fake.script(reply(text("All quiet.")), reply(text("Standing aside.")))
                chat = await ops.create_chat("bench tokens")
                assert (await runner.submit(chat.id, "status please")).status == "done"
                pair = w["watchers"][1]
                events = {
                    "watcher": AlertEvent(alert_id=pair.id, kind=AlertKind.WATCHER, trigger_key=f"{pair.id}#upper:g1",
                                          fired_at=NOW, price=D("201"),
                                          context={"market": pair.market, "slot": "upper", "level": "201",
                                                   "direction": "above", "thesis": "breakout",
                                                   "disarmed": [f"{pair.id}#lower:g1"]}),
                    "early_warning": AlertEvent(alert_id="tr_0", kind=AlertKind.EARLY_WARNING,
                                                trigger_key="tr_0#early_warning:g1", fired_at=NOW, price=D("97.5"),
                                                context={"market": "M00", "trade_id": "tr_0", "level": "97.5",
                                                         "direction": "below"}),
                    "profit_target": AlertEvent(alert_id="tr_2", kind=AlertKind.PROFIT_TARGET,
                                                trigger_key="tr_2#profit_target:g1", fired_at=NOW, price=D("132"),
                                                context={"market": "M02", "trade_id": "tr_2", "level": "132",
                                                         "direction": "above"}),
                    "stop_loss_verification": AlertEvent(
                        alert_id="tr_4", kind=AlertKind.STOP_LOSS_VERIFICATION,
                        trigger_key="tr_4#stop_loss_verification:g1", fired_at=NOW,
                        context={"market": "M04", "side": "long", "status": "wrong_level", "expected_px": "99",
                                 "expected_size": "2", "found_px": "98", "found_size": "2", "oids": [4]}),
                    "liquidation_warning": AlertEvent(
                        alert_id="tr_6", kind=AlertKind.LIQUIDATION_WARNING, trigger_key="tr_6#liquidation:g1",
                        fired_at=NOW, price=D("107"), context={"market": "M06", "trade_id": "tr_6"}),
                    "time": AlertEvent(alert_id="t_bench", kind=AlertKind.TIME,
                                       trigger_key="t_bench#2026-01-01T00:00:00Z", fired_at=NOW,
                                       context={"prompt": "review the book"}),
                }
                first_call: dict[str, int] = {}
                for name, event in events.items():
                    fake.script(reply(text("Standing aside.")))
                    first_call[name] = len(fake.requests)
                    assert (await run_alert_turn(runner, ops, event)).status == "done"
                client = provider.client().messages

                async def count(body: dict[str, Any]) -> int:
                    args = {k: body[k] for k in ("model", "messages", "system", "tools", "thinking",
                                                 "output_config") if k in body}
                    return int((await client.count_tokens(**args)).input_tokens)

                out: dict[str, Any] = {"counted_by": "fake count_tokens endpoint (3 chars of JSON per token)",
                                       "model": DEFAULT_MODEL}
                probe = [{"role": "user", "content": "."}]
                out["alert_kinds"] = {}
                for name, i in first_call.items():
                    body = fake.requests[i].body
                    total = await count(body)
                    prefix = await count({"model": body["model"], "messages": [{"role": "user", "content": "."}],
                                          "tools": body["tools"], "system": body["system"]})
                    no_image = {**body, "messages": [
                        {**m, "content": [b for b in m["content"] if b.get("type") != "image"]}
                        if isinstance(m["content"], list) else m for m in body["messages"]]}
                    out["alert_kinds"][name] = {"first_call_tokens": total, "turn_context_tokens": total - prefix,
                                                "image_tokens": total - await count(no_image)}
                for kind, rec in (("chat", fake.requests[0]), ("alert", fake.requests[first_call["watcher"]])):
                    body = rec.body
                    total = await count(body)
                    base = await count({"model": body["model"], "messages": probe})
                    tools = await count({"model": body["model"], "messages": probe, "tools": body["tools"]}) - base
                    prefix = await count({"model": body["model"], "messages": probe, "tools": body["tools"],
                                          "system": body["system"]}) - base
                    out[kind] = {"first_call_tokens": total, "tools_tokens": tools, "system_tokens": prefix - tools,
                                 "turn_context_tokens": total - prefix, "cached_prefix_tokens": prefix,
                                 "cache_read_on_a_repeat": None}
                # the fake counts 3 chars per token; at 4 (a denser tokenizer) the prefix is 3/4 of that:
                # a model's minimum is met for sure only when the lower figure meets it
                prefix = min(out["chat"]["cached_prefix_tokens"], out["alert"]["cached_prefix_tokens"])
                low = prefix * 3 // 4
                out["cached_prefix_tokens_at_4_chars"] = low
                out["prefix_meets_min_cache_of"] = {
                    str(n): sorted(m for m, r in MODELS.items() if r.min_cache_tokens == n)
                    for n in sorted({r.min_cache_tokens for r in MODELS.values()}) if n <= low}
                out["prefix_borderline_min_cache_of"] = {
                    str(n): sorted(m for m, r in MODELS.items() if r.min_cache_tokens == n)
                    for n in sorted({r.min_cache_tokens for r in MODELS.values()}) if low < n <= prefix}
                out["prefix_misses_min_cache_of"] = sorted(m for m, r in MODELS.items() if r.min_cache_tokens > prefix)
                # a second chat turn reads the cached prefix (and the stable history) back
                fake.script(reply(text("Still quiet.")))
                again = await runner.submit(chat.id, "and now?")
                assert again.status == "done"
                out["chat"]["cache_read_on_a_repeat"] = again.usage.cache_read_input_tokens
                await runner.aclose()
                await provider.aclose()
                return out
        finally:
            await redis.aclose()
            proc.stop()


def main() -> None:
    args = parse_args(__doc__ or "")
    n = 20 if args.quick else 300
    if os.environ.get(TURNS_ONLY_ENV):  # turn_ab_bench's rounds: the turn figures alone
        w = world()
        figures = {}
        for mode in ("live", "cold"):
            figures.update(asyncio.run(bench_turns(w, 200, mode)))
        write_results("turn_bench", figures, quick=True)
        return
    before = run_before("turn_bench", quick=args.quick)  # REVAGENT_BENCH_BEFORE: another tree first
    load_before = os.getloadavg()[0]
    w = world()
    figures: dict[str, Any] = {"shape": {"positions": 20, "watchers": 500, "notes": 100, "time_alerts": 10},
                               "snapshot_build": bench_build(w, n),
                               "snapshot_build_fresh": bench_build(w, n, fresh=True)}
    for mode in ("live", "cold"):  # snapshot caches fed by invalidations, or re-reading Redis every turn
        figures.update(asyncio.run(bench_turns(w, n if args.quick else 200, mode)))
    figures["tokens"] = asyncio.run(bench_tokens(w))
    figures["load_avg_1m"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
    if before is not None:
        figures["before"] = before
        figures["after_over_before"] = {
            k: {q: round(figures[k][q] / before["figures"][k][q], 3) for q in ("p50_us", "p99_us", "cpu_p99_us")}
            for k in ("turn_text_live", "turn_tool_live", "turn_text_cold", "turn_tool_cold")
            if k in before["figures"]}
    write_results("turn_bench", figures, quick=args.quick)


if __name__ == "__main__":
    main()
