"""The system alerts job of the alert scheduler: what the session itself needs a turn (or a person) for.

Lockout start and end (`RiskStateChanged`), drift that matters (the sync loop's `DriftFound`, at most
once per drift and hour; it also re-verifies stops at once), a model that refused an alert turn as
misconfigured, health while positions are open (a link down or prices stale for longer than
`health_grace`), and an agent approval that expires soon.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime

from revagent.alerts.firing import system_event
from revagent.alerts.runner import check_cancelled
from revagent.alerts.scheduling import SchedulerCore
from revagent.alerts.trade_watch import TradeWatch
from revagent.bus import Subscription
from revagent.events import ConnectionChanged, DriftFound, RiskStateChanged
from revagent.store.alert_events import AlertEvent, AlertKind

log = logging.getLogger(__name__)

LOCKED_STATES = frozenset({"locked", "halted"})

DRIFT_RECHECKS_STOPS = ("stop_missing", "order_vanished", "position_appeared", "position_vanished",
                        "position_changed", "untracked_position")
"""Drift kinds after which the open trades' stops are verified again at once."""


class SystemAlerts:
    """Risk state, connection health, drift and approval: system alerts, for the trades `trades` manages."""

    def __init__(self, core: SchedulerCore, trades: TradeWatch, *,
                 approval_expiry: Callable[[], Awaitable[datetime | None]] | None = None) -> None:
        self.core = core
        self.trades = trades
        self.approval_expiry = approval_expiry
        self._approval_checked: datetime | None = None
        self._locked: bool | None = None
        self._health_fired: set[str] = set()
        self._event_sub: Subscription | None = None

    def subscribe(self) -> None:
        self._event_sub = self.core.bus.subscribe(RiskStateChanged, ConnectionChanged, DriftFound)

    def aclose(self) -> None:
        if self._event_sub is not None:
            self._event_sub.close()

    async def run_events(self) -> None:
        """Consume risk state, connection health and drift events (owned task)."""
        assert self._event_sub is not None, "call load() first"
        async for event in self._event_sub:
            try:
                if isinstance(event, RiskStateChanged):
                    await self.on_risk(event)
                elif isinstance(event, ConnectionChanged):
                    self.on_connection(event)
                    if event.link == "model" and not event.up and event.config_error:
                        await self.on_model_refused(event)
                elif isinstance(event, DriftFound):
                    await self.on_drift(event)
            except Exception:
                check_cancelled()
                log.exception("handling %s failed", event.type)

    async def on_risk(self, event: RiskStateChanged) -> None:
        locked = event.state in LOCKED_STATES
        previous, self._locked = self._locked, locked
        if locked == previous or (previous is None and not locked):
            return
        now = self.core.clock()
        if locked:
            stamp = event.locked_until.isoformat() if event.locked_until else now.date().isoformat()
            occurrence = f"start:{event.state}:{stamp}"
        else:
            occurrence = f"end:{now.isoformat()}"
        await self.core.enqueue(system_event(
            AlertKind.LOCKOUT, "lockout", occurrence, fired_at=now,
            context={"state": event.state, "reason": event.reason, "multiplier": str(event.multiplier),
                     "locked_until": event.locked_until.isoformat() if event.locked_until else None,
                     "phase": "start" if locked else "end"}))

    async def on_drift(self, event: DriftFound) -> bool:
        """A drift that matters becomes one DRIFT alert per (kind, market, detail) and hour."""
        if event.kind in DRIFT_RECHECKS_STOPS:
            self.trades.request_refresh()
        if not event.matters:
            return False
        now = self.core.clock()
        digest = hashlib.sha1(event.detail.encode(), usedforsecurity=False).hexdigest()[:8]
        occurrence = f"{event.kind}:{event.market}:{digest}:{now:%Y%m%dT%H}"
        return await self.core.enqueue(system_event(
            AlertKind.DRIFT, "drift", occurrence, fired_at=now,
            context={"drift": event.kind, "market": event.market, "detail": event.detail, "source": event.source}))

    def on_connection(self, event: ConnectionChanged) -> None:
        down = self.core.down
        if event.up:
            if down.pop(event.link, None) is not None:
                log.info("%s is back", event.link)
            if event.link.startswith("exchange"):
                self.trades.request_refresh()
        elif event.link not in down and not event.config_error:  # a refusal: `on_model_refused`
            down[event.link] = (self.core.clock(), event.detail)
            if event.link == "exchange_ws":
                self.trades.request_refresh()  # blind from now on: check at once, then poll

    async def on_model_refused(self, event: ConnectionChanged) -> bool:
        """The model refused an alert turn as misconfigured (400/401/403/404): the alert ran on the
        offline policy, and this will not heal by itself. A health alert (at once, open trades or not:
        every alert runs offline until the `[llm]` settings are fixed) and an urgent notification say
        why; one per refusal, the runner reports it again only after the model answered."""
        core = self.core
        now = core.clock()
        detail = (f"the model refused an alert turn as misconfigured ({event.detail}); alerts run on the "
                  "offline policy until the [llm] settings are fixed (revagent doctor checks them)")
        if core.notify is not None:
            core.notify("health", "model misconfigured: alerts run offline", detail, urgent=True,
                        data={"link": "model", "detail": event.detail})
        return await core.enqueue(system_event(
            AlertKind.HEALTH, "health-model", f"config:{now.replace(microsecond=0).isoformat()}", fired_at=now,
            context={"link": "model", "down_since": now.isoformat(), "detail": detail, "config_error": True,
                     "open_trades": sorted(self.trades.trade_ids)}))

    async def check_health(self, now: datetime) -> None:
        trade_ids = self.trades.trade_ids
        if not trade_ids:
            return
        core = self.core
        grace = core.timings.health_grace
        problems: list[tuple[str, datetime, str]] = [
            (link, since, detail) for link, (since, detail) in core.down.items() if now - since >= grace]
        last = core.stats.last_tick_at
        if last is not None and now - last >= max(core.timings.stale_after, grace):
            problems.append(("prices", last, f"no mid price since {last.isoformat()}"))
        for link, since, detail in problems:
            alert_id = f"health-{link}"
            occurrence = since.replace(microsecond=0).isoformat()
            marker = f"{alert_id}@{occurrence}"
            if marker in self._health_fired:
                continue
            self._health_fired.add(marker)
            await core.enqueue(system_event(
                AlertKind.HEALTH, alert_id, occurrence, fired_at=now,
                context={"link": link, "down_since": since.isoformat(), "detail": detail,
                         "open_trades": sorted(self.trades.trade_ids)}))

    async def check_approval(self, *, force: bool = False) -> AlertEvent | None:
        """While positions are open, raise a health alert when the agent's approval expires soon (at most
        one check per `approval_check_every`; one alert per expiry time)."""
        if self.approval_expiry is None or not self.trades.trade_ids:
            return None
        core = self.core
        now = core.clock()
        last = self._approval_checked
        if not force and last is not None and now - last < core.timings.approval_check_every:
            return None
        self._approval_checked = now
        expiry = await self.approval_expiry()
        if expiry is None or expiry - now > core.timings.approval_warning:
            return None
        event = system_event(
            AlertKind.HEALTH, "health-approval", expiry.replace(microsecond=0), fired_at=now,
            context={"link": "approval", "expires_at": expiry.isoformat(), "open_trades": sorted(self.trades.trade_ids),
                     "detail": "the agent key's approval expires soon: renew it (revagent wallet approve)"})
        await core.enqueue(event)
        return event
