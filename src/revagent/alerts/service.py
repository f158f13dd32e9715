"""`AlertService`: the alert parts one session runs, built and started together.

    service = AlertService.for_session(session, handler=None)   # after session.start() [/ start_trading()]
    await service.start(session.tasks)                          # load, then spawn the owned tasks
    ...
    await service.drain(timeout=30)                             # SIGTERM: let the running turn finish

Parts: the durable queue (`store.alert_queue.AlertQueue`), the scheduler, the runner (queue consumer),
the notifier, and, when the session trades, the market feed (polled marks, and websocket mids unless the
sync service's stream already publishes them). Without trading parts (no bridge yet) watchers, time alerts and system
alerts still work; trade management starts once the session rebuilds the service with them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from revagent.alerts.notify import Notifier
from revagent.alerts.runner import AlertHandler, AlertRunner
from revagent.alerts.scheduler import AlertScheduler
from revagent.alerts.scheduling import SchedulerTimings
from revagent.alerts.trade_alerts import TriggerOrder
from revagent.alerts.trade_book import AccountTradeBook, Protect, TradeBook, live_trigger_orders
from revagent.bus import Bus
from revagent.config import AlertSettings, NotifySettings
from revagent.exchange.feed import MarketFeed, MarketSource, marks_from_contexts
from revagent.models import TradePlan, utc_now
from revagent.store.alert_queue import AlertQueue
from revagent.tasks import TaskSupervisor

if TYPE_CHECKING:
    from revagent.config import Config, ResolvedWallet
    from revagent.exchange.hyperliquid.bridge import HyperliquidBridge
    from revagent.exchange.types import FrontendOpenOrder
    from revagent.gateway import Gateway
    from revagent.models import SessionId
    from revagent.risk import AccountView
    from revagent.store.orders import OrderJournal, TradePlans
    from revagent.store.repos import SessionStore
    from revagent.store.risk import RiskStore

log = logging.getLogger(__name__)


class SyncPort(Protocol):
    """What the alerts use of the sync loop (`SyncService`): its hook for "another watcher owns this
    market's stop", its phase, and its live account view (and whether the websocket keeps it current)."""

    stop_owner: Callable[[str], bool] | None

    @property
    def phase(self) -> str: ...
    @property
    def view(self) -> AccountView | None: ...
    @property
    def live_fresh(self) -> bool: ...
    @property
    def rest_down(self) -> bool: ...
    @property
    def stream_up(self) -> bool: ...


class AlertHost(Protocol):
    """What the alert service reads of the session that builds it (`session.Session` implements it):
    its store, bus and settings, and its trading parts once they are built (None before)."""

    @property
    def store(self) -> SessionStore: ...
    @property
    def bus(self) -> Bus: ...
    @property
    def config(self) -> Config: ...
    @property
    def wallet(self) -> ResolvedWallet: ...
    @property
    def sid(self) -> SessionId: ...
    @property
    def bridge(self) -> HyperliquidBridge | None: ...
    @property
    def plans(self) -> TradePlans | None: ...
    @property
    def gateway(self) -> Gateway | None: ...
    @property
    def risk(self) -> RiskStore | None: ...
    @property
    def journal(self) -> OrderJournal | None: ...
    @property
    def sync(self) -> SyncPort | None: ...
    async def account(self) -> AccountView: ...


def approval_expiry_of(bridge: HyperliquidBridge) -> Callable[[], Awaitable[datetime | None]]:
    """`async () -> datetime | None`: when the agent's approval for the master expires (now if it is not
    approved at all; None when it never expires)."""
    async def expiry() -> datetime | None:
        check = await bridge.check_agent()
        if not check.ok:
            return utc_now()
        ms = check.valid_until_ms
        return None if ms is None else datetime.fromtimestamp(ms / 1000, UTC)

    return expiry


def scheduler_timings(config: Config, wallet: ResolvedWallet) -> SchedulerTimings:
    """The scheduler's timers: the `[alerts]` settings, and the wallet's `risk.stop_grace` as the grace
    used until the risk store answers (then it is read afresh at every stop check)."""
    a = config.alerts
    return SchedulerTimings(trade_refresh=a.trade_refresh, health_grace=a.health_grace,
                            stale_after=a.prices_stale_after, approval_warning=a.approval_warning,
                            approval_check_every=a.approval_check_every, stop_grace=wallet.risk.stop_grace)


def stop_grace_of(session: AlertHost) -> Callable[[], Awaitable[timedelta]] | None:
    """The user's `risk.stop_grace`, read afresh at every stop check (None without a risk store yet: the
    scheduler then reads it once trading is enabled)."""
    risk = session.risk
    if risk is None:
        return None

    async def grace() -> timedelta:
        settings = await risk.settings()
        value: timedelta = settings.stop_grace
        return value

    return grace


def own_stops(session: AlertHost, scheduler: AlertScheduler) -> None:
    """Make the scheduler the one watcher of its managed trades' stops: the sync's corrections still
    place stops for positions no managed trade covers (same `risk.stop_grace`)."""
    sync = session.sync
    if sync is not None and scheduler.protect is not None:
        sync.stop_owner = scheduler.owns_stop


def trading_parts(session: AlertHost) -> tuple[TradeBook | None, Protect | None, HyperliquidBridge | None]:
    """The trade book, the stop repair and the bridge of a session (None for what is not built yet)."""
    trades: TradeBook | None = None
    protect: Protect | None = None
    bridge, plans, gateway = session.bridge, session.plans, session.gateway
    if bridge is not None and plans is not None:
        journal, sync = session.journal, session.sync

        def live() -> list[TriggerOrder] | None:
            # the live view while the sync loop keeps it current (`live_fresh`: consistent, or the
            # websocket up since a REST read confirmed it), or while REST is known down and the stream up
            # (the view as it is, the stream's updates since a gap included, beats no stop check until
            # REST is back); never a view frozen by a websocket outage
            if sync is None or not (sync.live_fresh or (sync.rest_down and sync.stream_up)):
                return None
            return live_trigger_orders(sync.view)

        async def protect_orders() -> list[FrontendOpenOrder]:  # the stop check's poll while the websocket is down
            return await bridge.open_orders(lane="protect")

        def last() -> list[TriggerOrder] | None:  # REST failing: the live view as it is while the stream is up
            return live_trigger_orders(sync.view) if sync is not None and sync.stream_up else None

        trades = AccountTradeBook(plans.open_trades, session.account, bridge.open_orders,
                                  journal.stop_moves if journal is not None else None, live, protect_orders, last)
    if gateway is not None:
        async def ensure_stop(plan: TradePlan) -> object:
            result: object = await gateway.ensure_stop(plan.market, stop_px=plan.stop_px)
            return result

        protect = ensure_stop
    return trades, protect, bridge


class AlertService:
    """Queue, scheduler, runner, notifier and (optionally) the market feed of one session."""

    def __init__(
        self,
        store: SessionStore,
        bus: Bus,
        *,
        alerts: AlertSettings | None = None,
        notify: NotifySettings | None = None,
        label: str = "",
        handler: AlertHandler | None = None,
        trades: TradeBook | None = None,
        protect: Protect | None = None,
        bridge: HyperliquidBridge | None = None,
        stream_mids: bool = True,
        poll_marks: bool = True,
        timings: SchedulerTimings | None = None,
        queue_backoff_s: float = 5.0,
        stop_grace: Callable[[], Awaitable[timedelta]] | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = alerts or AlertSettings()
        self.bus = bus
        self.queue = AlertQueue(store.redis, store.keys, max_attempts=self.settings.max_attempts,
                                backoff_seconds=queue_backoff_s)
        self.scheduler = AlertScheduler(
            store, self.queue, bus, settings=self.settings, trades=trades, protect=protect,
            initial_mids=bridge.all_mids if bridge is not None else None,
            initial_marks=self._marks_reader(bridge) if bridge is not None else None,
            approval_expiry=approval_expiry_of(bridge) if bridge is not None else None,
            timings=timings, stop_grace=stop_grace, **({} if clock is None else {"clock": clock}))
        self.runner = AlertRunner(self.queue, bus, handler, concurrency=self.settings.concurrency)
        self.notifier = Notifier(notify or NotifySettings(), session_label=label)
        self.scheduler.notify = self.notifier.notify
        self.feed = MarketFeed(bridge, bus) if bridge is not None and (stream_mids or poll_marks) else None
        self.stream_mids = stream_mids
        self.poll_marks = poll_marks
        self._started = False

    @staticmethod
    def _marks_reader(bridge: MarketSource) -> Callable[[], Awaitable[Mapping[str, Decimal]]]:
        async def marks() -> Mapping[str, Decimal]:
            meta, ctxs = await bridge.meta_and_asset_ctxs()
            return marks_from_contexts(meta, ctxs)

        return marks

    @classmethod
    def for_session(cls, session: AlertHost, *, handler: AlertHandler | None = None, stream_mids: bool | None = None,
                    poll_marks: bool = True, timings: SchedulerTimings | None = None,
                    clock: Callable[[], datetime] | None = None) -> AlertService:
        """Build from a started `Session`: its store, bus and config, and its trading parts when built
        (`bridge`, `plans`, `gateway`: trade management, stop repair via `gateway.ensure_stop`).

        `stream_mids` None: open a websocket for mids only when the session has no sync service
        (`session.sync`), whose stream already publishes `MidsUpdated`. Marks are polled either way.
        """
        trades, protect, bridge = trading_parts(session)
        service = cls(session.store, session.bus, alerts=session.config.alerts, notify=session.config.notify,
                      label=f"{session.wallet.name} ({session.sid})", handler=handler, trades=trades,
                      protect=protect, bridge=bridge, poll_marks=poll_marks,
                      timings=timings or scheduler_timings(session.config, session.wallet),
                      stop_grace=stop_grace_of(session), clock=clock,
                      stream_mids=session.sync is None if stream_mids is None else stream_mids)
        own_stops(session, service.scheduler)
        if session.gateway is not None:
            service.scheduler.expire_entries = session.gateway.expire_entries
        return service

    async def start(self, tasks: TaskSupervisor) -> None:
        """Load the scheduler from the store, then spawn every owned task on `tasks`."""
        if self._started:
            return
        self._started = True
        await self.scheduler.load()
        s = self.scheduler
        tasks.spawn("alerts:prices", s.run_prices())
        tasks.spawn("alerts:events", s.run_events())
        tasks.spawn("alerts:invalidations", s.run_invalidations())
        tasks.spawn("alerts:timer", s.run_timer())
        if s.trades is not None:
            tasks.spawn("alerts:trades", s.run_trades())
        tasks.spawn("alerts:runner", self.runner.run())
        tasks.spawn("notify", self.notifier.run())
        tasks.spawn("notify:bus", self.notifier.follow(self.bus))
        if self.feed is not None and self.stream_mids:
            tasks.spawn("feed:ws", self.feed.run_stream())
        if self.feed is not None and self.poll_marks:
            tasks.spawn("feed:marks", self.feed.run_marks())

    def enable_trading(self, tasks: TaskSupervisor, session: AlertHost, *, stream_mids: bool | None = None) -> bool:
        """Turn on trade management once the session's trading parts exist (`start_trading()` ran after
        this service started). Spawns the trade refresh task and the feed; False if already on or the
        session still has no bridge."""
        trades, protect, bridge = trading_parts(session)
        if self.scheduler.trades is not None or trades is None or bridge is None:
            return False
        self.scheduler.trades = trades
        self.scheduler.protect = protect
        self.scheduler.stop_grace = stop_grace_of(session)
        own_stops(session, self.scheduler)
        self.scheduler.approval_expiry = approval_expiry_of(bridge)
        tasks.spawn("alerts:trades", self.scheduler.run_trades())
        self.scheduler.request_trade_refresh()
        if self.feed is None:
            self.feed = MarketFeed(bridge, self.bus)
            if session.sync is None if stream_mids is None else stream_mids:
                tasks.spawn("feed:ws", self.feed.run_stream())
            if self.poll_marks:
                tasks.spawn("feed:marks", self.feed.run_marks())
        return True

    def set_handler(self, handler: AlertHandler) -> None:
        """Hand alert turns to `handler` from the next queue entry on: the turn engine, once it exists
        (the service may have started before the venue could be reached, on the logging handler)."""
        self.runner.handler = handler

    async def drain(self, timeout: float = 30.0) -> bool:
        """Stop taking alerts and wait for running turns (True when none is left)."""
        return await self.runner.drain(timeout)

    async def aclose(self) -> None:
        await self.scheduler.aclose()
        await self.notifier.aclose()
