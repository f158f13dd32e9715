"""The wallet switcher (issue 20 item 2): every configured wallet with its equity, open risk, trading
state, armed alerts and owner, read from the store (`tui.wallets`). Enter opens the highlighted
wallet (its session, or a viewer of the daemon that owns it); esc closes.

`WalletSwitcherScreen` is the modal the palette opens in a running screen; `WalletPickerApp` shows
the same list alone, before any session starts (`revagent tui` with no `--wallet` when several are
configured) and returns the chosen name (None: the trader quit).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from revagent.models import utc_now
from revagent.tui.wallets import COLUMNS, WalletRow


class WalletSwitcherScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    WalletSwitcherScreen { align: center middle; }
    WalletSwitcherScreen > Vertical { width: auto; min-width: 60; max-width: 98%; height: auto; max-height: 90%;
                                      border: heavy $primary; background: $surface; padding: 0 1; }
    WalletSwitcherScreen DataTable { height: auto; max-height: 30; width: auto; }
    WalletSwitcherScreen #wallet-problem { color: $error; height: auto; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "close")]

    def __init__(self, rows: list[WalletRow], current: str | None = None, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.rows = rows
        self.current = current
        self.clock = clock

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(Text("Wallets  (enter opens, esc closes; figures as last stored)", style="bold"))
            yield DataTable(id="wallets", cursor_type="row", zebra_stripes=True)
            yield Static("", id="wallet-problem")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns(*COLUMNS)
        now = self.clock()
        for row in self.rows:
            cells = row.cells(now)
            style = "bold" if row.name == self.current else "dim" if row.problem else ""
            table.add_row(*(Text(c, style=style) for c in cells), key=row.name)
        names = [r.name for r in self.rows]
        if self.current in names:
            table.move_cursor(row=names.index(self.current))
        table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        name = event.row_key.value
        row = next((r for r in self.rows if r.name == name), None)
        if row is None:
            return
        if row.problem:
            self.query_one("#wallet-problem", Static).update(f"{row.name} cannot be opened: {row.problem}")
            return
        self.dismiss(name)

    def action_close(self) -> None:
        self.dismiss(None)


class WalletPickerApp(App[str | None]):
    """The switcher on its own, before any session: `run_async()` returns the chosen wallet's name."""

    TITLE = "revagent: choose a wallet"

    def __init__(self, rows: list[WalletRow], *, clock: Callable[[], datetime] = utc_now) -> None:
        super().__init__()
        self.rows = rows
        self.clock = clock

    def on_mount(self) -> None:
        self.push_screen(WalletSwitcherScreen(self.rows, clock=self.clock), callback=self.exit)
