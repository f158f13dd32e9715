"""The TUI: time to first paint, and input latency while 1,000 price ticks per second arrive.

Figures:
- `import_s`: a fresh `python -c "import revagent.tui.app"` (Textual, Rich, the app), best of 3.
- `first_paint_pty`: `python -m revagent.tui` in a pseudo-terminal (100x30) against a real Redis
  (spawned in a temp dir), a fresh paper wallet and a paper venue in this process: process start to
  the first frame (`first_frame_s`: imports + session start + cold snapshot + first paint), and to
  the venue's equity on screen (`account_shown_s`: + agent approval + account read, done in the
  background after the first frame). Best of 3 (full) / 1 (quick). `restart`: the same wallet started
  again (warm: the last account view is stored), to the first frame, to the account on screen (the
  stored view, dimmed with its age, issue 23 item 18: goal 1.0 s) and to the live account (the
  header shows a sync phase: goal 2 s).
- `first_frame_in_process_ms`: app constructed with its cold snapshot -> Textual's `Ready` (first
  frame displayed), headless 160x48, the session already running (median of the runs).
- `input_idle` / `input_storm`: a key event handed to the driver -> the input box's value changed
  (`key_to_value`) and -> the next repaint after it (`key_to_paint`), with no ticks and then while a
  producer publishes 1,000 `MidsUpdated` per second (200 markets each, pre-built) on the bus.
  Also: keys lost (must be 0), ticks delivered per second, panel flushes per second, bus events the
  app missed (its bounded queue dropped the oldest), and event-loop lag (a 10 ms sleep's overshoot).

The app runs against an in-memory port (a real `Bus`, a fixed snapshot): the UI's own cost, not
Redis's. Run `python benchmarks/tui_bench.py` (full) or `--quick` (CI).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from _common import parse_args, summary_us, write_results
from revagent.bus import Bus, Subscription
from revagent.events import MidsUpdated
from revagent.risk import AccountView, MarketRules, PositionView
from revagent.tui.app import RevagentApp
from revagent.tui.port import CommandOutcome, HistoryEntry, Identity, PanelSnapshot, ThreadInfo
from revagent.tui.slash import OpenTradeCmd, SlashCommand

SRC = Path(__file__).resolve().parents[1] / "src"
NOW = datetime(2026, 11, 24, 14, 2, 11, tzinfo=UTC)
MARKETS = ["BTC", "ETH", "SOL", *(f"M{i:03d}" for i in range(197))]
SIZE = (160, 48)


class BenchPort:
    """A SessionPort with a real Bus and a fixed snapshot (no Redis, no exchange)."""

    def __init__(self) -> None:
        self.bus = Bus()
        rules = {m: MarketRules(name=m, sz_decimals=2, max_leverage=20, mark_px=Decimal(100 + i), price_time=NOW)
                 for i, m in enumerate(MARKETS)}
        positions = (
            PositionView(market="ETH", size=Decimal("0.412"), entry_px=Decimal("3101"), mark_px=Decimal("3118"),
                         stop_px=Decimal("3040"), target_px=Decimal("3280"), leverage=Decimal(5)),
            PositionView(market="SOL", size=Decimal("-12.5"), entry_px=Decimal("152.4"), mark_px=Decimal("151"),
                         stop_px=Decimal("156"), leverage=Decimal(3)),
        )
        self.snapshot = PanelSnapshot(account=AccountView(equity=Decimal("10250"), available_margin=Decimal("9120"),
                                                          positions=positions, markets=rules, as_of=NOW))

    @property
    def identity(self) -> Identity:
        return Identity("paper", "paper", "0x3f2a000000000000000000000000000000009c1d")

    def subscribe(self) -> Subscription:
        return self.bus.subscribe(maxsize=4000)

    async def connect(self) -> CommandOutcome:
        return CommandOutcome(True, "connected")

    async def load_snapshot(self) -> PanelSnapshot:
        return self.snapshot

    async def threads(self) -> Sequence[ThreadInfo]:
        return [ThreadInfo("main", "chat", "main")]

    async def history(self, thread_id: str) -> Sequence[HistoryEntry]:
        return []

    async def new_thread(self, title: str) -> ThreadInfo:
        return ThreadInfo(title, "chat", title)

    async def rename_thread(self, thread_id: str, title: str) -> None:
        return None

    async def close_thread(self, thread_id: str) -> None:
        return None

    async def send_chat(self, thread_id: str, text: str) -> CommandOutcome:
        return CommandOutcome(True, "sent")

    async def interrupt(self, thread_id: str) -> bool:
        return False

    async def answer_proposal(self, proposal_id: str, approve: bool) -> CommandOutcome:
        return CommandOutcome(False, "none")

    async def preview(self, cmd: OpenTradeCmd) -> CommandOutcome:
        return CommandOutcome(False, "none")

    async def run_slash(self, cmd: SlashCommand, action_id: str) -> CommandOutcome:
        return CommandOutcome(True, "done")


def _tick_pool(n: int = 50) -> list[MidsUpdated]:
    return [MidsUpdated(mids={m: Decimal(100 + i + k % 7) + Decimal(k) / 100 for i, m in enumerate(MARKETS)}, at=NOW)
            for k in range(n)]


async def _produce(bus: Bus, rate: int, stop: asyncio.Event, sent: list[int]) -> None:
    """Publish `rate` events per second in 10 ms batches, on schedule (catching up if late)."""
    pool = _tick_pool()
    per_batch = max(1, rate // 100)
    start = time.perf_counter()
    batches = 0
    while not stop.is_set():
        for _ in range(per_batch):
            bus.publish(pool[sent[0] % len(pool)])
            sent[0] += 1
        batches += 1
        delay = start + batches * 0.01 - time.perf_counter()
        await asyncio.sleep(max(0.0, delay))


async def _lag_probe(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(time.perf_counter() - t0 - 0.01)


async def _type_keys(app: RevagentApp, n: int) -> tuple[list[float], list[float], int]:
    from textual import events

    box = app.input_box
    driver = app._driver
    assert driver is not None
    changed = asyncio.Event()
    changed_at = [0.0]

    def on_value(value: str) -> None:  # called synchronously when the input's value changes
        changed_at[0] = time.perf_counter()
        changed.set()

    app.watch(box, "value", on_value, init=False)
    to_value: list[float] = []
    to_paint: list[float] = []
    lost = 0
    loop = asyncio.get_running_loop()
    for i in range(n):
        if i % 40 == 39:
            box.value = ""
            await asyncio.sleep(0.01)
        changed.clear()
        painted: asyncio.Future[float] = loop.create_future()
        key = events.Key("x", "x")
        key.set_sender(app)
        t0 = time.perf_counter()
        driver.send_message(key)
        try:
            await asyncio.wait_for(changed.wait(), 2.0)
        except TimeoutError:
            lost += 1
            continue
        app.call_after_refresh(lambda f=painted: f.done() or f.set_result(time.perf_counter()))
        t2 = await asyncio.wait_for(painted, 2.0)
        to_value.append(changed_at[0] - t0)
        to_paint.append(t2 - t0)
        await asyncio.sleep(0.02 + (i % 5) * 0.003)  # a fast typist: ~40 keys/s, jittered
    return to_value, to_paint, lost


async def _input_latency(keys: int, rate: int) -> dict[str, Any]:
    port = BenchPort()
    app = RevagentApp(port, initial=port.snapshot, live_clock=False, refresh_interval=3600)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        stop = asyncio.Event()
        sent = [0]
        lags: list[float] = []
        tasks = [asyncio.create_task(_lag_probe(stop, lags), name="bench:lag")]
        if rate:
            tasks.append(asyncio.create_task(_produce(port.bus, rate, stop, sent), name="bench:ticks"))
        await asyncio.sleep(0.3)
        t0, flushes0, received0 = time.perf_counter(), app.flushes, app.ticks.received
        to_value, to_paint, lost = await _type_keys(app, keys)
        elapsed = time.perf_counter() - t0
        stop.set()
        await asyncio.gather(*tasks)
        missed = app._sub.missed if app._sub is not None else 0
        return {
            "key_to_value": summary_us(to_value),
            "key_to_paint": summary_us(to_paint),
            "keys_lost": lost,
            "ticks_published_per_s": round(sent[0] / (elapsed + 0.3), 1),
            "ticks_consumed_per_s": round((app.ticks.received - received0) / elapsed, 1),
            "panel_flushes_per_s": round((app.flushes - flushes0) / elapsed, 1),
            "bus_events_missed": missed,
            "loop_lag": summary_us(lags),
        }


async def _first_frame(runs: int) -> float:
    samples = []
    for _ in range(runs):
        port = BenchPort()
        app = RevagentApp(port, initial=port.snapshot, live_clock=False, refresh_interval=3600)
        async with app.run_test(size=SIZE) as pilot:
            while app.first_frame_at is None:
                await pilot.pause(0.01)
            samples.append(app.first_frame_at - app.created_at)
    return round(statistics.median(samples) * 1000, 1)


def _import_s(runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import revagent.tui.app"], check=True)
        best = min(best, time.perf_counter() - t0)
    return round(best, 3)


def _first_paint_pty(runs: int) -> dict[str, float] | None:
    """Process start to the first frame (header and input box), and to the venue's equity on screen,
    in a pty, on a real Redis and a paper venue running in this process (a thread)."""
    try:
        import pexpect

        from revagent.exchange.sim import SimConfig
        from revagent.exchange.sim.threaded import ThreadedSim
        from revagent.store.server import spawn_redis
    except ImportError:
        return None
    first, account = float("inf"), float("inf")
    restart = {"first_frame_s": float("inf"), "account_shown_s": float("inf"), "live_s": float("inf")}
    with tempfile.TemporaryDirectory() as tmp, ThreadedSim(SimConfig(seed=1)) as sim:
        redis = spawn_redis(Path(tmp) / "redis")
        try:
            for i in range(runs):
                home = Path(tmp) / f"home{i}"
                (home / "config").mkdir(parents=True)
                env = {**os.environ, "TERM": "xterm-256color", "REVAGENT_CONFIG": str(home / "config" / "c.toml"),
                       "REVAGENT_DATA_DIR": str(home / "data"), "REVAGENT_REDIS__URL": redis.url,
                       "REVAGENT_PAPER__VENUE_URL": sim.base_url}
                env.pop("NO_COLOR", None)
                env["PYTHONPATH"] = os.pathsep.join([str(SRC), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
                for start in ("first", "restart"):
                    t0 = time.perf_counter()
                    child = pexpect.spawn(sys.executable, ["-m", "revagent.tui"], env=env, dimensions=(30, 100),
                                          encoding="utf-8", codec_errors="replace", timeout=60)
                    try:
                        child.expect("PAPER")
                        child.expect("message, or /command")
                        frame = time.perf_counter() - t0
                        child.expect(r"Eq (\x1b\[[0-9;]*m)*\$10,000\.00")
                        shown = time.perf_counter() - t0
                        child.expect(r"sync (\x1b\[[0-9;]*m)*(checking|reconciling|verifying|consistent|ok)")
                        live = time.perf_counter() - t0
                        if start == "first":
                            first, account = min(first, frame), min(account, shown)
                        else:
                            restart = {k: min(restart[k], v) for k, v in
                                       (("first_frame_s", frame), ("account_shown_s", shown), ("live_s", live))}
                        child.send("\x11")
                        child.expect(pexpect.EOF, timeout=30)
                    finally:
                        if child.isalive():
                            child.terminate(force=True)
        finally:
            redis.stop()
    return {"first_frame_s": round(first, 3), "account_shown_s": round(account, 3),
            "restart": {k: round(v, 3) for k, v in restart.items()}}


def main() -> None:
    args = parse_args(__doc__ or "")
    quick = bool(args.quick)
    keys = 30 if quick else 300
    figures: dict[str, Any] = {
        "load_average_1m": round(os.getloadavg()[0], 2),
        "import_s": _import_s(1 if quick else 3),
        "first_paint_pty": _first_paint_pty(1 if quick else 3),
        "first_frame_in_process_ms": asyncio.run(_first_frame(2 if quick else 7)),
        "terminal": f"{SIZE[0]}x{SIZE[1]}",
        "input_idle": asyncio.run(_input_latency(keys, 0)),
        "input_storm_1000_ticks_per_s": asyncio.run(_input_latency(keys, 1000)),
    }
    write_results("tui_bench", figures, quick=quick)


if __name__ == "__main__":
    main()
