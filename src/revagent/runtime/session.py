"""The Session: the composition root of one wallet's runtime.

It builds every part for one wallet, starts their tasks on one loop, and stops them in order.
Nothing else wires parts together. `revagent tui` runs a Session under the Textual app;
`revagent daemon` runs the same Session headless; a one-shot CLI command that finds no owner runs
a short-lived Session of its own (role `cli`) to hold the lease while it acts.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from revagent import bus as busmod
from revagent.clock import WALL, Clock
from revagent.config import Config, ResolvedWallet
from revagent.config.keys import SecretKey, agent_key
from revagent.errors import RevagentError
from revagent.events import LeaseChanged, SessionStopping
from revagent.models import CommandHandler, Emit, SessionId, utc_now
from revagent.store import commands as cmdchan
from revagent.store.connection import AnyRedis
from revagent.store.connection import open_redis as open_redis  # re-exported: callers import it from here
from revagent.store.connection import resolve_session_id as resolve_session_id
from revagent.store.lease import Lease
from revagent.store.repos import SessionStore
from revagent.tasks import TaskSupervisor, raise_if_cancelling

if TYPE_CHECKING:
    from revagent.alerts.service import AlertService
    from revagent.engine.service import TurnEngine
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.gateway import Gateway
    from revagent.risk import AccountView
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.store.risk import RiskStore
    from revagent.sync.service import SyncService

log = logging.getLogger(__name__)


def _preload_runtime_modules() -> tuple[type, ...]:
    """Import the turn engine's and the alerts' modules (run in a thread by `start_runtime`)."""
    from revagent.alerts.service import AlertService
    from revagent.engine.service import TurnEngine

    return TurnEngine, AlertService

REDIS_RETRY_INITIAL = 0.2
REDIS_RETRY_MAX = 5.0
REDIS_PING_TIMEOUT = 3.0


class Session:
    """One wallet's runtime: store, lease, bus, command inbox, and (as parts land) the trading parts."""

    def __init__(self, config: Config, wallet: ResolvedWallet, *, role: str = "daemon",
                 lease_ttl: timedelta | None = None, clock: Clock = WALL) -> None:
        self.config = config
        self.clock = clock
        """Time for every part (issue 19.1): the wall clock live, the market clock in a replay."""
        self.wallet = wallet
        self.role = role
        self.lease_ttl = config.session.lease_ttl if lease_ttl is None else lease_ttl
        self.bus = busmod.Bus()
        self.tasks = TaskSupervisor(f"session[{wallet.name}]", on_crash=self._task_crashed)
        self.handlers: dict[str, CommandHandler] = {}
        self.stopped = asyncio.Event()
        self.stop_reason = ""
        self.exit_code = 0
        """What a daemon exits with once stopped: 0 asked to stop, ExitCode.LEASE_LOST, 1 a task died."""
        self.startup_phase = "not started"
        """The start-up phase this owner is in (logged, and kept in the store's meta for `status`)."""
        self._phase_changed = asyncio.Event()
        self._redis: AnyRedis | None = None
        self._store: SessionStore | None = None
        self._lease: Lease | None = None
        self.agent_key: SecretKey | None = None
        # Trading parts, built by start_trading() (a one-shot `ping` needs none of them).
        self.bridge: HyperliquidBridge | None = None
        self.gateway: Gateway | None = None
        self.risk: RiskStore | None = None
        self.plans: TradePlans | None = None
        self.journal: OrderJournal | None = None
        self._account_source: Any = None
        self._fresh_account: Any = None
        self._trading_lock = asyncio.Lock()
        self.engine: TurnEngine | None = None
        self._engine_lock = asyncio.Lock()
        self.alerts: AlertService | None = None
        self.sync: SyncService | None = None
        self._mirror_queue: asyncio.Queue[busmod.Event] = asyncio.Queue(maxsize=10_000)
        self.register_command("ping", self._ping)
        from revagent.runtime.commands import register_trading_commands
        from revagent.runtime.probe import register_doctor_commands

        register_trading_commands(self)
        register_doctor_commands(self)
        for name in ("chat", "proposal.decide", "proposal.list", "thread.interrupt"):
            self.register_command(name, self._engine_command(name))
        self.register_command("sync.reconcile", self._reconcile)

    # -- parts -----------------------------------------------------------------------------
    @property
    def store(self) -> SessionStore:
        if self._store is None:
            raise RuntimeError("the session has not started")
        return self._store

    @property
    def lease(self) -> Lease:
        if self._lease is None:
            raise RuntimeError("the session has not started")
        return self._lease

    @property
    def sid(self) -> SessionId:
        return self.store.sid

    def register_command(self, name: str, handler: CommandHandler) -> None:
        self.handlers[name] = handler

    # -- lifecycle ---------------------------------------------------------------------------
    def phase(self, name: str) -> None:
        """Log the start-up phase this owner enters, with the seconds since its process started."""
        self.startup_phase = name
        log.info("start-up: %s (%.2fs since the process started)", name, process_age())
        self._phase_changed.set()

    async def start(self, *, serve_commands: bool = True) -> None:
        """Connect, take the lease (OwnerBusyError if another process owns the wallet), start tasks."""
        if self.role != "cli":
            self.phase("connecting to Redis, taking the lease")
        # Read the agent key first: a missing or unsafe key is a config error before anything starts.
        self.agent_key = await asyncio.to_thread(agent_key, self.wallet, self.config.data_path)
        self._redis = await open_redis(self.config)
        try:
            sid = await resolve_session_id(self.config, self.wallet)
            self._store = SessionStore(self._redis, sid)
            self._lease = Lease(self._redis, self._store.keys, ttl=self.lease_ttl, role=self.role)
            if serve_commands:
                # before the lease makes this process the visible owner: a command sent to it from then
                # on is in the group's view (a group created later, at "$", would never deliver it)
                await self._command_inbox().ensure_group()
            await self._lease.acquire()
        except BaseException:
            await self._redis.aclose()
            self._redis = None
            raise
        await self._store.set_meta(wallet=self.wallet.name, network=self.wallet.network,
                                   last_started=self.clock.now().isoformat(timespec="seconds"))
        self.bus.set_mirror(self._mirror_queue.put_nowait)
        self.tasks.spawn("lease", self._lease.keep_renewed(self._lease_lost))
        self.tasks.spawn("bus-mirror", self._mirror_events())
        self.tasks.spawn("store-events", self._store_events())
        if serve_commands:
            self.tasks.spawn("commands", self._serve_commands())
        if self.role != "cli":
            self.tasks.spawn("redis-watch", self._watch_redis())
            self.tasks.spawn("startup-phase", self._record_phases())
        log.info("session %s started as %s (pid %d)", sid, self.role, os.getpid())

    async def start_trading(self) -> None:
        """Build the exchange bridge, the risk store, the journal and the gateway (idempotent).

        For a paper wallet this starts the shared local venue if needed and approves the wallet's
        agent key for its master at first use.
        """
        async with self._trading_lock:
            if self.gateway is not None:
                return
            from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
            from revagent.exchange.onboarding import AgentCheckCache
            from revagent.gateway import Gateway
            from revagent.store.orders import OrderJournal, TradePlans
            from revagent.store.rate_budget import budget_for
            from revagent.store.risk import RiskStore
            from revagent.sync.reader import BridgeAccountReader
            from revagent.venue import venue_url

            assert self.agent_key is not None
            base_url = await venue_url(self.config, self.wallet)
            signer = self.agent_key.account()
            rate = self.config.rate
            budget = budget_for(self.store.redis, network=self.wallet.network, base_url=base_url,
                                weight_per_minute=rate.weight_per_minute,
                                paper_weight_per_minute=rate.paper_weight_per_minute, chunk=rate.chunk,
                                egress=rate.egress)
            checks = AgentCheckCache(self.store.redis, f"{self.wallet.network}:{base_url}",
                                     ttl_s=rate.agent_check_ttl.total_seconds())
            bridge = HyperliquidBridge(network=self.wallet.network, base_url=base_url, master=self.sid.address,
                                       signer=signer, budget=budget, agent_checks=checks)
            if self.wallet.network == "paper":
                try:
                    await self._approve_paper_agent(base_url, bridge)
                except BaseException:
                    await bridge.aclose()  # the next attempt builds a new one: no connection pool left open
                    raise
            self.bridge = bridge
            keys = self.store.keys
            self.journal = OrderJournal(self.store.redis, keys, self.lease)
            self.plans = TradePlans(self.store.redis, keys, self.lease)
            self.risk = RiskStore(self.store.redis, keys, self.wallet.risk, self.lease)
            from revagent.store.ledger import LedgerStore
            from revagent.sync.options import sync_options
            from revagent.sync.service import SyncService

            self.sync = SyncService(venue=self.bridge, ledger=LedgerStore(self.store.redis, keys),
                                    plans=self.plans, journal=self.journal, risk=self.risk, bus=self.bus,
                                    options=sync_options(self.config.sync),
                                    publish_mids=True, price_probe=self._price_probe(base_url),
                                    clock=self.clock.now)
            reader = BridgeAccountReader(self.bridge, self.plans, self.journal)
            sync = self.sync
            # The engine, the TUI and the alerts read the sync loop's live view (a one-shot command,
            # role cli, runs no sync loop: it reads over REST). The gateway's verdicts always use a
            # fresh REST read of the exchange, the truth for money, stamped with the sync phase: the
            # risk engine refuses new risk unless it is `consistent` (protection passes in any phase).
            self._account_source = reader if self.role == "cli" else sync.account
            entry_wait = self.config.sync.entry_wait.total_seconds()

            async def gateway_account() -> AccountView:
                # steady state (issue 18.1): the live view, when a REST read confirmed it after the
                # gateway's last send and nothing is in flight; else a fresh REST read
                settled = None if self.gateway is None else sync.settled_view(self.gateway.changed_at)
                if settled is not None:
                    return settled
                view = await reader()
                if view.sync_phase == sync.phase == "consistent":
                    return view
                return view.model_copy(update={"sync_phase": sync.phase, "sync_reason": sync.phase_reason})

            async def entries_ready() -> None:
                # before a new entry only: a one-shot command reconciles once; a running session waits
                # (bounded) for its sync loop to reach `consistent`, e.g. right after start-up
                if self.role == "cli":
                    await sync.ensure_reconciled()
                else:
                    await sync.wait_consistent(entry_wait)

            self._fresh_account = gateway_account
            self.gateway = Gateway(exchange=self.bridge, journal=self.journal, plans=self.plans,
                                   account=gateway_account, settings=self.risk.settings, risk_state=self.risk,
                                   bus=self.bus, lease=self.lease, ready=entries_ready,
                                   protection_account=sync.protection_source(gateway_account),
                                   clock=self.clock.now)
            self.sync.attach_gateway(self.gateway)
            if self.role != "cli":
                self.tasks.spawn("sync", self.sync.run())
            if self.alerts is not None:
                self.alerts.enable_trading(self.tasks, self)
            log.info("trading on %s (%s)", base_url, self.wallet.network)

    async def start_runtime(self) -> None:
        """Everything a long-running owner (daemon, TUI) runs: the trading parts, the turn engine and
        the alert service. If the venue cannot be reached, the alerts still run (time alerts, health)
        and trading is retried by the first command that needs it."""
        from revagent.alerts.service import AlertService
        from revagent.errors import RevagentError

        handler = None
        preload: asyncio.Future[tuple[type, ...]] | None = None
        try:
            self.phase("trading: the venue, the agent's approval")
            await self.start_trading()
            # "trading on" first (issue 12.10): nothing that need not block it runs before it. The
            # engine's and the alerts' modules (about 1 s of imports, CPU-bound) load in a thread from
            # here, off the loop, while the sync reconciles: not earlier, where they would hold the
            # GIL against the venue's round trips
            preload = asyncio.ensure_future(asyncio.to_thread(_preload_runtime_modules))
            await self._wait_trading_on()
            await preload
            self.phase("engine: the turn engine")
            handler = (await self.start_engine()).alert_handler
        except RevagentError as exc:
            log.error("trading is not available yet: %s", exc.message)
        finally:
            if preload is not None:
                await asyncio.wait({preload})
        if self.alerts is not None:  # started by an earlier attempt (see run_daemon's retry)
            return
        self.phase("alerts: loading the scheduler and the queue")
        alerts = AlertService.for_session(self, handler=handler, clock=self.clock.now)
        try:
            await alerts.start(self.tasks)
        except BaseException:
            await _closing("the alert service", alerts.aclose())
            raise
        self.alerts = alerts

    async def _wait_trading_on(self) -> None:
        """Wait (up to `sync.entry_wait`) for the sync's first `consistent`: then the phase is "trading on"
        (new entries allowed). Protection does not wait for it; a sync still reconciling after the wait
        is logged and the rest of the start-up goes on (entries keep waiting for `consistent`)."""
        assert self.sync is not None
        self.phase("sync: reconciling with the exchange")
        phase = await self.sync.wait_consistent(self.config.sync.entry_wait.total_seconds())
        if phase == "consistent":
            self.phase("trading on")
        else:
            log.warning("start-up: the sync is %s (%s): new entries wait for it to be consistent",
                        phase, self.sync.phase_reason or "no reason given")

    async def start_engine(self) -> TurnEngine:
        """Build the turn engine (after the trading parts); the SDK is imported off the loop."""
        async with self._engine_lock:
            if self.engine is None:
                await self.start_trading()
                from revagent.engine.prompt import PromptLayers
                from revagent.engine.service import TurnEngine

                assert self.gateway is not None and self.plans is not None and self.journal is not None
                assert self.risk is not None
                layers = await asyncio.to_thread(PromptLayers.from_strategy_file, self.wallet.llm.strategy_file)
                import dataclasses

                from revagent.engine.settings import EngineSettings
                from revagent.runtime.commands import effective_modes

                modes = await effective_modes(self)
                settings = dataclasses.replace(EngineSettings.from_wallet(self.wallet), chat_mode=modes["chat"],
                                               alert_mode=modes["alert"],
                                               liquidation_warning_pct=self.config.alerts.liquidation_warning_pct)
                engine = TurnEngine.build(wallet=self.wallet, store=self.store, gateway=self.gateway,
                                          plans=self.plans, journal=self.journal, risk=self.risk, bus=self.bus,
                                          account=self.account, market=self.bridge, layers=layers,
                                          live_caches=True, settings=settings, trades=self._ledger_trades,
                                          clock=self.clock.now,
                                          early_warning_fraction=self.config.alerts.early_warning_fraction,
                                          figures_dir=self.config.data_path / "figures" / self.wallet.name)
                await engine.start()
                self.engine = engine
                if self.alerts is not None:  # the alerts started without it (the venue was down)
                    self.alerts.set_handler(engine.alert_handler)
            return self.engine

    async def _reconcile(self, args: dict[str, Any], emit: Emit) -> Any:
        await self.start_trading()
        assert self.sync is not None
        return await self.sync.command_reconcile(args, emit)

    def _engine_command(self, name: str) -> CommandHandler:
        async def handler(args: dict[str, Any], emit: Emit) -> Any:
            engine = await self.start_engine()
            return await engine.command_handlers()[name](args, emit)

        return handler

    def _ledger_trades(self) -> list[Any]:
        """The sync loop's trade book (the snapshot's performance and funding paid); [] before it runs."""
        return self.sync.recorder.book.trades() if self.sync is not None else []

    def set_account_source(self, source: Any) -> None:
        """Where `account()` reads from: the sync loop's live view replaces the REST reader."""
        self._account_source = source

    async def account(self) -> AccountView:
        """The current account view (the live one from the sync loop once it runs)."""
        if self._account_source is None:
            raise RuntimeError("call start_trading() first")
        view: AccountView = await self._account_source()
        return view

    async def fresh_account(self) -> AccountView:
        """The account read from the exchange now (what the gateway's verdicts use), stamped with the
        sync phase. Commands that trade read prices from it rather than from the live view."""
        if self._fresh_account is None:
            raise RuntimeError("call start_trading() first")
        view: AccountView = await self._fresh_account()
        return view

    def _price_probe(self, base_url: str) -> Callable[[], Awaitable[dict[str, Any] | None]] | None:
        """A paper wallet's sync asks the venue where its prices come from (None: a real exchange)."""
        if self.wallet.network != "paper":
            return None
        from revagent.venue import paper_price_doc

        return lambda: paper_price_doc(base_url)

    async def _approve_paper_agent(self, base_url: str, bridge: Any) -> None:
        from revagent.config.keys import paper_keys, read_key_file
        from revagent.exchange.onboarding import approve_paper_agent

        assert self.agent_key is not None
        check = await bridge.check_agent()
        if check.ok:
            return
        keys = await asyncio.to_thread(paper_keys, self.config.data_path, self.wallet.name)
        master = await asyncio.to_thread(read_key_file, keys.master_key_file, "paper master key file")
        await approve_paper_agent(base_url, master, self.agent_key.address(), "revagent")
        log.info("approved the paper agent %s for %s", self.agent_key.address(), self.sid.address)

    async def stop(self, reason: str = "stopped") -> None:
        if self.stopped.is_set():
            return
        self.stop_reason = reason
        log.info("session stopping: %s", reason)
        self.bus.publish(SessionStopping(reason=reason))
        # each part is closed whatever the others do (Redis may be gone): the session always stops
        if self.engine is not None:
            await _closing("the turn engine", self.engine.aclose())
        await self.tasks.stop()
        if self.alerts is not None:
            await _closing("the alert service", self.alerts.aclose())
        if self.bridge is not None:
            await _closing("the exchange bridge", self.bridge.aclose())
        if self._lease is not None:
            await _closing("the lease", self._lease.release())
        if self._redis is not None:
            await _closing("the Redis client", self._redis.aclose())
        self.stopped.set()

    async def _lease_lost(self, reason: str) -> None:
        from revagent.errors import ExitCode

        self.exit_code = int(ExitCode.LEASE_LOST)
        self.bus.publish(LeaseChanged(held=False, holder="", reason=reason))
        asyncio.get_running_loop().create_task(self.stop(f"lease lost: {reason}"), name="session:stop")

    def _task_crashed(self, name: str, exc: BaseException) -> None:
        from revagent.errors import ExitCode, LeaseLostError

        lost = isinstance(exc, LeaseLostError) or (
            isinstance(exc, BaseExceptionGroup) and exc.subgroup(LeaseLostError) is not None)
        self.exit_code = self.exit_code or int(ExitCode.LEASE_LOST if lost else 1)
        asyncio.get_running_loop().create_task(self.stop(f"task {name} died: {exc!r}"), name="session:stop")

    # -- owned tasks ---------------------------------------------------------------------------
    async def _mirror_events(self) -> None:
        assert self._redis is not None
        while True:
            event = await self._mirror_queue.get()
            try:
                await self._redis.publish(self.store.keys.events, busmod.encode(event))
            except Exception as exc:  # the mirror is best-effort; the store stays the truth
                log.warning("could not mirror %s to Redis: %s", event.type, exc)
            raise_if_cancelling()

    async def _store_events(self) -> None:
        """Every store write, from this process or another (the shell, a viewer), as a bus event, so
        the UI and the engine's caches follow it at once."""
        from revagent.store.connection import UNAVAILABLE
        from revagent.store.invalidations import StoreInvalidations

        delay = REDIS_RETRY_INITIAL
        while True:
            feed = StoreInvalidations(self.store.redis, self.store.keys.events)
            try:
                await feed.subscribe()
                delay = REDIS_RETRY_INITIAL
                async for changed in feed:
                    self.bus.publish(changed)
                    raise_if_cancelling()
                return
            except UNAVAILABLE as exc:  # ride out a Redis outage: subscribe again with backoff
                log.warning("store events: Redis unreachable, subscribing again in %.1fs: %s", delay, exc)
            finally:
                await _closing("the store events feed", feed.aclose())
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX)

    def _command_inbox(self) -> cmdchan.CommandInbox:
        return cmdchan.CommandInbox(self.store.redis, self.store.keys, f"{socket.gethostname()}:{os.getpid()}")

    async def _serve_commands(self) -> None:
        from revagent.store.connection import UNAVAILABLE

        inbox = self._command_inbox()
        delay = REDIS_RETRY_INITIAL
        while True:
            try:
                await inbox.ensure_group()
                while True:
                    commands = await inbox.read()
                    raise_if_cancelling()
                    delay = REDIS_RETRY_INITIAL
                    for command in commands:
                        await self._execute(command)
                        await inbox.ack(command)
            except UNAVAILABLE as exc:  # ride out a Redis outage: read again with backoff
                log.warning("commands: Redis unreachable, reading again in %.1fs: %s", delay, exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, REDIS_RETRY_MAX)

    async def _record_phases(self) -> None:
        """Keep the start-up phase in the store's meta (`startup_phase`, with this pid and the time), so
        `revagent status` says which phase the owner is in. Best effort: Redis may be away for a while."""
        from revagent.store.connection import UNAVAILABLE

        while True:
            await self._phase_changed.wait()
            self._phase_changed.clear()
            try:
                await self.store.set_meta(startup_phase=self.startup_phase, startup_pid=str(os.getpid()),
                                          startup_phase_at=utc_now().isoformat(timespec="milliseconds"))
            except UNAVAILABLE as exc:
                log.debug("could not record the start-up phase (%s); again in 1 s", exc)
                self._phase_changed.set()
                await asyncio.sleep(1.0)

    async def _watch_redis(self) -> None:
        """Notice a Redis outage, bring the embedded server back if its process died (never a second
        one: see EmbeddedRedis.ensure_running), and ask the sync for a fresh snapshot once Redis
        answers again: the exchange stayed the truth meanwhile, and stops on it kept protecting."""
        from revagent.events import ConnectionChanged
        from revagent.store.connection import UNAVAILABLE

        assert self._redis is not None
        down_since: float | None = None
        delay = REDIS_RETRY_INITIAL
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(1.0 if down_since is None else delay)
            try:
                async with asyncio.timeout(REDIS_PING_TIMEOUT):
                    await self._redis.ping()
            except (*UNAVAILABLE, TimeoutError) as exc:
                raise_if_cancelling()
                if down_since is None:
                    down_since = loop.time()
                    log.warning("Redis is unreachable (%s): riding it out, reconnecting with backoff",
                                str(exc) or type(exc).__name__)
                    self.bus.publish(ConnectionChanged(link="redis", up=False, detail=str(exc)))
                if not self.config.redis.url:
                    await self._restart_embedded_redis_if_dead()
                delay = min(delay * 2, REDIS_RETRY_MAX)
                continue
            if down_since is not None:
                log.warning("Redis answers again after %.1fs: reconciling with the exchange", loop.time() - down_since)
                self.bus.publish(ConnectionChanged(link="redis", up=True))
                down_since, delay = None, REDIS_RETRY_INITIAL
                if self.sync is not None:
                    self.sync.request_snapshot(0)

    async def _restart_embedded_redis_if_dead(self) -> None:
        from revagent.store.server import EmbeddedRedis

        embedded = EmbeddedRedis(self.config.data_path, fsync=self.config.redis.fsync)
        try:
            # starts a server only if none is alive on the data dir; waits briefly for a stalled one
            await asyncio.to_thread(embedded.ensure_running, REDIS_PING_TIMEOUT)
        except RevagentError as exc:
            log.info("embedded Redis not back yet: %s", exc.message)

    async def _execute(self, command: cmdchan.Command) -> None:
        from revagent.runtime.commands import execute_channel_command

        await execute_channel_command(self, command)

    async def run_command(self, name: str, args: dict[str, Any], emit: Emit) -> tuple[str, Any]:
        """Run a command here (this process owns the wallet). Returns the final (type, data)."""
        handler = self.handlers.get(name)
        if handler is None:
            return "error", {"code": "usage", "message": f"unknown command {name!r}", "exit_code": 2}
        try:
            return "done", await handler(args, emit)
        except RevagentError as exc:
            return "error", {"code": exc.code, "message": exc.message, "exit_code": int(exc.exit_code)}
        except Exception as exc:
            log.exception("command %s failed", name)
            return "error", {"code": "internal", "message": f"{type(exc).__name__}: {exc}", "exit_code": 1}

    async def _ping(self, args: dict[str, Any], emit: Emit) -> dict[str, Any]:
        holder = self.lease.holder
        return {
            "pong": True,
            "owner": holder.describe() if holder else "",
            "pid": os.getpid(),
            "role": self.role,
            "session": str(self.sid),
        }


async def _closing(what: str, closing: Awaitable[Any]) -> None:
    """Await a part's close; a failure (Redis gone, a broken connection) is logged, not raised."""
    try:
        await closing
    except Exception as exc:
        log.warning("could not close %s cleanly: %r", what, exc)


def process_age() -> float:
    """Seconds since this process started (from /proc; 0.0 where it cannot be read)."""
    try:
        with open("/proc/self/stat") as fh:
            started = int(fh.read().rsplit(") ", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
        with open("/proc/uptime") as fh:
            return max(0.0, float(fh.read().split()[0]) - started)
    except (OSError, ValueError, IndexError):
        return 0.0
