"""What the app's helpers (event routing, the slash-command flow, the command palette) use of the app.

`RevagentApp` implements it; the helpers are typed against it, so they never import the app that
imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from textual.notifications import SeverityLevel
from textual.screen import Screen

from revagent.tui.panel_model import PanelModel
from revagent.tui.port import SessionPort, ThreadInfo
from revagent.tui.widgets.account import AccountPanel
from revagent.tui.widgets.tabs import TabState
from revagent.tui.widgets.thread_view import ThreadView

_R = TypeVar("_R")


class AppSurface(Protocol):
    model: PanelModel
    port: SessionPort
    tabs: dict[str, TabState]
    active: str | None
    clock: Callable[[], datetime]

    @property
    def account_panel(self) -> AccountPanel: ...
    def view(self, thread_id: str | None = None) -> ThreadView | None: ...
    async def add_thread(self, info: ThreadInfo, *, activate: bool, alert_kind: str = "", market: str = "") -> None: ...
    def paint_header(self) -> None: ...
    def paint_tabs(self) -> None: ...
    def request_snapshot(self, *, fresh: bool = False) -> None: ...
    def set_modes(self, modes: dict[str, str]) -> None: ...
    def settle(self, action_id: str) -> None: ...
    def prefill(self, text: str) -> None: ...

    # from textual's App
    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = True) -> None: ...
    async def push_screen_wait(self, screen: Screen[_R], *, mode: str | None = None) -> _R: ...
    async def run_action(self, action: str) -> bool: ...
