"""The replay loop: an in-process simulator on a manual clock, a paper Session on the market clock, and
market time advanced step by step, each step only once the session is quiet.

Quiet means: the session has received the simulator's mids of this step, every bus consumer has
taken its events, no alert is queued or running, and the sync loop is `consistent`. So market time
never moves while an agent turn is in flight (the model's latency is not market time), and a run
is a function of the data, the seed, the seeds file and the model's answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from revagent.bus import Subscription
from revagent.clock import WALL, MarketClock
from revagent.config import DEFAULT_WALLET, Config, load_config
from revagent.errors import UsageError
from revagent.events import (
    AlertSignal,
    DriftFound,
    FillRecorded,
    MarksUpdated,
    MidsUpdated,
    OrderUpdated,
    RiskStateChanged,
    TurnEvent,
)
from revagent.exchange.sim import SimConfig, SimServer
from revagent.exchange.sim.feed import ReplayFeed
from revagent.exchange.sim.info import all_mids
from revagent.replay.seeds import Seeds, write_seeds
from revagent.runtime.session import Session

log = logging.getLogger(__name__)

DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
"""Market time at which a synthetic replay starts (fixed: two runs give the same timestamps)."""
QUIET_CHECKS = 3
WORK_EVENTS = (MidsUpdated, MarksUpdated, FillRecorded, OrderUpdated, RiskStateChanged, DriftFound)
"""The bus events whose consumers act on them (alerts, trade levels): a step waits until they are taken."""
SETTLE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ReplaySpec:
    """One run. `data`: `synthetic:SEED` or a file of ticks or candles (`feed.ReplayFeed`'s format);
    `model`: None for the offline policy; `speed`: None as fast as the session allows, else at most
    that many market seconds per wall second."""

    data: str
    out: Path
    hours: float | None = None
    start: datetime | None = None
    model: str | None = None
    seeds: Seeds | None = None
    speed: float | None = None
    step: timedelta = timedelta(minutes=1)
    ticks_per_step: int = 1
    history_minutes: int = 240
    balance: Decimal = Decimal(10_000)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or (self.model or "offline")


@dataclass
class RunLog:
    """What the driver saw on the bus and sampled at each step (market time, ms)."""

    start_ms: int = 0
    end_ms: int = 0
    equity: list[tuple[int, Decimal]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    risk_states: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    wall_s: float = 0.0
    turn_wall_s: float = 0.0
    turns: int = 0


def parse_data(data: str) -> tuple[str, int]:
    """(`prices` for SimConfig, seed) of a `--data` value."""
    if data.startswith("synthetic:"):
        try:
            return "synthetic", int(data.removeprefix("synthetic:"))
        except ValueError:
            raise UsageError(f"--data {data}: synthetic:SEED takes an integer seed") from None
    path = Path(data).expanduser()
    if not path.is_file():
        raise UsageError(f"--data {data}: no such file (or use synthetic:SEED)")
    from revagent.exchange.sim.recording import is_recording

    if is_recording(path):
        raise UsageError(f"--data {data}: a `sim record` recording plays at wall speed and cannot be replayed in "
                         "market time yet; give a file of ticks or candles (time, coin, price) instead")
    return f"replay:{path.resolve()}", 0


def replay_config(base: Config, *, data_dir: Path, venue_url: str, model: str | None) -> Config:
    """The run's config: the base's settings, one paper wallet, its own data dir and venue, the model."""
    llm = base.llm.model_copy(update={"provider": "offline"} if model is None else
                              {"provider": "anthropic", "model": model})
    # no periodic REST snapshot: it runs on a wall-time timer and would land at a different market minute
    # in each run (the websocket keeps the view; the driver asks for one at the end)
    sync = base.sync.model_copy(update={"snapshot_interval": timedelta(days=3650)})
    return base.model_copy(update={
        "wallets": {}, "default_wallet": DEFAULT_WALLET, "data_dir": str(data_dir), "llm": llm, "sync": sync,
        "paper": base.paper.model_copy(update={"venue_url": venue_url, "prices": "synthetic"})})


class Replay:
    """One run of `spec`; `await run()` returns its log and leaves the ledger in the run's store."""

    def __init__(self, spec: ReplaySpec, *, environ: Mapping[str, str] | None = None,
                 config_path: Path | None = None) -> None:
        self.spec = spec
        self.config_path = config_path
        self.environ = dict(os.environ if environ is None else environ)
        self.log = RunLog()
        self.sim: SimServer | None = None
        self.session: Session | None = None
        self.clock: MarketClock | None = None
        self._latest: dict[str, Decimal] = {}
        self._mids_changed = asyncio.Event()
        self._collector: asyncio.Task[None] | None = None
        self._fills_seen = 0

    # -- set-up ---------------------------------------------------------------------------------------
    def _sim_config(self) -> SimConfig:
        prices, seed = parse_data(self.spec.data)
        start = self.spec.start or DEFAULT_START
        start_ms = int(start.timestamp() * 1000)
        if prices.startswith("replay:") and self.spec.start is None:
            from revagent.exchange.sim.markets import MARKETS

            feed = ReplayFeed(Path(prices.removeprefix("replay:")), MARKETS, seed=0, start_ms=0)
            start_ms = feed.file_start_ms
            if self.spec.hours is None:
                self._file_hours = (feed.file_end_ms - start_ms) / 3_600_000
        return SimConfig.exchange_like(seed=seed, prices=prices, manual_clock=True, start_ms=start_ms,
                                       history_minutes=self.spec.history_minutes if prices == "synthetic" else 0,
                                       balance=self.spec.balance, controls=False)

    def hours(self) -> float:
        if self.spec.hours is not None:
            return self.spec.hours
        return float(getattr(self, "_file_hours", 24.0))

    async def _start(self) -> Session:
        cfg = self._sim_config()
        self.sim = SimServer(cfg)
        await self.sim.start()
        sim = self.sim
        state = self.spec.out / "state"
        if state.exists():
            await asyncio.to_thread(shutil.rmtree, state)
        state.mkdir(parents=True)
        base = load_config(self.config_path, environ=self.environ)
        config = replay_config(base, data_dir=state, venue_url=sim.base_url, model=self.spec.model)
        self.clock = MarketClock(sim.clock.now_ms)
        session = Session(config, config.wallet(), role="daemon", clock=self.clock)
        self.session = session
        sub = session.bus.subscribe(MidsUpdated, TurnEvent, AlertSignal, RiskStateChanged, maxsize=100_000)
        self._collector = asyncio.get_running_loop().create_task(self._collect(sub), name="replay:collect")
        await session.start(serve_commands=False)
        await session.start_runtime()
        await session.start_engine()
        if self.spec.seeds is not None:
            mids = {c: Decimal(v) for c, v in all_mids(sim.venue).items()}
            await write_seeds(session.store, *self.spec.seeds.resolve(mids, self.clock.now()))
        return session

    async def _collect(self, sub: Subscription) -> None:
        assert self.clock is not None
        clock = self.clock
        async for event in sub:
            at = clock.now_ms()
            if isinstance(event, MidsUpdated):
                self._latest.update(event.mids)
                self._mids_changed.set()
            elif isinstance(event, TurnEvent) and event.kind == "usage":
                self.log.usage.append({"at": at, "thread_id": event.thread_id, **event.data})
            elif isinstance(event, AlertSignal):
                self.log.signals.append({"at": at, "status": event.status, "kind": event.kind,
                                         "trigger_key": event.trigger_key, "thread_id": event.thread_id})
            elif isinstance(event, RiskStateChanged):
                self.log.risk_states.append({"at": at, "state": event.state, "multiplier": str(event.multiplier),
                                             "reason": event.reason})

    # -- the loop -------------------------------------------------------------------------------------
    async def run(self) -> RunLog:
        started = time.perf_counter()
        await self._start()
        try:
            assert self.sim is not None and self.clock is not None
            sim, clock = self.sim, self.clock
            self.log.start_ms = clock.now_ms()
            end_ms = self.log.start_ms + int(self.hours() * 3_600_000)
            step_ms = int(self.spec.step.total_seconds() * 1000)
            await self._settle(mids=False)  # nothing moved yet: the venue pushes mids at its first step
            self._sample()
            loop_started = time.perf_counter()
            while clock.now_ms() < end_ms:
                sim.advance(min(step_ms, end_ms - clock.now_ms()), steps=self.spec.ticks_per_step)
                clock.advanced()
                await self._settle()
                self._sample()
                self.log.steps += 1
                if self.spec.speed is not None:  # at most `speed` market seconds per wall second
                    ahead = (clock.now_ms() - self.log.start_ms) / 1000 / self.spec.speed - (
                        time.perf_counter() - loop_started)
                    if ahead > 0:
                        await WALL.sleep(ahead)
            self.log.end_ms = clock.now_ms()
            await self._ledger_caught_up()
        finally:
            self.log.wall_s = time.perf_counter() - started
        return self.log

    def _sample(self) -> None:
        assert self.sim is not None and self.session is not None and self.clock is not None
        venue = self.sim.venue
        value = venue.summary(venue.view_account(self.session.sid.address)).account_value
        self.log.equity.append((self.clock.now_ms(), Decimal(value)))

    def _busy(self) -> str:
        """Why the session is not quiet yet ('' when it is, as far as the loop can see)."""
        session = self.session
        assert session is not None
        backlog = session.bus.backlog(*WORK_EVENTS)
        if backlog:
            return f"{backlog} bus event(s) not taken yet"
        if session.alerts is not None and session.alerts.runner.stats.running:
            return f"alert turn(s) running: {sorted(session.alerts.runner.stats.running)}"
        if session.sync is not None and session.sync.phase != "consistent":
            return f"sync phase {session.sync.phase} ({session.sync.phase_reason})"
        return ""

    async def _settle(self, *, mids: bool = True) -> None:
        """Wait until the session is quiet at this market time (see the module docstring). When a turn
        ran or the account traded in this step, the trade levels are refreshed before time moves on
        (the scheduler would do it on its own timer, in wall time: too late for a replay)."""
        assert self.sim is not None and self.session is not None
        session = self.session
        target = {c: Decimal(v) for c, v in all_mids(self.sim.venue).items()}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_TIMEOUT_S
        while mids and any(self._latest.get(c) != px for c, px in target.items()):
            self._mids_changed.clear()
            try:
                await asyncio.wait_for(self._mids_changed.wait(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise RuntimeError("the session never received the simulator's prices: the replay stops") from None
        ran_turn = await self._quiet(deadline)
        if session.alerts is not None:  # the timer pass (time alerts, expiries, health) once the prices are in
            session.alerts.scheduler.wake_timer()
        while True:
            ran_turn = await self._quiet(deadline) or ran_turn
            account = self.sim.venue.view_account(session.sid.address)
            fills = len(account.fills)
            if session.sync is not None and (fills != self._fills_seen or account.positions):
                # the view the next turn reads is the exchange's at this market time, in every run (a
                # live session's REST snapshots come on a wall-time timer, which a replay cannot follow)
                await session.sync.reconcile_now()
            if not ran_turn and fills == self._fills_seen:
                return
            self._fills_seen = fills
            ran_turn = False
            if session.alerts is not None:
                await session.alerts.scheduler.refresh_trades()

    async def _quiet(self, deadline: float) -> bool:
        """Wait for QUIET_CHECKS quiet looks in a row; True if an alert turn ran meanwhile."""
        session = self.session
        assert session is not None
        loop = asyncio.get_running_loop()
        quiet = 0
        turn_started: float | None = None
        while quiet < QUIET_CHECKS:
            busy = self._busy()
            if not busy and session.alerts is not None:
                pending = await session.alerts.queue.pending()
                busy = f"alert(s) queued: {[p.event.trigger_key for p in pending]}" if pending else ""
            if busy:
                quiet = 0
                if turn_started is None and session.alerts is not None and session.alerts.runner.stats.running:
                    turn_started = time.perf_counter()
                    self.log.turns += 1
                if loop.time() > deadline:
                    raise RuntimeError("the session did not settle within "
                                       f"{SETTLE_TIMEOUT_S:.0f}s of wall time ({busy}): the replay stops")
                await WALL.sleep(0.002)
            else:
                quiet += 1
                await asyncio.sleep(0)
        if turn_started is not None:
            self.log.turn_wall_s += time.perf_counter() - turn_started
        return turn_started is not None

    async def _ledger_caught_up(self, timeout: float = 30.0) -> None:
        """Wait until the run's ledger holds every fill the venue made (the report is built from it)."""
        assert self.sim is not None and self.session is not None and self.session.sync is not None
        from revagent.store.ledger import LedgerStore

        session = self.session
        sync = session.sync
        assert sync is not None
        want = len(self.sim.venue.view_account(session.sid.address).fills)
        ledger = LedgerStore(session.store.redis, session.store.keys)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(await ledger.fills()) < want:
            if loop.time() > deadline:
                raise RuntimeError(f"the ledger holds {len(await ledger.fills())} of the venue's {want} fills")
            sync.request_snapshot(0)
            await WALL.sleep(0.05)

    async def aclose(self) -> None:
        if self._collector is not None:
            self._collector.cancel()
            await asyncio.gather(self._collector, return_exceptions=True)
        if self.session is not None:
            await self.session.stop("replay finished")
        if self.sim is not None:
            await self.sim.stop()
        state = self.spec.out / "state"
        from revagent.store.server import EmbeddedRedis

        if (state / "redis" / "started-by-revagent").exists():
            await asyncio.to_thread(EmbeddedRedis(state).stop)
