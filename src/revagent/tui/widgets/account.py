"""The live account panel: equity, risk, positions, orders, watchers, time alerts, notes.

The app calls `show_all` after a snapshot and `show_prices` after a flush of coalesced ticks (only
the sections that depend on mids); both are cheap (`Static.update` of pre-rendered text).
"""

from __future__ import annotations

from datetime import datetime

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from revagent.tui import panel_model as pm


class Section(Static):
    DEFAULT_CSS = """
    Section { border: round $primary-darken-2; border-title-color: $text; padding: 0 1; height: auto; }
    """

    def __init__(self, title: str, *, id: str) -> None:
        super().__init__("", id=id)
        self.border_title = title


class AccountPanel(VerticalScroll):
    """The right-hand column (or, folded, a full-width overlay)."""

    can_focus = False
    DEFAULT_CSS = """
    AccountPanel.-stored Section { color: $text-muted; }
    """

    def compose(self) -> ComposeResult:
        yield Section("Account", id="sec-equity")
        yield Section("Risk", id="sec-risk")
        yield Section("Positions", id="sec-positions")
        yield Section("Orders", id="sec-orders")
        yield Section("Watchers", id="sec-watchers")
        yield Section("Time alerts", id="sec-alerts")
        yield Section("Notes", id="sec-notes")

    def _set(self, section: str, text: object) -> None:
        self.query_one(f"#sec-{section}", Section).update(text)  # type: ignore[arg-type]

    def show_all(self, model: pm.PanelModel, now: datetime) -> None:
        snap = model.snapshot
        self.set_class(snap.stored_at is not None, "-stored")
        self._set("equity", pm.render_equity(model, now))
        self._set("risk", pm.render_risk(snap.usage))
        self._set("orders", pm.render_orders(snap.account))
        self._set("notes", pm.render_notes(snap.notes))
        self.show_clock(model, now)
        self.show_prices(model)

    def show_prices(self, model: pm.PanelModel) -> None:
        self._set("positions", pm.render_positions(model))
        self._set("watchers", pm.render_watchers(model.snapshot.watchers, model))

    def show_clock(self, model: pm.PanelModel, now: datetime) -> None:
        self._set("alerts", pm.render_time_alerts(model.snapshot.time_alerts, now))
        if model.snapshot.stored_at is not None:  # the stored view's age moves on
            self._set("equity", pm.render_equity(model, now))
