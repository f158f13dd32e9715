"""Routing of bus events to the screen: what each event changes in the model, the tabs and the threads.

Ticks never come here (the app coalesces them); everything else does, in order, on the app's loop.
An event that needs the account re-read only asks for a snapshot (`request_snapshot`): the app reads
at most one per `min_snapshot_gap`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from revagent.events import (
    AccountChanged,
    AlertSignal,
    ConnectionChanged,
    FillRecorded,
    LeaseChanged,
    OrderUpdated,
    RiskStateChanged,
    SessionStopping,
    StoreChanged,
    SyncPhaseChanged,
    TurnEvent,
)
from revagent.risk import TradingState
from revagent.tui import format as fmt
from revagent.tui.panel_model import PanelModel, TradingBanner
from revagent.tui.port import ThreadInfo, ThreadStatus
from revagent.tui.surface import AppSurface

ALERT_STATUS: dict[str, ThreadStatus] = {"queued": "queued", "started": "running", "retrying": "queued",
                                         "finished": "done", "failed": "failed"}
UNREAD_KINDS = ("started", "tool_call", "proposal", "error")


def alert_market(event: AlertSignal) -> str:
    """The market an alert is about, when its detail starts with one (`ETH 3,120 ↑`)."""
    first = event.detail.split(" ", 1)[0] if event.detail else ""
    return first if first.isalnum() and first.isupper() and len(first) <= 10 else ""


def lockout_text(model: PanelModel, now: datetime) -> str:
    """What a lockout alert thread says first: what happened, in numbers, and what the trader can do."""
    b, st = model.banner, model.snapshot.status
    acct = model.snapshot.account
    if b.state is not TradingState.LOCKED:
        return (f"The lockout ended: trading is {b.label(now)} again. New entries pass the risk engine as usual "
                "(/risk shows the caps in force).")
    until = f" until {b.locked_until:%Y-%m-%d %H:%M} UTC ({fmt.countdown(b.locked_until, now)} left)" \
        if b.locked_until else ""
    why = {"max_drawdown": "the drawdown reached the maximum", "daily_loss": "the day's loss reached its limit"}
    lines = [f"Trading is LOCKED{until}: {why.get(b.reason, b.reason or 'a risk limit was reached')}."]
    if st is not None:
        lines.append(f"Drawdown {fmt.pct(st.drawdown, places=2)} from the peak {fmt.money(st.peak_equity)}; "
                     f"equity {fmt.money(acct.equity if acct is not None else None)}.")
    lines.append("Only exits and protective stops pass: /close MARKET, /flatten, /stop MARKET PX still work; "
                 "new entries are refused until the lockout ends.")
    lines.append("/risk shows the limits and the state; a human can lift the lockout early with "
                 "`revagent risk unlock` (the peak is re-based to the equity then, and the size penalty "
                 "restarts at its maximum).")
    return "\n".join(lines)


class EventRouter:
    """Applies bus events to one app. Only the app's bus feed calls it."""

    def __init__(self, app: AppSurface) -> None:
        self.app = app
        self._explained: set[str] = set()  # lockout threads already told what happened

    async def on_event(self, event: Any) -> None:
        app = self.app
        m = app.model
        if isinstance(event, AccountChanged | OrderUpdated | StoreChanged):
            app.request_snapshot()
        elif isinstance(event, FillRecorded):
            app.request_snapshot(fresh=True)  # the live view's equity lags a fill
            app.notify(f"fill: {event.side} {event.sz} {event.market} @ {event.px}", timeout=6)
        elif isinstance(event, ConnectionChanged):
            m.saw_link(event.link, event.up, app.clock())
            if event.link == "exchange_ws":
                m.ws_up = event.up
                if event.up:
                    app.request_snapshot()  # Hyperliquid does not replay: refresh after a reconnect
            if not event.up:
                app.notify(f"{event.link} down {event.detail}".strip(), severity="warning")
            app.paint_header()
        elif isinstance(event, SyncPhaseChanged):
            m.sync_phase = event.phase
            if event.phase == "consistent":
                app.request_snapshot()
            app.paint_header()
        elif isinstance(event, RiskStateChanged):
            try:
                state: TradingState | None = TradingState(event.state)
            except ValueError:
                state = None
            m.banner = TradingBanner(state, event.multiplier, event.locked_until, event.reason)
            app.request_snapshot()
            app.paint_header()
        elif isinstance(event, AlertSignal):
            await self.on_alert(event)
        elif isinstance(event, LeaseChanged) and not event.held:
            m.stopped = f"this process lost the wallet ({event.reason})"
            app.paint_header()
        elif isinstance(event, SessionStopping):
            m.stopped = m.stopped or event.reason
            app.paint_header()

    async def on_alert(self, event: AlertSignal) -> None:
        app = self.app
        if event.thread_id is None:
            return
        status: ThreadStatus = ALERT_STATUS[event.status]
        tab = app.tabs.get(event.thread_id)
        if tab is None:
            title = event.detail or f"{event.kind} {event.trigger_key}".strip()
            await app.add_thread(ThreadInfo(event.thread_id, "alert", title[:28], status), activate=False,
                                 alert_kind=event.kind, market=alert_market(event))
            app.notify(f"alert: {title}", title="alert thread", timeout=8)
        else:
            tab.status = status
            tab.alert_kind = tab.alert_kind or event.kind
            tab.market = tab.market or alert_market(event)
        if event.kind == "lockout" and event.thread_id not in self._explained:
            view = app.view(event.thread_id)
            if view is not None:
                self._explained.add(event.thread_id)
                await view.add_notice(lockout_text(app.model, app.clock()), error=app.model.banner.state
                                      is TradingState.LOCKED)
        app.paint_tabs()

    async def on_turn(self, event: TurnEvent) -> None:
        app = self.app
        tab = app.tabs.get(event.thread_id)
        if tab is None:  # a thread this screen has not seen: alert threads open by themselves
            await app.add_thread(ThreadInfo(event.thread_id, "alert", event.thread_id[:28]), activate=False)
            tab = app.tabs[event.thread_id]
        view = app.view(event.thread_id)
        if view is None:
            return
        if event.kind in ("text", "thinking", "tool_call", "done"):
            app.model.saw_link("model", True, app.clock())  # the model answered
        await view.apply(event)
        if event.kind == "started":
            tab.status = "running"
        elif event.kind == "done":
            tab.status = "idle" if tab.kind == "chat" else "done"
        elif event.kind == "proposal":
            tab.pending_proposal = True
            if tab.id != app.active:
                app.notify(f"proposal waiting in {tab.title}", title="copilot", timeout=10)
        elif event.kind == "tool_result":
            app.request_snapshot()
        if tab.id != app.active and event.kind in UNREAD_KINDS:
            tab.unread += 1
        app.paint_tabs()
