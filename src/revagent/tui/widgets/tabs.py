"""Thread tabs: one row for chat threads, one for alert threads, with running/unread badges.

Each row is Textual's own `Tabs` (it scrolls and keeps the active tab in view), made unfocusable:
the keyboard moves between threads with the app's bindings, so the input box keeps the focus and
an alert thread never steals it. Tabs that do not fit are counted in a "+N" label at the end of the
row; clicking it (or the palette's "Thread list") opens the list of every thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Static, Tab, Tabs

from revagent.tui.port import ThreadKind, ThreadStatus

BADGE = {"queued": "…", "running": "●", "done": "✓", "failed": "✗", "idle": ""}
MODE_TAG = {"copilot": "co", "readonly": "ro"}  # autonomous shows no tag


@dataclass
class TabState:
    id: str
    kind: ThreadKind
    title: str
    status: ThreadStatus = "idle"
    unread: int = 0
    pending_proposal: bool = False
    used: bool = False  # the trader typed in it: never dropped as an empty placeholder
    alert_kind: str = ""  # watcher, time, system... (alert threads)
    market: str = ""
    seq: int = 0  # arrival order on this screen (newest = highest)


def tab_label(tab: TabState, active: str | None, mode: str = "") -> Text:
    badge = BADGE[tab.status]
    text = f"{'! ' if tab.pending_proposal else ''}{tab.title}{' ' + badge if badge else ''}"
    if mode in MODE_TAG:
        text += f" {MODE_TAG[mode]}"
    text += f" ({tab.unread})" if tab.unread and tab.id != active else ""
    style = "bold yellow" if tab.unread and tab.id != active else ""
    if tab.status == "running" and tab.id != active:
        style = "bold cyan"
    if tab.status == "failed":
        style += " red"
    return Text(f"[{text}]", style=style.strip())


def tabs_text(label: str, tabs: list[TabState], active: str | None, *, add_hint: bool) -> Text:
    """The whole row as one line of text (what the row shows when everything fits)."""
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{label}: ", "bold")
    for tab in tabs:
        out.append_text(tab_label(tab, active))
        out.append(" ")
    if add_hint:
        out.append("+ ^n", "dim")
    elif not tabs:
        out.append("none", "dim")
    return out


def tab_css_id(thread_id: str) -> str:
    return "tab-" + "".join(c if c.isalnum() or c in "-_" else f"_{ord(c):x}" for c in thread_id)


class _Row(Tabs, can_focus=False):
    DEFAULT_CSS = """
    _Row { height: 1; width: 1fr; }
    _Row Underline { display: none; }
    _Row Tab { padding: 0 1 0 0; height: 1; }
    _Row Tab.-active { text-style: reverse bold; color: $foreground; }
    _Row.-elsewhere Tab.-active { text-style: none; color: $foreground 60%; }
    """

    def _scroll_active_tab(self) -> None:
        """Scroll the active tab into view at once (no animation: the count of hidden tabs is right
        at the next frame)."""
        tab = self.active_tab
        if tab is not None:
            self.query_one("#tabs-scroll").scroll_to_center(tab, force=True, animate=False)

    def on_tab_clicked(self, event: Tab.Clicked) -> None:
        owner = self.parent
        if isinstance(owner, ThreadTabs) and event.tab.id is not None and event.tab.id in owner.ids:
            owner.post_message(ThreadTabs.Picked(owner.ids[event.tab.id]))


class ThreadTabs(Horizontal):
    """One row of thread tabs: a label, the tabs (scrolling), the "+N" overflow count, a hint."""

    DEFAULT_CSS = """
    ThreadTabs { height: 1; }
    ThreadTabs > .row-label { width: auto; text-style: bold; }
    ThreadTabs > .row-more { width: auto; display: none; color: $warning; text-style: bold; }
    ThreadTabs > .row-more.shown { display: block; }
    ThreadTabs > .row-hint { width: auto; color: $text-muted; }
    """

    class Picked(Message):
        """A tab was clicked: the app activates that thread."""

        def __init__(self, thread_id: str) -> None:
            super().__init__()
            self.thread_id = thread_id

    class MoreClicked(Message):
        """The "+N" label was clicked: the app opens the thread list."""

    def __init__(self, label: str, *, hint: str = "", id: str) -> None:
        super().__init__(id=id)
        self.label = label
        self.hint = hint
        self.ids: dict[str, str] = {}  # css id -> thread id
        self.hidden_count = 0
        self._widgets: dict[str, Tab] = {}
        self._want_active: str | None = None
    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.label}: "), classes="row-label")
        yield _Row()
        yield _More("", classes="row-more")
        yield Static(self.hint or "none", classes="row-hint")

    @property
    def row(self) -> _Row:
        return self.query_one(_Row)

    def show(self, tabs: list[TabState], active: str | None, mode: str = "") -> None:
        """Make the row show `tabs` (in order), `active` highlighted when it is one of them."""
        row = self.row
        wanted = {tab_css_id(t.id): t for t in tabs}
        for css_id in [c for c in self.ids if c not in wanted]:
            row.remove_tab(self._widgets.pop(css_id))
            del self.ids[css_id]
        for css_id, tab in wanted.items():
            label = tab_label(tab, active, mode)
            existing = self._widgets.get(css_id)
            if existing is None:
                self._widgets[css_id] = widget = Tab(label, id=css_id)
                row.add_tab(widget)
                self.ids[css_id] = tab.id
            else:
                existing.label = label
        mine = active is not None and tab_css_id(active) in wanted
        row.set_class(not mine, "-elsewhere")
        self._want_active = tab_css_id(active) if mine and active is not None else None
        self._follow_active()
        hint = self.query_one(".row-hint", Static)
        hint.display = bool(self.hint) or not tabs
        self.call_after_refresh(self._count_hidden)

    def _follow_active(self) -> None:
        want = self._want_active
        row = self.row
        if want is not None and row.active != want and row.get_tab(want) is not None:
            row.active = want

    def _count_hidden(self) -> None:
        """How many tabs lie (even partly) outside the row's visible part."""
        self._follow_active()  # a tab added just now is mounted by now
        try:
            scroll = self.row.query_one("#tabs-scroll")
        except Exception:
            return
        left, width = scroll.scroll_target_x, scroll.size.width  # where it is scrolling to
        hidden = 0
        for tab in self.row.query(Tab):
            region = tab.virtual_region
            if region.x < left or region.right > left + width + 1:  # +1: the tab's own right padding
                hidden += 1
        self.hidden_count = hidden
        more = self.query_one(_More)
        more.update(f" +{hidden} " if hidden else "")
        more.set_class(hidden > 0, "shown")

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        event.stop()  # the row follows the app's active thread; only a click (below) picks one

    def on_tabs_cleared(self, event: Tabs.Cleared) -> None:
        event.stop()

    def on_resize(self, event: events.Resize) -> None:
        self.call_after_refresh(self._count_hidden)


class _More(Static):
    def on_click(self, event: events.Click) -> None:
        event.stop()
        self.post_message(ThreadTabs.MoreClicked())
