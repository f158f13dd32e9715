"""The chaos harness: a paper venue (the simulator, in a thread of this process), an embedded Redis, real
`revagent` processes (a daemon, one-shot commands) that are SIGKILLed, stalled and faulted at seeded
random points, a monitor that samples the venue's truth every 50 ms, and an audit of that truth
against the journal and the ledger.

    with World(home, seed=1234) as w:      # prints the seed; a failure names it
        w.start_daemon(); w.wait_running()
        ...faults...
        report = w.audit()                 # Audit: duplicates, lost/doubled fills, unprotected s, ...

Used by `tests/chaos/` (a few iterations each) and `benchmarks/chaos_bench.py` (the long form).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from revagent.exchange.sim import SimConfig
from revagent.exchange.sim.threaded import ThreadedSim
from revagent.store.server import servers_for_dir

ROOT = Path(__file__).resolve().parents[2]
STOP_GRACE_S = 3.0
# what the audit allows beyond stop_grace before a position counts as unprotected: the sync loop's tick,
# the stop's round trip and this monitor's own sampling
UNPROTECTED_SLACK_S = 3.0
D = Decimal
PHASE_LINE = re.compile(r"start-up: (trading on|running) \(([0-9.]+)s since the process started\)")


def redis_servers_for(data_dir: Path) -> list[int]:
    """The pids of every live redis-server working in this data dir's embedded Redis dir (the same
    scan the embedded server uses before it would ever start one)."""
    return servers_for_dir(data_dir / "redis")


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Audit:
    """What the venue says against what revagent recorded, after a run."""

    venue_orders: int = 0
    venue_fills: int = 0
    orders_outside_journal: list[str] = field(default_factory=list)  # venue cloids the journal never saw
    duplicate_orders: list[str] = field(default_factory=list)  # actions/cloids with more than one venue order
    lost_fills: list[int] = field(default_factory=list)  # venue tids missing from the ledger
    doubled_fills: list[int] = field(default_factory=list)  # tids recorded twice
    unknown_fills: list[int] = field(default_factory=list)  # ledger tids the venue never made
    position_mismatch: dict[str, tuple[str, str]] = field(default_factory=dict)  # coin -> (venue, ledger)
    unprotected_s: float = 0.0  # the longest time a position had no stop, beyond stop_grace
    unprotected_total_s: float = 0.0
    unprotected_raw_s: float = 0.0  # every second a position had no stop, with or without an owner running
    doubled_tool_effects: list[str] = field(default_factory=list)
    owners_at_once: int = 0  # samples where the lease moved to a new pid while the old owner lived
    servers_at_once: int = 0  # the most redis-servers on the data dir in one sample

    def problems(self) -> list[str]:
        out = []
        for name in ("orders_outside_journal", "duplicate_orders", "lost_fills", "doubled_fills", "unknown_fills",
                     "doubled_tool_effects"):
            value = getattr(self, name)
            if value:
                out.append(f"{name}: {value}")
        if self.position_mismatch:
            out.append(f"position_mismatch (venue, ledger): {self.position_mismatch}")
        if self.unprotected_s > 0:
            out.append(f"unprotected for {self.unprotected_s:.1f} s beyond stop_grace {STOP_GRACE_S:g} s"
                       f" + {UNPROTECTED_SLACK_S:g} s")
        if self.owners_at_once:
            out.append(f"two owners at once in {self.owners_at_once} samples")
        if self.servers_at_once > 1:
            out.append(f"{self.servers_at_once} redis-servers on one data dir")
        return out

    def as_dict(self) -> dict[str, Any]:
        return {k: (v if not isinstance(v, dict) else {c: list(p) for c, p in v.items()})
                for k, v in self.__dict__.items()}


class Monitor(threading.Thread):
    """Samples the venue's own state (positions and stop triggers, straight from the simulator), the
    embedded Redis servers and the lease holder every `period` seconds."""

    def __init__(self, world: World, period: float = 0.05) -> None:
        super().__init__(name="chaos-monitor", daemon=True)
        self.world = world
        self.period = period
        self.stop_event = threading.Event()
        self.unprotected_since: float | None = None
        self.longest_unprotected = 0.0
        self.total_unprotected_beyond = 0.0
        self.unprotected_windows: list[float] = []
        self.raw_unprotected = 0.0
        self.exposed_coins: set[str] = set()
        self.t0 = time.monotonic()
        self.samples = 0
        self.last_error = ""
        self.max_servers = 0
        self.owner_overlaps = 0
        self.last_holder: int | None = None

    def run(self) -> None:
        while not self.stop_event.wait(self.period):
            try:
                self.sample()
                self.samples += 1
            except Exception as exc:
                self.last_error = repr(exc)
                continue

    def sample(self) -> None:
        w = self.world
        now = time.monotonic()
        if w.master:
            # a position counts as unprotected only while an owner runs (that could protect it); the raw
            # time without a stop, owner or not, is `raw_unprotected`
            coins = w.sim.call(lambda s: _unprotected_coins(s, w.master or ""))
            raw = bool(coins)
            if raw and w.owner_up:
                self.exposed_coins.update(coins)
            if raw:
                self.raw_unprotected += self.period
            exposed = raw and w.owner_up
            if exposed and self.unprotected_since is None:
                self.unprotected_since = now
            elif not exposed and self.unprotected_since is not None:
                self._close_window(now)
        self.max_servers = max(self.max_servers, len(redis_servers_for(w.data)))
        holder = w.lease_holder()
        if holder is not None and holder != self.last_holder:
            if self.last_holder is not None and alive(self.last_holder) and self.last_holder in w.owner_pids:
                self.owner_overlaps += 1
            self.last_holder = holder

    def _close_window(self, now: float) -> None:
        assert self.unprotected_since is not None
        took = now - self.unprotected_since
        self.unprotected_windows.append(took)
        if took > STOP_GRACE_S:
            print(f"chaos monitor: {sorted(self.exposed_coins)} without a stop for {took:.2f} s from "
                  f"t={self.unprotected_since - self.t0:.2f} s", flush=True)
        if took > STOP_GRACE_S + 1.0:  # what the owner was doing meanwhile (its log's last lines)
            print("\n".join(f"  | {line}" for line in self.world.logs[-40:]), flush=True)
        self.exposed_coins = set()
        self.longest_unprotected = max(self.longest_unprotected, took)
        self.total_unprotected_beyond += max(0.0, took - STOP_GRACE_S)
        self.unprotected_since = None

    def longest(self) -> float:
        """The longest window so far, the one still open included."""
        since = self.unprotected_since
        return max(self.longest_unprotected, 0.0 if since is None else time.monotonic() - since)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(5)
        if self.unprotected_since is not None:
            self._close_window(time.monotonic())


def _unprotected_coins(s: Any, master: str) -> list[str]:
    """Coins where `master` holds a position and the venue holds no stop trigger for it."""
    positions = s.venue.view_account(master).positions
    open_orders = s.venue.open_by_user.get(master, {}).values()
    stops = {o.coin for o in open_orders if o.trigger is not None and o.trigger.tpsl == "sl"}
    return [coin for coin, p in positions.items() if p.szi != 0 and coin not in stops]


class World:
    """One chaos run's venue, Redis, processes and monitor. Use as a context manager."""

    def __init__(self, home: Path, seed: int, *, env: dict[str, str] | None = None,
                 model_url: str | None = None) -> None:
        self.home = home
        self.data = home / "data"
        self.seed = seed
        self.rng = random.Random(seed)
        self.sim = ThreadedSim(SimConfig(seed=seed, controls=True, manual_clock=True, history_minutes=0))
        self.env = dict(env if env is not None else os.environ)
        self.master: str | None = None
        self.daemon: subprocess.Popen[str] | None = None
        self.owner_pids: set[int] = set()
        self.owner_up = False  # an owner has said it is running (and has not been killed since)
        self.faults: Counter[str] = Counter()
        self.consistent_after: list[float] = []  # seconds from a fault's end to a consistent owner again
        self.model_url = model_url
        self.monitor: Monitor | None = None
        self._redis_url: str | None = None
        self.logs: list[str] = []
        self.startup_phases: dict[str, list[float]] = {}  # "trading on" / "running" -> seconds after spawn

    # ------------------------------------------------------------------ set-up
    def __enter__(self) -> World:
        print(f"chaos seed {self.seed} (rerun with REVAGENT_CHAOS_SEED={self.seed})", flush=True)
        (self.home / "config").mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        url = self.sim.start()
        self.sim.call(lambda s: s.set_price("BTC", "60000"))
        self.sim.call(lambda s: s.set_price("ETH", "3000"))
        for key in [k for k in self.env if k.startswith("REVAGENT_") or k == "ANTHROPIC_API_KEY"]:
            del self.env[key]
        self.env.update({
            "REVAGENT_CONFIG": str(self.home / "config" / "config.toml"),
            "REVAGENT_DATA_DIR": str(self.data),
            "REVAGENT_PAPER__VENUE_URL": url,
            "REVAGENT_RISK__STOP_GRACE": f"{STOP_GRACE_S:g}s",
            "PYTHONPATH": str(ROOT),
            "COLUMNS": "200",
        })
        if self.model_url:
            self.env["ANTHROPIC_API_KEY"] = "sk-ant-test-key"
            self.env["REVAGENT_LLM__BASE_URL"] = self.model_url
        return self

    def __exit__(self, *exc: object) -> None:
        if self.monitor is not None:
            self.monitor.finish()
        self.stop_daemon()
        for pid in redis_servers_for(self.data):
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass
        from tests.conftest import stop_background_services

        stop_background_services(self.data)
        self.sim.stop()

    def start_monitor(self) -> None:
        if self.master is None:
            self.master = self.status()["session"].split(":", 1)[1]
        self.monitor = Monitor(self)
        self.monitor.start()

    # ------------------------------------------------------------------ processes
    def revagent(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "revagent", *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env, cwd=ROOT)

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen([sys.executable, "-m", "revagent", *args], env=self.env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def status(self) -> dict[str, Any]:
        out = self.revagent("status", "--json")
        assert out.returncode == 0, out.stderr + out.stdout
        doc: dict[str, Any] = json.loads(out.stdout)
        return doc

    def start_daemon(self) -> subprocess.Popen[str]:
        assert self.daemon is None or self.daemon.poll() is not None
        self.daemon = subprocess.Popen([sys.executable, "-m", "revagent", "daemon"], env=self.env, cwd=ROOT,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.owner_pids.add(self.daemon.pid)
        self._drain(self.daemon)
        return self.daemon

    def _drain(self, proc: subprocess.Popen[str]) -> None:
        """Keep the last lines of a process's stderr (a full pipe would stall it)."""
        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                self.logs.append(f"[{proc.pid}] {line.rstrip()}")
                del self.logs[:-2000]
        threading.Thread(target=read, name=f"drain-{proc.pid}", daemon=True).start()

    def wait_running(self, timeout: float = 90) -> float:
        """Wait until the daemon says `start-up: running` and holds the lease; returns the seconds it took."""
        assert self.daemon is not None
        t0 = time.monotonic()
        pid = self.daemon.pid
        mark = f"[{pid}] "

        def ready() -> bool:
            assert self.daemon is not None
            if self.daemon.poll() is not None:
                raise AssertionError(f"the daemon exited {self.daemon.returncode}:\n" + self.tail())
            running = any(line.startswith(mark) and "start-up: running" in line for line in self.logs)
            return running and self.lease_holder() == pid

        self.wait_for(ready, timeout, "the daemon to say it is running and to own the wallet")
        self.owner_up = True
        for line in self.logs:  # the phases it logged, in seconds since its process started
            found = PHASE_LINE.search(line) if line.startswith(mark) else None
            if found:
                self.startup_phases.setdefault(found[1], []).append(float(found[2]))
        return time.monotonic() - t0

    def kill_daemon(self) -> None:
        self.owner_up = False
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGKILL)
            self.daemon.wait(30)
            self.faults["sigkill_daemon"] += 1

    def stop_daemon(self) -> int | None:
        self.owner_up = False
        if self.daemon is None:
            return None
        if self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(60)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(10)
        return self.daemon.returncode

    def tail(self, n: int = 60) -> str:
        return "\n".join(self.logs[-n:])

    @staticmethod
    def wait_for(check: Any, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")

    # ------------------------------------------------------------------ Redis
    def redis_url(self) -> str:
        return (self.data / "redis" / "url").read_text().strip()

    def _sync_redis(self) -> Any:
        import redis as sync_redis

        return sync_redis.Redis.from_url(self.redis_url(), decode_responses=True, socket_timeout=1,
                                         socket_connect_timeout=1)

    def _prefix(self) -> str:
        assert self.master is not None
        return "rev:{paper:" + self.master + "}:"

    def lease_holder(self) -> int | None:
        if self.master is None:
            self.master = self.status()["session"].split(":", 1)[1]
        try:
            client = self._sync_redis()
            try:
                raw = client.get(self._prefix() + "lease")
            finally:
                client.close()
        except Exception:
            return None
        return int(json.loads(raw)["pid"]) if raw else None

    def commands_sent(self) -> int:
        """How many commands the owner's command stream has received (senders append; owners never trim
        below a few thousand)."""
        client = self._sync_redis()
        try:
            return int(client.xlen(self._prefix() + "commands"))
        finally:
            client.close()

    def redis_pid(self) -> int:
        [pid] = redis_servers_for(self.data)
        return pid

    # ------------------------------------------------------------------ the venue's truth
    def info(self, payload: dict[str, Any]) -> Any:
        req = urllib.request.Request(self.sim.base_url + "/info", data=json.dumps(payload).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def clear_venue_faults(self) -> None:
        self.sim.call(lambda s: s.faults.clear())

    def control(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Call one of the simulator's test controls (`SimControls.<name>`) over its control routes."""
        from revagent.exchange.sim.controls import SimControls

        async def call() -> Any:
            async with SimControls(self.sim.base_url) as ctl:
                return await getattr(ctl, name)(*args, **kwargs)

        if not args or args[0] is not False:  # an outage's end is not a fault
            self.faults[name] += 1
        return asyncio.run(call())

    def audit(self, *, tool_effects: dict[str, int] | None = None) -> Audit:
        """The venue's historical orders, fills and positions (through /info) against the journal and
        the ledger; `tool_effects` maps a tool-call id to the number of effects it left (notes, ...)."""
        assert self.master is not None
        self.clear_venue_faults()
        report = Audit()
        orders = self.info({"type": "historicalOrders", "user": self.master})
        fills = self.info({"type": "userFills", "user": self.master})
        state = self.info({"type": "clearinghouseState", "user": self.master})
        journal, by_action, ledger_fills = asyncio.run(self._read_store())
        report.venue_orders = len({o["order"]["oid"] for o in orders})
        report.venue_fills = len(fills)
        seen_cloid: dict[str, set[int]] = {}
        for o in orders:
            cloid = o["order"].get("cloid")
            if cloid:
                seen_cloid.setdefault(cloid, set()).add(o["order"]["oid"])
        report.orders_outside_journal = sorted(c for c in seen_cloid if c not in journal)
        report.duplicate_orders = sorted(c for c, oids in seen_cloid.items() if len(oids) > 1)
        for action, cloids in by_action.items():
            entries = [c for c in cloids if c in seen_cloid and journal[c]["role"] == "entry"]
            if len(entries) > 1:
                report.duplicate_orders.append(f"{action}: {len(entries)} entries")
        venue_tids = Counter(int(f["tid"]) for f in fills)
        ledger_tids = Counter(int(f["tid"]) for f in ledger_fills)
        report.lost_fills = sorted(t for t in venue_tids if t not in ledger_tids)
        report.doubled_fills = sorted(t for t, n in ledger_tids.items() if n > 1)
        report.unknown_fills = sorted(t for t in ledger_tids if t not in venue_tids)
        venue_pos = {p["position"]["coin"]: D(p["position"]["szi"]) for p in state["assetPositions"]}
        ledger_pos: dict[str, Decimal] = {}
        for f in ledger_fills:
            sz = D(f["sz"]) if f["side"] == "B" else -D(f["sz"])
            ledger_pos[f["coin"]] = ledger_pos.get(f["coin"], D(0)) + sz
        for coin in set(venue_pos) | set(ledger_pos):
            v, led = venue_pos.get(coin, D(0)), ledger_pos.get(coin, D(0))
            if v != led:
                report.position_mismatch[coin] = (str(v), str(led))
        if self.monitor is not None:
            assert self.monitor.samples > 0, f"the monitor never sampled: {self.monitor.last_error}"
            allowed = STOP_GRACE_S + UNPROTECTED_SLACK_S
            report.unprotected_s = round(max(0.0, self.monitor.longest() - allowed), 2)
            report.unprotected_total_s = round(self.monitor.total_unprotected_beyond, 2)
            report.unprotected_raw_s = round(self.monitor.raw_unprotected, 2)
            report.owners_at_once = self.monitor.owner_overlaps
            report.servers_at_once = self.monitor.max_servers
        for call_id, n in (tool_effects or {}).items():
            if n > 1:
                report.doubled_tool_effects.append(f"{call_id}: {n}")
        return report

    async def _read_store(self) -> tuple[dict[str, Any], dict[str, list[str]], list[dict[str, Any]]]:
        from revagent.store.connection import connect

        redis = await connect(self.redis_url())
        try:
            prefix = self._prefix()
            raw = await redis.hgetall(prefix + "orders")
            journal = {c: json.loads(v) for c, v in raw.items()}
            by_action = {a: json.loads(v) for a, v in (await redis.hgetall(prefix + "orders:by_action")).items()}
            entries = await redis.xrange(prefix + "ledger:fills")
            fills = []
            for _id, fields in entries:
                doc = fields["d"]
                fills.append(json.loads(doc))
            return journal, by_action, fills
        finally:
            await redis.aclose()

    def notes(self) -> list[dict[str, Any]]:
        out = self.revagent("notes", "list", "--json")
        assert out.returncode == 0, out.stderr
        doc = json.loads(out.stdout)
        return list(doc["notes"] if isinstance(doc, dict) else doc)

    def settle(self, timeout: float = 30.0, **kw: Any) -> tuple[float, Audit]:
        """Audit until the venue and the store agree and every position has its stop (or `timeout`);
        returns (seconds it took, last audit). A window without a stop still open is measured to its end."""
        t0 = time.monotonic()
        master = self.master or ""
        while True:
            report = self.audit(**kw)
            exposed = self.sim.call(lambda s: _unprotected_coins(s, master))
            pending = [p for p in report.problems() if not p.startswith("unprotected")]
            if (not exposed and not pending) or time.monotonic() - t0 > timeout:
                took = time.monotonic() - t0
                self.consistent_after.append(took)
                return took, report
            time.sleep(0.25)

    # ------------------------------------------------------------------ a second hand on the account
    def someone_else(self) -> Any:
        """The hyperliquid SDK's Exchange as another agent of the account (a human at the API), built while
        REST works (it reads the market list on construction)."""
        import eth_account
        from hyperliquid.exchange import Exchange

        assert self.master is not None
        agent = eth_account.Account.create()
        master = self.master
        err = self.sim.call(lambda s: s.venue.approve_agent(master, agent.address.lower(),
                                                            f"c{agent.address[2:8]}", 2**62))
        assert err is None, err
        return Exchange(agent, self.sim.base_url, account_address=master)

    def stop_oids(self, coin: str = "BTC") -> list[int]:
        master = self.master or ""
        return self.sim.call(lambda s: [o.oid for o in s.venue.open_by_user.get(master, {}).values()
                                        if o.coin == coin and o.trigger is not None and o.trigger.tpsl == "sl"])

    def delete_stop(self, hand: Any, coin: str = "BTC") -> int:
        """Cancel the position's stop behind the owner's back; returns how many were cancelled."""
        n = 0
        for oid in self.stop_oids(coin):
            out = hand.cancel(coin, oid)
            assert out.get("status") == "ok", out
            n += 1
        self.faults["stop_deleted"] += n
        return n

    # ------------------------------------------------------------------ helpers for scenarios
    def pause(self, low: float, high: float) -> float:
        delay = self.rng.uniform(low, high)
        time.sleep(delay)
        return delay


class ThreadedModel:
    """The strict fake Messages API (tests/fakes/anthropic_server.py) on its own loop in a thread, scripted
    as an alert-turn model: each fresh turn calls `add_note` (its text names the tool-call id) and
    `open_trade`, then answers the tool results with a line of text."""

    API_KEY = "sk-ant-test-key"

    def __init__(self, delay_s: float = 0.02) -> None:
        self.delay_s = delay_s
        self.base_url = ""
        self.turns = 0
        self.requests = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._thread: threading.Thread | None = None

    def respond(self, body: dict[str, Any]) -> Any:
        from tests.fakes.anthropic_server import reply, text, tool

        self.requests += 1
        last = body["messages"][-1]
        content = last.get("content")
        blocks = content if isinstance(content, list) else [{"type": "text", "text": str(content)}]
        fresh = any(isinstance(b, dict) and b.get("type") == "text" for b in blocks)
        if not fresh:  # only tool results: the turn's follow-up
            return reply(text("Noted, and the trade is on with its stop."), delay_s=self.delay_s)
        self.turns += 1
        n = self.turns
        note_id, trade_id = f"toolu_chaos_note_{n:04d}", f"toolu_chaos_open_{n:04d}"
        return reply(
            tool("add_note", {"text": f"chaos note {note_id}", "tags": ["chaos"]}, id=note_id),
            tool("open_trade", {"market": "BTC", "side": "long", "stop_px": "58800", "target_px": "63000",
                                "conviction": 60, "risk_usd": "20", "rationale": "chaos: the alert said so",
                                "thesis": "the alert said so", "invalidation": "the stop"},
                 id=trade_id),
            stop_reason="tool_use", delay_s=self.delay_s)

    def start(self) -> str:
        from concurrent.futures import Future

        started: Future[str] = Future()

        def run() -> None:
            from tests.fakes.anthropic_server import FakeAnthropic

            async def main() -> None:
                self._loop = asyncio.get_running_loop()
                self._stopped = asyncio.Event()
                async with FakeAnthropic(api_key=self.API_KEY) as fake:
                    fake.script(*([self.respond] * 10_000))
                    started.set_result(fake.base_url)
                    await self._stopped.wait()

            asyncio.run(main())

        self._thread = threading.Thread(target=run, name="chaos-model", daemon=True)
        self._thread.start()
        self.base_url = started.result(timeout=30)
        return self.base_url

    def stop(self) -> None:
        if self._loop is not None and self._stopped is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopped.set)
            self._thread.join(10)
