"""The command palette provider (ctrl+p): every action of the app, and slash-command templates."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from revagent.tui.slash import SPECS
from revagent.tui.surface import AppSurface

ACTIONS: tuple[tuple[str, str, str], ...] = (
    ("New chat thread", "new_chat", "ctrl+n"),
    ("Close the current thread", "close_thread", "F4"),
    ("Rename the current thread", "rename_thread", "F7"),
    ("Next thread", "next_thread", "F6"),
    ("Thread list: every chat and alert thread", "thread_list", ""),
    ("Switch wallet: every configured wallet, its equity, risk and alerts", "switch_wallet", ""),
    ("Previous thread", "prev_thread", "shift+F6"),
    ("Approve the pending proposal", "approve", "F2"),
    ("Reject the pending proposal", "reject", "F3"),
    ("Interrupt the running turn", "interrupt", "esc"),
    ("Show / hide the account panel", "toggle_account", "F8"),
    ("Expand / collapse the last tool call", "toggle_tool", "ctrl+o"),
    ("Refresh the account now", "refresh", "F5"),
    ("Help: keys and slash commands", "help", "F1"),
    ("Flatten: close every position (asks first)", "slash('/flatten')", ""),
    ("Halt trading: kill switch (asks first)", "slash('/halt')", ""),
    ("Resume trading after a halt (asks first)", "slash('/resume')", ""),
    ("Show risk settings and usage", "slash('/risk')", ""),
)


class RevagentCommands(Provider):
    """Actions by name, plus `/command` templates that prefill the input box."""

    def _entries(self) -> list[tuple[str, Callable[[], object], str]]:
        app: AppSurface = self.app  # type: ignore[assignment]
        out: list[tuple[str, Callable[[], object], str]] = [
            (title, partial(app.run_action, action), f"key {key}" if key else "") for title, action, key in ACTIONS
        ]
        for name, spec in SPECS.items():
            out.append((f"/{name}: {spec.summary}", partial(app.prefill, f"/{name} "), spec.usage))
        return out

    async def discover(self) -> Hits:
        for title, callback, help_ in self._entries():
            yield DiscoveryHit(title, callback, help=help_)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, callback, help_ in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_)
