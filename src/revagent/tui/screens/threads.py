"""The thread list (the "+N" of a tab row, or the palette): every open thread, alert threads grouped
running / finished / failed, newest first, with the alert's kind and market. Enter opens one."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from revagent.tui.widgets.tabs import BADGE, TabState

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("running", ("running", "queued")), ("finished", ("done", "idle")), ("failed", ("failed",)))


def thread_list_lines(tabs: list[TabState]) -> list[tuple[str | None, str]]:
    """(thread id or None for a heading, text) in the order the list shows them."""
    out: list[tuple[str | None, str]] = []
    chats = [t for t in tabs if t.kind == "chat"]
    if chats:
        out.append((None, "chat"))
        out += [(t.id, f"  {t.title}") for t in chats]
    alerts = [t for t in tabs if t.kind == "alert"]
    for heading, statuses in GROUPS:
        group = sorted((t for t in alerts if t.status in statuses), key=lambda t: t.seq, reverse=True)
        if not group:
            continue
        out.append((None, f"alerts {heading}"))
        for t in group:
            badge = BADGE[t.status] or " "
            what = " ".join(x for x in (t.alert_kind, t.market) if x)
            unread = f"  ({t.unread} new)" if t.unread else ""
            out.append((t.id, f"  {badge} {what + '  ' if what else ''}{t.title}{unread}"))
    return out


class ThreadListScreen(ModalScreen[str | None]):
    DEFAULT_CSS = """
    ThreadListScreen { align: center middle; }
    ThreadListScreen > Vertical { width: 76; max-width: 95%; height: auto; max-height: 90%;
                                  border: heavy $primary; background: $surface; padding: 0 1; }
    ThreadListScreen OptionList { height: auto; max-height: 30; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "close")]

    def __init__(self, tabs: list[TabState], active: str | None) -> None:
        super().__init__()
        self.lines = thread_list_lines(tabs)
        self.active = active

    def compose(self) -> ComposeResult:
        options: list[Option] = []
        for tid, text in self.lines:
            if tid is None:
                options.append(Option(Text(text, style="bold"), disabled=True))
            else:
                options.append(Option(Text(text, style="reverse" if tid == self.active else ""), id=tid))
        with Vertical():
            yield Static(Text("Threads  (enter opens, esc closes)", style="bold"))
            yield OptionList(*options, id="thread-list")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [tid for tid, _ in self.lines]
        if self.active in ids:
            options.highlighted = ids.index(self.active)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_close(self) -> None:
        self.dismiss(None)
