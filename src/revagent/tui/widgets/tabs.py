"""Thread tabs: one row for chat threads, one for alert threads, with running/unread badges.

Rendered text only (no focus): the keyboard moves between threads with the app's bindings, so
the input box keeps the focus and an alert thread never steals it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from revagent.tui.port import ThreadKind, ThreadStatus

BADGE = {"queued": "…", "running": "●", "done": "✓", "failed": "✗", "idle": ""}


@dataclass
class TabState:
    id: str
    kind: ThreadKind
    title: str
    status: ThreadStatus = "idle"
    unread: int = 0
    pending_proposal: bool = False
    used: bool = False  # the trader typed in it: never dropped as an empty placeholder


def tabs_text(label: str, tabs: list[TabState], active: str | None, *, add_hint: bool) -> Text:
    out = Text(no_wrap=True, overflow="ellipsis")
    out.append(f"{label}: ", "bold")
    for tab in tabs:
        badge = BADGE[tab.status]
        text = f"[{'! ' if tab.pending_proposal else ''}{tab.title}{' ' + badge if badge else ''}"
        text += f" ({tab.unread})]" if tab.unread and tab.id != active else "]"
        style = "reverse bold" if tab.id == active else "bold yellow" if tab.unread else ""
        if tab.status == "running" and tab.id != active:
            style = "bold cyan"
        if tab.status == "failed":
            style += " red"
        out.append(text, style.strip()).append(" ")
    if add_hint:
        out.append("+ ^n", "dim")
    elif not tabs:
        out.append("none", "dim")
    return out


class ThreadTabs(Static):
    DEFAULT_CSS = "ThreadTabs { height: 1; }"
